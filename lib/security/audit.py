"""Audit log: append-only JSON lines of who did what, never the data itself, chained under a secret key.

Each line is one record in canonical JSON (sorted keys, compact): seq, ts (UTC), event, user, role, client
(the browser's address), dataset, filters, rows, detail, key (a public id of the key), prev and hash, where
hash = HMAC-SHA256(key, prev + canonical JSON of the record without hash) and prev is the hash of the line
before (64 zeros for the first). Editing, deleting, inserting or reordering lines breaks the chain, and
`python -m lib.audit verify` says which line and why. Without the key nobody can write a line that verifies:
a forger who removes an entry and recomputes the chain with plain SHA-256, or with a key of their own, is
found at the first line they rewrote. Removing whole lines from the end cannot be seen from the file alone:
keep a copy of the last hash elsewhere (the admin page shows it) to detect that.

The key is kept apart from the log: OSE_AUDIT_KEY, else `audit: {key: ...}` in the users file, else
`<data dir>/secrets/audit.key`, made with 32 random bytes on first use (mode 0600). Every replica writing
the same log needs the same key; back the key up apart from the log (a copy of both lets anyone rewrite it).

Logs written before the key was introduced hold unkeyed lines (no client, no key; hash = SHA-256 of the
same text). They verify as a first stretch, sealed by the first keyed line after them (its HMAC covers the
last unkeyed hash, so a later edit to them breaks it). An unkeyed line after a keyed one, or a log with no
keyed line at all, does not verify: that is what rewriting without the key looks like. Seal an old log
once after upgrading with `python -m lib.audit seal` (or by any event, such as a sign-in).

Writers in several threads and several processes are serialised by a thread lock and an exclusive
flock on the log, under which the last line is read before the new one is appended and fsynced.
"""
from __future__ import annotations

import argparse
import datetime as dt
import fcntl
import getpass
import hashlib
import hmac
import ipaddress
import json
import math
import os
import sys
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


from lib.model import files
from lib.model.paths import data_dir
from lib.model.settings import MIN_KEY_BYTES, settings

EVENTS = frozenset({
    "login", "logout", "failed_login", "locked_out", "password_change", "session_revoked", "user_change",
    "upload", "upload_rejected", "save", "append", "delete", "rollback", "officer_view", "export",
    "audit_download", "audit_sealed", "selection_budget_reached",
})
GENESIS = "0" * 64
# Lines written before the key was introduced: chained by plain SHA-256.
UNKEYED_FIELDS = ("seq", "ts", "event", "user", "role", "dataset", "filters", "rows", "detail", "prev", "hash")
FIELDS = ("seq", "ts", "event", "user", "role", "client", "dataset", "filters", "rows", "detail", "key", "prev",
          "hash")
KEY_BYTES = MIN_KEY_BYTES
COLUMNS = ["seq", "time", "event", "user", "role", "dataset", "filters", "rows", "detail"]
# Long enough for a name, a filter value or a file name; too short to smuggle in a record.
MAX_TEXT = 200
MAX_ITEMS = 100
MAX_KEY = 64

_LOCK = threading.Lock()


class AuditKeyError(ValueError):
    """The audit key is unreadable, too short or too easy to guess; the message says where it is and what to do."""


@dataclass(frozen=True)
class VerifyResult:
    """What checking the chain found: ok, how many entries, the first bad line (1-based), unkeyed lines first."""

    ok: bool
    entries: int
    first_bad: int | None
    message: str
    unkeyed: int = 0


def secret() -> bytes:
    """Return the audit key: OSE_AUDIT_KEY, else the users file's audit.key, else the key file (made once)."""
    try:
        current = settings()
    except ValueError as exc:  # a bad OSE_AUDIT_KEY (or another setting) stops the write, naming it
        raise AuditKeyError(str(exc)) from exc
    if current.audit_key is not None:  # checked (long and random enough) with the other settings
        return current.audit_key
    if current.auth_config is not None and current.auth_config.is_file():
        from lib.security import users  # (users imports this module for its command line's records)

        try:
            section = users.read_section(current.auth_config, "audit")
            configured = users.check_audit_key(section.get("key"), f"audit.key in {current.auth_config}")
        except users.ConfigError as exc:
            raise AuditKeyError(str(exc)) from exc
        if configured is not None:
            return configured
    return _key_file(current.audit_key_file)


def _key_file(path: Path) -> bytes:
    """Read the key file, creating it with random bytes first if there is none."""
    if not path.exists():
        files.create_secret_file(path, KEY_BYTES)
    try:
        key = path.read_bytes()
    except OSError as exc:
        raise AuditKeyError(f"the audit key file {path} cannot be read: {exc.strerror or exc}") from exc
    if len(key) < KEY_BYTES:
        raise AuditKeyError(f"the audit key file {path} holds {len(key)} bytes; it must hold at least {KEY_BYTES} "
                            "random bytes (restore it from its backup)")
    return key


def key_id(key: bytes) -> str:
    """Return a public id of a key (16 hex characters), so a line signed with another key is named as such."""
    return hmac.new(key, b"ose audit key id", hashlib.sha256).hexdigest()[:16]


def client_address(peer: str | None, forwarded: Iterable[str],
                   trusted: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> str | None:
    """Return the client's address: the peer's, or X-Forwarded-For's nearest hop not a trusted proxy when it is one."""
    networks = tuple(trusted)

    def is_trusted(address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in networks)

    # Each proxy appends the address it was reached from: read from the right, past our own proxies only,
    # since anything to the left of the first untrusted hop was written by the client and proves nothing.
    hops = [hop.strip() for value in forwarded for hop in value.split(",") if hop.strip()]
    address = peer
    while address is not None and is_trusted(address) and hops:
        hop = hops.pop()
        try:
            address = str(ipaddress.ip_address(hop.strip("[]")))
        except ValueError:  # not an address: keep the last one we can vouch for
            break
    return address


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


def _chained(entry: Mapping[str, object]) -> bytes:
    body = {k: v for k, v in entry.items() if k != "hash"}
    return (str(entry.get("prev")) + canonical(body)).encode("utf-8")


def digest(entry: Mapping[str, object]) -> str:
    """Return an unkeyed line's hash: sha256 of its prev followed by its canonical JSON without hash."""
    return hashlib.sha256(_chained(entry)).hexdigest()


def sign(entry: Mapping[str, object], key: bytes) -> str:
    """Return a line's keyed hash: HMAC-SHA256 under the key of its prev followed by its canonical JSON without hash."""
    return hmac.new(key, _chained(entry), hashlib.sha256).hexdigest()


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
           detail: Mapping[str, object] | None = None, client: str | None = None,
           log: Path | None = None) -> dict[str, object]:
    """Append one event to the audit log, signed with the audit key, and return the record written."""
    if event not in EVENTS:
        raise ValueError(f"unknown audit event {event!r}; expected one of {', '.join(sorted(EVENTS))}")
    entry: dict[str, object] = {
        "event": event, "user": _text(user, "user"), "role": _text(role, "role"), "client": _text(client, "client"),
        "dataset": _text(dataset, "dataset"), "filters": _clean(filters, "filters"), "rows": _rows(rows),
        "detail": _clean(detail, "detail"),
    }
    key = secret()
    entry["key"] = key_id(key)
    target = Path(log) if log is not None else path()
    _make_folder(target.parent)
    with _LOCK:
        fd = os.open(target, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            seq, prev, ends_mid_line = _tail(fd)
            entry.update(seq=seq + 1, ts=_now(), prev=prev)
            entry["hash"] = sign(entry, key)
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


def verify(log: Path | None = None, key: bytes | None = None) -> VerifyResult:
    """Check the audit log's keyed chain and say whether, and at which line and why, it has been changed."""
    target = Path(log) if log is not None else path()
    key = secret() if key is None else key
    own_id = key_id(key)
    lines, complete = _lines(target)
    prev, keyed_from = GENESIS, None
    for number, line in enumerate(lines, start=1):
        def bad(why: str, number: int = number, keyed_from: int | None = keyed_from) -> VerifyResult:
            return VerifyResult(False, len(lines), number, f"audit log TAMPERED at line {number}: {why}",
                                (keyed_from or number) - 1)

        if number == len(lines) and not complete:
            return bad("the line is incomplete (no line end): the file was cut or a write was torn")
        try:
            entry = json.loads(line)
        except ValueError:
            return bad("not valid JSON")
        keyed = isinstance(entry, dict) and "key" in entry
        if not isinstance(entry, dict) or set(entry) != set(FIELDS if keyed else UNKEYED_FIELDS):
            return bad("not an audit record (fields missing or added)")
        if keyed:
            if entry["key"] != own_id:
                return bad(f"signed with another key (id {str(entry['key'])[:16]!r}; this key's id is {own_id}): "
                           "rewritten with a key of someone's own, or this is not the key the log was written with")
            if not hmac.compare_digest(sign(entry, key), str(entry["hash"])):
                return bad("its keyed hash does not match its contents: the line was edited, or rewritten "
                           "without the key")
            keyed_from = keyed_from or number
        elif keyed_from is not None:
            return bad(f"unkeyed (plain SHA-256) after keyed lines from line {keyed_from}: the log was rewritten "
                       "without the key")
        elif digest(entry) != entry["hash"]:
            return bad("hash does not match its contents (an unkeyed line: edited)")
        if entry["seq"] != number:
            return bad(f"sequence number is {entry['seq']!r}, expected {number} (a line was removed, added or moved)")
        if entry["prev"] != prev:
            return bad(f"does not follow line {number - 1} (its prev hash is not that line's hash: a line was "
                       "removed, added or moved)" if number > 1 else "the first line does not start the chain")
        if entry["event"] not in EVENTS:
            return bad(f"unknown event {entry['event']!r}")
        prev = entry["hash"]
    if lines and keyed_from is None:
        return VerifyResult(False, len(lines), 1, f"audit log NOT VERIFIED at line 1: all {len(lines):,} entries "
                            "are unkeyed (plain SHA-256), so anyone could have rewritten them. If they were written "
                            "before the audit key was introduced, seal them once with `python -m lib.audit seal`",
                            len(lines))
    unkeyed = (keyed_from or 1) - 1
    old = (f"; lines 1-{unkeyed} are unkeyed, written before the audit key was introduced, and sealed by line "
           f"{unkeyed + 1}" if unkeyed else "")
    return VerifyResult(True, len(lines), None,
                        f"audit log OK: {len(lines):,} entries, chain intact{old} ({target})", unkeyed)


def seal(log: Path | None = None) -> int:
    """Seal a log's unkeyed lines under the key with one keyed record; return how many lines it sealed."""
    target = Path(log) if log is not None else path()
    found = entries(target)
    unkeyed = len(found) if found and "key" not in found[-1] else 0
    if unkeyed:
        record("audit_sealed", user=getpass.getuser(), role="command line", detail={"unkeyed_entries": unkeyed},
               log=target)
    return unkeyed


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
    """Run the audit command line: verify the chain, seal an old unkeyed log, or show the last entries."""
    parser = argparse.ArgumentParser(prog="python -m lib.audit", description="Check or show the audit log.")
    commands = parser.add_subparsers(dest="command", required=True)
    default = "log file (default: <OSE_DATA_DIR>/audit/audit.jsonl)"
    check = commands.add_parser("verify", help="check the keyed chain; exit 1 naming the first bad line")
    check.add_argument("--log", type=Path, help=default)
    check.add_argument("--key-file", type=Path, help="the audit key's file, e.g. a backup (default: the app's key)")
    sealing = commands.add_parser("seal", help="sign an old unkeyed log's last line into the keyed chain, once")
    sealing.add_argument("--log", type=Path, help=default)
    show = commands.add_parser("tail", help="print the last entries")
    show.add_argument("-n", type=int, default=20, help="how many entries (default 20)")
    show.add_argument("--log", type=Path, help=default)
    args = parser.parse_args(argv)
    try:
        if args.command == "verify":
            result = verify(args.log, _key_file(args.key_file) if args.key_file else None)
            print(result.message)
            return 0 if result.ok else 1
        if args.command == "seal":
            before = verify(args.log)
            if before.first_bad is not None and before.unkeyed < before.first_bad:
                print(f"not sealed: {before.message}", file=sys.stderr)
                return 1
            sealed = seal(args.log)
            print(f"sealed {sealed:,} unkeyed entries under the audit key" if sealed else "nothing to seal")
            return 0
    except AuditKeyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for entry in entries(args.log)[-args.n:] if args.n > 0 else []:
        print(describe(entry))
    return 0


if __name__ == "__main__":
    sys.exit(main())
