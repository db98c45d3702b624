"""Reading uploads in a worker process inside a memory and time budget, so a hostile file fails only its own read.

`run(fn, *args, progress=..., **kwargs)` calls `fn(*args, **kwargs)` in a fresh Python process
(`python -m lib.ingest.worker FOLDER MEMORY`, never a fork of the threaded server). The worker limits
its own address space to OSE_UPLOAD_MEMORY_MB before it unpacks the call; the caller kills it past
OSE_UPLOAD_SECONDS. The call and its outcome pass through a private temporary folder (pickle, which
only this module writes there); progress comes back as JSON lines on the worker's standard output.
A worker that runs out of memory, crashes, is killed or overruns becomes a `RejectedFile` whose
message says which limit was met: never a traceback, and never a dead server.
"""
from __future__ import annotations

import json
import os
import pickle
import resource
import selectors
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from lib.ingest.reading import RejectedFile
from lib.model.settings import UPLOAD_MEMORY_MB, UPLOAD_SECONDS, settings

T = TypeVar("T")
Progress = Callable[[float, str], None]
ROOT = Path(__file__).resolve().parents[2]
CALL = "call.pickle"
OUTCOME = "outcome.pickle"
ERRORS = "stderr.txt"
OUT_OF_MEMORY = 3  # the worker's exit code when a MemoryError reached it
# How the worker allocates, unless the environment says otherwise. A read in batches frees and allocates
# the same sizes again and again, on two threads (one adapts a batch, one writes the one before). With
# Arrow's default pool (mimalloc) and glibc's per-thread arenas, the peak drifted up by 20 to 60 MB between
# a 100,000- and a 300,000-row file, run to run; with jemalloc for Arrow's buffers and two glibc arenas it
# rose 6 to 20 MB and sat 50 to 150 MB lower; 1,000,000 national-form rows took the same time.
WORKER_ALLOCATORS = {"ARROW_DEFAULT_MEMORY_POOL": "jemalloc", "MALLOC_ARENA_MAX": "2"}
# Signals a process dies of when memory runs out under an address-space limit: C++'s std::bad_alloc
# aborts, an unchecked failed allocation segfaults, the kernel's out-of-memory killer sends SIGKILL.
MEMORY_SIGNALS = (signal.SIGABRT, signal.SIGSEGV, signal.SIGBUS, signal.SIGKILL)


@dataclass(frozen=True)
class Budget:
    """What one read may use: address space in bytes and wall-clock seconds."""

    memory_bytes: int
    seconds: float

    @classmethod
    def from_env(cls) -> Budget:
        """Read OSE_UPLOAD_MEMORY_MB and OSE_UPLOAD_SECONDS."""
        current = settings()
        return cls(memory_bytes=current.upload_memory_bytes, seconds=current.upload_seconds)


def _size_text(n: int) -> str:
    return f"{n / 1024 ** 3:,.1f} GB" if n >= 1024 ** 3 else f"{n / 1024 ** 2:,.0f} MB"


def memory_message(budget: Budget) -> str:
    """Say that a read needed more memory than the budget."""
    return (f"reading this upload needs more than {_size_text(budget.memory_bytes)} of memory; the limit is "
            f"{_size_text(budget.memory_bytes)} ({UPLOAD_MEMORY_MB})")


def time_message(budget: Budget) -> str:
    """Say that a read took longer than the budget."""
    return f"reading took longer than {budget.seconds:,.0f} s; the limit is {budget.seconds:,.0f} s ({UPLOAD_SECONDS})"


def run(fn: Callable[..., T], *args: Any, progress: Progress | None = None, budget: Budget | None = None,
        **kwargs: Any) -> T:
    """Call fn(*args, **kwargs) in a worker process inside the budget; return its result or raise RejectedFile.

    With `progress`, fn is also given `progress=`, and each of its calls reaches `progress` here.
    """
    budget = budget or Budget.from_env()
    with tempfile.TemporaryDirectory(prefix="ose-read-") as tmp:  # mkdtemp: readable by this user only
        folder = Path(tmp)
        with open(folder / CALL, "wb") as out:
            pickle.dump((fn, args, kwargs, progress is not None), out, protocol=pickle.HIGHEST_PROTOCOL)
        env = {**WORKER_ALLOCATORS, **os.environ,
               "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
        with open(folder / ERRORS, "wb") as errors:
            worker = subprocess.Popen([sys.executable, "-m", "lib.ingest.worker", str(folder),
                                       str(budget.memory_bytes)],
                                      stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors, env=env)
            try:
                in_time = _follow(worker, progress, time.monotonic() + budget.seconds)
            finally:  # the caller stopped following (Streamlit stops a script on a rerun): stop the read too
                if worker.poll() is None:
                    worker.kill()
                    worker.wait()
        if not in_time:
            raise RejectedFile(time_message(budget))
        if worker.returncode == OUT_OF_MEMORY or -worker.returncode in MEMORY_SIGNALS:
            raise RejectedFile(memory_message(budget))
        try:
            with open(folder / OUTCOME, "rb") as saved:
                kind, value = pickle.load(saved)
        except (OSError, EOFError, pickle.UnpicklingError):
            raise RejectedFile(f"the reading worker stopped unexpectedly (exit code {worker.returncode}); "
                               "nothing was loaded") from None
    if kind == "rejected":
        raise RejectedFile(value)
    if kind == "error":
        raise RejectedFile(f"reading stopped on an unexpected error ({value}); nothing was loaded")
    return value


def _follow(worker: subprocess.Popen, progress: Progress | None, deadline: float) -> bool:
    """Pass the worker's progress lines on until it ends; kill it at the deadline. Return whether it ended in time."""
    stream = worker.stdout
    assert stream is not None
    pending = b""
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                worker.kill()
                worker.wait()
                stream.close()
                return False
            if not selector.select(timeout=min(left, 0.5)):
                continue
            chunk = os.read(stream.fileno(), 65536)
            if not chunk:  # the worker closed its output: it is ending
                break
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                if progress is not None and line:
                    fraction, message = json.loads(line)
                    progress(fraction, message)
    stream.close()
    try:
        worker.wait(timeout=max(deadline - time.monotonic(), 0.1))
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()
        return False
    return True


# --- the worker's side --------------------------------------------------------------------


def main(argv: list[str]) -> int:
    """Run the call saved in a folder within an address-space limit; save its outcome there."""
    folder, memory = Path(argv[0]), int(argv[1])
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    # Progress has the real standard output to itself: anything else printed goes to standard error.
    channel = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)

    def report(fraction: float, message: str) -> None:
        channel.write(json.dumps([fraction, message]) + "\n")
        channel.flush()

    try:
        with open(folder / CALL, "rb") as saved:
            fn, args, kwargs, wants_progress = pickle.load(saved)
        if wants_progress:
            kwargs["progress"] = report
        outcome: tuple[str, Any] = ("ok", fn(*args, **kwargs))
    except RejectedFile as exc:
        outcome = ("rejected", str(exc))
    except MemoryError:
        return OUT_OF_MEMORY
    except Exception as exc:  # reported as one line: the caller never shows a traceback
        traceback.print_exc()  # into the folder's error file, for whoever debugs the worker
        outcome = ("error", f"{type(exc).__name__}: {exc}"[:500])
    try:
        partial = folder / (OUTCOME + ".partial")
        with open(partial, "wb") as out:
            pickle.dump(outcome, out, protocol=pickle.HIGHEST_PROTOCOL)
        partial.rename(folder / OUTCOME)  # whole or absent
    except MemoryError:
        return OUT_OF_MEMORY
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
