"""Jobs without containers: hostjobs (pure) on what /proc really holds,
and proctree reading real process trees of this machine."""

import os
import shutil
import subprocess
import time

import pytest

from forgejo_runner_guard.runners import hostjobs
from forgejo_runner_guard.system import proctree
from forgejo_runner_guard.runners.hostjobs import HostJob, Proc

DAEMONS = ("forgejo-runner", "act_runner")


def P(pid, ppid, comm, args="", state="S"):
    return Proc(pid, ppid, comm, state, args or comm)


# ------------------------------------------------------------ pure


def test_the_daemons_live_children_are_the_jobs():
    procs = [
        P(1, 0, "docker-init", "/sbin/docker-init -- /bin/sh -c forgejo-runner daemon"),
        P(7, 1, "sh", "/bin/sh -c forgejo-runner daemon"),  # compose: started from a shell
        P(8, 7, "forgejo-runner", "forgejo-runner daemon"),
        P(20, 8, "bash", "bash -e /tmp/act/step.sh"),
        P(21, 20, "make", "make deploy"),  # below the job: part of it
        P(30, 8, "git", "git fetch", state="Z"),  # a zombie is no job
    ]
    found = hostjobs.find(procs, DAEMONS)
    assert found.daemons == (8,)
    assert found.jobs == (HostJob(20, "bash -e /tmp/act/step.sh"),)
    assert found.jobs[0].name == "pid 20 (bash -e /tmp/act/step.sh)"


def test_an_idle_daemon_and_no_daemon_have_no_jobs():
    assert hostjobs.find([P(1, 0, "tini"), P(5, 1, "act_runner")], DAEMONS) == ((5,), ())
    found = hostjobs.find([P(1, 0, "sh"), P(2, 1, "sleep")], DAEMONS)
    assert found == ((), ())
    assert hostjobs.summary(found, DAEMONS) == \
        "no daemon process (forgejo-runner, act_runner) found: no host jobs looked for"


def test_daemon_by_argv0_a_script_and_a_nested_daemon():
    procs = [
        P(1, 0, "runner.bin", "/usr/local/bin/act_runner daemon"),  # renamed binary, argv[0]
        P(2, 1, "forgejo-runner", "forgejo-runner exec"),  # a job running a runner: a job
        P(3, 2, "sleep", "sleep 1"),
    ]
    found = hostjobs.find(procs, DAEMONS)
    assert found.daemons == (1,)
    assert [j.pid for j in found.jobs] == [2]
    assert hostjobs.find(procs, ("mydaemon",)) == ((), ())


def test_a_long_daemon_name_matches_the_kernels_15_bytes():
    procs = [P(1, 0, "forgejo-runner-", "/opt/forgejo-runner-v6 daemon"), P(2, 1, "sh", "sh")]
    assert hostjobs.find(procs, ("forgejo-runner-v6",)).daemons == (1,)


def test_a_long_command_line_is_shortened():
    job = hostjobs.find([P(1, 0, "act_runner"), P(2, 1, "sh", "sh -c " + "x" * 500)],
                        DAEMONS).jobs[0]
    assert len(job.command) == hostjobs.ARGS_MAX and job.command.endswith("...")


def test_parse_stat_of_this_process():
    with open("/proc/self/stat", "rb") as handle:
        pid, comm, state, ppid = hostjobs.parse_stat(handle.read())
    with open("/proc/self/comm") as handle:
        assert (pid, comm, state, ppid) == (os.getpid(), handle.read().rstrip("\n"), "R",
                                            os.getppid())


@pytest.mark.parametrize("text", [b"", b"12 sleep S 1", b"x (sleep) S 1", b"12 (sleep)"])
def test_parse_stat_rejects(text):
    with pytest.raises(ValueError):
        hostjobs.parse_stat(text)


def test_parse_cmdline():
    assert hostjobs.parse_cmdline(b"bash\0-e\0/tmp/a b.sh\0") == ["bash", "-e", "/tmp/a b.sh"]
    assert hostjobs.parse_cmdline(b"") == []


@pytest.mark.parametrize("text", [b"12 sleep S 1", b"12 (sleep) S", b"(sleep) S 1", "9 x) S 1" + "y" * 200])
def test_parse_stat_rejects_with_one_line_naming_it(text):
    with pytest.raises(ValueError) as info:
        hostjobs.parse_stat(text)
    shown = text.decode() if isinstance(text, bytes) else text
    assert str(info.value) == "not a /proc/PID/stat line: %r" % shown[:80]


def test_parse_stat_takes_odd_command_names_and_the_fewest_fields():
    assert hostjobs.parse_stat(b"7 (my (odd) job) S 1 7 7 0 -1") == (7, "my (odd) job", "S", 1)
    assert hostjobs.parse_stat("8 (x) Z 0") == (8, "x", "Z", 0)  # text, two fields after the name
    # a name that is not UTF-8 (the kernel keeps bytes) comes back byte for byte
    pid, comm, _, _ = hostjobs.parse_stat(b"9 (a\xffb) S 1")
    assert (pid, comm.encode("utf-8", "surrogateescape")) == (9, b"a\xffb")


def test_parse_cmdline_of_any_bytes():
    assert hostjobs.parse_cmdline(b"\0") == [] and hostjobs.parse_cmdline("") == []
    assert hostjobs.parse_cmdline(b"MAX\0X\0") == ["MAX", "X"]
    assert hostjobs.parse_cmdline(b"X\0") == ["X"]
    assert hostjobs.parse_cmdline(b"a\0\0b\0") == ["a", "", "b"]  # an empty argument stays
    assert hostjobs.parse_cmdline(b"caf\xc3\xa9\0\xff\0") == ["caf\u00e9", "\ufffd"]
    # text (from surrogateescape) goes back to the same bytes first
    assert hostjobs.parse_cmdline("x\udcff\0y\0") == ["x\ufffd", "y"]


def test_a_zombie_is_never_the_daemon():
    procs = [P(1, 0, "forgejo-runner", "forgejo-runner daemon", state="Z"), P(2, 1, "sh", "sh")]
    assert hostjobs.find(procs, DAEMONS) == ((), ())
    assert not hostjobs.is_daemon(procs[0], DAEMONS)
    assert hostjobs.is_daemon(procs[0]._replace(state="S"), DAEMONS)


@pytest.mark.parametrize("comm, args, daemon", [
    ("runner.sh", "/usr/local/bin/act_runner daemon --config /etc/act/config.yaml", True),
    ("x", "/opt/a\tb/forgejo-runner daemon", True),  # argv[0] ends at the first space only
    ("x", "/opt/my dir/forgejo-runner daemon", False),
    ("x", "", False),
    ("x", "forgejo-runner-v2 daemon", False),
    ("forgejo-runner", "", True),
])
def test_is_daemon_by_argv0(comm, args, daemon):
    assert hostjobs.is_daemon(P(1, 0, comm)._replace(args=args), DAEMONS) is daemon


def test_a_daemon_below_a_daemon_is_part_of_the_job_and_cycles_end():
    procs = [
        P(8, 1, "forgejo-runner", "forgejo-runner daemon"),
        P(20, 8, "sh", "sh -c forgejo-runner exec"),
        P(30, 20, "forgejo-runner", "forgejo-runner exec"),  # a runner run by a job: part of it
        P(31, 30, "sleep", "sleep 5"),
        P(40, 8, "kworker")._replace(args=""),  # no command line: named by its command name
        P(50, 51, "forgejo-runner", "forgejo-runner daemon"),  # cycles of parents (a race)
        P(51, 50, "sh", "sh"),
        P(60, 61, "act_runner", "act_runner daemon"),
        P(61, 62, "sh", "sh"),
        P(62, 61, "sh", "sh"),
    ]
    found = hostjobs.find(procs, DAEMONS)
    assert found.daemons == (8, 60)
    assert found.jobs == (HostJob(20, "sh -c forgejo-runner exec"), HostJob(40, "[kworker]"))
    assert hostjobs.summary(found, DAEMONS) == "daemon pid 8, 60, 2 host jobs"
    assert hostjobs.summary(hostjobs.find(procs[:2], DAEMONS), DAEMONS) == "daemon pid 8, 1 host job"
    two = hostjobs.find([P(3, 1, "act_runner"), P(4, 1, "act_runner")], DAEMONS)
    assert hostjobs.summary(two, DAEMONS) == "daemon pid 3, 4, 0 host jobs"


def test_a_command_line_of_exactly_the_limit_is_kept_whole():
    exact = "x" * hostjobs.ARGS_MAX
    assert hostjobs.find([P(1, 0, "act_runner"), P(2, 1, "sh", exact)], DAEMONS).jobs[0].command == exact
    longer = hostjobs.find([P(1, 0, "act_runner"), P(2, 1, "sh", exact + "y")], DAEMONS).jobs[0]
    assert longer.command == "x" * (hostjobs.ARGS_MAX - 3) + "..."
    spaced = hostjobs.find([P(1, 0, "act_runner"), P(2, 1, "sh", " a \t b\n")], DAEMONS).jobs[0]
    assert spaced.command == "a b"


# ------------------------------------------------------------ real processes


@pytest.fixture
def daemon(tmp_path):
    """A real process tree: a script installed as `forgejo-runner` (its
    command name, as a Go binary's would be), started from a shell as
    compose does, with a child job (a copy of sleep named with spaces and
    parentheses) and an idle wait."""
    odd = tmp_path / "my (odd) job"
    shutil.copy(shutil.which("sleep"), str(odd))
    runner = tmp_path / "forgejo-runner"
    runner.write_text('#!/bin/sh\n"$1" 30 &\necho ready\nwait\n')
    runner.chmod(0o755)
    shell = subprocess.Popen(["/bin/sh", "-c", '"$0" "$1"; true', str(runner), str(odd)],
                             stdout=subprocess.PIPE, text=True)
    assert shell.stdout.readline() == "ready\n"
    # "ready" comes once the job is forked; wait (bounded) for its exec
    deadline = time.monotonic() + 10
    while [p.comm for p in proctree.subtree(shell.pid)][-1:] != ["my (odd) job"]:
        assert time.monotonic() < deadline, proctree.subtree(shell.pid)
        time.sleep(0.01)
    try:
        yield shell.pid, str(odd)
    finally:
        _kill_tree(shell.pid)
        shell.wait()


def _kill_tree(pid):
    for proc in reversed(proctree.subtree(pid)):
        try:
            os.kill(proc.pid, 9)
        except ProcessLookupError:
            pass


def test_proctree_subtree_finds_the_job_of_a_real_daemon(daemon):
    root, odd = daemon
    procs = proctree.subtree(root)
    assert [p.comm for p in procs] == ["sh", "forgejo-runner", "my (odd) job"]
    found = hostjobs.find(procs, DAEMONS)
    assert found.daemons == (procs[1].pid,)
    assert found.jobs == (HostJob(procs[2].pid, "%s 30" % odd),)
    assert proctree.read(procs[2].pid).ppid == procs[1].pid


def test_proctree_of_a_process_that_is_gone():
    proc = subprocess.Popen(["true"])
    proc.wait()
    assert proctree.subtree(proc.pid) == [] and proctree.read(proc.pid) is None
    with pytest.raises(proctree.ProcError) as err:
        proctree.container(proc.pid)  # State.Pid of an engine in another pid namespace
    assert "(pid %d) is not in /proc: the watchdog must run on the engine's host" % proc.pid \
        in str(err.value)


def test_proctree_cgroup_reads_the_processes_of_a_cgroup(tmp_path):
    """cgroup(): a cgroup v2-style tree (cgroup.procs in a directory and
    its sub-directories), holding this test's own pid."""
    root = tmp_path / "cg"
    sub = root / "system.slice" / "r.service" / "job"
    sub.mkdir(parents=True)
    (root / "system.slice" / "r.service" / "cgroup.procs").write_text("%d\n" % os.getpid())
    (sub / "cgroup.procs").write_text("999999999\n")  # gone: left out
    procs = proctree.cgroup("/system.slice/r.service", root=str(root))
    assert [p.pid for p in procs] == [os.getpid()]
    with pytest.raises(proctree.ProcError) as err:
        proctree.cgroup("/system.slice/nosuch.service", root=str(root))
    assert "cgroup /system.slice/nosuch.service not found" in str(err.value)


def test_proctree_cgroup_v1_systemd_hierarchy_of_this_machine():
    """This process's own cgroup in the machine's name=systemd (v1) or
    unified hierarchy holds this process."""
    with open("/proc/self/cgroup") as handle:
        lines = handle.read().splitlines()
    path = next(line.split(":", 2)[2] for line in lines
                if line.split(":")[1] in ("name=systemd", ""))
    assert os.getpid() in [p.pid for p in proctree.cgroup(path)]


def test_gitea_runner_is_a_default_daemon_as_its_image_starts_it(tmp_path):
    """Gitea's runner is `gitea-runner` since v1.0.0 (act_runner before):
    its image's run.sh ends `exec gitea-runner daemon`.  A real process of
    that name (a script: its command name is its file name, as a Go
    binary's is) with a job: /proc holds the name whole (12 bytes, within
    the kernel's 15), and the default daemon names find it."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    runner = bindir / "gitea-runner"
    runner.write_text('#!/bin/sh\nsleep 30 &\necho ready\nwait\n')
    runner.chmod(0o755)
    script = tmp_path / "run.sh"
    script.write_text("#!/bin/sh\ncd /\nexec gitea-runner daemon\n")
    script.chmod(0o755)
    shell = subprocess.Popen([str(script)], stdout=subprocess.PIPE, text=True,
                             env=dict(os.environ, PATH="%s:%s" % (bindir, os.environ["PATH"])))
    try:
        assert shell.stdout.readline() == "ready\n"
        deadline = time.monotonic() + 10
        while [p.comm for p in proctree.subtree(shell.pid)][-1:] != ["sleep"]:
            assert time.monotonic() < deadline, proctree.subtree(shell.pid)
            time.sleep(0.01)
        with open("/proc/%d/comm" % shell.pid) as handle:
            assert handle.read() == "gitea-runner\n"
        procs = proctree.subtree(shell.pid)
        assert [p.comm for p in procs] == ["gitea-runner", "sleep"]
        found = hostjobs.find(procs)  # the default names
        assert found.daemons == (shell.pid,)
        assert found.jobs == (HostJob(procs[1].pid, "sleep 30"),)
        assert "gitea-runner" in hostjobs.DEFAULT_DAEMONS
    finally:
        _kill_tree(shell.pid)
        shell.wait()
