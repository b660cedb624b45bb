"""The only code that touches the host: CLIs through `sh` with a deadline
(calls), the docker and podman CLIs (engines), systemctl and journalctl
(systemctl), /proc and cgroups (proctree), locks and atomic writes
(safewrite)."""
