"""Running a CLI in the background through `sh`, with a deadline: the
machinery the backends share (what each CLI's failures mean stays in
its backend module).

A Call starts the program with _bg=True, _tty_out=False (sh 1.14 would
open a pty) and stdin on /dev/null (no 0.1 s input poll), and a small
Watch thread kills it at its deadline: `timeout` after the start, or,
for a stream, after `timeout` seconds without output and STREAM_CAP
times `timeout` in all.  No _timeout and no wait(timeout=): both cost
about 85 ms a call through sh's internal 0.1 s polling (figures:
bench/README.md).  A stream goes to a Sink, a non-callable object with a
write() method, which sh hands the raw bytes in LOG_CHUNK chunks with
_no_out (sh keeps nothing); on_err_chunk streams stderr the same way, to a
Sink of its own (err_sink).

A subclass names the program in its messages by overriding launch_error,
timed_out and failed; result() raises what they return.
"""

import os
import threading
import time

from . import signals

LOG_CHUNK = 256 * 1024  # bytes handed to on_chunk at a time
STREAM_CAP = 10  # a log stream may take this many times the timeout in all
DEFAULT_TIMEOUT = 30.0  # seconds a call may take


_commands = {}  # program -> sh.Command, made once per process


def command(program, error, missing):
    """sh's Command for `program`, made on first use (import sh costs
    25-80 ms: a run that calls nothing never pays it).  error: the
    GuardError class for a missing sh library (a packaging fault);
    missing(): the exception when `program` is not on PATH."""
    if program not in _commands:
        try:
            import sh
        except ImportError as exc:  # pragma: no cover - a packaging fault
            raise error("cannot import the sh library: %s (install python3-sh)" % exc)
        try:
            _commands[program] = sh.Command(program)
        except sh.CommandNotFound:
            raise missing()
    return _commands[program]


class Watch(threading.Thread):
    """Kills a command at its deadline: `timeout` after the start, or,
    for a stream, after `timeout` seconds without output (and STREAM_CAP
    times `timeout` in all)."""

    def __init__(self, timeout, stream):
        super().__init__(name="call-deadline", daemon=True)
        self.timeout = timeout
        self.stream = stream
        self.started = self.last = time.monotonic()
        self.done = threading.Event()
        self.proc = None
        self.fired = None  # why it killed the command
        self.kill = kill  # how it kills: the Call's end

    def touch(self):
        self.last = time.monotonic()

    def _due(self):
        if not self.stream:
            return self.started + self.timeout
        return min(self.last + self.timeout, self.started + STREAM_CAP * self.timeout)

    def run(self):
        while True:
            if self.done.wait(max(0.0, self._due() - time.monotonic())):
                return
            if time.monotonic() < self._due():
                continue  # output arrived meanwhile
            if self.stream and time.monotonic() < self.started + STREAM_CAP * self.timeout:
                self.fired = "no output for %gs" % self.timeout
            else:
                self.fired = "no answer within %gs" % (
                    STREAM_CAP * self.timeout if self.stream else self.timeout
                )
            self.kill(self.proc)
            return


def kill(proc, group=False):
    """SIGKILL a running sh command (no-op once it has ended); group: and
    everything in its process group (one started with _new_session)."""
    if proc is None:
        return
    try:
        if proc.process.exit_code is None:
            if group:
                proc.process.kill_group()
            else:
                proc.process.kill()
    except (OSError, AttributeError):
        pass


class Sink:
    """sh's _out target for a stream: not callable, so sh hands write()
    the raw bytes.  Keeps the last bytes for the CLI's error message and
    any exception of on_chunk for the caller."""

    TAIL = 4096

    def __init__(self, on_chunk, watch):
        self.on_chunk = on_chunk
        self.watch = watch
        self.tail = b""
        self.error = None
        self.bytes = 0

    def write(self, chunk):
        self.watch.touch()
        self.bytes += len(chunk)
        self.tail = (self.tail + chunk[-self.TAIL :])[-self.TAIL :]
        if self.error is not None:
            return
        try:
            self.on_chunk(chunk)
        except BaseException as exc:  # re-raised by Call.result() in the caller's thread
            self.error = exc
            kill(self.watch.proc)


class Call:
    """One run of `command` (an sh.Command) in the background; result()
    waits for it and returns parse(call), or raises.  sh_kwargs may
    give _in (default /dev/null); `end` kills it (a subclass that starts
    it in a session of its own may end the whole session)."""

    end = staticmethod(kill)

    def __init__(self, command, args, timeout, on_chunk=None, parse=None, on_err_chunk=None, **sh_kwargs):
        self.parse = parse
        self.watch = Watch(timeout, stream=on_chunk is not None)
        self.watch.kill = self.end
        self.sink = Sink(on_chunk, self.watch) if on_chunk is not None else None
        self.err_sink = Sink(on_err_chunk, self.watch) if on_err_chunk is not None else None
        self._done = False
        self._result = None
        kwargs = dict(_bg=True, _bg_exc=False, _tty_out=False, _ok_code=list(range(0, 256)))
        kwargs.update(sh_kwargs)
        if self.sink is not None:
            kwargs.update(_out=self.sink, _out_bufsize=LOG_CHUNK, _no_out=True)
        if self.err_sink is not None:
            kwargs.update(_err=self.err_sink, _err_bufsize=LOG_CHUNK, _no_err=True)
        with open(os.devnull, "rb") as null:
            kwargs.setdefault("_in", null)
            try:
                self.proc = command(*args, **kwargs)
            except OSError as exc:
                raise self.launch_error(exc)
        self.watch.proc = self.proc
        self.watch.start()

    # -- what a subclass says

    def launch_error(self, exc):
        """The exception for an OSError starting the program."""
        raise NotImplementedError

    def timed_out(self, reason):
        """The exception for a command the watch killed (reason: why)."""
        raise NotImplementedError

    def failed(self, exit_code):
        """The exception for a command that exited non-zero."""
        raise NotImplementedError

    # --

    @property
    def done(self):
        return self._done

    def kill(self):
        self.end(self.proc)

    def result(self):
        """Wait; return the parsed result or raise."""
        if self._done:
            return self._result
        import sh  # imported already: it made the command

        try:
            try:
                self.proc.wait()
            except sh.ErrorReturnCode:
                pass  # killed by a signal: told apart below
        finally:
            self.watch.done.set()
        self._done = True
        for sink in (self.sink, self.err_sink):
            if sink is not None and sink.error is not None:
                raise sink.error
        if self.watch.fired:
            raise self.timed_out(self.watch.fired)
        code = self.proc.process.exit_code
        if code != 0:
            raise self.failed(code)
        self._result = self.parse(self) if self.parse else None
        return self._result

    def text(self, stream):
        """What the command wrote on "stdout" or "stderr", decoded."""
        data = getattr(self.proc, stream, b"") or b""
        if isinstance(data, bytes):
            data = data.decode("utf-8", "replace")
        return data


class Calls:
    """The calls one backend started, so close() can end them all.
    A backend names its Call subclass in `call_class`."""

    call_class = Call

    def __init__(self, timeout=DEFAULT_TIMEOUT):
        self.timeout = float(timeout)
        self.calls = []

    def _start(self, *args, **kwargs):
        with signals.deferred():  # a signal waits until the call is listed: close() ends it
            call = self.call_class(*args, **kwargs)
            self.calls.append(call)
        return call

    def close(self):
        """Kill whatever is still running (after an error elsewhere)."""
        for call in self.calls:
            call.kill()
        for call in self.calls:
            if not call.done:
                try:
                    call.result()
                except Exception:
                    pass
        self.calls = []
