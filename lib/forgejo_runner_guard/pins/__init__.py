"""The reconcile command (optimus-boot-reconcile): the pin planned in the
hosts file, PURE (hostsfile); --probe (probe), --resolve (resolve),
--runners (runner_copies, job_pins)."""
