#!/bin/sh
# A stand-in for a runner daemon that runs jobs without containers (host
# labels): installed in a container (or a unit) as `forgejo-runner`, so its
# command name is the daemon's.  It logs its steps with tests/helpers/fakerunner.sh
# (mounted at /fakerunner.sh), optionally starts a "host job" as its own
# child, then idles WITHOUT any child process (a builtin read on a FIFO), as
# an idle runner has none.  On SIGTERM it drains like the Forgejo runner:
# writes "got TERM" to DIR/events, takes DRAIN seconds (a child sleep, after
# the watchdog's check), writes "exited by itself" and exits 0.  A runner the
# engine SIGKILLs never writes the last line.  The drain ignores further
# SIGTERMs, its child sleep too: systemd (KillMode=control-group) sends one to
# every process in the unit's cgroup just after the main one, and a sleep
# forked in between would die at once (a drain of 0 s, not DRAIN).
#
#   docker run -d --init --network none \
#       -v DIR:/state -v "$PWD/tests/helpers/hostrunner.sh:/usr/local/bin/forgejo-runner:ro" \
#       -v "$PWD/tests/helpers/fakerunner.sh:/fakerunner.sh:ro" frg-busybox:latest \
#       /usr/local/bin/forgejo-runner /state DRAIN JOB STEP...
#
# DIR must hold a FIFO named `fifo` (made by the caller: busybox here has no
# mkfifo).  JOB: seconds the host job (`sleep JOB`) runs, or "none".  STEPs:
# fakerunner.sh's, on the first start only; later starts log "healthy".

dir=$1
drain=$2
job=$3
shift 3
FAKERUNNER_LIB=1 . "${FAKERUNNER:-/fakerunner.sh}"

trap 'trap "" TERM; echo "got TERM" >>"$dir/events"; sleep "$drain"; echo "exited by itself" >>"$dir/events"; exit 0' TERM

if [ -e "$dir/started" ]; then
    healthy
else
    : >"$dir/started"
    run_steps "$@"
    if [ "$job" != none ]; then
        sleep "$job" &
    fi
fi
echo "idle" >>"$dir/events"
exec 3<>"$dir/fifo"
while :; do
    read line <&3
done
