"""Digests of many small files computed in worker processes, ahead of the writer.

Reading a small file and computing its digests and redaction token tree is
half the CPU time of ingesting an article, and needs nothing from the
archive. For a large batch, worker processes (one per spare core) do it
while the main process writes records, signs and commits, which must stay
in order in one process. Results come back in input order through a
bounded window, so memory stays bounded however many files there are.

Workers are started with ``spawn`` (not ``fork``): a forked child would
inherit the open SQLite index and the writer lock's descriptor. They get
only paths and return bytes and digests; the seed of each token tree is
drawn in the worker with ``os.urandom`` and sent back over the pipe to the
parent, never written anywhere else.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import os
import sys
import weakref
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, InvalidStateError, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any, TypeVar

from .digests import Digests
from .errors import InvalidInput
from .fsutil import read_upto
from .storing import digest_version

R = TypeVar("R")

log_warning = logging.getLogger("archiver").warning

#: below this many files, starting workers costs more than it saves
MIN_BATCH = 200
WINDOW = 1024  # files read ahead of the writer, at most (a few MB of articles)
# files per task sent to a worker: a round trip per file cost a tenth of an ingest, and each
# result wakes two threads of the parent (the pool's and the caller), which on these virtual
# machines costs more than the work it hands over
PER_TASK = 64


@dataclass(frozen=True, slots=True)
class Job:
    """What a worker needs to digest one file."""

    path: str
    display: str
    filename: str | None
    media_type: str | None
    charset: str | None
    limit: int


@dataclass(frozen=True, slots=True)
class Prehashed:
    """A small file read once, with its digests and token-tree seed."""

    data: bytes
    digests: Digests
    seed: bytes


def digest_small(job: Job) -> Prehashed | None:
    """Read and digest one file if it is at most ``job.limit`` bytes (else None: the
    writer streams it itself). Runs in a worker process.

    Raises:
        InvalidInput: unreadable, or an unknown charset.
    """
    try:
        with open(job.path, "rb", buffering=0) as f:
            if os.fstat(f.fileno()).st_size > job.limit:
                return None
            data = read_upto(f.fileno(), job.limit)
    except OSError as e:
        raise InvalidInput(f"{job.display}: cannot read ({e.strerror})") from None
    if len(data) > job.limit:
        return None
    d, seed = digest_version(
        lambda: io.BytesIO(data),
        display=job.display,
        filename=job.filename,
        media_type=job.media_type,
        charset=job.charset,
    )
    return Prehashed(data, d, seed)


def digest_many(jobs: Sequence[Job]) -> list[Prehashed | None]:
    """``digest_small`` of several jobs (one task for a worker process).

    Raises:
        InvalidInput: the first job that fails; the caller reports it in its turn.
    """
    return [digest_small(job) for job in jobs]


def workers_for(n_jobs: int) -> int:
    """How many worker processes a batch of ``n_jobs`` files gets (0: do it inline).

    ``ARCHIVER_WORKERS=N`` sets the number (0: never), whatever the batch size.
    """
    wanted = os.environ.get("ARCHIVER_WORKERS", "")
    if wanted.isdigit():
        return min(int(wanted), n_jobs)
    if n_jobs < MIN_BATCH:
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores - 1, 4))


def prehashed(jobs: Sequence[Job]) -> Iterator[Prehashed | None]:
    """``digest_small`` of every job, in order, computed ahead in worker processes.

    Inline (no workers) for small batches. Errors are raised in order, when the
    failing job's turn comes.
    """
    n = workers_for(len(jobs))
    if n == 0:
        for job in jobs:
            yield digest_small(job)
        return
    tasks = (jobs[i : i + PER_TASK] for i in range(0, len(jobs), PER_TASK))
    with ProcessPoolExecutor(max_workers=n, mp_context=get_context("spawn")) as pool:
        Task = tuple[Future[list[Prehashed | None]] | None, Sequence[Job]]
        window: deque[Task] = deque()

        def submit(task: Sequence[Job]) -> Task:
            if pool not in _LOST:
                try:
                    return pool.submit(digest_many, task), task
                except BrokenProcessPool:
                    worker_lost(pool)
            return None, task  # (the worker is gone: done here, in its turn)

        try:
            for task in tasks:
                window.append(submit(task))
                if len(window) >= WINDOW // PER_TASK:
                    break
            while window:
                f, task = window.popleft()
                got = _outcome(pool, f)
                results: list[Prehashed | None] = digest_many(task) if got is _HERE else got
                nxt = next(tasks, None)
                if nxt is not None:
                    window.append(submit(nxt))
                yield from results
        finally:
            for f, _ in window:
                if f is not None:
                    f.cancel()


def warm(modules: tuple[str, ...]) -> None:
    """Import ``modules`` in a worker, so that it starts while the parent works on."""
    for name in modules:
        importlib.import_module(name)


def share(
    pool: ProcessPoolExecutor | None,
    fn: Callable[..., R],
    jobs: Sequence[tuple[Any, ...]],
    *,
    packed: tuple[Callable[..., bytes], Callable[[bytes], R]] | None = None,
    meanwhile: Callable[[], None] | None = None,
) -> list[R]:
    """``fn(*job)`` for every job, results in job order, the work shared as it goes
    (``share_each``)."""
    results: list[Any] = [None] * len(jobs)

    def keep(i: int, result: R) -> None:
        results[i] = result

    share_each(pool, fn, jobs, keep, packed=packed, meanwhile=meanwhile)
    return results


def share_each(
    pool: ProcessPoolExecutor | None,
    fn: Callable[..., R],
    jobs: Sequence[tuple[Any, ...]],
    consume: Callable[[int, R], None],
    *,
    packed: tuple[Callable[..., bytes], Callable[[bytes], R]] | None = None,
    meanwhile: Callable[[], None] | None = None,
) -> None:
    """``consume(i, fn(*jobs[i]))`` for every job, in this process, the jobs themselves
    shared as they go: the pool is given every job, last first, and this process takes
    jobs from the front, each one it can still take back from the pool
    (``Future.cancel``), until they meet.

    A fixed half each left one side waiting for the other: a worker starts late (a new
    interpreter), pays for sending its results back, and shares the machine with
    whatever else runs. Jobs should be small (a few dozen milliseconds) so the last one
    waits little.

    ``consume`` sees each result as soon as this process has it: its own at once, the
    pool's when it is between two of its own jobs and finds them done. So work that
    ``consume`` does is shared too: while this process does it, the pool takes more of
    the jobs. Results come in no set order (each with its index).

    ``packed``: (``remote``, ``decode``): the pool runs ``remote(*job)``, which returns
    ``fn``'s result as bytes, and this process ``decode``s them. Pickling nested values
    cost the worker as much time as some of the work it took over.

    ``meanwhile``: other work for this process, done first while the pool starts on the
    jobs; with no pool, first too, so that ``consume`` may rely on it having run however
    the work is shared (a verify lets go of each document's manifests as it is checked,
    once ``meanwhile`` has checked what needs them all).
    """
    if pool is None:
        if meanwhile is not None:
            meanwhile()
        for i, job in enumerate(jobs):
            consume(i, fn(*job))
        return
    with prompt_handoffs():
        _share_with(pool, fn, jobs, consume, packed, meanwhile)


def _share_with(
    pool: ProcessPoolExecutor,
    fn: Callable[..., R],
    jobs: Sequence[tuple[Any, ...]],
    consume: Callable[[int, R], None],
    packed: tuple[Callable[..., bytes], Callable[[bytes], R]] | None,
    meanwhile: Callable[[], None] | None,
) -> None:
    """``share_each`` with a pool."""
    remote, decode = packed if packed is not None else (fn, None)
    futures: list[Future[Any] | None] = [None] * len(jobs)

    def collect(k: int) -> None:
        f = futures[k]
        assert f is not None
        futures[k] = None
        got = _outcome(pool, f)
        if got is _HERE:
            consume(k, fn(*jobs[k]))
        else:
            consume(k, decode(got) if decode is not None else got)

    try:
        try:
            for i in reversed(range(len(jobs))):
                sent: Future[Any] = pool.submit(remote, *jobs[i])
                sent.__class__ = _TakenBack  # (before anything can cancel it)
                futures[i] = sent
        except BrokenProcessPool:  # gone before it took anything: all of it here
            worker_lost(pool)
            share_each(None, fn, jobs, consume, meanwhile=meanwhile)
            return
        if meanwhile is not None:
            meanwhile()
        front, back = 0, len(jobs)  # this process has jobs [:front]; results [back:] are in
        while front < back:
            f = futures[front]
            assert f is not None
            if not f.cancel():
                break  # the pool has started on this one: we have met
            futures[front] = None
            consume(front, fn(*jobs[front]))
            front += 1
            while back > front and futures[back - 1].done():  # type: ignore[union-attr]
                back -= 1
                collect(back)
        for k in range(front, back):
            collect(k)
    finally:
        for f in futures:
            if f is not None:
                f.cancel()


#: the interpreter's switch interval while a pool shares this process's work (seconds)
HANDOFF_INTERVAL = 0.0002


@contextlib.contextmanager
def prompt_handoffs(interval: float = HANDOFF_INTERVAL) -> Iterator[None]:
    """The interpreter's switch interval at most ``interval`` for the duration.

    A pool's results reach this process through its own threads: one reads each
    result from the pipe, a piece of at most 64 KiB per read (a part's records are
    about 350 KB), and another sends the next job. Each piece needs the interpreter
    lock, and a thread waiting for it gets it only when the busy main thread is made
    to let go: by default after 5 ms. Meanwhile the worker, its pipe full, waits. In a
    full verify of 55,000 articles the worker was busy 75-87 % of the WARC step with
    the default, 95-97 % with 0.2 ms. The shorter interval costs nothing when no other
    thread wants the lock (it is only a deadline for handing it over).
    """
    before = sys.getswitchinterval()
    sys.setswitchinterval(min(before, interval))
    try:
        yield
    finally:
        sys.setswitchinterval(before)


#: pools whose lost worker was reported: once each, however many steps then find it gone
_LOST: weakref.WeakSet[ProcessPoolExecutor] = weakref.WeakSet()


class _TakenBack(Future[Any]):
    """A future this process may take back from the pool (``Future.cancel``) while the
    pool holds it. When a worker dies, Python 3.11's pool fails each pending future from
    its own thread, and stops at the first one already cancelled (``InvalidStateError``:
    3.12 checks first): a traceback on stderr, and its queues never closed (the
    resource tracker then reports leaked semaphores). A cancelled future has nothing to
    fail, so that one call is let pass."""

    def set_exception(self, exception: BaseException | None) -> None:
        with contextlib.suppress(InvalidStateError):
            super().set_exception(exception)


_HERE = object()  # (``_outcome``) a job the worker did not send back: do it in this process


def _outcome(pool: ProcessPoolExecutor, f: Future[Any] | None) -> Any:
    """``f``'s result, or ``_HERE`` if the pool's worker ended without sending it. Once it
    is known gone, only futures already done are asked: one the broken pool never failed
    would be waited on forever."""
    if f is None:
        return _HERE
    if pool in _LOST and not (f.done() and not f.cancelled() and f.exception() is None):
        return _HERE
    try:
        return f.result()
    except BrokenProcessPool:
        worker_lost(pool)
        return _HERE


def worker_lost(pool: ProcessPoolExecutor) -> None:
    """Say (once per pool) that a worker process ended abruptly (killed for memory, a
    signal): the work goes on in this process, with the same results."""
    if pool in _LOST:
        return
    _LOST.add(pool)
    log_warning(
        "a worker process ended abruptly (out of memory, or a signal); "
        "this process does the rest of its work: the results are the same, only slower"
    )


def pack(value: Any) -> bytes:
    """``value`` (plain data: tuples, lists, dicts, str, bytes, int...) as bytes for the
    trip back from a worker: ``marshal``, several times cheaper than pickle for such data
    (both ends are this same interpreter), pickle if marshal cannot take it."""
    import marshal

    try:
        return b"m" + marshal.dumps(value)
    except ValueError:  # nested too deeply, or a type marshal does not know
        import pickle

        return b"p" + pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def unpack(data: bytes) -> Any:
    """The value ``pack`` was given (only for bytes from our own worker: neither marshal
    nor pickle may read untrusted input)."""
    import marshal
    import pickle

    body = memoryview(data)[1:]
    # our own worker's bytes, never input (concurrent.futures unpickles them anyway)
    return marshal.loads(body) if data[:1] == b"m" else pickle.loads(body)  # noqa: S301, S302


@contextlib.contextmanager
def worker_pool(jobs: int) -> Iterator[ProcessPoolExecutor | None]:
    """A pool of spawned worker processes for ``jobs`` independent jobs, or None when
    there is no spare core (or ``ARCHIVER_WORKERS=0``): then the caller works inline."""
    wanted = os.environ.get("ARCHIVER_WORKERS", "")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    n = min(jobs, int(wanted) if wanted.isdigit() else max(1, cores - 1))
    if n <= 0:
        yield None
        return
    with ProcessPoolExecutor(max_workers=n, mp_context=get_context("spawn")) as pool:
        yield pool
