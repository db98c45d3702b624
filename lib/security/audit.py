"""Audit log: append-only, hash-chained JSON lines of who did what, never the data itself.

Each line is one record in canonical JSON (sorted keys, compact): seq, ts (UTC), event, user, role,
dataset, filters, rows, detail, prev and hash, where hash = sha256(prev + canonical JSON of the
record without hash) and prev is the hash of the line before (64 zeros for the first). Editing,
deleting, inserting or reordering lines breaks the chain, and `python -m lib.audit verify` says
where. Removing whole lines from the end cannot be seen from the file alone: keep a copy of the
last hash elsewhere (the admin page shows it) to detect that.

Writers in several threads and several processes are serialised by a thread lock and an exclusive
flock on the log, under which the last line is read before the new one is appended and fsynced.
"""
from __future__ import annotations

import argparse
import datetime as dt
import fcntl
import hashlib
import json
import math
import os
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


from lib.model.paths import data_dir

EVENTS = frozenset({
    "login", "logout", "failed_login", "locked_out", "password_change", "session_revoked", "user_change",
    "upload", "save", "append", "delete", "rollback", "officer_view", "export", "audit_download",
})
GENESIS = "0" * 64
FIELDS = ("seq", "ts", "event", "user", "role", "dataset", "filters", "rows", "detail", "prev", "hash")
COLUMNS = ["seq", "time", "event", "user", "role", "dataset", "filters", "rows", "detail"]
# Long enough for a name, a filter value or a file name; too short to smuggle in a record.
MAX_TEXT = 200
MAX_ITEMS = 100
MAX_KEY = 64

_LOCK = threading.Lock()


@dataclass(frozen=True)
class VerifyResult:
    """What checking the chain found: ok, how many entries, the first bad line (1-based)."""

    ok: bool
    entries: int
    first_bad: int | None
    message: str


def path() -> Path:
    """Return the audit log's path under the data directory, creating its folder (mode 0700)."""
    folder = data_dir() / "audit"
    _make_folder(folder)
    return folder / "audit.jsonl"


def _make_folder(folder: Path) -> None:
    """Create a private folder for the log if it does not exist yet."""
    if not folder.is_dir():
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(folder, 0o700)  # mkdir's mode is masked by the umask


def canonical(entry: Mapping[str, object]) -> str:
    """Return the canonical JSON text of a record: sorted keys, no spaces, UTF-8 kept."""
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def digest(entry: Mapping[str, object]) -> str:
    """Return the chain hash of a record: sha256 of its prev followed by its canonical JSON without hash."""
    body = {k: v for k, v in entry.items() if k != "hash"}
    return hashlib.sha256((str(entry.get("prev")) + canonical(body)).encode("utf-8")).hexdigest()


def _text(value: object, what: str) -> str | None:
    """Return a short string (or None); refuse anything long enough to be data."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"audit {what} must be a string, not {type(value).__name__}")
    if len(value) > MAX_TEXT:
        raise ValueError(f"audit {what} is {len(value)} characters; the log takes at most {MAX_TEXT}")
    return value


def _scalar(value: object, what: str) -> str | int | float | bool | None:
    """Return a short JSON scalar for a filter or detail value, or raise ValueError."""
    if value is None or isinstance(value, bool):
        return value
    # Frames, series, indexes and arrays carry data: refused by shape, without importing pandas here
    # (the login gate imports this module before anything heavy loads).
    if isinstance(value, bytes | bytearray | memoryview) or (getattr(value, "ndim", 0) or 0) >= 1:
        raise ValueError(f"audit {what} must not hold data ({type(value).__name__}); log counts, not values")
    if hasattr(value, "item") and hasattr(value, "dtype") and getattr(value, "ndim", 1) == 0:
        value = value.item()  # a numpy scalar
        if value is None or isinstance(value, bool):
            return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dt.date | dt.time):  # datetime is a date
        return value.isoformat()
    if isinstance(value, str):
        return _text(value, what)
    raise ValueError(f"audit {what} must be a short scalar or a list of short strings, not {type(value).__name__}")


def _clean(values: Mapping[str, object] | None, what: str) -> dict[str, object] | None:
    """Return filters or detail as JSON-safe short values; refuse anything that looks like data."""
    if values is None:
        return None
    if not isinstance(values, Mapping):
        raise ValueError(f"audit {what} must be a dict, not {type(values).__name__}")
    if len(values) > MAX_ITEMS:
        raise ValueError(f"audit {what} has {len(values)} keys; the log takes at most {MAX_ITEMS}")
    clean: dict[str, object] = {}
    for key, value in values.items():
        if not isinstance(key, str) or len(key) > MAX_KEY:
            raise ValueError(f"audit {what} keys must be strings of at most {MAX_KEY} characters")
        label = f"{what}[{key!r}]"
        if isinstance(value, list | tuple | set | frozenset):
            if len(value) > MAX_ITEMS:
                raise ValueError(f"audit {label} has {len(value)} items; the log takes at most {MAX_ITEMS}")
            items = sorted(value, key=str) if isinstance(value, set | frozenset) else value
            clean[key] = [_scalar(item, label) for item in items]
        else:
            clean[key] = _scalar(value, label)
    return clean


def _rows(rows: object) -> int | None:
    """Return a row count as an int, or None."""
    if rows is None:
        return None
    if hasattr(rows, "item") and hasattr(rows, "dtype"):
        rows = rows.item()
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 0:
        raise ValueError(f"audit rows must be a count (a non-negative int), not {rows!r}")
    return rows


def _now() -> str:
    """Return the time now in UTC as ISO-8601 with microseconds and a Z."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _tail(fd: int) -> tuple[int, str, bool]:
    """Return the last intact record's (seq, hash) and whether the file ends mid-line."""
    size = os.fstat(fd).st_size
    if size == 0:
        return 0, GENESIS, False
    ends_mid_line = os.pread(fd, 1, size - 1) != b"\n"
    block, end, tail = 65536, size, b""
    while end > 0:
        start = max(0, end - block)
        tail = os.pread(fd, end - start, start) + tail
        end = start
        lines = tail.split(b"\n")
        # The first piece may be cut; use it only once the whole file has been read.
        for line in reversed(lines if end == 0 else lines[1:]):
            try:
                last = json.loads(line)
            except ValueError:
                continue
            if isinstance(last, dict) and isinstance(last.get("seq"), int) and isinstance(last.get("hash"), str):
                return last["seq"], last["hash"], ends_mid_line
    return 0, GENESIS, ends_mid_line


def record(event: str, *, user: str | None, role: str | None, dataset: str | None = None,
           filters: Mapping[str, object] | None = None, rows: int | None = None,
           detail: Mapping[str, object] | None = None, log: Path | None = None) -> dict[str, object]:
    """Append one event to the audit log and return the record written."""
    if event not in EVENTS:
        raise ValueError(f"unknown audit event {event!r}; expected one of {', '.join(sorted(EVENTS))}")
    entry: dict[str, object] = {
        "event": event, "user": _text(user, "user"), "role": _text(role, "role"),
        "dataset": _text(dataset, "dataset"), "filters": _clean(filters, "filters"), "rows": _rows(rows),
        "detail": _clean(detail, "detail"),
    }
    target = Path(log) if log is not None else path()
    _make_folder(target.parent)
    with _LOCK:
        fd = os.open(target, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            seq, prev, ends_mid_line = _tail(fd)
            entry.update(seq=seq + 1, ts=_now(), prev=prev)
            entry["hash"] = digest(entry)
            # A torn last line (a crash mid-write) stays as evidence; the new record starts a fresh line.
            line = ("\n" if ends_mid_line else "") + canonical(entry) + "\n"
            os.write(fd, line.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)  # closing releases the flock
    return {name: entry[name] for name in FIELDS}


def _lines(log: Path) -> tuple[list[bytes], bool]:
    """Return a log's lines and whether the last one is complete."""
    raw = log.read_bytes() if log.exists() else b""
    if not raw:
        return [], True
    lines = raw.split(b"\n")
    complete = lines[-1] == b""
    return (lines[:-1] if complete else lines), complete


def verify(log: Path | None = None) -> VerifyResult:
    """Check the audit log's hash chain and say whether, and where, it has been changed."""
    target = Path(log) if log is not None else path()
    lines, complete = _lines(target)
    prev = GENESIS
    for number, line in enumerate(lines, start=1):
        def bad(why: str, number: int = number) -> VerifyResult:
            return VerifyResult(False, len(lines), number, f"audit log TAMPERED at line {number}: {why}")

        if number == len(lines) and not complete:
            return bad("the line is incomplete (no line end): the file was cut or a write was torn")
        try:
            entry = json.loads(line)
        except ValueError:
            return bad("not valid JSON")
        if not isinstance(entry, dict) or set(entry) != set(FIELDS):
            return bad("not an audit record (fields missing or added)")
        if digest(entry) != entry["hash"]:
            return bad("hash does not match its contents")
        if entry["seq"] != number:
            return bad(f"sequence number is {entry['seq']!r}, expected {number} (a line was removed, added or moved)")
        if entry["prev"] != prev:
            return bad(f"does not follow line {number - 1} (its prev hash is not that line's hash)"
                       if number > 1 else "the first line does not start the chain")
        if entry["event"] not in EVENTS:
            return bad(f"unknown event {entry['event']!r}")
        prev = entry["hash"]
    return VerifyResult(True, len(lines), None, f"audit log OK: {len(lines):,} entries, chain intact ({target})")


def readable(values: object) -> str:
    """Return filters or detail as one line a person can read: 'force: Met; shift: Night, Late'."""
    if not values:
        return ""
    if not isinstance(values, dict):
        return str(values)
    parts = []
    for key, value in values.items():
        shown = ", ".join(str(v) for v in value) if isinstance(value, list) else str(value)
        parts.append(f"{key}: {shown}")
    return "; ".join(parts)


def entries(log: Path | None = None) -> list[dict[str, object]]:
    """Return the log's records that parse, in file order (damaged lines are left out; verify finds them)."""
    target = Path(log) if log is not None else path()
    found = []
    for line in _lines(target)[0]:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            found.append(entry)
    return found


def read(log: Path | None = None) -> pd.DataFrame:
    """Return the audit log as a table for the admin page, oldest first."""
    import pandas as pd

    found = entries(log)
    frame = pd.DataFrame({
        "seq": pd.array([e.get("seq") for e in found], dtype="Int64"),
        "time": pd.to_datetime(pd.Series([e.get("ts") for e in found], dtype="object"), utc=True,
                               format="ISO8601", errors="coerce"),
        "event": pd.Series([e.get("event") for e in found], dtype="object"),
        "user": pd.Series([e.get("user") for e in found], dtype="object"),
        "role": pd.Series([e.get("role") for e in found], dtype="object"),
        "dataset": pd.Series([e.get("dataset") for e in found], dtype="object"),
        "filters": pd.Series([readable(e.get("filters")) for e in found], dtype="object"),
        "rows": pd.array([e.get("rows") if isinstance(e.get("rows"), int) else None for e in found], dtype="Int64"),
        "detail": pd.Series([readable(e.get("detail")) for e in found], dtype="object"),
    })
    return frame[COLUMNS]


def describe(entry: Mapping[str, object]) -> str:
    """Return one record as one line of text for the terminal."""
    who = f"{entry.get('user') or '-'} ({entry.get('role') or '-'})"
    parts = [f"{entry.get('seq')!s:>6}", str(entry.get("ts")), f"{entry.get('event')!s:<15}", who]
    if entry.get("dataset"):
        parts.append(f"dataset={entry['dataset']}")
    if entry.get("rows") is not None:
        parts.append(f"rows={entry['rows']:,}" if isinstance(entry["rows"], int) else f"rows={entry['rows']}")
    for name in ("filters", "detail"):
        if entry.get(name):
            parts.append(f"{name}=[{readable(entry[name])}]")
    return "  ".join(parts)


def main(argv: list[str] | None = None) -> int:
    """Run the audit command line: verify the chain, or show the last entries."""
    parser = argparse.ArgumentParser(prog="python -m lib.audit", description="Check or show the audit log.")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("verify", help="check the hash chain; exit 1 if it is broken")
    check.add_argument("--log", type=Path, help="log file (default: <OSE_DATA_DIR>/audit/audit.jsonl)")
    show = commands.add_parser("tail", help="print the last entries")
    show.add_argument("-n", type=int, default=20, help="how many entries (default 20)")
    show.add_argument("--log", type=Path, help="log file (default: <OSE_DATA_DIR>/audit/audit.jsonl)")
    args = parser.parse_args(argv)
    if args.command == "verify":
        result = verify(args.log)
        print(result.message)
        return 0 if result.ok else 1
    for entry in entries(args.log)[-args.n:] if args.n > 0 else []:
        print(describe(entry))
    return 0


if __name__ == "__main__":
    sys.exit(main())
