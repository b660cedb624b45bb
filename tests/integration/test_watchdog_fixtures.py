"""forgejo-runner-watchdog on the real engine, reading the bytes the
runners really write (tests/fixtures/logrus/): each fixture replayed by a
busybox container, stdout and stderr as the runner wrote them, or through
`docker run -t` for a TTY one; the count and the decision are read from
--json.  Then the polling rule in real time at a scaled cadence
(fetch_interval 0.2s, fetch_timeout 3s, sustain 20s)."""

import json
import os
import subprocess
import time
import uuid

import pytest

from helpers.tools import run_tool
from helpers.logrus import HERE, ambiguous, truth

pytestmark = pytest.mark.docker

TOOL = "forgejo-runner-watchdog"
IMAGE = "frg-busybox:latest"


class Replays:
    def __init__(self, host):
        self.env = dict(os.environ, DOCKER_HOST=host)
        self.host = host
        self.names = []

    def docker(self, *args):
        result = subprocess.run(["docker", *args], env=self.env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        return result.stdout

    def run(self, script, tty=False):
        name = "frg-replay-%s" % uuid.uuid4().hex[:8]
        self.names.append(name)
        self.docker("run", "-d", "--init", "--network", "none", "--name", name,
                    *(["-t"] if tty else []), "-v", "%s:/f:ro" % HERE, IMAGE, "sh", "-c", script)
        return name

    def replay(self, config):
        """A container that writes the fixture's bytes and keeps running."""
        if config.endswith("-tty"):
            # the pty would turn the fixture's CR LF into CR CR LF: write it raw
            script = "busybox stty -onlcr; cat /f/%s.tty; : > /tmp/done; exec sleep 3600" % config
        else:
            script = "cat /f/{0}.stdout; cat /f/{0}.stderr >&2; : > /tmp/done; exec sleep 3600".format(config)
        name = self.run(script, tty=config.endswith("-tty"))
        deadline = time.monotonic() + 20
        while subprocess.run(["docker", "exec", name, "cat", "/tmp/done"], env=self.env,
                             capture_output=True).returncode != 0:
            assert time.monotonic() < deadline, "%s did not finish writing" % name
            time.sleep(0.05)
        return name

    def cleanup(self):
        if self.names:
            subprocess.run(["docker", "rm", "-f", *self.names], env=self.env, capture_output=True)


@pytest.fixture
def replays(docker_host):
    engine = Replays(docker_host)
    yield engine
    engine.cleanup()


def watchdog(replays, tmp_path, conf, *names):
    path = tmp_path / "guard.conf"
    path.write_text(conf)
    (tmp_path / "state").mkdir(exist_ok=True)  # a dry run checks it as the real run would
    args = ["--config", str(path), "--state-dir", str(tmp_path / "state"), "--dry-run", "--json"]
    for name in names:
        args += ["--container", name]
    result = run_tool(TOOL, *args, env={"DOCKER_HOST": replays.host}, timeout=60)
    assert "Traceback" not in result.stderr, result.stderr
    return result, json.loads(result.stdout)["runners"]


# threshold 5: the fixtures' last burst (five failures after the job) makes
# the threshold rule hold, so the newest failure's class decides
REPLAY_CONF = "[watchdog]\nthreshold = 5\nverify = none\n"  # the log alone decides
CASES = [
    # config, decision
    ("forgejo-debug-text", "wedged"),
    ("gitea-trace-text", "refused"),
    ("legacy-info-text", "wedged"),
    ("forgejo-info-tty", "wedged"),
    ("gitea-debug-tty", "refused"),
    ("legacy-warn-tty", "wedged"),
]


def own_errors(config):
    """The fetch errors the runner's logger wrote, by the ground truth."""
    return sum(1 for r in truth(config) if r[0] in ("stderr", "tty") and r[3] == "FETCH_ERROR")


def test_replayed_fixtures_count_exactly_and_decide(replays, tmp_path):
    names = [replays.replay(config) for config, _ in CASES]
    result, runners = watchdog(replays, tmp_path, REPLAY_CONF, *names)
    for (config, decision), doc in zip(CASES, runners):
        own = own_errors(config)
        imitation = 1 if ambiguous(config) else 0  # the one job line with logrus's own colours
        assert doc["errors"] == own + imitation, (config, doc)
        assert doc["decision"] == decision, (config, doc)
        assert doc["log_source"] == ("tty" if config.endswith("-tty") else "stderr")
        assert bool(doc["ambiguous"]) is ambiguous(config), (config, doc)
        assert ("(beware: " in doc["summary"]) is ambiguous(config)
        # the class of the newest fetch error; Gitea's log ends in its poller's
        # "server rejected the runner as unregistered": a terminal state
        assert doc["failure_class"] == "transport"
        if decision == "refused":
            assert (doc["cause"], doc["cause_error"], doc["exit_status"]) == \
                ("unregistered", "unauthenticated: unregistered runner", 1)
            assert "the runner must be re-registered (a restart cannot help)" in doc["summary"]
        else:
            assert doc["cause"] is None
            assert doc["summary"].endswith("wedged: would restart (dry run)") or "(beware: " in doc["summary"]
    assert result.returncode == 1  # a refused runner asks someone to look


DEADLINE = ('time="%s" level=error msg="failed to fetch task: deadline exceeded; increase '
            'fetch_timeout if this error is persistent"')
RESET = ('time="%s" level=error msg="failed to fetch task" error="unavailable: read tcp '
         '10.1.0.5:51234->203.0.113.7:443: read: connection reset by peer"')
SCALED = "[watchdog]\nfetch_interval = 0.2s\nfetch_timeout = 3s\nsustain = 20s\n"


def every(line, seconds):
    """A shell loop printing the runner's line (time="%s" filled by printf)
    on stderr every `seconds`."""
    return ("while :; do printf '" + line + "\\n' \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\" >&2; "
            "sleep " + str(seconds) + "; done")


def test_polling_rule_in_real_time_at_a_scaled_cadence(replays, tmp_path):
    slow = replays.run(every(DEADLINE, 3))  # a deadline every fetch_timeout: wedged after sustain
    sparse = replays.run(every(RESET, 2))  # a reset every 2 s on a 0.2 s poller: nine in ten polls work
    started = time.monotonic()
    time.sleep(10)
    _, early = watchdog(replays, tmp_path, SCALED, slow, sparse)
    assert [d["decision"] for d in early] == ["healthy", "healthy"], early
    time.sleep(max(0.0, started + 21.5 - time.monotonic()))
    _, late = watchdog(replays, tmp_path, SCALED, slow, sparse)
    assert [d["decision"] for d in late] == ["wedged", "healthy"], late
    assert late[0]["rule"] == "polling" and late[0]["errors"] < 40
    assert late[0]["summary"].startswith("%s: every poll failed for 2" % slow)
    assert "polls, deadline exceeded, fetch_timeout 3s), no job running: wedged: would restart (dry run)" \
        in late[0]["summary"]
    assert late[1]["streak_polls"] == 1
