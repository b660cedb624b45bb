#!/bin/sh
# A simulated host-network Forgejo runner for the runbook sandbox (busybox sh).
#
# Docker copies the host's /etc/hosts into a host-network container each
# time it starts; the sandbox's runner has no network at all, so this
# script does the copy itself from the sandbox's /etc (mounted read-only at
# /sandbox-etc).  Then it behaves as the real runner does on that host:
# wedged (a backlog of "failed to fetch task" errors, then one every 2 s,
# the runner's fetch_interval) while the forge's name is not pinned to its
# LAN address, healthy once it is.  The log lines come from fakerunner.sh.
#
#   docker run -d --init --network none --name forgejo_runner \
#       -v "$PWD/tests:/sim:ro" -v "$SANDBOX/etc:/sandbox-etc:ro" \
#       frg-busybox:latest sh /sim/simrunner.sh [NAME ADDRESS [BACKLOG EVERY]]

NAME=${1:-forge.azrak.io}
ADDRESS=${2:-10.1.0.10}
BACKLOG=${3:-150}
EVERY=${4:-2}

if [ -r /sandbox-etc/hosts ]; then
    cat /sandbox-etc/hosts >/etc/hosts
fi

# Is NAME mapped to ADDRESS by an active line?  (busybox here has no grep)
pinned=no
while read -r addr names; do
    case "$addr" in '' | '#'*) continue ;; esac
    [ "$addr" = "$ADDRESS" ] || continue
    for n in $names; do
        case "$n" in '#'*) break ;; esac
        if [ "$n" = "$NAME" ]; then pinned=yes; fi
    done
done </etc/hosts

if [ "$pinned" = yes ]; then
    set -- healthy
else
    set -- wedged "$BACKLOG" "$EVERY"
fi
# the same steps on the first start and on every restart: the pin decides
exec sh /sim/fakerunner.sh "$@" on-restart "$@"
