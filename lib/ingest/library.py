"""Dataset library: named, versioned datasets saved as Parquet under OSE_DATA_DIR, with their provenance.

    datasets/NAME/CURRENT                 names the current version ("000003"), replaced atomically
    datasets/NAME/owner.json              who saved it and the forces (areas) it belongs to, kept across versions
    datasets/NAME/versions/000003/        reports.parquet, tactics.parquet, quarantine.csv, provenance.json
    datasets/.locks/NAME.lock             serialises the writers of NAME (fcntl; plus a PostgreSQL advisory lock)

Every save, append and rollback writes a new immutable version folder (under a temporary name, then
renamed), then moves the CURRENT pointer in one atomic step: a reader sees the old version or the new
one, never a mixture. Writers of one dataset take its lock, so no append is lost; the newest
OSE_KEEP_VERSIONS versions are kept for rollback. A version's provenance lists exactly the loads
whose reports it holds (each record's `reports_loaded` sums to its report count). Leftovers of a
writer killed part-way are hidden names that readers ignore and the next writer (or listing) removes.
A dataset saved before versions (files directly in NAME/) reads as version 1 and is moved into
versions/000001 by its next write. Appending de-duplicates on report id.

Each dataset belongs to the scope of the user who saved it (their forces and areas; an unrestricted
user's dataset belongs to every force). A function given an `actor` acts only on datasets whose scope
that actor's covers, and answers "there is no saved dataset called ..." for any other, so an outsider
learns nothing, not even that it exists; deleting and rolling back need the user who saved it or an
admin. A dataset without an owner (saved before owners) belongs to every force: only unrestricted users
see it until an operator gives it an owner (`python -m lib.library own`). Without an actor (the command
line, run as the host's user) nothing is restricted.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lib.ingest import pseudonym
from lib.ingest.formats import FILE, ROW, ROWS
from lib.ingest.pipeline import ORIGINS, IngestResult, origins_table, reason_counts
from lib.ingest.staging import StagedUpload, tables_of
from lib.model import files, incidents
from lib.model.paths import data_dir  # noqa: F401  (re-exported)
from lib.model.scope import UNRESTRICTED, Actor, Scope
from lib.model.settings import settings

PROVENANCE = "provenance.json"
QUARANTINE = "quarantine.csv"
REPORTS = "reports.parquet"
TACTICS = "tactics.parquet"
CURRENT = "CURRENT"
OWNER = "owner.json"
VERSIONS = "versions"
LOCKS = ".locks"
LOCK_WAIT_S = 30.0  # how long a writer waits for another user's change before giving up with a reason
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$")
_VERSION_RE = re.compile(r"^\d{6}$")
# Names the library writes while working, all hidden: a temporary (files.write_whole*) or a folder being deleted.
_HIDDEN_RE = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)-[0-9a-f]+\.(?:part|deleting)$")
# The folders the library wrote before versions, while saving or appending (never a dataset of their own).
_OLD_LEFTOVERS = (".saving", ".appending", ".previous")


class LibraryError(Exception):
    """A library action cannot be done; the message says why."""


@dataclass(frozen=True)
class Entry:
    """A saved dataset as the library lists it; `damaged` says why its current version cannot be read."""

    name: str
    path: Path
    reports: int
    loads: int
    updated: str
    version: int = 1
    damaged: str | None = None
    owner: str | None = None
    belongs_to: str = "all forces"


@dataclass(frozen=True)
class Owner:
    """Who saved a dataset (None: saved before owners were recorded) and the scope it belongs to."""

    by: str | None
    scope: Scope = UNRESTRICTED


@dataclass(frozen=True)
class Version:
    """One kept version of a saved dataset."""

    number: int
    created: str
    by: str
    action: str
    reports: int | None
    current: bool
    damaged: str | None = None


def root() -> Path:
    """Return the folder that holds saved datasets."""
    return data_dir() / "datasets"


def check_name(name: str) -> str:
    """Return a dataset name if it is safe as a folder name; raise LibraryError if not."""
    name = name.strip()
    if (not _NAME_RE.match(name) or name in (".", "..") or ".." in name
            or name.endswith(_OLD_LEFTOVERS) or name.endswith(".deleting")):
        raise LibraryError("a dataset name is 1-64 letters, digits, spaces, '.', '_' or '-', "
                           "starting with a letter or digit")
    return name


def _folder(name: str) -> Path:
    return root() / check_name(name)


def _label(number: int) -> str:
    return f"{number:06d}"


def _is_legacy(folder: Path) -> bool:
    """Say whether a folder is a dataset saved before versions (its files directly inside, no pointer yet)."""
    return not (folder / CURRENT).exists() and (folder / REPORTS).exists()


def _exists(folder: Path) -> bool:
    return folder.is_dir() and ((folder / CURRENT).exists() or (folder / VERSIONS).is_dir() or _is_legacy(folder))


def _current(folder: Path) -> tuple[int, Path]:
    """Return the current version's number and folder; raise LibraryError saying why it cannot be found."""
    if _is_legacy(folder):
        return 1, folder
    try:
        text = (folder / CURRENT).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise LibraryError(f"its pointer to the current version cannot be read ({type(exc).__name__})") from exc
    if not _VERSION_RE.match(text):
        raise LibraryError(f"its pointer to the current version is not a version number ({text[:20]!r})")
    path = folder / VERSIONS / text
    if not path.is_dir():
        raise LibraryError(f"its current version {int(text)} is missing")
    return int(text), path


def owner(folder: Path) -> Owner:
    """Return a dataset folder's owner; one not recorded (or unreadable) belongs to every force, by nobody."""
    try:
        data = json.loads((folder / OWNER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return Owner(None)
    scope = Scope.from_dict(data)
    by = data.get("by") if isinstance(data, dict) else None
    # A damaged record is read as the widest scope, which only unrestricted users cover: never wider access.
    return Owner(by if isinstance(by, str) else None, scope or UNRESTRICTED)


def _owner_text(by: str, scope: Scope) -> str:
    return json.dumps({"by": by, **scope.as_dict(), "saved_at": datetime.now(UTC).isoformat(timespec="seconds")},
                      indent=2)


def _visible(folder: Path, actor: Actor | None) -> bool:
    """Say whether an actor may know of this dataset: their scope covers the one it belongs to."""
    return actor is None or actor.scope.covers(owner(folder).scope)


def _seen(name: str, actor: Actor | None) -> Path:
    """Return a dataset's folder if it exists and the actor may see it; else raise as if it did not exist."""
    folder = _folder(name)
    if not _exists(folder) or not _visible(folder, actor):
        raise LibraryError(f"there is no saved dataset called '{name}'")
    return folder


def _check_may_change(name: str, folder: Path, actor: Actor | None, what: str) -> None:
    """Refuse to delete or roll back a dataset unless the actor saved it or is an admin."""
    if actor is None or actor.admin:
        return
    by = owner(folder).by
    if by is None:
        raise LibraryError(f"'{name}' can be {what} only by an admin: it has no recorded owner")
    if by != actor.name:
        raise LibraryError(f"'{name}' can be {what} only by {by}, who saved it, or an admin")


def path_of(name: str, actor: Actor | None = None) -> Path:
    """Return the folder of a saved dataset's current version (the dataset's own folder if it has none).

    Given an actor, raise LibraryError for a dataset they may not see.
    """
    folder = _seen(name, actor) if actor is not None else _folder(name)
    try:
        return _current(folder)[1]
    except LibraryError:
        return folder


def _check_version(path: Path) -> tuple[int, list[dict]]:
    """Return a version's report count and loads; raise LibraryError saying what cannot be read."""
    for needed in (REPORTS, TACTICS, PROVENANCE):
        if not (path / needed).is_file():
            raise LibraryError(f"{needed} is missing")
    try:
        reports = pq.read_metadata(path / REPORTS).num_rows
        pq.read_metadata(path / TACTICS)
    except Exception as exc:  # noqa: BLE001  (pyarrow raises several kinds for a damaged file)
        raise LibraryError(f"its Parquet file cannot be read ({str(exc).rstrip('.')})") from exc
    try:
        loads = json.loads((path / PROVENANCE).read_text())
    except (OSError, ValueError) as exc:
        raise LibraryError(f"{PROVENANCE} cannot be read ({exc})") from exc
    if not isinstance(loads, list) or not all(isinstance(p, dict) for p in loads):
        raise LibraryError(f"{PROVENANCE} is not a list of loads")
    counted = [p.get("reports_loaded") for p in loads]
    # Loads recorded before versions carry no report count: only newer ones can be reconciled.
    if loads and all(isinstance(c, int) for c in counted) and sum(counted) != reports:
        raise LibraryError(f"it holds {reports:,} reports but its provenance lists {sum(counted):,}")
    return reports, loads


def _entry(folder: Path) -> Entry:
    """Return a dataset's listing, marked damaged (never raising) when its current version cannot be read."""
    held = owner(folder)
    who = {"owner": held.by, "belongs_to": held.scope.describe()}
    try:
        number, path = _current(folder)
        reports, loads = _check_version(path)
    except LibraryError as exc:
        number = _number_in(folder)
        when = datetime.fromtimestamp(folder.stat().st_mtime, UTC).isoformat(timespec="seconds")
        return Entry(folder.name, folder, 0, 0, when, number, str(exc), **who)
    return Entry(folder.name, path, reports, len(loads), loads[-1].get("loaded_at", "") if loads else "", number,
                 **who)


def _number_in(folder: Path) -> int:
    """Return the version CURRENT names, or 0 when it names none."""
    try:
        text = (folder / CURRENT).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return 0
    return int(text) if _VERSION_RE.match(text) else 0


def entries(actor: Actor | None = None) -> list[Entry]:
    """List saved datasets (those the actor may see), newest change first; an unreadable one is listed as damaged."""
    if not root().is_dir():
        return []
    names = set()
    for child in root().iterdir():
        hidden = _HIDDEN_RE.match(child.name)
        if hidden:
            names.add(hidden["name"])  # the leftover of a write: tidied below, never listed
        elif child.name.endswith(_OLD_LEFTOVERS) and not (child / CURRENT).exists():
            names.add(child.name.rsplit(".", 1)[0])
        elif not child.name.startswith("."):
            names.add(child.name)
    found = []
    for name in names:
        folder = root() / name
        try:
            tidy(name)
            if _exists(folder) and _visible(folder, actor):
                found.append(_entry(folder))
        except (OSError, LibraryError):
            continue  # a folder removed while listed, or one this process may not read: not a dataset to show
    return sorted(found, key=lambda e: e.updated, reverse=True)


def versions(name: str, actor: Actor | None = None) -> list[Version]:
    """List a saved dataset's kept versions, oldest first."""
    folder = _seen(name, actor)
    current = _number_in(folder) if not _is_legacy(folder) else 1
    paths = [(1, folder)] if _is_legacy(folder) else _version_folders(folder)
    found = []
    for number, path in paths:
        try:
            reports, loads = _check_version(path)
        except LibraryError as exc:
            found.append(Version(number, "", "", "", None, number == current, str(exc)))
            continue
        last = loads[-1] if loads else {}
        found.append(Version(number, last.get("loaded_at", ""), last.get("by", ""), _action(last), reports,
                             number == current))
    return found


def _action(load: dict) -> str:
    if load.get("action") == "rollback":
        return f"rollback to v{load.get('to_version')}"
    return load.get("action", "")


def _version_folders(folder: Path) -> list[tuple[int, Path]]:
    where = folder / VERSIONS
    if not where.is_dir():
        return []
    return sorted((int(p.name), p) for p in where.iterdir() if _VERSION_RE.match(p.name) and p.is_dir())


def provenance(name: str, actor: Actor | None = None) -> list[dict]:
    """Return every load into a saved dataset's current version, oldest first."""
    folder = _seen(name, actor)
    try:
        return _check_version(_current(folder)[1])[1]
    except LibraryError as exc:
        raise LibraryError(f"'{name}' cannot be read: {exc}") from exc


def provenance_at(path: str | Path) -> list[dict]:
    """Return the loads recorded in a dataset folder, or [] when it is not a saved dataset's."""
    if not str(path) or not Path(path).is_dir():
        return []  # a single file, or a dataset held only in memory (this session's upload)
    try:
        loads = json.loads((Path(path) / PROVENANCE).read_text())
    except (OSError, ValueError):
        return []
    return loads if isinstance(loads, list) else []


def lines_read_as_cp1252(path: str | Path) -> int:
    """Return how many lines of a saved dataset's files were not UTF-8 and were read as cp1252."""
    return sum(int(p.get("lines_read_as_cp1252") or 0) for p in provenance_at(path) if isinstance(p, dict))


# --- locking -------------------------------------------------------------------------------------------

def _advisory_key(name: str) -> int:
    """Return a signed 64-bit key for PostgreSQL's advisory lock on this dataset."""
    return int.from_bytes(hashlib.sha256(f"ose-library:{name}".encode()).digest()[:8], "big", signed=True)


def _busy(name: str) -> LibraryError:
    return LibraryError(f"another user is changing '{name}'; try again")


@contextlib.contextmanager
def lock(name: str, wait: float = LOCK_WAIT_S) -> Iterator[None]:
    """Hold the dataset's lock (between processes; and on PostgreSQL when it is the engine) while inside."""
    name = check_name(name)
    where = root() / LOCKS
    where.mkdir(parents=True, exist_ok=True)
    fd = os.open(where / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() >= deadline:
                    raise _busy(name) from None
                time.sleep(0.02)
        with _postgres_lock(name, deadline):
            yield
    finally:
        os.close(fd)  # closing the descriptor releases the flock


@contextlib.contextmanager
def _postgres_lock(name: str, deadline: float) -> Iterator[None]:
    """Hold a PostgreSQL advisory lock on the dataset when the engine is PostgreSQL (replicas on several hosts)."""
    config = settings()
    if config.engine_kind != "postgres":
        yield
        return
    import psycopg

    url = "postgresql://" + config.engine_url.split("://", 1)[1]  # libpq spells the scheme in full
    key = _advisory_key(name)
    with psycopg.connect(url, autocommit=True) as con:
        while not con.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]:
            if time.monotonic() >= deadline:
                raise _busy(name)
            time.sleep(0.05)
        try:
            yield
        finally:
            con.execute("SELECT pg_advisory_unlock(%s)", (key,))


def _try_lock(name: str) -> contextlib.AbstractContextManager[None] | None:
    """Return the dataset's lock if nobody holds it now, else None (tidying never waits)."""
    try:
        held = lock(name, wait=0)
        held.__enter__()
    except LibraryError:
        return None
    return held


def tidy(name: str) -> list[Path]:
    """Remove leftovers of interrupted writes of a dataset, if no writer holds it now; return what went."""
    leftovers = _leftovers(name)
    if not leftovers:
        return []
    held = _try_lock(name)
    if held is None:
        return []  # a writer is at work: its temporaries are not leftovers
    try:
        return _remove_leftovers(name)
    finally:
        held.__exit__(None, None, None)


def _leftovers(name: str) -> list[Path]:
    """Return the leftovers of interrupted writes of a dataset (readers ignore every one of them)."""
    top = root()
    found = [p for p in top.glob(".*") if (m := _HIDDEN_RE.match(p.name)) and m["name"] == name]
    found += [top / f"{name}{s}" for s in _OLD_LEFTOVERS if (top / f"{name}{s}").is_dir()
              and not (top / f"{name}{s}" / CURRENT).exists()]
    folder = top / name
    for where in (folder, folder / VERSIONS):
        if where.is_dir():
            found += [p for p in where.iterdir() if p.name.startswith(".") and p.name.endswith((".part", ".deleting"))]
    return found


def _remove_leftovers(name: str) -> list[Path]:
    """Remove a dataset's leftovers; call with its lock held."""
    top = root()
    folder = top / name
    previous = top / f"{name}.previous"
    if previous.is_dir() and not folder.exists() and (previous / REPORTS).exists():
        # The old layout's append died between its two renames: the previous folder is the dataset.
        os.rename(previous, folder)
    removed = []
    for path in _leftovers(name):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


# --- writing -------------------------------------------------------------------------------------------

def _load_record(result: IngestResult | StagedUpload, user: str, action: str, reports_loaded: int,
                 extra: dict | None = None) -> dict:
    r = result.report
    return {"action": action, "loaded_at": datetime.now(UTC).isoformat(timespec="seconds"), "by": user,
            "files": [f["name"] for f in r["files"]], "format": r["detected_format"],
            "rows_in": r["rows_in"], "rows_loaded": r["rows_loaded"],
            "rows_quarantined": r["rows_quarantined"], "reports_loaded": reports_loaded,
            "incident_level": r.get("incident_level", []),
            "lines_read_as_cp1252": int(r.get("lines_read_as_cp1252", 0)),
            "files_read_as_cp1252": {f["name"]: int(f["lines_read_as_cp1252"]) for f in r["files"]
                                     if f.get("lines_read_as_cp1252")},
            **(extra or {})}


def _write_version(folder: Path, number: int, write) -> Path:
    """Write version `number` whole (write(tmp) fills a temporary folder), then point CURRENT at it."""
    target = folder / VERSIONS / _label(number)
    with files.write_whole_folder(target) as tmp:
        write(tmp)
    _point(folder, number)
    return target


def _point(folder: Path, number: int) -> None:
    """Make `number` the current version in one atomic step (a temporary file, fsync, os.replace)."""
    with files.write_whole(folder / CURRENT) as tmp:
        tmp.write_text(_label(number) + "\n", encoding="ascii")


def _next_number(folder: Path) -> int:
    numbers = [n for n, _ in _version_folders(folder)] + [_number_in(folder)]
    return max(numbers) + 1


def _prune(folder: Path) -> None:
    """Remove versions older than the newest OSE_KEEP_VERSIONS (never the current one)."""
    keep = settings().keep_versions
    current = _number_in(folder)
    old = [(n, p) for n, p in _version_folders(folder)][:-keep]
    for number, path in old:
        if number == current:
            continue
        gone = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.deleting")
        os.rename(path, gone)  # out of the listing in one step, then removed
        shutil.rmtree(gone, ignore_errors=True)


def _migrate(folder: Path) -> None:
    """Move a dataset saved before versions into versions/000001; call with its lock held.

    Its officer ids are pseudonymised on the way (a dataset saved before pseudonymisation holds raw
    ones), so no kept version holds a raw id.
    """
    if not _is_legacy(folder):
        return
    with files.write_whole_folder(folder / VERSIONS / _label(1)) as tmp:
        for child in folder.iterdir():
            if child.name == REPORTS:
                pq.write_table(_pseudonymised(pq.read_table(child)), tmp / REPORTS)
            elif child.name == QUARANTINE:
                _quarantine_pseudonymised(child).to_csv(tmp / QUARANTINE, index=False)
            elif child.is_file() and child.name != OWNER:
                shutil.copy2(child, tmp / child.name)
    _point(folder, 1)
    for child in folder.iterdir():
        if child.is_file() and child.name not in (CURRENT, OWNER):
            child.unlink()


def _quarantine_pseudonymised(path: Path) -> pd.DataFrame:
    """Return a saved quarantine.csv with its officer ids pseudonymised (one saved before that is fixed)."""
    rows = pd.read_csv(path, dtype=str) if path.exists() else pd.DataFrame()
    return pseudonym.pseudonymise_columns(rows, [c for c in rows.columns
                                                 if c == "officer_id" or pseudonym.is_officer_id_header(c)])


def save(name: str, result: IngestResult | StagedUpload, user: str = "local user", wait: float = LOCK_WAIT_S,
         actor: Actor | None = None) -> Path:
    """Save an ingest result (or an upload staged on disk) as a new named dataset; refuse to overwrite one that
    exists. Return its folder.

    The dataset belongs to the actor (their name and scope); without one, to `user` and every force. A staged
    upload's files are copied, never read into memory.
    """
    name = check_name(name)
    user = actor.name if actor is not None else user
    folder = _folder(name)
    count, write_load = _load_files(result)
    record = _load_record(result, user, "create", count, {"version": 1})
    with lock(name, wait):
        _remove_leftovers(name)
        if folder.exists():
            # Said to an outsider too: a name cannot be hidden and taken at once. It tells only that the name is used.
            raise LibraryError(f"a dataset called '{name}' exists already: append to it or pick another name")
        # The whole dataset folder (version 1 and its pointer) appears at once, under its name, or not at all.
        with files.write_whole_folder(folder) as tmp:
            version = tmp / VERSIONS / _label(1)
            version.mkdir(parents=True)
            write_load(version)
            (version / PROVENANCE).write_text(json.dumps([record], indent=2))
            for child in version.iterdir():
                _fsync(child)
            _fsync(version)
            _fsync(version.parent)
            (tmp / OWNER).write_text(_owner_text(user, actor.scope if actor is not None else UNRESTRICTED),
                                     encoding="utf-8")
            (tmp / CURRENT).write_text(_label(1) + "\n", encoding="ascii")
    return folder / VERSIONS / _label(1)


def _load_files(result: IngestResult | StagedUpload) -> tuple[int, Callable[[Path], None]]:
    """Return how many reports a load holds and a function writing its reports, tactics and set-aside rows."""
    if isinstance(result, StagedUpload):
        def copy(version: Path) -> None:
            # The staged files are written as the whole-file result would be: copied, never read into memory.
            for part in (REPORTS, TACTICS, QUARANTINE):
                shutil.copyfile(result.folder / part, version / part)
        return result.reports_loaded, copy
    reports, tactics = tables_of(result)

    def write(version: Path) -> None:
        pq.write_table(reports, version / REPORTS)
        pq.write_table(tactics, version / TACTICS)
        result.quarantine.astype("string").to_csv(version / QUARANTINE, index=False)
    return reports.num_rows, write


def set_owner(name: str, by: str, scope: Scope, wait: float = LOCK_WAIT_S) -> None:
    """Record who a saved dataset belongs to (an operator's action, e.g. for one saved before owners)."""
    name = check_name(name)
    folder = _folder(name)
    with lock(name, wait):
        if not _exists(folder):
            raise LibraryError(f"there is no saved dataset called '{name}'")
        with files.write_whole(folder / OWNER) as tmp:
            tmp.write_text(_owner_text(by, scope), encoding="utf-8")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def append(name: str, result: IngestResult | StagedUpload, user: str = "local user", wait: float = LOCK_WAIT_S,
           actor: Actor | None = None) -> dict:
    """Append an ingest result (or a staged upload) to a saved dataset as a new version, setting aside reports
    it already holds."""
    name = check_name(name)
    user = actor.name if actor is not None else user
    with lock(name, wait):
        _remove_leftovers(name)
        folder = _seen(name, actor)
        try:
            _, loads = _check_version(_current(folder)[1])
        except LibraryError as exc:
            raise LibraryError(f"'{name}' cannot be read ({exc}): roll it back to an earlier version or "
                               "delete it") from exc
        _migrate(folder)
        record, write = _appended(name, _current(folder)[1], loads, result, user)
        record["version"] = _next_number(folder)  # the version this load first appears in
        _write_version(folder, record["version"], write)
        _prune(folder)
    return record


def _appended(name: str, current: Path, loads: list[dict], result: IngestResult | StagedUpload, user: str):
    """Return the load record of an append and a function writing the new version's files."""
    old_reports = _pseudonymised(pq.read_table(current / REPORTS))
    old_tactics = pq.read_table(current / TACTICS)
    new_reports, new_tactics = tables_of(result)
    origins = (pq.read_table(result.folder / ORIGINS) if isinstance(result, StagedUpload)
               else origins_table(result.reports))
    ids = origins.column("report_id").cast(pa.string())
    repeat = pc.is_in(ids, value_set=old_reports.column("report_id").combine_chunks().cast(pa.string()))
    again = origins.filter(repeat).to_pandas()
    set_aside = pd.DataFrame({FILE: again[FILE].astype("string"), ROW: again[ROW].astype("int64"),
                              ROWS: again[ROWS].astype("int64"),
                              "reason": ("report '" + again["report_id"].astype(str)
                                         + f"' is already in dataset '{name}'").astype("string")})
    kept_ids = ids.filter(pc.invert(repeat))
    reports = new_reports.filter(pc.invert(repeat))  # the origins are in the reports' order
    tactics = new_tactics.filter(pc.is_in(new_tactics.column("report_id").cast(pa.string()),
                                          value_set=kept_ids.combine_chunks()))
    quarantine = pd.concat([result.quarantine, set_aside], ignore_index=True)
    merged_reports = pa.concat_tables([old_reports, reports.cast(old_reports.schema)],
                                      promote_options="permissive")
    # A field recorded per incident in either load is counted in incidents across the whole dataset.
    merged_reports = incidents.with_marking(merged_reports, [*incidents.marked(old_reports.schema),
                                                             *incidents.marked(reports.schema)])
    merged_tactics = pa.concat_tables([old_tactics, tactics.cast(old_tactics.schema)],
                                      promote_options="permissive")
    old_q = _quarantine_pseudonymised(current / QUARANTINE)
    record = _load_record(result, user, "append", reports.num_rows, {
        "rows_loaded": int(pc.sum(origins.column(ROWS).filter(pc.invert(repeat))).as_py() or 0),
        "rows_quarantined": result.report["rows_quarantined"] + int(set_aside[ROWS].sum()),
        "already_in_dataset": int(set_aside[ROWS].sum()),
        "quarantine_reasons": reason_counts(quarantine)})

    def write(tmp: Path) -> None:
        pq.write_table(merged_reports, tmp / REPORTS)
        pq.write_table(merged_tactics, tmp / TACTICS)
        pd.concat([old_q, quarantine.astype("string")], ignore_index=True).to_csv(tmp / QUARANTINE, index=False)
        (tmp / PROVENANCE).write_text(json.dumps([*loads, record], indent=2))
    return record, write


def rollback(name: str, version: int, user: str = "local user", wait: float = LOCK_WAIT_S,
             actor: Actor | None = None) -> int:
    """Make an earlier version current again by writing a new version that copies it; return its number.

    A new version (rather than moving the pointer back) keeps the history a straight line: every
    change, the rollback too, is a version with who and when, and the versions rolled back from are
    kept for as long as OSE_KEEP_VERSIONS allows, so a rollback can itself be undone. Its files are
    copies, not hard links: damage on disk to one version must not reach the other.
    """
    name = check_name(name)
    user = actor.name if actor is not None else user
    with lock(name, wait):
        _remove_leftovers(name)
        folder = _seen(name, actor)
        _check_may_change(name, folder, actor, "rolled back")
        if _is_legacy(folder):  # saved before versions: it has only the one, current, version
            raise LibraryError(f"'{name}' has only version 1, the current one: there is no earlier version")
        source = folder / VERSIONS / _label(version)
        if not source.is_dir():
            raise LibraryError(f"'{name}' has no version {version}; see its versions for the ones kept")
        if _number_in(folder) == version:
            raise LibraryError(f"version {version} of '{name}' is already the current one")
        try:
            _, loads = _check_version(source)
        except LibraryError as exc:
            raise LibraryError(f"version {version} of '{name}' cannot be read either ({exc})") from exc
        number = _next_number(folder)
        record = {"action": "rollback", "to_version": version, "version": number,
                  "loaded_at": datetime.now(UTC).isoformat(timespec="seconds"), "by": user, "files": [],
                  "format": "", "rows_in": 0, "rows_loaded": 0, "rows_quarantined": 0, "reports_loaded": 0}

        def write(tmp: Path) -> None:
            for child in source.iterdir():
                if child.is_file() and child.name != PROVENANCE:
                    shutil.copy2(child, tmp / child.name)
            (tmp / PROVENANCE).write_text(json.dumps([*loads, record], indent=2))
        _write_version(folder, number, write)
        _prune(folder)
    return number


def _pseudonymised(reports: pa.Table) -> pa.Table:
    """Return saved reports with pseudonymised officer ids (a dataset saved before pseudonymisation is fixed)."""
    if "officer_id" not in reports.column_names:
        return reports
    at = reports.column_names.index("officer_id")
    ids = pseudonym.pseudonymise(reports.column("officer_id"))
    return reports.set_column(at, pa.field("officer_id", ids.type), ids)


def delete(name: str, wait: float = LOCK_WAIT_S, actor: Actor | None = None) -> None:
    """Delete a saved dataset with every version: it leaves the listing in one step, then its files go."""
    name = check_name(name)
    with lock(name, wait):
        _remove_leftovers(name)
        folder = _seen(name, actor)
        _check_may_change(name, folder, actor, "deleted")
        gone = folder.with_name(f".{name}.{os.getpid()}-{secrets.token_hex(4)}.deleting")
        os.rename(folder, gone)
        shutil.rmtree(gone, ignore_errors=True)


def quarantine(name: str, actor: Actor | None = None) -> pd.DataFrame:
    """Return every row set aside across a saved dataset's loads (in its current version)."""
    path = path_of(name, actor) / QUARANTINE
    return pd.read_csv(path, dtype=str) if path.exists() else pd.DataFrame(columns=[FILE, ROW, ROWS, "reason"])
