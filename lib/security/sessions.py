"""Server-side login state shared by every session and process: sessions, revocation and lockout.

streamlit-authenticator keeps failed attempts in one process's memory and accepts any unexpired
signed cookie. Here a login opens a server-side session; the cookie names it, and logout, a password
change or an administrator ends it, so a copied cookie stops working. Failed logins are counted per
username in the same SQLite file, so a lockout holds across sessions, replicas on one host and restarts.
"""
from __future__ import annotations

import hashlib
import os
import secrets
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import bcrypt

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    sid_hash TEXT PRIMARY KEY, username TEXT NOT NULL, created REAL NOT NULL, expires REAL NOT NULL,
    revoked REAL);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions(username);
CREATE TABLE IF NOT EXISTS failures (
    username TEXT PRIMARY KEY, count INTEGER NOT NULL, first_at REAL NOT NULL, locked_until REAL);
"""

# bcrypt truncates at 72 bytes (and bcrypt 5 refuses longer input); nothing longer is ever a password here.
MAX_PASSWORD_BYTES = 72


@dataclass(frozen=True)
class Attempt:
    """The outcome of one login attempt: the same message for every failure, whatever its cause."""

    ok: bool
    locked: bool = False
    message: str = ""


FAILED = "Username or password is incorrect."
LOCKED = "Too many failed attempts for this username. Try again later, or ask an administrator to unlock it."


def _dummy_hash() -> bytes:
    # Computed once per process, at the cost real hashes use, so an unknown user costs a real check.
    global _DUMMY
    if _DUMMY is None:
        _DUMMY = bcrypt.hashpw(secrets.token_bytes(16), bcrypt.gensalt(rounds=12))
    return _DUMMY


_DUMMY: bytes | None = None


def check_password(password: str, hashed: bytes | None) -> bool:
    """Check a password against a bcrypt hash, spending the same time when there is no such user."""
    raw = password.encode("utf-8")
    target = hashed if hashed else _dummy_hash()
    if len(raw) > MAX_PASSWORD_BYTES:
        bcrypt.checkpw(b"x", target)
        return False
    try:
        ok = bcrypt.checkpw(raw, target)
    except ValueError:  # a malformed hash in the config
        bcrypt.checkpw(raw, _dummy_hash())
        return False
    return ok and hashed is not None


def _digest(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


class Store:
    """The SQLite file that holds sessions and failed logins (under the data directory)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with closing(self._connect()) as db:
            db.executescript(SCHEMA)

    @classmethod
    def for_data_dir(cls) -> Store:
        """Open the store under OSE_DATA_DIR (default ./var)."""
        from lib.model.paths import data_dir

        return cls(data_dir() / "auth" / "security.sqlite")

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=15, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA busy_timeout=15000")
        return db

    # --- sessions ---------------------------------------------------------------------------

    def open_session(self, username: str, lifetime_s: float) -> str:
        """Open a session for a user and return its id (the cookie carries it; only its hash is kept)."""
        sid = secrets.token_urlsafe(32)
        now = time.time()
        with closing(self._connect()) as db:
            db.execute("INSERT INTO sessions VALUES (?, ?, ?, ?, NULL)",
                       (_digest(sid), username, now, now + lifetime_s))
            db.execute("DELETE FROM sessions WHERE expires < ?", (now - 86400,))
        return sid

    def session_user(self, sid: str | None) -> str | None:
        """Return the username of a live session, or None if it is unknown, expired or revoked."""
        if not sid:
            return None
        with closing(self._connect()) as db:
            row = db.execute("SELECT username, expires, revoked FROM sessions WHERE sid_hash = ?",
                             (_digest(sid),)).fetchone()
        if row is None or row[2] is not None or row[1] < time.time():
            return None
        return row[0]

    def revoke(self, sid: str | None) -> None:
        """End one session (logout)."""
        if not sid:
            return
        with closing(self._connect()) as db:
            db.execute("UPDATE sessions SET revoked = ? WHERE sid_hash = ? AND revoked IS NULL",
                       (time.time(), _digest(sid)))

    def revoke_user(self, username: str) -> int:
        """End every session of a user (password change, removal); return how many were live."""
        now = time.time()
        with closing(self._connect()) as db:
            cur = db.execute("UPDATE sessions SET revoked = ? WHERE username = ? AND revoked IS NULL AND expires > ?",
                             (now, username, now))
            return cur.rowcount

    def live_sessions(self) -> dict[str, int]:
        """Return the number of live sessions per user."""
        with closing(self._connect()) as db:
            rows = db.execute("SELECT username, COUNT(*) FROM sessions WHERE revoked IS NULL AND expires > ? "
                              "GROUP BY username", (time.time(),)).fetchall()
        return dict(rows)

    # --- failed logins ----------------------------------------------------------------------

    def locked_until(self, username: str) -> float | None:
        """Return when a username's lockout ends, or None if it is not locked."""
        with closing(self._connect()) as db:
            row = db.execute("SELECT locked_until FROM failures WHERE username = ?", (username,)).fetchone()
        if row is None or row[0] is None or row[0] <= time.time():
            return None
        return row[0]

    def record_failure(self, username: str, attempts: int, minutes: float) -> bool:
        """Count a failed login; lock the username after `attempts` within `minutes`. Return True if now locked."""
        now = time.time()
        window = minutes * 60
        with closing(self._connect()) as db:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute("SELECT count, first_at FROM failures WHERE username = ?", (username,)).fetchone()
            count, first = (0, now) if row is None or row[1] < now - window else row
            count += 1
            locked = now + window if count >= attempts else None
            db.execute("INSERT OR REPLACE INTO failures VALUES (?, ?, ?, ?)", (username, count, first, locked))
            db.execute("COMMIT")
        return locked is not None

    def clear_failures(self, username: str) -> None:
        """Forget a username's failed logins (after a success, or an administrator's unlock)."""
        with closing(self._connect()) as db:
            db.execute("DELETE FROM failures WHERE username = ?", (username,))

    def locked_users(self) -> list[tuple[str, float]]:
        """Return the usernames locked now, with when each lockout ends."""
        with closing(self._connect()) as db:
            rows = db.execute("SELECT username, locked_until FROM failures WHERE locked_until > ? ORDER BY username",
                              (time.time(),)).fetchall()
        return [(u, t) for u, t in rows]


def attempt_login(store: Store, hashed: bytes | None, username: str, password: str, *,
                  attempts: int = 5, minutes: float = 15) -> Attempt:
    """Check one login: locked or not, known user or not, the work and the answer are the same."""
    locked = store.locked_until(username) is not None
    ok = check_password(password, hashed)  # always run, so a lockout or an unknown name costs the same
    if locked:
        return Attempt(ok=False, locked=True, message=LOCKED)
    if ok:
        store.clear_failures(username)
        return Attempt(ok=True)
    now_locked = store.record_failure(username, attempts, minutes)
    return Attempt(ok=False, locked=now_locked, message=LOCKED if now_locked else FAILED)
