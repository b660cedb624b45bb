"""The shipped Prometheus rules (debian/examples/forgejo-runner-guard.rules.yml)
under the real promtool, on the series the watchdog really writes.

The series of the rule tests are not written by hand: each situation (a
runner wedged with its restart held back, a restart loop, a blind watchdog,
a stopped timer, an unreachable forge, all healthy) is a timeline of checks,
one every 5 minutes as the timer runs them, each a list of metrics.Sample
rendered by metrics.render, the function that writes the watchdog's metrics
file.  The file's lines become promtool's input_series, scraped every minute
(node_exporter serves the same file until the next check rewrites it) with
the `instance` and `job` labels a scrape adds.  So a metric or label renamed
in metrics.py leaves the rules without series and the rule tests fail
(test_a_renamed_metric_breaks_the_rule_tests shows it).

promtool is Debian's (package prometheus, in the Makefile's TEST_DEBS); a
missing promtool fails these tests, it never skips them.
"""

import copy
import dataclasses
import os
import re
import shutil
import subprocess

import pytest
import yaml

from helpers.tools import ROOT
from forgejo_runner_guard.watchdog import metrics

RULES = os.path.join(ROOT, "debian", "examples", "forgejo-runner-guard.rules.yml")
ALERTS = (
    "ForgejoRunnerWedged",
    "ForgejoRunnerRestartLoop",
    "ForgejoRunnerForgeUnreachable",
    "ForgejoRunnerWatchdogBlind",
    "ForgejoRunnerWatchdogStale",
)
PERIOD = 5  # minutes between two checks (forgejo-runner-watchdog.timer)
# promtool's clock starts at 0, which is also the watchdog's "never
# restarted" (last_restart_timestamp_seconds 0).  The situations start an
# hour later, so that "never" is long ago as on a real clock; their minutes
# below count from START, with no series before it.
START = 60
INSTANCE, JOB = "runner-07:9100", "node"  # what the scrape adds
RUNNER, OTHER = "forgejo_runner", "other_runner"



def _promtool():
    path = shutil.which("promtool")
    assert path, ("promtool not found: it comes with Debian's prometheus package, "
                  "which `make check` installs (TEST_DEBS)")
    return path


def promtool(*args, input=None):
    return subprocess.run([_promtool(), *args], capture_output=True, text=True,
                          input=input, timeout=120)


# ------------------------------------------------------------ the checks


def _seconds(minute):
    """A minute of a situation -> promtool's clock (seconds); None stays None."""
    return None if minute is None else (START + minute) * 60.0


def healthy(minute, container=RUNNER, restarts=0, last_restart=None):
    """A check at `minute`; last_restart: the minute of the last restart, or None."""
    return metrics.Sample(container=container, up=True, fetch_errors=0, threshold=40,
                          wedged=False, restarts_total=restarts, last_check=_seconds(minute),
                          last_restart=_seconds(last_restart), forge_unreachable=False)


def wedged(minute, container=RUNNER, restarts=0, last_restart=None):
    """Wedged at this check (its forge answered its Ping, or was not asked);
    restarted at it when last_restart is this minute."""
    return metrics.Sample(container=container, up=True, fetch_errors=152, threshold=40,
                          wedged=True, restarts_total=restarts, last_check=_seconds(minute),
                          last_restart=_seconds(last_restart), forge_unreachable=False)


def blind(minute, container=RUNNER, restarts=0, last_restart=None):
    """The check could not read the runner (decide.ERROR): documents.samples
    gives no fetch_errors and no wedged then."""
    return metrics.Sample(container=container, up=False, fetch_errors=None, threshold=40,
                          wedged=None, restarts_total=restarts, last_check=_seconds(minute),
                          last_restart=_seconds(last_restart))


def render(samples, unreachable=()):
    """The metrics file of one check (unreachable: the containers whose
    forge did not answer its Ping: forge_unreachable 1, as
    watchdog.output.samples gives a forge-unreachable decision)."""
    return metrics.render([dataclasses.replace(s, forge_unreachable=s.container in unreachable)
                           if s.up else s for s in samples])


SERIES_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\} (\S+)$")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?')


def parse(text):
    """Prometheus text -> {(name, ((label, value), ...)): value}."""
    found = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = SERIES_LINE.match(line)
        assert match, "not a sample line: %r" % line
        name, labels, value = match.groups()
        pairs = tuple(LABEL.findall(labels))
        assert "".join('%s="%s",' % p for p in pairs).rstrip(",") == labels, line
        found[(name, pairs)] = value
    return found


def situation(checks, until):
    """checks: {minute: (samples, unreachable containers)}, the file each
    check writes.  -> promtool input_series scraped every minute from 0 to
    START + `until`: each scrape sees the file of the latest check (none
    before the first; after the last one the file stays as it was, as when
    the timer stops)."""
    files = {START + minute: parse(render(samples, unreachable))
             for minute, (samples, unreachable) in checks.items()}
    keys = []
    for minute in sorted(files):
        keys.extend(k for k in files[minute] if k not in keys)
    values = {k: [] for k in keys}
    for scrape in range(START + until + 1):
        made = [m for m in files if m <= scrape]
        seen = files[max(made)] if made else {}
        for k in keys:
            values[k].append(seen.get(k, "_"))  # "_": no sample at that scrape
    series = []
    for (name, labels), points in values.items():
        labels = dict(labels, instance=INSTANCE, job=JOB)
        series.append({
            "series": "%s{%s}" % (name, ",".join('%s="%s"' % kv for kv in sorted(labels.items()))),
            "values": " ".join(points),
        })
    return series


def every(start, stop, make):
    """A check every PERIOD minutes from start to stop (both included)."""
    return {m: make(m) for m in range(start, stop + 1, PERIOD)}


def both_healthy(minute, restarts=0, last_restart=None):
    return [healthy(minute, RUNNER, restarts, last_restart), healthy(minute, OTHER)], ()


def one_wedged(minute, restarts=0, last_restart=None):
    return [wedged(minute, RUNNER, restarts, last_restart), healthy(minute, OTHER)], ()


# ------------------------------------------------------------ the expectations


def _rules():
    with open(RULES) as handle:
        return yaml.safe_load(handle)


def _alert_rules():
    return {r["alert"]: r for g in _rules()["groups"] for r in g["rules"] if "alert" in r}


SUMMARIES = {
    "ForgejoRunnerWedged":
        "Forgejo runner {c} on {i} is wedged and has not been restarted for 20 minutes",
    "ForgejoRunnerRestartLoop":
        "Forgejo runner {c} on {i} was restarted 3 or more times in the last hour",
    "ForgejoRunnerForgeUnreachable":
        "Forgejo runner {c} on {i} cannot reach its forge",
    "ForgejoRunnerWatchdogBlind":
        "forgejo-runner-watchdog on {i} cannot check runner {c}",
    "ForgejoRunnerWatchdogStale":
        "forgejo-runner-watchdog on {i} has not checked runner {c} for more than 15 minutes",
}
SEVERITY = {"ForgejoRunnerWedged": "critical"}


def fires(alert, *containers):
    """The alert, as promtool must see it firing, once per container."""
    rule = _alert_rules()[alert]
    description = rule["annotations"]["description"]
    assert "{{" not in description  # compared verbatim below
    return [{
        "exp_labels": {"severity": SEVERITY.get(alert, "warning"), "container": c,
                       "instance": INSTANCE, "job": JOB},
        "exp_annotations": {"summary": SUMMARIES[alert].format(c=c, i=INSTANCE),
                            "description": description},
    } for c in containers]


def case(minute, alert, *containers):
    """At `minute`, `alert` fires for exactly these containers (none: it
    must not fire)."""
    return {"eval_time": "%dm" % (START + minute), "alertname": alert, "exp_alerts": fires(alert, *containers)}


def unit_tests():
    """The rule tests: (name, checks, until, cases)."""
    loop = {}
    loop.update(every(0, 55, both_healthy))
    # wedged from 60 on: restarted at 60, 70 and 80 (cooldown 10 min), then
    # the hourly budget (max_restarts 3) is spent and it stays wedged; the
    # forge's path heals at 120
    restarts = (60, 70, 80)
    for minute in range(60, 116, PERIOD):
        made = [m for m in restarts if m <= minute]
        loop[minute] = one_wedged(minute, restarts=len(made), last_restart=max(made))
    loop.update(every(120, 150, lambda m: both_healthy(m, restarts=3, last_restart=80)))

    held = {}
    held.update(every(0, 5, both_healthy))
    held.update(every(10, 60, one_wedged))  # a job runs: no restart

    unreachable = {}
    unreachable.update(every(0, 5, both_healthy))
    # wedged by its log, the forge does not answer: no restart
    unreachable.update(every(10, 50, lambda m: (one_wedged(m)[0], (RUNNER,))))
    unreachable.update(every(55, 70, both_healthy))

    cannot_see = {}
    cannot_see.update(every(0, 5, both_healthy))
    cannot_see.update(every(10, 40, lambda m: ([blind(m, RUNNER), healthy(m, OTHER)], ())))
    cannot_see.update(every(45, 60, both_healthy))

    return [
        ("all healthy", every(0, 120, both_healthy), 120,
         [case(minute, alert) for alert in ALERTS for minute in (30, 60, 120)]),
        ("wedged, a job holds the restart back", held, 60, [
            case(34, "ForgejoRunnerWedged"),  # wedged since 10m: 20m, then pending for 5m
            case(37, "ForgejoRunnerWedged", RUNNER),
            case(60, "ForgejoRunnerWedged", RUNNER),
            case(60, "ForgejoRunnerRestartLoop"),
        ]),
        ("restarted three times in an hour, then the budget is spent", loop, 150, [
            case(79, "ForgejoRunnerRestartLoop"),  # two restarts so far
            case(81, "ForgejoRunnerRestartLoop", RUNNER),
            case(115, "ForgejoRunnerRestartLoop", RUNNER),
            case(125, "ForgejoRunnerRestartLoop"),  # the first restart is over an hour old
            # wedged since 60, but restarted until 80: 20 minutes after
            # that, pending for 5 more
            case(84, "ForgejoRunnerWedged"),
            case(99, "ForgejoRunnerWedged"),
            case(104, "ForgejoRunnerWedged"),
            case(107, "ForgejoRunnerWedged", RUNNER),
            case(115, "ForgejoRunnerWedged", RUNNER),
            case(125, "ForgejoRunnerWedged"),  # healed
        ]),
        ("the forge does not answer", unreachable, 70, [
            case(24, "ForgejoRunnerForgeUnreachable"),  # since 10m: pending for 15m
            case(26, "ForgejoRunnerForgeUnreachable", RUNNER),
            case(50, "ForgejoRunnerForgeUnreachable", RUNNER),
            case(45, "ForgejoRunnerWedged"),  # not the runner's fault
            case(60, "ForgejoRunnerForgeUnreachable"),  # answers again
        ]),
        ("the watchdog cannot read the runner", cannot_see, 60, [
            case(24, "ForgejoRunnerWatchdogBlind"),  # since 10m: pending for 15m
            case(26, "ForgejoRunnerWatchdogBlind", RUNNER),
            case(40, "ForgejoRunnerWatchdogBlind", RUNNER),
            case(40, "ForgejoRunnerWedged"),  # nothing known about that
            case(40, "ForgejoRunnerWatchdogStale"),  # it does run
            case(55, "ForgejoRunnerWatchdogBlind"),
        ]),
        ("the timer stopped after the check at 20m", every(0, 20, both_healthy), 60, [
            case(35, "ForgejoRunnerWatchdogStale"),  # exactly 15 minutes old
            case(40, "ForgejoRunnerWatchdogStale"),  # older since 35m: pending for 5m
            case(41, "ForgejoRunnerWatchdogStale", OTHER, RUNNER),
            case(60, "ForgejoRunnerWatchdogStale", OTHER, RUNNER),
        ]),
    ]


def rule_test_file(rename=None):
    """The promtool test file (a dict); rename maps metric names in the
    rendered series to others (a renamed metric)."""
    tests = []
    for name, checks, until, cases in unit_tests():
        series = situation(checks, until)
        for s in series:
            metric = s["series"].split("{", 1)[0]
            if rename and metric in rename:
                s["series"] = rename[metric] + s["series"][len(metric):]
        tests.append({"name": name, "interval": "1m", "input_series": series,
                      "alert_rule_test": cases})
    return {"rule_files": [RULES], "evaluation_interval": "1m", "tests": tests}


def run_rule_tests(tmp_path, document):
    path = tmp_path / "forgejo-runner-guard.test.yml"
    path.write_text(yaml.safe_dump(document, sort_keys=False, default_flow_style=False))
    return promtool("test", "rules", str(path))


# ------------------------------------------------------------ the tests


def test_promtool_checks_the_rules_file():
    result = promtool("check", "rules", RULES)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: %d rules found" % len(ALERTS) in result.stdout, result.stdout
    assert sorted(_alert_rules()) == sorted(ALERTS)


SITUATIONS = {
    "healthy": [healthy(10, RUNNER, restarts=2, last_restart=2), healthy(10, OTHER)],
    "wedged": [wedged(10, RUNNER, restarts=3, last_restart=10)],
    "blind": [blind(10, RUNNER), healthy(10, OTHER)],
}


@pytest.mark.parametrize("name", sorted(SITUATIONS))
def test_the_watchdogs_metrics_file_passes_promtool_check_metrics(name):
    text = metrics.render(SITUATIONS[name])
    result = promtool("check", "metrics", input=text)
    assert result.returncode == 0, text + result.stdout + result.stderr
    assert parse(text), text


def test_every_metric_the_rules_use_is_one_the_watchdog_writes():
    written = {name for s in SITUATIONS.values() for name, _ in parse(metrics.render(s))}
    with open(RULES) as handle:
        used = set(re.findall(r"\b%s[a-z_]+" % metrics.PREFIX, handle.read()))
    for rule in _alert_rules().values():
        assert re.search(metrics.PREFIX, rule["expr"]), rule
    assert used <= written, "the rules use metrics the watchdog does not write: %s" % (
        sorted(used - written))
    assert "forgejo_runner_watchdog_wedged" in used and "forgejo_runner_watchdog_up" in used
    # and each series carries the one label the rules and annotations rely on
    assert {labels for s in SITUATIONS.values() for _, labels in parse(metrics.render(s))} == {
        (("container", RUNNER),), (("container", OTHER),)}


def test_each_alert_has_a_firing_and_a_non_firing_case():
    cases = [c for t in rule_test_file()["tests"] for c in t["alert_rule_test"]]
    for alert in ALERTS:
        mine = [c for c in cases if c["alertname"] == alert]
        assert [c for c in mine if c["exp_alerts"]], "%s never fires in the rule tests" % alert
        assert [c for c in mine if not c["exp_alerts"]], "%s has no case where it must not fire" % alert


def test_promtool_runs_the_rule_tests_on_the_watchdogs_series(tmp_path):
    document = rule_test_file()
    # the series are the rendered files' lines, with the scrape's labels
    names = {s["series"].split("{")[0] for t in document["tests"] for s in t["input_series"]}
    assert names == {n for s in SITUATIONS.values() for n, _ in parse(metrics.render(s))}
    result = run_rule_tests(tmp_path, document)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout, result.stdout


def test_promtool_fails_the_rule_tests_when_an_expected_alert_does_not_fire(tmp_path):
    """The firing cases are checked, not vacuous: expecting silence instead
    fails each of them, for every alert."""
    document = copy.deepcopy(rule_test_file())
    for t in document["tests"]:
        for c in t["alert_rule_test"]:
            c["exp_alerts"] = []
    result = run_rule_tests(tmp_path, document)
    assert result.returncode != 0, result.stdout
    for alert in ALERTS:
        assert re.search(r"alertname: %s, time: [0-9hms]+," % alert, result.stdout + result.stderr), (
            alert, result.stdout + result.stderr)


@pytest.mark.parametrize("metric,alert", [
    ("forgejo_runner_watchdog_wedged", "ForgejoRunnerWedged"),
    ("forgejo_runner_watchdog_restarts_total", "ForgejoRunnerRestartLoop"),
    ("forgejo_runner_watchdog_up", "ForgejoRunnerWatchdogBlind"),
    ("forgejo_runner_watchdog_last_check_timestamp_seconds", "ForgejoRunnerWatchdogStale"),
])
def test_a_renamed_metric_breaks_the_rule_tests(tmp_path, metric, alert):
    result = run_rule_tests(tmp_path, rule_test_file(rename={metric: metric + "_renamed"}))
    assert result.returncode != 0, result.stdout
    assert re.search(r"alertname: %s, time: [0-9hms]+," % alert, result.stdout + result.stderr), (
        result.stdout + result.stderr)
