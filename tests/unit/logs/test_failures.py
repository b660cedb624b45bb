"""failures: a failed poll's class, whether it waited out a timeout, its
short name, and the polling model.

Pure unit tests (no Docker): they run on Python 3.9 too."""

import dataclasses

import pytest

from forgejo_runner_guard.config.config import RunnerConfig
from forgejo_runner_guard.logs import failures
from forgejo_runner_guard.logs.failures import PollModel, failure_class, failure_label, poll_model, slow


@pytest.mark.parametrize("detail, label", [
    ("unavailable: read tcp 10.1.0.5:51234->203.0.113.7:443: read: connection reset by peer",
     "connection reset"),
    ("unavailable: dial tcp 203.0.113.7:443: connect: connection refused", "connection refused"),
    ("unavailable: unexpected EOF", "unexpected EOF"),
    ("unavailable: dial tcp: lookup forge.azrak.io on 127.0.0.11:53: no such host", "DNS failure"),
    ("unavailable: dial tcp: lookup forge.azrak.io: server misbehaving", "DNS failure"),
    ("unavailable: tls: failed to verify certificate: x509: certificate signed by unknown authority",
     "TLS failure"),
    ("unavailable: remote error: tls: handshake failure", "TLS failure"),
    ("unavailable: HTTP status 429 Too Many Requests", "HTTP 429"),
    ("unknown: rpc error: code = Unauthenticated desc = unregistered runner", "unregistered runner"),
    ("deadline exceeded; increase fetch_timeout if this error is persistent", "deadline exceeded"),
    ("unavailable: read tcp 1.2.3.4:5->6.7.8.9:443: i/o timeout", "deadline exceeded"),
    ("unavailable: Timed Out", "deadline exceeded"),
    ("internal: pick task: boom", "internal"),
    ("  unknown : x: y", "unknown"),  # the code before the first colon, stripped
    ("no colon at all", "no colon at all"),
    (":starts with a colon", "failure"),
    ("", "failure"),
    (None, "failure"),
])
def test_failure_label(detail, label):
    assert failure_label(detail) == label


@pytest.mark.parametrize("detail, cls", [
    ("unauthenticated: unregistered runner", "refused"),
    ("internal: unauthenticated", "refused"),  # refused comes first
    ("internal: pick task: boom", "server"),
    ("unknown: rpc error: code = Internal desc = database is locked", "server"),
    ("unknown: rpc error: code = InternalError desc = x", "transport"),  # not the code Internal
    ("x internal: y", "transport"),  # only at the start
    ("unavailable: unexpected EOF", "transport"),
    ("", "transport"),
    (None, "transport"),
])
def test_failure_class(detail, cls):
    assert failure_class(detail) == cls
    assert cls in (failures.REFUSED, failures.SERVER, failures.TRANSPORT)


@pytest.mark.parametrize("detail, waited", [
    ("deadline exceeded", True), ("DEADLINE EXCEEDED", True), ("read: i/o timeout", True),
    ("fetching a task timed out after 30s", True), ("unexpected EOF", False), ("", False), (None, False),
])
def test_slow(detail, waited):
    assert slow(detail) is waited


def test_the_polling_model():
    model = PollModel()
    assert (model.interval, model.timeout, model.spread) == (2.0, 30.0, 1.5)
    assert (model.bound(False), model.bound(True)) == (3.0, 33.0)
    assert PollModel(10.0, 5.0, 2.0).bound(True) == 25.0
    cfg = dataclasses.replace(RunnerConfig(), fetch_interval=4.0, fetch_interval_max=60.0, fetch_timeout=7.0)
    assert poll_model(cfg) == PollModel(interval=4.0, timeout=7.0)  # Forgejo: its interval
    gitea = dataclasses.replace(cfg, flavour="gitea")
    assert poll_model(gitea) == PollModel(interval=60.0, timeout=7.0)  # Gitea: the backoff's cap
    assert poll_model(dataclasses.replace(gitea, fetch_interval_max=1.0)) == PollModel(4.0, 7.0)
