"""The prediction log's inserts, run in a child process of the serving process.

A batch insert holds the GIL for most of its work (binding parameters, building rows): measured
in the serving process it took as many samples as the request handlers themselves, and each
flush stalled the request thread for milliseconds (queueing behind it set the p90/p99 of
/predict). Here the writer thread of ``PredictionLog`` only serialises the batch with orjson (a
dataclass list in Rust, about a microsecond a record) and hands it to a child process over a
pipe; the child owns its own engine and runs ``PredictionRepository.insert_many``. The writer
waits for the child's answer with the GIL released, so its semantics are unchanged: a batch
counts as written only once the child has committed it.

The protocol is a 4-byte big-endian length, then the payload, in both directions: first the
parent sends the database URL (never on the command line, where ``ps`` shows it), then one JSON
list of predictions per batch; the child answers each with ``{"ok": n}`` or ``{"error": kind,
"message": text}``, kind one of ``refused`` (the database refuses some row: data or integrity
error), ``unreachable`` (connection, schema or any other driver error) or ``invalid`` (the
payload itself). A child that dies, or does not answer within ``timeout``, is killed and the
batch is reported ``unreachable``; the next batch starts a new child. Inserts are idempotent
(``ON CONFLICT DO NOTHING`` on the id), so a batch whose answer was lost may be sent again.

The child runs in its own session and ignores SIGINT and SIGTERM: a stop signal sent to the
server's process group (Ctrl-C, a service manager) must not take the writer away before the
server has drained its log. It exits when its stdin closes, which the parent does last, and also
when the parent dies.

    python -m mlobs.storage.insert_process     # the child; started by InsertProcess only
"""

from __future__ import annotations

import logging
import math
import os
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from mlobs.monitoring.ports import PredictionStore
    from mlobs.monitoring.records import PredictionRecord

log = logging.getLogger(__name__)

_LEN = struct.Struct(">I")


class RowsRefused(Exception):
    """The database refused a row of the batch (a data or integrity error in the child)."""


class StoreUnreachable(Exception):
    """The database, or the process that writes to it, cannot take the batch now."""


def _ready(fd: int, event: int, timeout: float) -> bool:
    """Whether ``fd`` is ready for ``event`` within ``timeout`` seconds (poll, not select: a
    busy server's descriptors go past select's limit of 1024). A closed peer counts as ready:
    the read or write that follows reports it."""
    poller = select.poll()
    poller.register(fd, event)
    return bool(poller.poll(max(0, int(timeout * 1000))))


def _write_frame(stream: IO[bytes], payload: bytes) -> None:
    stream.write(_LEN.pack(len(payload)))
    stream.write(payload)
    stream.flush()


def _read_exact_blocking(stream: IO[bytes], n: int) -> bytes | None:
    data = stream.read(n)
    if len(data) < n:
        return None
    return data


class InsertProcess:
    """The parent's side: ``insert_many`` forwards a batch to the child and waits for it.

    Called from one thread at a time (the log writer); a lock makes that an invariant rather
    than an assumption.
    """

    def __init__(self, database_url: str, *, timeout: float = 60.0) -> None:
        self.database_url, self.timeout = database_url, timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._closed = False
        self.restarts = 0

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> None:
        with self._lock:
            self._closed = False
            if self._proc is None or self._proc.poll() is not None:
                self._spawn()

    def stop(self, timeout: float = 10.0) -> None:
        """Close the child's stdin (it finishes the batch in hand, if any, and exits). A child
        still busy with a batch after ``timeout`` is killed (that batch fails over to the spill).
        No child is started after this, until ``start``."""
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
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlobs.storage.insert_process"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
            start_new_session=True,
        )
        assert proc.stdin is not None
        # Frames go straight to the descriptor, non-blocking: a child that stops reading (hung,
        # stopped) must not hold the writer past its timeout with a full pipe.
        os.set_blocking(proc.stdin.fileno(), False)
        self._proc = proc
        self._send(proc.stdin.fileno(), self.database_url.encode(), self.timeout)

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

    # ---------------------------------------------------------------- the store side

    def insert_many(self, records: Sequence[PredictionRecord]) -> None:
        if not records:
            return
        # Encoding errors (a value orjson cannot write) raise here, in the caller, as they
        # would from the driver: the log isolates and drops that row.
        for r in records:
            # orjson writes NaN and infinities as null: refuse them here instead of storing a
            # different value (the log isolates and counts the row).
            if not math.isfinite(r.prediction) or (
                r.probability is not None and not math.isfinite(r.probability)
            ):
                raise ValueError(f"prediction {r.id}: output is not a finite number")
        payload = orjson.dumps(list(records), default=_encode, option=orjson.OPT_SERIALIZE_NUMPY)
        with self._lock:
            if self._closed:
                raise StoreUnreachable("the log writer process is stopped")
            try:
                if self._proc is None or self._proc.poll() is not None:
                    self._spawn()
                proc = self._proc
                assert proc is not None and proc.stdin is not None and proc.stdout is not None
                self._send(proc.stdin.fileno(), payload, self.timeout)
                answer = self._read_answer(proc.stdout.fileno())
            except (OSError, ValueError, StoreUnreachable) as exc:
                # Died, pipe broken, or silent past the timeout: a new child for the next batch.
                self._kill()
                raise StoreUnreachable(f"log writer process: {type(exc).__name__}: {exc}") from exc
        if "ok" in answer:
            return
        kind, message = answer.get("error"), str(answer.get("message", ""))
        if kind == "refused":
            raise RowsRefused(message)
        if kind == "invalid":
            raise ValueError(message)
        raise StoreUnreachable(message)

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
            except BlockingIOError:  # the pipe filled between select and write
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


class OffProcessStore:
    """A ``PredictionStore`` whose reads run in this process and whose inserts run in the child."""

    def __init__(self, reads: PredictionStore, writer: InsertProcess) -> None:
        self.reads, self.writer = reads, writer

    def insert_many(self, records: Sequence[PredictionRecord]) -> None:
        self.writer.insert_many(records)

    def get(self, prediction_id: str) -> PredictionRecord | None:
        return self.reads.get(prediction_id)

    def get_many(
        self, prediction_ids: Sequence[str], *, features: bool = True
    ) -> dict[str, PredictionRecord]:
        return self.reads.get_many(prediction_ids, features=features)


def _encode(obj: Any) -> Any:
    """What orjson does not write natively: feature mappings that are not dicts."""
    if isinstance(obj, Mapping):
        return dict(obj)
    raise TypeError(f"cannot log a value of type {type(obj).__name__}")


# -------------------------------------------------------------------- the child


def _answer(stream: IO[bytes], obj: dict[str, Any]) -> None:
    _write_frame(stream, orjson.dumps(obj))


def serve(stdin: IO[bytes], stdout: IO[bytes]) -> None:
    """The child's loop: read the URL, then insert batches until stdin closes."""
    from sqlalchemy import exc as sa_exc

    from mlobs.storage.db import make_engine
    from mlobs.storage.repositories import PredictionRepository
    from mlobs.storage.spill import prediction_from_json

    head = _read_exact_blocking(stdin, _LEN.size)
    if head is None:
        return
    url = _read_exact_blocking(stdin, _LEN.unpack(head)[0])
    if url is None:
        return
    # One connection is all a sequential writer uses.
    engine = make_engine(url.decode())
    repo = PredictionRepository(engine)
    try:
        while (head := _read_exact_blocking(stdin, _LEN.size)) is not None:
            payload = _read_exact_blocking(stdin, _LEN.unpack(head)[0])
            if payload is None:
                return
            try:
                records = [prediction_from_json(d) for d in orjson.loads(payload)]
            except Exception as exc:
                _answer(stdout, {"error": "invalid", "message": f"{type(exc).__name__}: {exc}"})
                continue
            try:
                repo.insert_many(records)
            except (sa_exc.DataError, sa_exc.IntegrityError) as exc:
                _answer(stdout, {"error": "refused", "message": f"{type(exc).__name__}: {exc}"})
            except (sa_exc.SQLAlchemyError, OSError) as exc:  # away, restarting, not migrated
                _answer(stdout, {"error": "unreachable", "message": f"{type(exc).__name__}: {exc}"})
            except Exception as exc:  # a value that cannot be bound: as in-process, isolate it
                _answer(stdout, {"error": "invalid", "message": f"{type(exc).__name__}: {exc}"})
            else:
                _answer(stdout, {"ok": len(records)})
    finally:
        engine.dispose()


def main() -> None:
    # The parent stops this process by closing stdin, after its last batch.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    try:
        serve(sys.stdin.buffer, sys.stdout.buffer)
    except BrokenPipeError:  # the parent is gone
        pass


if __name__ == "__main__":
    main()
