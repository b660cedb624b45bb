"""The journal backend: a container runner whose log is read from the
journal (backend = docker, logs = journal); and the journal reading the
systemd backend shares (read_evidence).

Some deployments keep nothing `docker logs` can read: the runner's
container runs with --log-driver=none under a systemd unit (`docker start
--attach`, SyslogIdentifier=NAME), so its log is only in the journal; or
with Docker's journald log driver, whose entries carry CONTAINER_NAME=.
For such a runner (backend = docker, logs = journal) the container is
still inspected and restarted through its engine (docker or podman), but
its log is the journal entries `journal_match` picks (journalctl matches:
SYSLOG_IDENTIFIER=NAME, _SYSTEMD_UNIT=UNIT, CONTAINER_NAME=NAME, the
default), counted exactly as the systemd backend counts: times from the
journal (__REALTIME_TIMESTAMP), job claims and starts from the messages
(logs/journal.JournalScan into runnerlog.LogScan).  The window
starts no earlier than the container's current start (minus the start
margin) nor its previous stop, as with `docker logs`.

A match that picks no entry at all, ever, is an error naming the setting
that fixes it (journal_match); an empty window of a quiet runner is not.
"""

from ...logs import runnerlog
from ...logs.failures import poll_model
from ...logs.journal import JournalScan
from ...logs.stamps import window_start
from ...report import GuardError, stamp
from ...system import systemctl
from . import docker


def read_evidence(c, read, reporter):
    """c.evidence from the journal: read(since, feed) streams the entries
    (from one second before c.since: the scanner draws the exact line)
    through JournalScan into runnerlog.LogScan.  -> the JournalScan."""
    journal = JournalScan(runnerlog.LogScan(c.since, source="journal",
                                            model=poll_model(c.cfg)))
    read(c.since - 1.0, journal.feed)
    c.evidence = journal.close()
    if journal.bad:
        reporter.warning("%s: %d journal entries unreadable, ignored" % (c.name, journal.bad))
    reporter.debug("%s: %d journal entries, %d fetch errors since %s"
                   % (c.name, c.evidence.lines, c.evidence.errors, stamp(c.since)))
    return journal


def read_tail(c, manager, words, since, reporter):
    """c.held with the Tail of the newest journal entries these matches
    pick (any run: a crash-looping runner's current one is short; the
    cause from its last run, from `since`); a journal that cannot be read
    is a warning."""
    from ...logs import tail

    buffer = tail.Buffer()
    try:
        manager.begin_entries(" ".join(words), words, None, buffer.feed,
                              last=tail.TAIL_LINES).result()
    except GuardError as exc:
        reporter.warning("%s: cannot read its log: %s" % (c.name, exc))
        return c.held
    return c.held._replace(tail=tail.of_journal(buffer.data, since))


def matches(cfg):
    """The journalctl matches of a runner: journal_match, or the journald
    log driver's CONTAINER_NAME= of its container."""
    return tuple(cfg.journal_match) or ("CONTAINER_NAME=" + cfg.container,)


class Backend(docker.Backend):
    """Container runners whose log is in the journal: inspected, guarded
    and restarted through their engine as the docker backend does, their
    log read with journalctl."""

    EARLY = False  # the journal read needs the container's start first

    def begin(self, checks, now):
        pass

    def gather(self, checks, now, reporter):
        """Fill each check's state (inspect through its engine) and
        evidence (the journal), or fail it."""
        started = []
        for c in checks:
            try:
                started.append((c, self.engines.of(c.cfg).begin_inspect(c.cfg.container)))
            except GuardError as exc:
                c.fail(str(exc))
        manager = systemctl.Systemd(self.engines.timeout)
        try:
            for c, call in started:
                try:
                    c.state = call.result()
                except GuardError as exc:
                    c.fail(str(exc))
                    continue
                if docker.hold(c, now):
                    c.held = read_tail(c, manager, matches(c.cfg),
                                       docker.last_run(c.state.started_at), reporter)
                    continue
                c.since = window_start(now, c.cfg.window, c.state.started_at,
                                       c.state.finished_at)
                try:
                    _read(c, manager, reporter)
                except GuardError as exc:
                    c.fail(str(exc))
        finally:
            manager.close()
            self.engines.close()


def _read(c, manager, reporter):
    words = matches(c.cfg)
    what = " ".join(words)
    reporter.debug("%s: container %s, %s, its log from the journal (%s)"
                   % (c.name, c.state.name, c.state.status, what))
    journal = read_evidence(
        c, lambda since, feed: manager.begin_entries(what, words, since, feed).result(),
        reporter)
    if journal.entries == 0 and not manager.any_entry(what, words):
        c.evidence = None
        c.fail("cannot read the logs of %s: no journal entries match %s (logs = journal): "
               "set journal_match to what the journal holds for the runner "
               "(SYSLOG_IDENTIFIER= of its unit's SyslogIdentifier=, _SYSTEMD_UNIT=, or "
               "CONTAINER_NAME= with the journald log driver), or logs = engine"
               % (c.cfg.container, what))
