"""registration.identity(): who a runner is to its forge, from the files
its registration wrote (tests/helpers/forge.py writes them as the Forgejo
runner does) in a temp dir standing for its /data mount, found as the
watchdog finds them: through the container's mounts, or on the host for
a unit.  And add_host_addresses(), the --add-host entries for a name."""

import json

import pytest

from helpers.forge import UUID, registration as dot_runner, runner_files
from forgejo_runner_guard.runners import registration
from forgejo_runner_guard.runners.registration import Identity, Launch, identity

ADDRESS = "https://forge.azrak.io/"
DAEMON = ["/bin/forgejo-runner", "daemon", "-c", "config.yml"]


def container(data, argv=DAEMON, workdir="/data", dest="/data"):
    """A container's Launch with `data` (a host dir) mounted at `dest`."""
    return Launch(argv, workdir, [{"Type": "bind", "Source": str(data), "Destination": dest}],
                  "the command line of container r")


def test_official_image_layout(tmp_path):
    """WORKDIR /data, `forgejo-runner daemon -c config.yml`, /data a volume."""
    runner_files(str(tmp_path), ADDRESS)
    found = identity(container(tmp_path))
    assert found == Identity((ADDRESS,), UUID, "runner-1", ("docker",), False,
                             "/data/.runner (the host's %s/.runner)" % tmp_path, "")
    assert found.found


def test_without_a_config_the_defaults(tmp_path):
    (tmp_path / ".runner").write_bytes(dot_runner("http://forge.azrak.io:3000", labels=(
        "ubuntu-latest:docker://node:20-bookworm", "self-hosted:host", "lxc:lxc://debian:bookworm")))
    found = identity(container(tmp_path, ["forgejo-runner", "daemon"]))
    assert found.urls == ("http://forge.azrak.io:3000",) and found.insecure is False
    assert found.labels == ("ubuntu-latest", "self-hosted", "lxc")


def test_insecure_a_runner_file_elsewhere_and_the_configs_labels(tmp_path):
    (tmp_path / "state").mkdir()
    runner_files(str(tmp_path), ADDRESS, insecure=True, file="state/reg.json",
                 labels="[\"big:docker://node:20\", \"small\"]")
    found = identity(container(tmp_path))
    assert found.insecure is True and found.labels == ("big", "small")  # the config's win
    assert found.source == "/data/state/reg.json (the host's %s/state/reg.json)" % tmp_path


def test_server_connections(tmp_path):
    """Forgejo runner 12.7+: the connections in config.yml (config.example.yaml:220-256)."""
    (tmp_path / "config.yml").write_text(
        "runner:\n  insecure: true\nserver:\n  connections:\n    example:\n"
        "      url: https://example.com/\n      uuid: c9e50be9-a7c3-4aee-ba35-624c4ff8c519\n"
        "      token: 6634bb58be0db23cc013a2e72dd1828ae0257cf\n      fetch_interval: 30s\n"
        "      labels:\n        - debian:docker://docker.io/library/node:lts-trixie\n"
        "    codeberg:\n      url: https://codeberg.org/\n"
        "      uuid: f543b661-cb02-4ba2-9820-108df62808b5\n"
        "      token_url: file:$CREDENTIALS_DIRECTORY/token.txt\n")
    found = identity(container(tmp_path))
    assert found == Identity(("https://example.com/", "https://codeberg.org/"), UUID, "example",
                             ("debian",), True,
                             "server.connections in /data/config.yml (the host's %s/config.yml)"
                             % tmp_path, "")


def test_a_container_without_workdir_looks_in_data_too(tmp_path):
    """Gitea's image: no WORKDIR, run.sh does `cd /data`."""
    (tmp_path / ".runner").write_bytes(dot_runner(ADDRESS))
    found = identity(container(tmp_path, ["/sbin/tini", "--", "run.sh"], workdir="/"))
    assert found.urls == (ADDRESS,) and found.source.startswith("/data/.runner ")


def test_a_unit_reads_the_hosts_files(tmp_path):
    config = tmp_path / "config.yaml"
    runner_files(str(tmp_path), ADDRESS)
    config.write_text((tmp_path / "config.yml").read_text())
    argv = ["/usr/local/bin/gitea-runner", "daemon", "--config", str(config)]
    found = identity(Launch(argv, str(tmp_path), None, "ExecStart of gitea-runner.service"))
    assert found.urls == (ADDRESS,) and found.source == "%s/.runner" % tmp_path


@pytest.mark.parametrize("setup, launch, reason", [
    # nothing on a mount: the image's own filesystem
    (None, lambda d: container(d, dest="/srv"),
     "cannot read its config: /data/config.yml is in the container's own filesystem (no mount "
     "holds it)"),
    (None, lambda d: container(d, ["forgejo-runner", "daemon"], workdir="/", dest="/srv"),
     "no .runner: not on a mount of the container (looked for /.runner, /data/.runner)"),
    # on the mount, but missing
    (lambda d: runner_files(str(d), None), lambda d: container(d),
     "no .runner: /data/.runner (the host's {d}/.runner): No such file or directory"),
    (lambda d: None, lambda d: container(d),
     "cannot read its config: /data/config.yml (the host's {d}/config.yml): No such file or "
     "directory"),
    # not what the runner wrote
    (lambda d: (d / ".runner").write_text("{not json"), lambda d: container(d, ["forgejo-runner",
                                                                                "daemon"]),
     "/data/.runner (the host's {d}/.runner): not JSON (Expecting property name enclosed in "
     "double quotes: line 1 column 2 (char 1))"),
    (lambda d: (d / ".runner").write_text(json.dumps({"uuid": UUID, "address": " "})),
     lambda d: container(d, ["forgejo-runner", "daemon"]),
     "/data/.runner (the host's {d}/.runner): no address in it"),
    (lambda d: (d / "config.yml").write_text("runner: [\n"), lambda d: container(d),
     "its config /data/config.yml (the host's {d}/config.yml): not valid YAML: expected the node "
     "content, but found '<stream end>' at line 2, column 1"),
    (lambda d: (d / "config.yml").write_text("server:\n  connections:\n    a:\n      uuid: x\n"),
     lambda d: container(d),
     "server.connections in /data/config.yml (the host's {d}/config.yml): no connection has a url"),
    (None, lambda d: Launch(None, "/", None, "ExecStart of r.service", "ExecStart of r.service is "
                            "not one simple command"),
     "ExecStart of r.service is not one simple command"),
])
def test_not_found_says_why(tmp_path, setup, launch, reason):
    if setup is not None:
        setup(tmp_path)
    found = identity(launch(tmp_path))
    assert not found.found and found.urls == ()
    assert found.reason == reason.format(d=tmp_path)


def test_a_huge_file_is_not_read_whole(tmp_path):
    (tmp_path / ".runner").write_bytes(b" " * (registration.MAX_CONFIG + 10))
    found = identity(container(tmp_path, ["forgejo-runner", "daemon"]))
    assert found.reason == "no .runner: /data/.runner (the host's %s/.runner): larger than %d bytes" % (
        tmp_path, registration.MAX_CONFIG)


# ---------------------------------------------------------------- --add-host


HOSTS = "127.0.0.1\tlocalhost\n172.17.0.1\tforge.azrak.io\n# 10.9.9.9 forge.azrak.io\n"


@pytest.mark.parametrize("extra, hosts, addresses", [
    (["forge.azrak.io:10.1.0.10"], "", ("10.1.0.10",)),
    (["FORGE.azrak.io=10.1.0.10", "forge.azrak.io:10.1.0.10"], "", ("10.1.0.10",)),  # Docker 25's form
    (["forge.azrak.io:2001:db8::10", "forge.azrak.io:[2001:db8::11]"], "",
     ("2001:db8::10", "2001:db8::11")),
    (["other.example:10.9.9.9"], "", ()),
    (["forge.azrak.io:host-gateway"], HOSTS, ("172.17.0.1",)),  # as Docker wrote it at the start
    (["forge.azrak.io:host-gateway"], "", ()),
    ([], HOSTS, ()),  # the hosts file alone is not an --add-host
])
def test_add_host_addresses(extra, hosts, addresses):
    assert registration.add_host_addresses("forge.azrak.io", extra, hosts) == addresses
