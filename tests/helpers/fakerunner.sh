#!/bin/sh
# A stand-in for the Forgejo runner: writes real-format runner log lines to
# stderr (where the runner's logrus logger writes), then keeps running like
# a runner does.  For busybox sh; used by the integration tests, the
# benchmark and the demo.
#
#   docker run -d --init --network none --name forgejo_runner \
#       -v "$PWD/tests/helpers/fakerunner.sh:/fakerunner.sh:ro" frg-busybox:latest \
#       sh /fakerunner.sh wedged 150
#
# Usage: fakerunner.sh [daemon [-c CONFIG]] [STEP]... [on-restart STEP...]
#
# Mounted as the runner's binary (-v .../fakerunner.sh:/usr/local/bin/forgejo-runner)
# it takes the runner's own arguments first, `daemon -c /data/config.yml`, so its
# command line names its config as a real runner's does (and ignores them).
#
# The steps before "on-restart" run on the container's first start; the
# steps after it on every later start (default: healthy, as a real runner
# is once the forge's address is pinned).  Steps:
#
#   healthy            the start-up lines of a healthy runner, no errors
#   wedged N [EVERY]   N "failed to fetch task" errors at once; with EVERY
#                      (seconds, may be 0.5), keep logging one every EVERY
#                      seconds for ever, as a wedged runner does every 2 s
#   burst N            N fetch errors, then quiet (a burst that is over)
#   refused N          N fetch errors the server's refusal causes
#                      (unregistered runner): a restart cannot fix that
#   errors N KIND      N fetch errors of KIND: reset eof refused 502 deadline
#                      unregistered internal (the forge's own error) debug tty
#   inject N           N job-output lines relaying the phrase at info and
#                      debug level (must never count)
#   poll KIND MS [MAX] one KIND error now and one every MS milliseconds for
#                      ever, as a runner polling every fetch_interval whose
#                      every poll fails; with MAX, Gitea's backoff: the wait
#                      doubles from MS up to MAX ms, each one +-20 % (jitter)
#   job ID             the info line a job start logs: "task ID repo is ..."
#   info TEXT          one info line
#   sleep S            pause S seconds
#
# After the steps it sleeps until stopped.

MARK=/tmp/.fakerunner-started

now() {
    date -u +%Y-%m-%dT%H:%M:%SZ
}

# fetch_error KIND: one error line in the runner's format (on stdout;
# the caller redirects to stderr)
fetch_error() {
    t=$(now)
    case "$1" in
    reset)
        printf 'time="%s" level=error msg="failed to fetch task" error="unavailable: read tcp 10.1.0.5:51234->203.0.113.7:443: read: connection reset by peer"\n' "$t" ;;
    eof)
        printf 'time="%s" level=error msg="failed to fetch task" error="unavailable: unexpected EOF"\n' "$t" ;;
    refused)
        printf 'time="%s" level=error msg="failed to fetch task" error="unavailable: dial tcp 203.0.113.7:443: connect: connection refused"\n' "$t" ;;
    502)
        printf 'time="%s" level=error msg="failed to fetch task" error="unavailable: 502 Bad Gateway"\n' "$t" ;;
    deadline)
        printf 'time="%s" level=error msg="failed to fetch task: deadline exceeded; increase fetch_timeout if this error is persistent"\n' "$t" ;;
    unregistered)
        printf 'time="%s" level=error msg="failed to fetch task" error="unknown: rpc error: code = Unauthenticated desc = unregistered runner"\n' "$t" ;;
    internal)
        printf 'time="%s" level=error msg="failed to fetch task" error="internal: pick task: CreateTaskForRunner: resource does not exist"\n' "$t" ;;
    debug)
        printf 'time="%s" level=error msg="failed to fetch task" func="[fetchTask]" file="[poller.go:95]" error="unavailable: unexpected EOF"\n' "$t" ;;
    tty)
        printf '\033[31mERRO\033[0m[%s] failed to fetch task                          \033[31merror\033[0m="unavailable: unexpected EOF"\n' "$t" ;;
    *)
        echo "fakerunner.sh: unknown error kind: $1" >&2
        exit 2 ;;
    esac
}

# errors N KIND: N lines; large counts go through a block file and cat,
# so a million lines take seconds, not minutes
errors() {
    n=$1
    kind=$2
    if [ "$n" -ge 2000 ]; then
        : >/tmp/.block
        i=0
        while [ $i -lt 1000 ]; do fetch_error "$kind" >>/tmp/.block; i=$((i + 1)); done
        while [ "$n" -ge 1000 ]; do cat /tmp/.block >&2; n=$((n - 1000)); done
    fi
    line=$(fetch_error "$kind")
    i=0
    while [ $i -lt "$n" ]; do
        printf '%s\n' "$line" >&2
        i=$((i + 1))
    done
}

# centiseconds since boot (/proc/uptime): busybox's date has no fractions
uptime_cs() {
    read -r up _ </proc/uptime
    frac=${up#*.}
    echo $((${up%.*} * 100 + ${frac#0}))
}

# poll KIND MS [MAX]: see the usage above (never returns).  Each poll is
# due MS after the one before, not MS after this shell got round to it
# (the runner's poller is rate-limited the same way), to 10 ms.
poll() {
    wait_ms=$2
    case "${3:-}" in '' | *[!0-9]*) max= ;; *) max=$3 ;; esac
    due=$(uptime_cs)
    while :; do
        fetch_error "$1" >&2
        ms=$wait_ms
        if [ -n "$max" ]; then
            ms=$((wait_ms * (80 + RANDOM % 41) / 100))
            wait_ms=$((wait_ms * 2))
            if [ "$wait_ms" -gt "$max" ]; then wait_ms=$max; fi
        fi
        due=$((due + ms / 10))
        left=$(((due - $(uptime_cs)) * 10))
        if [ "$left" -gt 0 ]; then
            sleep "$((left / 1000)).$(printf %03d $((left % 1000)))"
        fi
    done
}

info() {
    printf 'time="%s" level=info msg="%s"\n' "$(now)" "$1" >&2
}

healthy() {
    info "Starting runner daemon"
    info "runner: fake-runner, with version: v6.3.1, with labels: [docker], declared successfully"
    info "[poller 0] launched"
}

inject() {
    t=$(now)
    i=0
    while [ $i -lt "$1" ]; do
        printf 'time="%s" level=info msg="[ci/build]   | failed to fetch task"\n' "$t" >&2
        printf 'time="%s" level=info msg="[ci/build]   | time=\\"%s\\" level=error msg=\\"failed to fetch task\\" error=\\"unavailable: unexpected EOF\\""\n' "$t" "$t" >&2
        printf 'time="%s" level=debug msg="failed to fetch task"\n' "$t" >&2
        printf 'time="%s" level=info msg="[ci/build]   | ERRO[%s] failed to fetch task   error=\\"x\\""\n' "$t" "$t" >&2
        i=$((i + 1))
    done
}

run_steps() {
    while [ $# -gt 0 ]; do
        step=$1
        shift
        case "$step" in
        healthy) healthy ;;
        wedged)
            errors "$1" reset
            shift
            case "${1:-}" in
            '' | *[!0-9.]*) ;;
            *)
                every=$1
                while :; do sleep "$every"; fetch_error reset >&2; done ;;
            esac ;;
        burst) errors "$1" eof; shift ;;
        refused) errors "$1" unregistered; shift ;;
        errors) errors "$1" "$2"; shift 2 ;;
        inject) inject "$1"; shift ;;
        poll) poll "$@" ;;
        job) info "task $1 repo is owner/repo https://data.forgejo.org https://forge.azrak.io"; shift ;;
        info) info "$1"; shift ;;
        sleep) sleep "$1"; shift ;;
        on-restart) return ;;
        *)
            echo "fakerunner.sh: unknown step: $step" >&2
            exit 2 ;;
        esac
    done
}

# sourced by another script for the functions above (tests/helpers/hostrunner.sh)
if [ -n "${FAKERUNNER_LIB:-}" ]; then
    return 0
fi

if [ "${1:-}" = daemon ]; then
    shift
    case "${1:-}" in
    -c | --config) shift 2 ;;
    esac
fi

if [ -e "$MARK" ]; then
    # a later start: the steps after "on-restart", or healthy
    while [ $# -gt 0 ] && [ "$1" != on-restart ]; do shift; done
    if [ $# -gt 0 ]; then shift; fi
    if [ $# -gt 0 ]; then run_steps "$@"; else healthy; fi
else
    : >"$MARK"
    run_steps "$@"
fi
exec sleep 2147483647
