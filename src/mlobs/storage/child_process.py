"""A child process of the serving process that answers one request at a time over a pipe.

The serving process hands work that holds the GIL for milliseconds (the prediction log's
inserts, the live drift windows' evaluation) to a child of its own, so that its request thread
is not stalled by it; the caller waits for the answer with the GIL released.

The protocol is a 4-byte big-endian length, then the payload, in both directions: first the
parent sends the child its set-up (a database URL, a configuration: never on the command line,
where ``ps`` shows it), then one request per frame; the child answers each with one JSON object.
A child that dies, or does not answer within ``timeout``, is killed and the call raises
``StoreUnreachable``; the next call starts a new child (``restarts`` counts them), at once after
one failure, after a pause that doubles from 0.25 s to 30 s after several in a row.

The child runs in its own session and ignores SIGINT and SIGTERM: a stop signal sent to the
server's process group (Ctrl-C, a service manager) must not take it away before the server has
drained what it owes it. It exits when its stdin closes, which the parent does last, and also
when the parent dies (its next answer breaks the pipe).
"""

from __future__ import annotations

import logging
import os
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import IO, Any

import orjson

log = logging.getLogger(__name__)

_LEN = struct.Struct(">I")
# The pause before starting a child again after the second failure in a row, and its cap.
BACKOFF_FIRST, BACKOFF_MAX = 0.25, 30.0


class StoreUnreachable(Exception):
    """The database, or the process that works on it, cannot take the request now."""


class AnswerLost(StoreUnreachable):
    """The whole request reached the child, but no answer came back (it died, or was silent
    past the timeout, and was killed): the child may or may not have done the work."""


def _ready(fd: int, event: int, timeout: float) -> bool:
    """Whether ``fd`` is ready for ``event`` within ``timeout`` seconds (poll, not select: a
    busy server's descriptors go past select's limit of 1024). A closed peer counts as ready:
    the read or write that follows reports it."""
    poller = select.poll()
    poller.register(fd, event)
    return bool(poller.poll(max(0, int(timeout * 1000))))


class ChildProcess:
    """The parent's side: ``call`` sends one request to the child and waits for its answer.

    Calls are serialised by a lock (one request in flight per child). ``module`` is run as
    ``python -m module``; its ``main`` should be ``child_main(handler_factory)``.
    """

    def __init__(self, module: str, setup: bytes, *, timeout: float = 60.0) -> None:
        self.module, self.setup, self.timeout = module, setup, timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._closed = False
        self.restarts = 0
        # Bumped at every spawn: what a caller told an earlier child, this one does not know.
        self.generation = 0
        # Calls that failed in a row: from the second on, the next child starts only after a
        # pause that doubles up to BACKOFF_MAX (a child that cannot start must not be spawned
        # several times a second).
        self.failures = 0
        self._retry_at = 0.0

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> None:
        with self._lock:
            self._closed = False
            if self._proc is None or self._proc.poll() is not None:
                self._spawn()

    def stop(self, timeout: float = 10.0) -> None:
        """Close the child's stdin (it finishes the request in hand, if any, and exits). A child
        still busy after ``timeout`` is killed (that call fails). No child is started after
        this, until ``start``."""
        self._closed = True
        if not self._lock.acquire(timeout=timeout):
            busy = self._proc
            if busy is not None:
                busy.kill()
            self._lock.acquire()
        try:
            proc, self._proc = self._proc, None
        finally:
            self._lock.release()
        if proc is None:
            return
        try:
            if proc.stdin is not None:
                proc.stdin.close()
            proc.wait(timeout)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()
        finally:
            if proc.stdout is not None:
                proc.stdout.close()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def _spawn(self) -> None:
        if self._proc is not None:
            self._kill()
        # Its own session: a stop signal to the server's process group (Ctrl-C, a service
        # manager) never reaches it, even while it starts; it ends when its stdin closes.
        # Without PROMETHEUS_MULTIPROC_DIR: with several workers, metrics a child keeps for
        # itself would otherwise land in the directory that /metrics adds up.
        env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
        proc = subprocess.Popen(
            [sys.executable, "-m", self.module],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
            start_new_session=True,
            env=env,
        )
        assert proc.stdin is not None
        # Frames go straight to the descriptor, non-blocking: a child that stops reading (hung,
        # stopped) must not hold the caller past its timeout with a full pipe.
        os.set_blocking(proc.stdin.fileno(), False)
        self._proc = proc
        self.generation += 1
        self._send(proc.stdin.fileno(), self.setup, self.timeout)

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        self.restarts += 1
        proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass

    # ---------------------------------------------------------------- requests

    def call(self, build: Callable[[int], bytes]) -> dict[str, Any]:
        """Send the request that ``build(generation)`` returns to the child (started first if
        there is none, which bumps ``generation``) and return its answer. Raises
        ``StoreUnreachable`` when the child is stopped, dies, or is silent past the timeout
        (``AnswerLost`` once the whole request was written: it may have been done); the child
        is then killed and the next call starts another."""
        with self._lock:
            if self._closed:
                raise StoreUnreachable(f"the {self.module} process is stopped")
            wait = self._retry_at - time.monotonic()
            if self._proc is None and wait > 0:
                raise StoreUnreachable(
                    f"{self.module}: {self.failures} failures in a row; next start in {wait:.1f} s"
                )
            try:
                if self._proc is None or self._proc.poll() is not None:
                    self._spawn()
            except (OSError, ValueError, StoreUnreachable) as exc:
                raise self._failed(exc, sent=False) from exc
            proc = self._proc
            assert proc is not None and proc.stdin is not None and proc.stdout is not None
            payload = build(self.generation)  # its errors are the caller's: the child is fine
            sent = False
            try:
                self._send(proc.stdin.fileno(), payload, self.timeout)
                sent = True
                answer = self._read_answer(proc.stdout.fileno())
            except (OSError, ValueError, StoreUnreachable) as exc:
                raise self._failed(exc, sent=sent) from exc
            self.failures, self._retry_at = 0, 0.0
            return answer

    def _failed(self, exc: BaseException, *, sent: bool) -> StoreUnreachable:
        """Died, pipe broken, or silent past the timeout: kill the child (a request not wholly
        written dies with it, unread), count the failure, and say which kind it was."""
        self._kill()
        self.failures += 1
        if self.failures >= 2:
            pause = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (self.failures - 2))
            self._retry_at = time.monotonic() + pause
        kind = AnswerLost if sent else StoreUnreachable
        return kind(f"{self.module}: {type(exc).__name__}: {exc}")

    @staticmethod
    def _send(fd: int, payload: bytes, timeout: float) -> None:
        data = memoryview(_LEN.pack(len(payload)) + payload)
        deadline = time.monotonic() + timeout
        while data:
            left = deadline - time.monotonic()
            if left <= 0 or not _ready(fd, select.POLLOUT, left):
                raise StoreUnreachable("the process does not read (timeout)")
            try:
                data = data[os.write(fd, data) :]
            except BlockingIOError:  # the pipe filled between poll and write
                continue

    def _read_answer(self, fd: int) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        head = self._read_fd(fd, _LEN.size, deadline)
        (n,) = _LEN.unpack(head)
        answer: dict[str, Any] = orjson.loads(self._read_fd(fd, n, deadline))
        return answer

    @staticmethod
    def _read_fd(fd: int, n: int, deadline: float) -> bytes:
        chunks: list[bytes] = []
        while n > 0:
            left = deadline - time.monotonic()
            if left <= 0 or not _ready(fd, select.POLLIN, left):
                raise StoreUnreachable("no answer within the timeout")
            chunk = os.read(fd, n)
            if not chunk:
                raise StoreUnreachable("the process exited")
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)


# -------------------------------------------------------------------- the child's side


def _read_frame(stream: IO[bytes]) -> bytes | None:
    head = stream.read(_LEN.size)
    if len(head) < _LEN.size:
        return None
    n = _LEN.unpack(head)[0]
    payload = stream.read(n)
    return payload if len(payload) == n else None


def serve(
    stdin: IO[bytes],
    stdout: IO[bytes],
    setup: Callable[[bytes], tuple[Callable[[bytes], dict[str, Any]], Callable[[], None]]],
) -> None:
    """The child's loop: ``setup(first frame)`` returns the request handler and a close
    function; each later frame is answered with the handler's object, until stdin closes."""
    first = _read_frame(stdin)
    if first is None:
        return
    handle, close = setup(first)
    try:
        while (payload := _read_frame(stdin)) is not None:
            answer = handle(payload)
            data = orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY)
            stdout.write(_LEN.pack(len(data)))
            stdout.write(data)
            stdout.flush()
    finally:
        close()


def child_main(
    setup: Callable[[bytes], tuple[Callable[[bytes], dict[str, Any]], Callable[[], None]]],
) -> None:
    """A child's ``main``: ignore stop signals (the parent stops it by closing stdin, after
    its last request), log warnings to stderr, serve until stdin closes or the parent is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    try:
        serve(sys.stdin.buffer, sys.stdout.buffer, setup)
    except BrokenPipeError:  # the parent is gone
        pass
