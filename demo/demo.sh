#!/bin/bash
# The whole forgejo-runner-guard story in under a minute, without a runner:
# a simulated runner wedges, the watchdog judges it (--dry-run), waits for a
# running job, heals the runner with a real restart, and the reconcile pins
# the forge's name in a sandbox hosts file.
#
#   make demo                 (or demo/demo.sh)
#
# It uses the Docker engine at $DOCKER_HOST when one answers there, else it
# starts a throwaway engine (tests/helpers/engine.py) under its temp dir.  Every
# container, file and engine it starts is removed when it ends, also on
# Ctrl-C.  It never touches this machine's /etc/hosts, /var/lib or
# /run/lock, and nothing it runs has a network: the runner is a busybox
# container with --network none, its forge a stand-in on 127.0.0.1, and
# 10.1.0.10 is only ever written to a temp file.
#
# The tools it runs: the installed package's (/usr/bin/forgejo-runner-watchdog
# and /usr/bin/optimus-boot-reconcile, after `make install`), else this
# checkout's bin/ with its lib/; it says which.
#
# Environment: PYTHON (default /usr/bin/python3) runs the checkout's tools
# and the engine helper; DEMO_TOOLS (auto, installed or checkout; default
# auto: the installed ones when the package is installed) chooses the
# tools; DEMO_PAUSE (default 0) pauses that many seconds between steps, for
# watching.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-/usr/bin/python3}
PAUSE=${DEMO_PAUSE:-0}
TOOLS=${DEMO_TOOLS:-auto}
INSTALLED=/usr/bin
IMAGE=frg-busybox:latest
TAG=frgdemo$$
RUNNER=$TAG-forgejo_runner
JOB=FORGEJO-ACTIONS-TASK-4711_WORKFLOW-deploy_JOB-build-$TAG
EVERY=0.05 # the real runner fails a fetch every 2 s; here 40 times faster

# This process only supervises: it makes the temp dir, runs the story in a
# child bash, and cleans up when the child ends or on Ctrl-C.  (Bash 5.2 can
# fail to parse a $(...) when a signal's trap runs in the middle of it, so
# the story itself handles no signal: as an asynchronous command of a
# non-interactive shell in a session of its own it sees no Ctrl-C, and the
# supervisor, which waits in `wait`, is the one that reacts.)  The child
# records what it starts in $WORK: each container's name in
# $WORK/containers, an engine in $WORK/engine.
if [ -z "${FRG_DEMO_WORK:-}" ]; then
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/frg-demo.XXXXXX")
    child=""
    cleanup() {
        local status=$?
        trap - EXIT INT TERM
        set +e
        if [ -n "$child" ]; then
            # the story's whole process group (its own session, see below),
            # and wait until none of it is left to write into $WORK
            kill -TERM -- "-$child" 2>/dev/null
            wait "$child" 2>/dev/null
            for _ in $(seq 100); do
                kill -0 -- "-$child" 2>/dev/null || break
                sleep 0.05
            done
        fi
        if [ -f "$WORK/engine/dockerd.pid" ]; then
            # the throwaway engine: its containers go with it
            "$PYTHON" "$ROOT/tests/helpers/engine.py" stop "$WORK/engine" >/dev/null 2>&1
        elif [ -s "$WORK/containers" ] && [ -n "${DOCKER_HOST:-}" ]; then
            xargs docker rm -f <"$WORK/containers" >/dev/null 2>&1
        fi
        rm -rf "$WORK"
        if [ "$status" -eq 0 ]; then
            echo "Removed everything the demo started."
        else
            echo "demo: stopped (exit $status); removed everything it started." >&2
        fi
        exit "$status"
    }
    trap cleanup EXIT
    trap 'echo; echo "demo: interrupted" >&2; exit 130' INT TERM
    # setsid: the story gets a process group of its own (pid = group id), so
    # the cleanup can end everything it runs, grandchildren included.
    FRG_DEMO_WORK=$WORK setsid bash "${BASH_SOURCE[0]}" "$@" &
    child=$!
    wait "$child"
    exit  # with the child's status; the EXIT trap cleans up
fi

WORK=$FRG_DEMO_WORK
track() { printf '%s\n' "$1" >>"$WORK/containers"; }

say() { printf '\n%s\n' "$*"; }
note() { printf '  %s\n' "$*"; }
pause() { if [ "$PAUSE" != 0 ]; then sleep "$PAUSE"; fi; }

# show EXPECTED-EXIT CMD...: print the command as the operator would type it
# (paths shortened to the demo's temp dir), run it, indent its output, and
# stop the demo if its exit status is not the one expected.
show() {
    local expected=$1 status=0 output
    shift
    printf '  $ %s\n' "$(printf '%s ' "$@" | sed -e "s|$WORK/|\$DEMO/|g" -e 's/ $//')"
    output=$("$@" 2>&1) || status=$?
    if [ -n "$output" ]; then
        printf '%s\n' "$output" | sed -e "s|$WORK/|\$DEMO/|g" -e 's/^/    /'
    fi
    if [ "$status" -ne 0 ]; then
        printf '    (exit status %d)\n' "$status"
    fi
    if [ "$status" -ne "$expected" ]; then
        echo "demo: expected exit status $expected, got $status" >&2
        exit 1
    fi
}

tool() {
    local name=$1
    shift
    if [ "$TOOLS" = installed ]; then
        # the package's own library, not this checkout's (make exports
        # PYTHONPATH=lib)
        env -u PYTHONPATH "$INSTALLED/$name" "$@"
    else
        PYTHONPATH="$ROOT/lib" "$PYTHON" "$ROOT/bin/$name" "$@"
    fi
}
optimus-boot-reconcile() { tool optimus-boot-reconcile "$@"; }
forgejo-runner-watchdog() { tool forgejo-runner-watchdog "$@"; }

errors_logged() {
    docker logs "$RUNNER" 2>&1 | grep -c 'failed to fetch task' || true
}

started_at() {
    docker inspect -f '{{.State.StartedAt}}' "$RUNNER"
}

for tool_needed in docker "$PYTHON"; do
    if ! command -v "$tool_needed" >/dev/null; then
        echo "demo: $tool_needed not found (make demo installs the prerequisites)" >&2
        exit 1
    fi
done

package_installed() {
    dpkg-query -W -f='${db:Status-Status}' forgejo-runner-guard 2>/dev/null | grep -qx installed &&
        [ -x "$INSTALLED/forgejo-runner-watchdog" ] && [ -x "$INSTALLED/optimus-boot-reconcile" ]
}
case $TOOLS in
auto)
    if package_installed; then TOOLS=installed; else TOOLS=checkout; fi
    ;;
installed)
    if ! package_installed; then
        echo "demo: DEMO_TOOLS=installed, but the package forgejo-runner-guard is not installed (make install)" >&2
        exit 1
    fi
    ;;
checkout) ;;
*)
    echo "demo: DEMO_TOOLS must be auto, installed or checkout, not '$TOOLS'" >&2
    exit 2
    ;;
esac

START=$SECONDS
mkdir -p "$WORK/state" "$WORK/lock"

echo "forgejo-runner-guard demo: a wedged Forgejo runner, healed; the forge's name, pinned."
echo "Everything runs in $WORK (shown as \$DEMO) and in throwaway containers."
if [ "$TOOLS" = installed ]; then
    echo "Tools: the installed package's, $INSTALLED/forgejo-runner-watchdog and $INSTALLED/optimus-boot-reconcile ($(tool forgejo-runner-watchdog --version))."
else
    echo "Tools: this checkout's, $ROOT/bin/forgejo-runner-watchdog and $ROOT/bin/optimus-boot-reconcile with its lib/ ($(tool forgejo-runner-watchdog --version)); after \`make install\` the demo runs the installed ones."
fi

# ------------------------------------------------------------ the engine
if [ -n "${DOCKER_HOST:-}" ] && docker info >/dev/null 2>&1; then
    say "Docker engine: the one at DOCKER_HOST ($DOCKER_HOST)."
else
    if [ -n "${DOCKER_HOST:-}" ]; then
        say "Docker engine: nothing answers at DOCKER_HOST ($DOCKER_HOST); starting a throwaway one (no bridge, no iptables)."
    else
        say "Docker engine: starting a throwaway one (no bridge, no iptables)."
    fi
    if [ "$(id -u)" != 0 ]; then
        echo "demo: starting a Docker engine needs root; run as root or set DOCKER_HOST" >&2
        exit 1
    fi
    line=$("$PYTHON" "$ROOT/tests/helpers/engine.py" start "$WORK/engine")
    export DOCKER_HOST=${line#DOCKER_HOST=}
    note "listening on $DOCKER_HOST"
fi
PYTHONPATH="$ROOT/tests/helpers" "$PYTHON" -c 'import engine, os; engine.ensure_image(os.environ["DOCKER_HOST"])'

# The forge: a stand-in on loopback that answers the Actions Ping as Forgejo
# does (tests/helpers/forge.py); the watchdog asks it before a restart.
PYTHONPATH="$ROOT/tests" "$PYTHON" -c 'import sys, time
from helpers.forge import Forge
forge = Forge("answer", "127.0.0.1")
with open(sys.argv[1] + ".tmp", "w") as handle:
    handle.write(forge.url("127.0.0.1"))
import os; os.rename(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(3600)' "$WORK/forge.url" &
for _ in $(seq 100); do
    [ -s "$WORK/forge.url" ] && break
    sleep 0.05
done
FORGE_URL=$(cat "$WORK/forge.url")

cat >"$WORK/guard.conf" <<EOF
# The demo's configuration: state and locks in its temp dir.
[reconcile]
hosts_file = $WORK/hosts
lock_file = $WORK/lock/hosts.lock
state_dir = $WORK/state
pins =
    forge.azrak.io 10.1.0.10

[watchdog]
runners = forgejo_runner
state_dir = $WORK/state
docker_timeout = 20s

[runner forgejo_runner]
container = $RUNNER
# the forge it talks to (a real runner's is read from its .runner)
forge = $FORGE_URL
EOF
CONF=(--config "$WORK/guard.conf")

# ------------------------------------------------------------ 1. wedged
say "1. A runner that wedges."
note "A simulated Forgejo runner starts (container $RUNNER, no network)."
note "Like the real one it logs to stderr; it fails to fetch a task every"
note "$EVERY s instead of every 2 s, so five minutes of trouble take seconds."
track "$RUNNER"
docker run -d --init --network none --name "$RUNNER" \
    -v "$ROOT/tests/helpers/fakerunner.sh:/fakerunner.sh:ro" "$IMAGE" \
    sh /fakerunner.sh healthy wedged 0 "$EVERY" >/dev/null
for _ in $(seq 100); do
    [ "$(errors_logged)" -ge 45 ] && break
    sleep 0.1
done
note "Its last lines:"
show 0 docker logs --tail 2 "$RUNNER"
pause

# ------------------------------------------------------------ 2. dry run
say "2. The watchdog's verdict, changing nothing (--dry-run)."
show 0 forgejo-runner-watchdog "${CONF[@]}" --state-dir "$WORK/state" --dry-run
note "Wedged: at least 40 fetch errors in the window, the newest a moment ago."
note "And its forge answers its Ping: the runner's own connection is stuck, so a"
note "restart helps.  Were the forge down, a restart could not help: not restarted."
pause

# ------------------------------------------------------------ 3. a job runs
say "3. A job is running: the watchdog never restarts mid-job."
track "$JOB"
docker run -d --init --network none --name "$JOB" "$IMAGE" sleep 300 >/dev/null
note "A job container $JOB is running."
show 0 forgejo-runner-watchdog "${CONF[@]}" --state-dir "$WORK/state"
note "Skipped; the timer would try again in 5 minutes.  The job ends."
docker rm -f "$JOB" >/dev/null
pause

# ------------------------------------------------------------ 4. healed
say "4. The watchdog heals the runner: a real docker restart."
before=$(started_at)
show 0 forgejo-runner-watchdog "${CONF[@]}" --state-dir "$WORK/state"
after=$(started_at)
note "Runner started at $before, now at $after."
if [ "$before" = "$after" ]; then
    echo "demo: the runner was not restarted" >&2
    exit 1
fi
for _ in $(seq 50); do
    docker logs --tail 1 "$RUNNER" 2>&1 | grep -q 'launched' && break
    sleep 0.1
done
note "The healed runner logs its start and polls again, no errors:"
show 0 docker logs --tail 3 "$RUNNER"
note "The next run counts only errors since the restart:"
show 0 forgejo-runner-watchdog "${CONF[@]}" --state-dir "$WORK/state" --dry-run
pause

# ------------------------------------------------------------ 5. the pin
say "5. The pin: optimus-boot-reconcile on a sandbox hosts file."
note "A restart only clears the wedge until the lossy path drops the runner"
note "again.  The real fix sends it over the tunnel: forge.azrak.io -> 10.1.0.10"
note "in /etc/hosts, at every boot before Docker starts (Docker copies the"
note "host's /etc/hosts into a host-network container when it starts it)."
note "Here the file is \$DEMO/hosts, a fresh Debian hosts file; this machine's"
note "/etc/hosts is never touched."
printf '127.0.0.1\tlocalhost\n127.0.1.1\toptimus\n\n# The following lines are desirable for IPv6 capable hosts\n::1     localhost ip6-localhost ip6-loopback\nff02::1 ip6-allnodes\nff02::2 ip6-allrouters\n' >"$WORK/hosts"
note "Is it in sync?  Exit 3 means drift:"
show 3 optimus-boot-reconcile "${CONF[@]}" --hosts-file "$WORK/hosts" --check
note "What would change:"
show 3 optimus-boot-reconcile "${CONF[@]}" --hosts-file "$WORK/hosts" --diff
note "Apply it:"
show 0 optimus-boot-reconcile "${CONF[@]}" --hosts-file "$WORK/hosts"
note "In sync now (exit 0); a second run would not even write the file:"
show 0 optimus-boot-reconcile "${CONF[@]}" --hosts-file "$WORK/hosts" --check
show 0 cat "$WORK/hosts"
pause

say "Done in $((SECONDS - START)) s: wedged, judged, held back by a job, healed, pinned."
note "On a real host, runbook/08-forgejo-runner-lan-pin-and-watchdog.md has the"
note "same steps, with /etc/hosts and a runner restart once the pin is in place."
