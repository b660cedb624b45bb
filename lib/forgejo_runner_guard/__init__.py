"""forgejo-runner-guard: keep a self-hosted Forgejo Actions runner healthy.

The folders are the architecture; arrows run one way, from the commands
down (watchdog/, pins/ -> runners/, forge/ -> logs/, system/, config/),
with cli, report and notify shared by both commands:

    config/    guard.conf + drop-ins -> frozen settings; value parsers
    system/    the only code that touches the host (CLIs, /proc, writes)
    logs/      PURE: what a runner wrote -> Evidence
    runners/   a runner: its backends, jobs, restarts, history, own files
    forge/     what the forge says: its Ping (and the TLS the probe shares), its
               REST API (read-only, with a token)
    watchdog/  forgejo-runner-watchdog: gather -> verify -> decide -> act -> report
    pins/      optimus-boot-reconcile: the hosts-file pins and --runners

Imports are at the top of a module, except where bench/ measures what a
later import saves, and such an import says which of these it serves:
the watchdog starts its docker calls (runners/backends/docker.py begin())
before it loads what reads and decides; the boot unit's plain reconcile
run never loads `sh`, ssl, socket, yaml or json; and an optional feature
(--json, --diff, --probe, --resolve, --runners, [notify], the metrics
file, the forge's Ping of a wedged runner, a forge token: the forge's
REST view) loads its modules only when it is used.
"""

__version__ = "0.1.0"
