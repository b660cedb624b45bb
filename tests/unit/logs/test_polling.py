"""The polling-model rule over synthetic timelines: a runner is wedged when
every poll of the last `sustain` failed and the newest failure is recent by
its model (or by the threshold rule, as before).  Times are integer
nanoseconds on the log side and compared exactly."""

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from forgejo_runner_guard.logs import runnerlog, stamps
from forgejo_runner_guard.config.config import RunnerConfig
from forgejo_runner_guard.logs.failures import poll_model
from forgejo_runner_guard.logs.stamps import window_start
from forgejo_runner_guard.watchdog.decide import decide, exit_status
from forgejo_runner_guard.logs.failures import slow
from forgejo_runner_guard.logs.runnerlog import scan

T0 = 1782727200  # 2026-06-29T10:00:00Z
NS = 10 ** 9
CFG = RunnerConfig()  # threshold 40, window 5m, recent 60s, sustain 3m, fetch_interval 2s, fetch_timeout 30s
RESET = "unavailable: read tcp 10.1.0.5:51234->203.0.113.7:443: read: connection reset by peer"
DEADLINE = "failed to fetch task: deadline exceeded; increase fetch_timeout if this error is persistent"


def line(ns, msg, level="error", error=None):
    stamp = stamps.format_ns(ns).decode()
    text = '%s time="%sZ" level=%s msg="%s"' % (stamp, stamp[:19], level, msg)
    if error is not None:
        text += ' error="%s"' % error
    return text + "\n"


def reset(t):
    return line(int(t * NS), "failed to fetch task", error=RESET)


def deadline(t):
    return line(int(t * NS), DEADLINE)


def job(t, task=7):
    return line(int(t * NS), "task %d repo is ops/site https://data.forgejo.org https://forge.azrak.io" % task,
                level="info")


def judge(lines, now, cfg=CFG):
    """scan -> decide, as the watchdog does for a runner started long ago."""
    since = window_start(now, cfg.window, None, None)
    evidence = scan("".join(lines).encode(), since, model=poll_model(cfg))
    return decide(evidence, now, cfg, [], [])


def every(step, start, stop):
    """T0+start, T0+start+step, ... up to T0+stop (inclusive), exact."""
    return [T0 + start + k * step for k in range(int((stop - start) // step) + 1)]


def test_reset_every_2s_is_wedged_by_both_rules():
    d = judge([reset(t) for t in every(2, 0, 298)], T0 + 299)
    assert (d.kind, d.restart, d.rule) == ("wedged", True, "polling+threshold")
    assert d.reason == "no job running: restart"
    assert (d.streak, d.streak_polls, d.failure_class) == (299.0, 150, "transport")


def test_deadline_every_32s_is_wedged_once_it_has_gone_on_for_3_minutes():
    lines = [deadline(t) for t in every(32, 0, 192)]  # 7 polls, 0 .. 3m12s
    d = judge(lines, T0 + 192)
    assert (d.kind, d.restart, d.rule, d.errors) == ("wedged", True, "polling", 7)
    assert d.reason == ("every poll failed for 3m12s (7 polls, deadline exceeded, fetch_timeout 30s), "
                        "no job running: restart")
    # the 3-minute edge: 180 s after the first failure exactly, and just before
    lines = [deadline(t) for t in every(32, 0, 160)]
    assert judge(lines, T0 + 180).kind == "wedged"
    assert judge(lines, T0 + 179.999).kind == "healthy"


def test_deadline_every_30s_as_the_limiter_paces_it():
    # fetch_interval 2s, fetch_timeout 30s: the next poll starts as the last one times out
    assert judge([deadline(t) for t in every(30, 0, 180)], T0 + 181).kind == "wedged"


def test_recent_follows_the_model():
    lines = [deadline(t) for t in every(32, 0, 160)]
    # due within fetch_interval * 1.5 + fetch_timeout = 33 s of the newest
    assert judge(lines, T0 + 193).kind == "wedged"
    d = judge(lines, T0 + 193.001)
    assert d.kind == "recovered"
    assert d.reason == "polls failed for 3m13s, but none in the last 33s"


def test_codeberg_interval_30s_is_wedged_after_3_minutes():
    codeberg = dataclasses.replace(CFG, fetch_interval=30.0)
    lines = [reset(t) for t in every(30, 0, 180)]
    d = judge(lines, T0 + 181, codeberg)
    assert (d.kind, d.rule) == ("wedged", "polling")
    assert d.reason.startswith("every poll failed for 3m01s (7 polls, connection reset, fetch_interval 30s)")
    assert judge(lines, T0 + 179, codeberg).kind == "healthy"
    # with the default 2 s model, 30 s between failures means the polls between them worked
    assert judge(lines, T0 + 181).kind == "healthy"


GITEA = dataclasses.replace(CFG, flavour="gitea", fetch_interval_max=60.0)


def gitea_times(gaps):
    times, t = [T0], T0
    for gap in gaps:
        t += gap
        times.append(t)
    return times


def test_gitea_backing_off_to_its_cap_is_wedged_after_3_minutes():
    times = gitea_times([2, 4, 8, 16, 32, 60, 72, 48])  # to the cap, jitter +-20 %
    lines = [reset(t) for t in times]
    d = judge(lines, times[-1] + 1, GITEA)
    assert (d.kind, d.rule, d.streak_polls) == ("wedged", "polling", 9)
    assert d.reason.startswith("every poll failed for 4m03s (9 polls, connection reset, fetch_interval_max 1m)")
    # a runner backing off to 72 s has not recovered because its newest failure is 65 s old
    assert judge(lines, times[-1] + 65, GITEA).kind == "wedged"
    assert judge(lines, times[-1] + 90, GITEA).kind == "wedged"  # cap * 1.5
    assert judge(lines, times[-1] + 90.001, GITEA).kind == "recovered"
    # the Forgejo model on the same log: the growing gaps are polls that worked
    assert judge(lines, times[-1] + 1).kind == "healthy"


def test_gitea_jitter_at_the_cap_and_a_hidden_success():
    at_cap = gitea_times([60, 72, 72, 72])  # the longest jittered interval, again and again
    assert judge([reset(t) for t in at_cap], at_cap[-1] + 1, GITEA).kind == "wedged"
    # one poll succeeded: two of the shortest jittered intervals, 2 x 48 s
    hidden = gitea_times([72, 72, 96, 72, 72])
    d = judge([reset(t) for t in hidden], hidden[-1] + 1, GITEA)
    assert d.kind == "healthy"
    assert d.streak == 72 * 2 + 1


def test_gitea_unregistered_is_refused():
    lines = [reset(t) for t in every(2, 0, 200)]
    lines.append(line((T0 + 201) * NS, "server rejected the runner as unregistered, stopping poller",
                      error="unauthenticated: unregistered runner"))
    d = judge(lines, T0 + 202, GITEA)
    # a terminal line (logs/terminal.py), after a streak that alone is wedged
    assert (d.kind, d.cause, d.restart, exit_status(d)) == ("refused", "unregistered", False, 1)
    assert d.cause_detail == "unauthenticated: unregistered runner"


def test_reset_every_20s_on_a_2s_poller_is_not_wedged():
    d = judge([reset(t) for t in every(20, 0, 280)], T0 + 281)  # nine polls in ten succeed
    assert (d.kind, d.errors, d.streak_polls) == ("healthy", 15, 1)


def test_a_burst_that_stopped_is_recovered():
    d = judge([reset(t) for t in every(2, 0, 200)], T0 + 290)
    assert (d.kind, d.reason) == ("recovered", "burst over (recent 1m)")


def test_a_job_start_after_the_failures_is_recovered():
    lines = [reset(t) for t in every(2, 0, 250)] + [job(T0 + 251)]
    assert judge(lines, T0 + 252).kind == "recovered"
    # and a streak begins again after a job start
    lines = [deadline(t) for t in every(30, 0, 90)] + [job(T0 + 100)] + [deadline(t) for t in every(30, 120, 240)]
    d = judge(lines, T0 + 241)
    assert (d.kind, d.streak, d.streak_polls) == ("healthy", 121.0, 5)


def test_one_success_hidden_in_a_burst():
    times = [t for t in every(30, 0, 240) if t != T0 + 90]  # the poll at 90 s worked
    d = judge([deadline(t) for t in times], T0 + 241)
    assert (d.kind, d.streak) == ("healthy", 121.0)
    assert judge([deadline(t) for t in every(30, 0, 240)], T0 + 241).kind == "wedged"


def test_the_forges_own_error_is_not_restarted():
    error = "internal: pick task: CreateTaskForRunner: resource does not exist"
    lines = [line((T0 + t) * NS, "failed to fetch task", error=error) for t in range(0, 300, 2)]
    d = judge(lines, T0 + 299)
    assert (d.kind, d.restart, exit_status(d), d.failure_class) == ("forge-error", False, 1, "server")
    assert d.reason == ("the forge's own error (internal: pick task: CreateTaskForRunner: resource does "
                        "not exist): a restart cannot help, not restarted")
    rpc = "unknown: rpc error: code = Internal desc = pick task: database is locked"
    lines = [line((T0 + t) * NS, "failed to fetch task", error=rpc) for t in range(0, 300, 2)]
    assert judge(lines, T0 + 299).kind == "forge-error"


# ------------------------------------------------------------ the streak itself


def reference_streak(events, model, since_ns):
    """The streak by definition, over a whole timeline in order: failures
    no further apart than the model allows, with no job start between."""
    start = polls = 0
    newest = job = None
    for ns, kind, detail in events:
        if kind == "job":
            job = ns if job is None or ns >= job else job
            continue
        if ns < since_ns:
            continue
        bound = int(model.bound(slow(detail)) * NS)
        if newest is None or ns - newest > bound or (job is not None and job > newest):
            start, polls = ns, 0
        polls += 1
        newest = ns
    return (None if newest is None else start), polls


@settings(max_examples=200, deadline=None)
@given(gaps=st.lists(st.tuples(st.integers(0, 40 * 1000), st.sampled_from(["reset", "deadline", "job"])),
                     max_size=120),
       fast=st.booleans())
def test_property_streak_matches_its_definition(gaps, fast):
    model = poll_model(CFG)
    events, t = [], T0 * NS
    for gap_ms, kind in gaps:
        t += gap_ms * 10 ** 6
        events.append((t, kind, RESET if kind == "reset" else "deadline exceeded"))
    text = "".join(job(ns / NS) if kind == "job" else
                   (reset(ns / NS) if kind == "reset" else deadline(ns / NS)) for ns, kind, _ in events)
    since_ns = T0 * NS + 5 * NS
    evidence = scan(text.encode(), runnerlog.to_seconds(since_ns), fast=fast, model=model)
    # the lines carry the stamps the scanner reads: rebuild the events from them
    stamped = [(stamps.parse_ns(l.split(" ", 1)[0].encode()), kind, detail)
               for l, (_, kind, detail) in zip(text.splitlines(), events)]
    start, polls = reference_streak(stamped, model, since_ns)
    assert evidence.streak_polls == polls
    assert evidence.streak_start == (None if start is None else runnerlog.to_seconds(start))


def test_a_flood_takes_the_fast_path_and_keeps_the_streak():
    text = "".join(reset(T0 + k / 1000) for k in range(5000)).encode()
    for fast in (True, False):
        evidence = scan(text, T0, fast=fast)
        assert (evidence.errors, evidence.streak_polls, evidence.streak_start) == (5000, 5000, float(T0))
