"""Kill a command with SIGKILL at a chosen point of its writing, for the whole-or-absent tests."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq

from .conftest import ROOT

POLL_S = 0.0005
LIMIT_S = 300.0  # a safety net so a broken run cannot hang the suite; never a speed assertion


def temporaries(target: Path) -> list[Path]:
    """Return the hidden temporaries a writer of `target` has made beside it."""
    return sorted(target.parent.glob(f".{target.name}.*.part"))


def temporary_holds(target: Path, name: str) -> Callable[[], bool]:
    """Return a check: a temporary folder of `target` holds a file called `name`."""
    return lambda: any((tmp / name).exists() for tmp in temporaries(target))


def kill_when(args: list[str], ready: Callable[[], bool]) -> str:
    """Run `python -m ARGS`, SIGKILL it as soon as `ready()` holds; return 'killed' or 'finished'."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", *args], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + LIMIT_S
    try:
        while proc.poll() is None:
            if ready():
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                return "killed"
            if time.monotonic() > deadline:
                raise TimeoutError(f"{args} neither reached the kill point nor finished")
            time.sleep(POLL_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, proc.stderr.read().decode() if proc.stderr else proc.returncode
    return "finished"


def truncated_parquet(folder: Path) -> bool:
    """Return True if a temporary folder holds a Parquet file cut short (the kill landed mid-write)."""
    for path in folder.glob("*.parquet"):
        try:
            pq.read_metadata(path)
        except (OSError, ValueError):
            return True
    return False
