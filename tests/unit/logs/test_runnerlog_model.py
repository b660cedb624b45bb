"""LogScan against its definition: the Evidence of a log, computed line by
line through classify() by a model written apart from LogScan (below), for
logs made of floods (the fast path's blocks: in order, with ties, out of
order), stragglers, job starts, relayed job output, lines without a time,
long lines and lines cut anywhere; fed whole, split anywhere, scanned in
windows of any size, on the fast path and off it.

Pure unit tests (no Docker): they run on Python 3.9 too."""

import re

import pytest
from hypothesis import given, settings, strategies as st

from forgejo_runner_guard.logs import runnerlog, stamps
from forgejo_runner_guard.logs.failures import PollModel, failure_class, slow
from forgejo_runner_guard.logs.runnerlog import JOB_START, OTHER, Evidence, LogScan, classify
from forgejo_runner_guard.logs.sources import SourceWatch

NS = 10 ** 9
T0 = 1782727200  # 2026-06-29T10:00:00Z
RESET = "unavailable: read tcp 10.1.0.5:51234->203.0.113.7:443: read: connection reset by peer"
TEXTS = [RESET, "unavailable: unexpected EOF", "deadline exceeded", "unauthenticated: unregistered runner",
         "internal: pick task: boom", "a \\\"quoted\\\" \\x1b text", "long " + "x" * 1500]


def reference(data, since, source="stderr", model=None):
    """The Evidence of `data` by definition (see Evidence and LogScan):
    every line (the last one may lack its newline) judged by classify() on
    its first MAX_LINE bytes; a fetch error counts from `since` on; the
    newest (the later line on a tie) gives the detail; a streak is broken
    by a gap the model does not allow or a job start after its newest
    failure; the kept lines are the newest RECENT_ERRORS, ties in log order."""
    tty = source == "tty"
    model = model or PollModel()
    since_ns = None if since is None else stamps.since_ns(since)
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    watch = SourceWatch(source)
    errors = untimed = polls = 0
    newest = job = streak = None
    detail = ""
    claims, recent = set(), []
    for raw in lines:
        watch.see(b"\n" + raw, 0, len(raw) + 1)
        line = raw[: runnerlog.MAX_LINE]
        stamp, _, message = line.partition(b" ")
        kind, task, text = classify(message, tty)
        if kind == OTHER or not runnerlog.NEEDLES.search(line):  # only lines with a needle are read
            continue
        ns = stamps.parse_ns(stamp)
        if ns is None:
            untimed += 1
        elif kind == JOB_START:
            claims.add(task)
            job = ns if job is None else max(job, ns)
        elif since_ns is None or ns >= since_ns:
            errors += 1
            recent.append((ns, line))
            if newest is None or ns >= newest:
                gap = int(model.bound(slow(text)) * NS)
                if newest is None or ns - newest > gap or (job is not None and job > newest):
                    streak, polls = ns, 0
                polls += 1
                newest, detail = ns, text
    kept = sorted(recent, key=lambda entry: entry[0])[-runnerlog.RECENT_ERRORS:]  # stable: log order
    seconds = runnerlog.to_seconds
    return Evidence(
        errors=errors, newest_error=None if newest is None else seconds(newest),
        newest_error_detail=shown(detail), newest_class="" if newest is None else failure_class(detail),
        streak_start=None if streak is None else seconds(streak), streak_polls=polls,
        last_job_start=None if job is None else seconds(job), claimed_tasks=frozenset(claims),
        lines=len(lines), untimed=untimed, since=since, source=source, level=watch.level,
        ambiguous=watch.ambiguity(),
        recent_errors=tuple(evidence_text(line) for _, line in kept))


def evidence_text(line):
    """A kept line as Evidence.recent_errors gives it: its first 4 *
    EVIDENCE_LINE bytes (the bound of what is held), decoded, as shown()."""
    return shown(line[: 4 * runnerlog.EVIDENCE_LINE].decode("utf-8", "replace"))


def shown(text):
    """Text as a report shows it: colour codes and control characters (C0
    but tabs, DEL, C1) removed, the end stripped, at most EVIDENCE_LINE
    characters."""
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)
    return "".join(c for c in text if c == "\t" or 32 <= ord(c) < 127 or ord(c) > 159
                   ).rstrip()[: runnerlog.EVIDENCE_LINE]


def stamp(ns):
    return stamps.format_ns(ns).decode()


def error(ns, text, form):
    when = stamp(ns)
    if form == "logfmt":
        return '%s time="%sZ" level=error msg="failed to fetch task" error="%s"' % (when, when[:19], text)
    if form == "plain":
        return '%s ERRO[%sZ] failed to fetch task                error="%s"' % (when, when[:19], text)
    if form == "colour":
        return ('%s \x1b[31mERRO\x1b[0m[%sZ] failed to fetch task                \x1b[31merror\x1b[0m="%s"\r'
                % (when, when[:19], text))
    return '%s time="%sZ" level=error msg="failed to fetch task: %s"' % (when, when[:19], text)


OTHERS = {
    "job": lambda ns, n: '%s time="x" level=info msg="task %d repo is o/r https://a https://b"' % (stamp(ns), n),
    "tty-job": lambda ns, n: "%s \x1b[36mINFO\x1b[0m[x] task %d repo is o/r https://a   \r" % (stamp(ns), n),
    "info": lambda ns, n: '%s time="x" level=info msg="[poller 0] launched %d"' % (stamp(ns), n),
    "debug": lambda ns, n: '%s time="x" level=debug msg="fetching %d"' % (stamp(ns), n),
    "relay": lambda ns, n: '%s time="x" level=info msg="[ci/b]   | failed to fetch task %d"' % (stamp(ns), n),
    "job-output": lambda ns, n: "%s [ci/b]   | level=error msg=\"failed to fetch task\" %d" % (stamp(ns), n),
    "gitea": lambda ns, n: '%s time="x" level=warning msg="fetching a task timed out after %ds"' % (stamp(ns), n),
    "untimed": lambda ns, n: 'time="x" level=error msg="failed to fetch task" error="%d"' % n,
    "bad-stamp": lambda ns, n: '2026-13-01T00:00:00.000000000Z level=error msg="failed to fetch task: %d"' % n,
    "empty": lambda ns, n: "",
    # the phrase escaped (no needle in the bytes: never read), colour codes inside the level
    "escaped": lambda ns, n: '%s time="x" level=error msg="failed to fetch\\x20task %d"' % (stamp(ns), n),
    "ansi-level": lambda ns, n: '%s time="x" level=err\x1b[0mor msg="failed to fetch task: EOF %d"' % (
        stamp(ns), n),
    # what the source watch looks for: a TTY's job output and trace lines, a level last
    "tty-output": lambda ns, n: "%s \x1b[34m|\x1b[0m compiling %d\r" % (stamp(ns), n),
    "tty-trace": lambda ns, n: "%s \x1b[37mTRAC\x1b[0m[x] tracing %d\r" % (stamp(ns), n),
    "debug-last": lambda ns, n: '%s time="x" msg="m %d" level=debug' % (stamp(ns), n),
    "controls": lambda ns, n: '%s level=error msg="failed to fetch task" error="\\t%d\\x00" \x07\x1b[1m' % (
        stamp(ns), n),
}

FLOOD = st.fixed_dictionaries({
    "count": st.integers(1, 40),
    "step": st.sampled_from([0, 1, 7, 500, 1500, 2999, 3001, 20000]),  # ms between failures
    "order": st.sampled_from(["in", "in", "ties", "reversed", "shuffled"]),
    "text": st.sampled_from(TEXTS),
    "form": st.sampled_from(["logfmt", "logfmt", "plain", "colour", "phrase"]),
})
SEGMENTS = st.lists(st.one_of(
    st.tuples(st.just("flood"), FLOOD),
    st.tuples(st.sampled_from(sorted(OTHERS)), st.integers(0, 99)),
    st.tuples(st.just("jump"), st.sampled_from([-5000, -1, 0, 2900, 3000, 3100, 40000])),  # ms
), max_size=12)


def build(segments, rng_seed=0):
    """-> the log's bytes: each segment after the one before, in time."""
    import random

    rng = random.Random(rng_seed)
    ns, out = T0 * NS + 90 * NS, []
    for kind, arg in segments:
        if kind == "jump":  # a pause, or the clock set back
            ns += arg * 10 ** 6
            continue
        if kind != "flood":
            ns += 700 * 10 ** 6
            out.append(OTHERS[kind](ns, arg))
            continue
        times = [ns + k * arg["step"] * 10 ** 6 for k in range(arg["count"])]
        if arg["order"] == "ties":
            times = [t - t % (3 * arg["step"] * 10 ** 6 + 1) for t in times]
        elif arg["order"] == "reversed":
            times.reverse()
        elif arg["order"] == "shuffled":
            rng.shuffle(times)
        out.extend(error(t, "%s %d" % (arg["text"], i), arg["form"]) for i, t in enumerate(times))
        ns = max(times) + 100 * 10 ** 6
    return "".join(line + "\n" for line in out).encode("utf-8")


def scan_in_pieces(data, since, source, model, cuts, window, fast):
    saved = runnerlog._WINDOW
    runnerlog._WINDOW = window
    try:
        scanner = LogScan(since, fast=fast, source=source, model=model)
        previous = 0
        for point in sorted({c % (len(data) + 1) for c in cuts}) + [len(data)]:
            scanner.feed(data[previous:point])
            previous = point
        return scanner.close()
    finally:
        runnerlog._WINDOW = saved


@settings(max_examples=150, deadline=None)
@given(segments=SEGMENTS, seed=st.integers(0, 9),
       since=st.sampled_from([None, T0, T0 + 95.25, T0 + 120, T0 + 10 ** 4]),
       source=st.sampled_from(["stderr", "stderr", "tty", "journal"]),
       model=st.sampled_from([PollModel(), PollModel(interval=10.0, timeout=5.0), PollModel(0.5, 0.0)]),
       tail=st.booleans(), cuts=st.lists(st.integers(0, 10 ** 6), max_size=6),
       window=st.sampled_from([16 * 1024, 3000, 1000, 120]))
def test_property_the_scan_is_its_definition(segments, seed, since, source, model, tail, cuts, window):
    data = build(segments, seed)
    if tail:
        data = data.rstrip(b"\n")
    want = reference(data, since, source, model)
    assert runnerlog.scan(data, since, fast=False, source=source, model=model) == want
    assert runnerlog.scan(data, since, fast=True, source=source, model=model) == want
    for fast in (True, False):
        assert scan_in_pieces(data, since, source, model, cuts, window, fast) == want


# ------------------------------------------------------------ the cases the property found, by name


def flood(times, text="e", form="logfmt"):
    return "".join(error(t, "%s%02d" % (text, i), form) + "\n" for i, t in enumerate(times))


HEAD = '%s time="x" level=info msg="hello"\n' % stamp(T0 * NS)  # a first line: the block starts after it


@pytest.mark.parametrize("fast", [True, False])
def test_a_flood_out_of_time_order_counts_as_line_by_line(fast):
    """Lines of one block whose times go back (20 failures, 10 ms apart,
    newest first): the newest is the first line, the streak is that one
    failure (the older ones come after it), and the kept lines are the
    newest five by time, on the fast path as line by line."""
    times = [T0 * NS + 30 * NS + (19 - i) * 10 ** 7 for i in range(20)]
    data = (HEAD + flood(times)).encode()
    evidence = runnerlog.scan(data, None, fast=fast)
    assert evidence == reference(data, None)
    assert (evidence.errors, evidence.streak_polls, evidence.newest_error_detail) == (20, 1, "e00")
    assert [line[-4:-1] for line in evidence.recent_errors] == ["e04", "e03", "e02", "e01", "e00"]


@pytest.mark.parametrize("fast", [True, False])
def test_failures_of_one_time_are_kept_in_log_order(fast):
    """20 failures stamped with one nanosecond: the newest is the last line
    (as for newest_error_detail), and the five kept are the last five lines,
    in their order, whatever their text."""
    texts = ["z%02d" % i if i % 2 else "a%02d" % i for i in range(20)]
    data = (HEAD + "".join(error(T0 * NS + 30 * NS, t, "logfmt") + "\n" for t in texts)).encode()
    evidence = runnerlog.scan(data, None, fast=fast)
    assert evidence == reference(data, None)
    assert evidence.newest_error_detail == "z19"
    assert [line[-4:-1] for line in evidence.recent_errors] == texts[-5:]


def test_kept_lines_after_a_held_block_stay_in_log_order():
    """A flood (its last lines read late, at close) then, in the next
    window, failures of the same time line by line: the kept lines are in
    log order, the flood's before the later ones."""
    same = T0 * NS + 40 * NS
    data = (HEAD + flood([same] * 20, "f") + '%s time="x" level=info msg="task 5 repo is o/r"\n'
            % stamp(same - NS) + flood([same] * 2, "s")).encode()
    for window in (16 * 1024, len(HEAD) + 20 * 80):
        saved = runnerlog._WINDOW
        runnerlog._WINDOW = window
        try:
            got = [runnerlog.scan(data, None, fast=fast) for fast in (True, False)]
        finally:
            runnerlog._WINDOW = saved
        assert got[0] == got[1] == reference(data, None), window
        assert [line[-4:-1] for line in got[0].recent_errors] == ["f17", "f18", "f19", "s00", "s01"]


@pytest.mark.parametrize("fast", [True, False])
def test_a_gap_inside_a_block_breaks_the_streak(fast):
    """20 failures in one block, the last 10 five seconds after the first 10
    (more than the 3 s a 2 s poller allows): the streak is the last 10."""
    base = T0 * NS + 30 * NS
    times = [base + i * 10 ** 6 for i in range(10)] + [base + 5 * NS + i * 10 ** 6 for i in range(10)]
    data = (HEAD + flood(times)).encode()
    evidence = runnerlog.scan(data, None, fast=fast)
    assert evidence == reference(data, None)
    assert (evidence.streak_polls, evidence.streak_start) == (10, runnerlog.to_seconds(times[10]))


def test_a_failure_that_waited_out_the_timeout_may_come_a_timeout_later():
    """Line by line: a failure whose detail says it waited out fetch_timeout
    continues the streak up to interval * spread + timeout (33 s for the
    default 2 s, 30 s) after the one before; an instant failure only 3 s."""
    def line(sec, error):
        return '%s time="x" level=error msg="failed to fetch task" error="%s"\n' % (
            stamp((T0 + sec) * NS), error)
    slow_data = (line(0, "unavailable: EOF") + line(20, "deadline_exceeded: context deadline exceeded")
                 + line(52, "deadline_exceeded: context deadline exceeded")).encode()
    evidence = runnerlog.scan(slow_data, None, fast=False)
    assert (evidence.streak_start, evidence.streak_polls) == (T0, 3)
    fast_data = (line(0, "unavailable: EOF") + line(20, "unavailable: EOF")).encode()
    evidence = runnerlog.scan(fast_data, None, fast=False)
    assert (evidence.streak_start, evidence.streak_polls) == (T0 + 20, 1)


def test_a_held_block_then_failures_line_by_line():
    """A flood (held: its last lines read late) and in the next window,
    line by line (a job start is in it), two more failures first: the
    kept lines are the flood's last three, then those two."""
    same = T0 * NS + 40 * NS
    head_and_flood = HEAD + flood([same] * 20, "f")
    data = (head_and_flood + flood([same + 10 ** 6] * 2, "s")
            + '%s time="x" level=info msg="task 5 repo is o/r"\n' % stamp(same + 2 * 10 ** 6)).encode()
    saved = runnerlog._WINDOW
    runnerlog._WINDOW = len(head_and_flood)  # the first window ends with the flood
    try:
        got = [runnerlog.scan(data, None, fast=fast) for fast in (True, False)]
    finally:
        runnerlog._WINDOW = saved
    assert got[0] == got[1] == reference(data, None)
    assert [line[-4:-1] for line in got[0].recent_errors] == ["f17", "f18", "f19", "s00", "s01"]


def windows_of(*parts):
    """Feed HEAD, then the parts as one chunk scanned in windows of the
    first part's size (lines of one length: one part a window)."""
    saved = runnerlog._WINDOW
    runnerlog._WINDOW = len(parts[0])
    try:
        got = []
        for fast in (True, False):
            scanner = LogScan(None, fast=fast)
            scanner.feed(HEAD.encode())
            scanner.feed("".join(parts).encode())
            got.append(scanner.close())
        return got
    finally:
        runnerlog._WINDOW = saved


@pytest.mark.parametrize("apart, span", [(3 * NS, 0), (0, 0), (0, 3 * NS), (NS, 2 * NS)])
def test_blocks_a_poll_bound_apart_are_one_streak(mocker, apart, span):
    """Three windows of 18 failures, each spanning `span` and the next
    `apart` after it, both at most the bound of a 2 s poller (3 s): one
    streak, counted block by block by the block regex (classify() reads the
    chunk's first line and, at close, the newest line's detail)."""
    base = T0 * NS + 30 * NS
    groups, start = [], base
    for k in range(3):
        groups.append(flood([start] * 17 + [start + span], "g%d" % k))
        start += span + apart
    spy = mocker.spy(runnerlog, "classify")
    got = windows_of(*groups)
    assert spy.call_count == 2 + 54  # the fast scan, then the one line by line
    assert got[0] == got[1] == reference((HEAD + "".join(groups)).encode(), None)
    assert (got[0].errors, got[0].streak_polls, got[0].streak_start) == (54, 54, runnerlog.to_seconds(base))


@pytest.mark.parametrize("step, polls", [(-NS, 18), (4 * NS, 18), (3 * NS + 1, 18)])
def test_a_block_back_in_time_or_after_a_gap_goes_line_by_line(step, polls):
    """A window of failures before the newest one (the clock set back), or
    more than the bound after it: judged line by line, as the definition
    says (a gap ends the streak; an earlier failure does not extend it)."""
    base = T0 * NS + 30 * NS
    groups = [flood([base] * 18, "a"), flood([base + step] * 18, "b")]
    got = windows_of(*groups)
    assert got[0] == got[1] == reference((HEAD + "".join(groups)).encode(), None)
    assert (got[0].errors, got[0].streak_polls) == (36, polls)


@pytest.mark.parametrize("fast", [True, False])
def test_failures_before_a_job_start_logged_earlier_are_no_streak(fast):
    """A job start, then (the clock set back) failures timed before it: no
    streak runs past a job start, so each failure starts its own, on the
    fast path as line by line (the fast path counted them as one)."""
    job = '%s time="x" level=info msg="task 5 repo is o/r https://a https://b"\n' % stamp(T0 * NS + 40 * NS)
    failures = flood([T0 * NS + 35 * NS + i for i in range(20)])
    scanner = LogScan(None, fast=fast)
    scanner.feed((HEAD + job).encode())
    scanner.feed(failures.encode())  # a chunk, a block of its own
    evidence = scanner.close()
    assert evidence == reference((HEAD + job + failures).encode(), None)
    assert (evidence.errors, evidence.streak_polls) == (20, 1)


def test_a_job_start_at_the_newest_failures_time_keeps_the_streak(mocker):
    """A job start stamped like the newest failure is not after it: the
    streak goes on through the next flood (a window of its own)."""
    base = T0 * NS + 30 * NS
    first = flood([base] * 18, "a")
    job = '%s time="x" level=info msg="task 5 repo is o/r https://a https://b"' % stamp(base)
    pad = len(first) - len(job) - 2 - len(stamp(base)) - len(' time="x" level=info msg=""')
    window = job + "\n" + '%s time="x" level=info msg="%s"\n' % (stamp(base), "p" * pad)
    assert len(window) == len(first)
    second = flood([base] * 18, "b")
    spy = mocker.spy(runnerlog, "classify")
    got = windows_of(first, window, second)
    assert spy.call_count == 3 + 37  # fast: the first line, the job start, the detail
    assert got[0] == got[1] == reference((HEAD + first + window + second).encode(), None)
    assert (got[0].streak_polls, got[0].last_job_start) == (36, runnerlog.to_seconds(base))


def test_the_newest_lines_detail_is_its_own_line():
    """The TTY layout's failure without an error field: the detail is the
    rest of its message, never the lines after it (in the block or the
    next), nor a line of the same time that is no failure."""
    base = T0 * NS + 30 * NS
    tty = "".join('%s ERRO[2026-06-29T10:00:30Z] failed to fetch task: deadline exceeded %d\n'
                  % (stamp(base + i), i) for i in range(20))
    info = '%s time="x" level=info msg="same time, no failure"\n' % stamp(base + 19)
    got = windows_of(tty, info)
    assert got[0] == got[1] == reference((HEAD + tty + info).encode(), None)
    assert got[0].newest_error_detail == "deadline exceeded 19"
    whole = runnerlog.scan((HEAD + tty + info).encode(), None)
    assert whole.newest_error_detail == "deadline exceeded 19"


@pytest.mark.parametrize("bad", [0, 19])
def test_a_flood_with_a_time_that_is_none(bad):
    """A stamp the block regex takes but that is no time (month 13): that
    line is untimed, the rest counted, on the fast path as line by line."""
    base = T0 * NS + 30 * NS
    lines = flood([base + i * 10 ** 6 for i in range(20)]).splitlines(True)
    lines[bad] = "2026-13" + lines[bad][7:]
    data = (HEAD + "".join(lines)).encode()
    for fast in (True, False):
        evidence = runnerlog.scan(data, None, fast=fast)
        assert evidence == reference(data, None)
        assert (evidence.errors, evidence.untimed) == (19, 1)


@pytest.mark.parametrize("other", ["gitea", "job", "ansi-level"])
def test_a_flood_with_another_failure_or_a_job_start_in_its_block(other):
    """A line that is a failure (or a job start) without "fetch task" in it,
    in the middle of a flood: the block goes line by line, nothing is lost."""
    base = T0 * NS + 30 * NS
    lines = flood([base + i * 10 ** 6 for i in range(20)]).splitlines(True)
    lines.insert(10, OTHERS[other](base + 9 * 10 ** 6 + 1, 7) + "\n")
    data = (HEAD + "".join(lines)).encode()
    for fast in (True, False):
        evidence = runnerlog.scan(data, None, fast=fast)
        assert evidence == reference(data, None)
        assert evidence.errors == (20 if other == "job" else 21)


def test_a_chunks_first_line_is_read_whole():
    """The first line of a chunk is judged on its own (the block regex
    needs the newline before a line): all of it, to its last byte, even
    when it is the newest failure and a flood older than it follows."""
    newest = error(T0 * NS + 40 * NS, "the newest!", "logfmt") + "\n"
    older = flood([T0 * NS + 30 * NS + i for i in range(20)])
    got = windows_of(newest + older)
    assert got[0] == got[1] == reference((HEAD + newest + older).encode(), None)
    assert got[0].newest_error_detail == "the newest!"
    assert got[0].recent_errors[-1].endswith('error="the newest!"')


@pytest.mark.parametrize("source, kinds", [
    ("tty", ["tty-output", "info"]), ("tty", ["tty-trace", "tty-output"]), ("journal", ["debug-last"]),
    ("journal", ["job-output", "info"]), ("tty", ["info", "tty-output"]), ("journal", ["info", "debug-last"]),
])
def test_what_the_watch_sees_split_anywhere(source, kinds):
    """The runner's level and job output in a merged source, in a line
    carried from one chunk to the next, cut at every point."""
    whole = "".join(OTHERS[kind](T0 * NS + i * NS, i) + "\n" for i, kind in enumerate(kinds)).encode()
    for data in (whole, whole.rstrip(b"\n")):  # the last line read at close too
        want = reference(data, None, source)
        assert want.ambiguous
        for cut in range(len(data) + 1):
            assert scan_in_pieces(data, None, source, None, [cut], 16 * 1024, True) == want, cut


def test_the_reference_agrees_with_the_fixtures():
    """The model itself, on the runners' recorded logs (fixtures)."""
    import os

    from helpers.tools import FIXTURES

    for name in ("docker-logs-logfmt.txt", "docker-logs-tty.txt"):
        with open(os.path.join(FIXTURES, name), "rb") as handle:
            data = handle.read()
        for since, errors in ((None, 45), (T0, 45), (T0 + 100, 25)):
            want = reference(data, since)
            assert want.errors == errors
            assert runnerlog.scan(data, since) == want
