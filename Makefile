# forgejo-runner-guard: build, install, test.
#
#:  make install   build the native .deb (installing build deps) and apt-get install it
#:                 (reinstalled even when its version is the one installed)
#:  make check     every test: unit, real Docker engine, .deb, real systemd
#:  make check-fleet  the Ansible role: ansible-lint, then Molecule on a systemd container
#:  make demo      the whole story against a simulated runner, in under a minute
#:  make bench     print the benchmark figures
#:  make deb       build both packages into out/ (native and stdeb; tools/build-deb)
#:  make mutation  mutation testing of the pure modules (tools/mutation; slow)
#:  make fixtures  regenerate tests/fixtures/ (the runners' real log bytes, needs Go; systemctl show, under nspawn)
#
# Runs as root on Debian 12.  Everything the tests need is installed here.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VERSION := $(shell sed -n 's/^__version__ = "\(.*\)"/\1/p' lib/forgejo_runner_guard/__init__.py)
OUT ?= out
VENV ?= .venv
SYSPY := /usr/bin/python3
PY39 ?= $(firstword $(wildcard /root/.pyenv/versions/3.9*/bin/python3.9) $(shell command -v python3.9 2>/dev/null))
SH1 := sh==1.14.2
SH2 := sh==2.4.0
PYTEST_ARGS ?=
export PYTHONPATH := $(CURDIR)/lib
export PYTHONDONTWRITEBYTECODE := 1

# Debian packages the build, the tests and the benchmarks need (prometheus:
# its promtool checks and unit-tests the shipped alert rules).
BUILD_DEBS := debhelper dh-python python3-all python3-setuptools python3-sh python3-stdeb \
	fakeroot build-essential lintian
TEST_DEBS := $(BUILD_DEBS) docker.io busybox-static debootstrap systemd-container \
	python3-venv util-linux iproute2 openssl ca-certificates man-db python3-yaml golang-go curl \
	podman catatonit prometheus
# Only what demo/demo.sh runs: the Docker engine and CLI, the static busybox
# its image is made of, and python3-sh for the tools in bin/ (python3 comes
# with it).  Not the test suite's packages.
DEMO_DEBS := docker.io busybox-static python3-sh
# Only `make fixtures` needs these: the tests read the committed fixtures.
FIXTURE_DEBS := golang-go golang-github-sirupsen-logrus-dev golang-github-mattn-go-isatty-dev \
	golang-golang-x-sys-dev golang-github-spf13-cobra-dev

.PHONY: help deps build-deps venvs check check-fleet test-unit test-sh1 test-py39 deb install demo \
	bench mutation fixtures clean

help:
	@sed -n 's/^#:  //p' $(firstword $(MAKEFILE_LIST))

# Install the Debian packages in $(1) that are missing, quietly: apt's output
# goes to a log shown only on failure, and one line per package installed
# says which version (tools/apt-install).
define apt_install
	tools/apt-install $(1)
endef

build-deps:
	@$(call apt_install,$(BUILD_DEBS))

deps:
	@$(call apt_install,$(TEST_DEBS))

# The bytes the runners' logrus set-ups write, per flavour, level and TTY,
# with a ground truth per line (tests/fixtures/logrus/generate.py); what
# systemd 252's `systemctl show` prints for a unit in each state, under
# nspawn (tests/fixtures/systemctl/generate.py).
fixtures:
	@$(call apt_install,$(FIXTURE_DEBS))
	$(SYSPY) tests/fixtures/logrus/generate.py
	$(SYSPY) tests/fixtures/systemctl/generate.py

# One venv per sh version on Debian's python3, and one on Python 3.9 for the
# pure modules.  The stamp holds the requirements so a change rebuilds.
$(VENV)/sh2/.stamp $(VENV)/sh1/.stamp: tests/requirements.txt
	@$(call apt_install,python3-venv)
	rm -rf $(@D)
	$(SYSPY) -m venv $(@D)
	$(@D)/bin/pip install -q --disable-pip-version-check -r tests/requirements.txt \
		$(if $(findstring sh1,$@),$(SH1),$(SH2))
	touch $@

$(VENV)/py39/.stamp: tests/requirements.txt
	@test -n "$(PY39)" || { echo "Python 3.9 not found (pyenv 3.9 or python3.9 on PATH); set PY39=" >&2; exit 1; }
	rm -rf $(@D)
	$(PY39) -m venv $(@D)
	$(@D)/bin/pip install -q --disable-pip-version-check -r tests/requirements.txt $(SH1)
	touch $@

venvs: $(VENV)/sh2/.stamp $(VENV)/sh1/.stamp $(VENV)/py39/.stamp

# The whole suite on sh 2.x (Python 3.11) beside everything that runs the
# tools on sh 1.14, then the pure modules on Python 3.9 (tools/check: two
# lanes side by side, the logs printed when both are done).
check: deps venvs
	@tools/check $(abspath $(VENV)) $(abspath $(OUT))

# The Ansible role (contrib/ansible): ansible-lint's production profile on
# the role, site.yml and the scenarios (offline), then Molecule's docker
# driver: the .deb built by `make deb`, a debootstrapped bookworm with
# systemd as PID 1 in the tests' own throwaway dockerd, scenarios default
# and bad_pin.  The venv (ansible, molecule, ansible-lint from PyPI, pinned
# in contrib/ansible/requirements.txt) and the image's root tarball are
# cached under /var/cache/forgejo-runner-guard.  FLEET_ARGS=bad_pin runs
# one scenario (and ansible-lint).
FLEET_ARGS ?=
check-fleet: deps
	$(SYSPY) tests/package/fleet.py $(FLEET_ARGS)

# Both packages (see tools/build-deb for what lands where); make install
# builds the native one only.
deb: build-deps
	tools/build-deb $(OUT)

# Dependencies (python3-sh) come from the archive; tools/apt-install fetches
# the package lists if apt has none that can provide them.  --reinstall: a
# rebuilt package of the same version replaces the installed one, so
# `git pull && make install` installs the code that was pulled.
install: build-deps
	tools/build-deb --native-only $(OUT)
	tools/apt-install --reinstall $(abspath $(OUT))/forgejo-runner-guard_$(VERSION)_all.deb

# Only the demo's packages (DEMO_DEBS), not the test suite's.  demo/demo.sh
# runs the installed tools once `make install` installed them, else bin/.
demo:
	@$(call apt_install,$(DEMO_DEBS))
	demo/demo.sh

# Figures, not pass/fail: every bench/bench_*.py on sh 2.x, then on sh 1.14.
# Not part of make check: mutmut in its own venv ($(VENV)/mutmut), tens of minutes.
mutation:
	VENV=$(abspath $(VENV)) OUT=$(abspath $(OUT)) tools/mutation

bench: deps $(VENV)/sh2/.stamp $(VENV)/sh1/.stamp
	@for v in sh2 sh1; do for b in bench/bench_*.py; do \
		echo "== $$b ($$($(VENV)/$$v/bin/python -c 'import sh; print("sh", sh.__version__)'))"; \
		$(VENV)/$$v/bin/python $$b; done; done

clean:
	rm -rf $(OUT) $(VENV) build dist deb_dist lib/*.egg-info .pytest_cache
	-dh_clean 2>/dev/null
