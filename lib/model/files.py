"""Files written whole or not at all: a temporary name in the same folder, then an atomic rename.

    with write_whole(out / "reports.parquet") as tmp:
        pq.write_table(table, tmp)

    with write_whole_folder(out) as tmp:          # several files that belong together
        pq.write_table(reports, tmp / "reports.parquet")
        ...

A writer that raises, or a process killed part-way, leaves the old file (or no file) under the final
name, never a truncated one. The temporary name is hidden (a leading dot), carries the writer's pid,
and ends in `.part`; a later write of the same name removes the ones whose writer has died.
"""
from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

SUFFIX = ".part"


def _temporary(path: Path) -> Path:
    """Return a unique hidden sibling of `path` naming this process."""
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}{SUFFIX}")


def alive(pid: int) -> bool:
    """Return True if a process with this pid exists (another user's counts as alive: its files are left alone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: leave its file alone
    return True


def remove_stale(path: str | Path) -> list[Path]:
    """Remove temporaries of `path` left by writers that have died (a kill -9); return what was removed."""
    path = Path(path)
    removed = []
    if not path.parent.is_dir():
        return removed
    for tmp in path.parent.glob(f".{path.name}.*{SUFFIX}"):
        pid = tmp.name[len(path.name) + 2:-len(SUFFIX)].split("-", 1)[0]
        if pid.isdigit() and not alive(int(pid)):
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def _sync(path: Path) -> None:
    """Flush a file or folder to disk, so the rename never publishes data still in the page cache."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def write_whole(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on a clean exit move what was written there into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(path)
    tmp = _temporary(path)
    try:
        yield tmp
        _sync(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _sync(path.parent)


@contextlib.contextmanager
def write_whole_folder(path: str | Path) -> Iterator[Path]:
    """Yield a temporary folder beside `path`; on a clean exit move it (or its files) into place.

    A new (or empty) folder appears with all its files at once. Into a folder that already holds
    files, each new file is moved in by its own atomic rename, so other files there are kept and no
    file is ever partly written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(path)
    tmp = _temporary(path)
    tmp.mkdir()
    try:
        yield tmp
        for child in tmp.iterdir():
            if child.is_file():
                _sync(child)
        _sync(tmp)
        if path.is_dir() and not any(path.iterdir()):
            path.rmdir()
        if path.exists():
            for child in sorted(tmp.iterdir()):
                os.replace(child, path / child.name)
            tmp.rmdir()
        else:
            os.rename(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _sync(path.parent)


def create_secret_file(path: Path, size: int) -> None:
    """Write `size` random bytes to a new private file (0600, folder 0700); racing processes all keep the first."""
    folder = path.parent
    if not folder.is_dir():
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(folder, 0o700)  # mkdir's mode is masked by the umask
    tmp = folder / f".{path.name}.{os.getpid()}.{secrets.token_hex(8)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(secrets.token_bytes(size))
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o600)
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)  # appears whole or not at all; fails if another process got there first
    finally:
        tmp.unlink(missing_ok=True)
