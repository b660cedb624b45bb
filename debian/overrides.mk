# debhelper overrides for forgejo-runner-guard.  Included by debian/rules
# and, through stdeb.cfg's Setup-Env-Vars, by the rules stdeb generates:
# both packages are built the same way.

# pybuild picks the first python3 on PATH; a pyenv shim there builds
# against the wrong interpreter.  Build with the system's only.
export PATH := /usr/sbin:/usr/bin:/sbin:/bin

# The test suite needs a Docker engine, debootstrap and systemd-nspawn;
# it runs from `make check`, not at build time.
override_dh_auto_test:

# The runbook is read with a pager or a Markdown viewer: keep it plain.  The
# Ansible role under examples/ is used as it is (copied into a roles path).
override_dh_compress:
	dh_compress -X.md -Xexamples/ansible/

# Left alone, dh_installsystemd would start every unit it finds at install
# time, and the boot unit would edit /etc/hosts the moment the package is
# installed.  So the units are named:
#   - the boot unit is enabled (it runs at the next boot) but never started,
#     stopped or restarted by the maintainer scripts: installing or
#     upgrading the package does not touch /etc/hosts;
#   - the timer is enabled and started (and restarted on upgrade);
#   - the watchdog service is only installed: it is static and the timer
#     starts it;
#   - the path unit (re-pin when /etc/hosts changes) is installed DISABLED
#     and never started: the admin enables it (runbook 08).  Named here so
#     that its enablement, if the admin makes one, is tracked, kept across
#     upgrades (not stopped by them) and removed on purge.
override_dh_installsystemd:
	dh_installsystemd --name=optimus-boot-reconcile --no-start --no-stop-on-upgrade \
		optimus-boot-reconcile.service
	dh_installsystemd --name=optimus-boot-reconcile --no-enable --no-start --no-stop-on-upgrade \
		optimus-boot-reconcile.path
	dh_installsystemd --name=forgejo-runner-watchdog forgejo-runner-watchdog.timer
