"""system/hostssource.py: which hosts file an engine copies, found from
its socket's peer and Podman's containers.conf (real sockets, real files)."""

import os
import socket
import threading

import pytest

from forgejo_runner_guard.system import hostssource


@pytest.mark.parametrize("text, value", [
    ('[containers]\nbase_hosts_file = "/srv/hosts"\n', "/srv/hosts"),
    ("[containers]\nbase_hosts_file='/srv/hosts'  # ours\n", "/srv/hosts"),
    ('[containers]\nbase_hosts_file = ""\n', ""),
    ('[engine]\nbase_hosts_file = "/srv/hosts"\n', None),  # another table's key
    ('[containers]\n#base_hosts_file = "/srv/hosts"\n', None),
    ('[containers]\nbase_hosts_file = "/a"\n[engine]\n[containers]\nbase_hosts_file = "/b"\n',
     "/b"),
    ("", None),
])
def test_base_hosts_file(text, value):
    assert hostssource.base_hosts_file(text) == value


def test_podman_copies_its_base_hosts_file(tmp_path):
    conf = tmp_path / "containers.conf"
    conf.write_text('[containers]\nbase_hosts_file = "%s/hosts"\n' % tmp_path)
    env = {"CONTAINERS_CONF": str(conf)}
    assert hostssource.source("podman", env) == hostssource.Source(
        "%s/hosts" % tmp_path, "%s/hosts (base_hosts_file of Podman)" % tmp_path)
    conf.write_text("[containers]\n")
    assert hostssource.source("podman", env) == hostssource.Source("/etc/hosts", "/etc/hosts")
    for value in ("image", "none"):  # the host's pins never reach such a container
        conf.write_text('[containers]\nbase_hosts_file = "%s"\n' % value)
        assert hostssource.source("podman", env) is None
    assert hostssource.source("podman", dict(env, CONTAINER_HOST="ssh://x")) is None  # remote


def test_docker_copies_the_daemons_own_etc_hosts(tmp_path):
    path = str(tmp_path / "docker.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(path)
        server.listen(1)
        accepted = threading.Thread(target=lambda: server.accept()[0].close(), daemon=True)
        accepted.start()
        assert hostssource.peer_pid(path) == os.getpid()  # this process listens
        found = hostssource.source("docker", {"DOCKER_HOST": "unix://" + path})
        accepted.join(5)
    assert found == hostssource.Source("/proc/%d/root/etc/hosts" % os.getpid(),
                                       "/etc/hosts of the Docker daemon (pid %d)" % os.getpid())
    assert hostssource.same_file(found.path, "/etc/hosts")
    assert hostssource.peer_pid(str(tmp_path / "none.sock")) is None
    assert hostssource.source("docker", {"DOCKER_HOST": "unix://%s/none.sock" % tmp_path}) is None
    assert hostssource.source("docker", {"DOCKER_HOST": "tcp://127.0.0.1:2375"}) is None
    assert not hostssource.same_file(str(tmp_path / "none"), "/etc/hosts")
