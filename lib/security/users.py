"""User accounts: the streamlit-authenticator YAML config, checked before the app serves anyone.

The config is the library's standard layout, plus our optional `force`, `areas` and `teams`::

    credentials:
      usernames:
        jsmith:
          name: Jo Smith
          password: $2b$12$...        # bcrypt hash, never plain text
          roles: [analyst]
          force: Avon and Somerset    # optional: the only force whose rows this user sees
          teams: [Response A]         # supervisors: the teams whose officers they may see
    cookie: {name: ose_auth, key: <at least 32 random bytes>, expiry_days: 0.5}
    audit: {key: <at least 32 random bytes>}   # optional: signs the audit chain (else OSE_AUDIT_KEY or a key file)

Command line (the password is read from a prompt, never from the command)::

    python -m lib.users add NAME --role analyst [--force NAME] [--team T ...] [--config PATH]
    python -m lib.users passwd NAME | remove NAME | list | check
"""
from __future__ import annotations

import argparse
import getpass
import math
import os
import re
import secrets
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bcrypt
import yaml

from lib.model.keys import HOW_TO, weakness
from lib.model.settings import AUTH_CONFIG, DISCLOSURE_RANGE, settings
from lib.security.access import ROLES, User

CONFIG_ENV = AUTH_CONFIG
MIN_KEY_BYTES = 32
MAX_EXPIRY_DAYS = 1.0
DEFAULT_EXPIRY_DAYS = 0.5
DEFAULT_LOCKOUT_ATTEMPTS = 5
LOCKOUT_ATTEMPTS_RANGE = (1, 100)
DEFAULT_LOCKOUT_MINUTES = 15.0
MAX_LOCKOUT_MINUTES = 7 * 24 * 60
SCOPE_FIELDS = ("force", "forces", "areas", "teams")
MIN_PASSWORD = 12
# Keys published in streamlit-authenticator's code, README and example config: anyone could forge cookies.
PUBLIC_KEYS = frozenset({"some_key", "some_signature_key", "random_signature_key", "abcdef", "key",
                         "secret", "changeme", "change-me", "your_key", "your-secret-key"})


class ConfigError(ValueError):
    """The auth config is missing, unreadable or unsafe; the message says what to fix."""


@dataclass(frozen=True)
class AuthConfig:
    """A checked auth config: users by username, and the cookie settings."""

    path: Path
    users: dict[str, dict[str, Any]]
    cookie_name: str
    cookie_key: str
    expiry_days: float
    cookie_secure: bool
    lockout_attempts: int
    lockout_minutes: float
    disclosure_threshold: int | None

    def user(self, username: str) -> User | None:
        """Return a user by name, with roles and scope, or None if there is no such user."""
        entry = self.users.get(username)
        if entry is None:
            return None
        return user_from_entry(username, entry)

    def password_hash(self, username: str) -> bytes | None:
        """Return a user's bcrypt hash, or None."""
        entry = self.users.get(username)
        value = entry.get("password") if entry else None
        return value.encode() if isinstance(value, str) else None


def _strings(value: Any) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return frozenset({value})
    return frozenset(str(v) for v in value)


def user_from_entry(username: str, entry: dict[str, Any]) -> User:
    """Make a User from one entry of `credentials.usernames`."""
    roles = entry.get("roles") or []
    if isinstance(roles, str):
        roles = [roles]
    forces = _strings(entry.get("force", entry.get("forces")))
    return User(username=username, name=str(entry.get("name") or username), roles=tuple(str(r) for r in roles),
                forces=forces, areas=_strings(entry.get("areas")), teams=_strings(entry.get("teams")))


def config_path(explicit: str | os.PathLike | None = None) -> Path | None:
    """Return the auth config named on the command line or by OSE_AUTH_CONFIG, or None (local mode)."""
    if explicit:
        return Path(explicit)
    return settings().auth_config


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"{CONFIG_ENV} names {path}, which does not exist") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read the auth config {path}: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"the auth config {path} is not valid YAML ({exc.__class__.__name__})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"the auth config {path} must be a YAML mapping")
    return data


def check_cookie_key(key: Any) -> str:
    """Return the cookie key if it is safe to sign login cookies with, else raise ConfigError."""
    if key is None or (isinstance(key, str) and not key.strip()):
        raise ConfigError("cookie.key is missing: set it to at least 32 random bytes "
                          "(`python -m lib.users add` writes a new config with one)")
    key = str(key)
    if key.strip().lower() in PUBLIC_KEYS:
        raise ConfigError("cookie.key is a published example value, so anyone could forge a login cookie: "
                          "replace it with at least 32 random bytes")
    if len(key.encode("utf-8")) < MIN_KEY_BYTES:
        raise ConfigError(f"cookie.key is {len(key.encode('utf-8'))} bytes long; it must be at least "
                          f"{MIN_KEY_BYTES} random bytes ({HOW_TO})")
    reason = weakness(key)
    if reason is not None:  # long but guessable: anyone who guesses it can forge a login cookie
        raise ConfigError(f"cookie.key is too easy to guess: {reason}; {HOW_TO}")
    return key


def check_audit_key(key: Any, where: str = "audit.key") -> bytes | None:
    """Return the users file's audit key as bytes (None if unset) if it is random enough, else raise ConfigError."""
    if key in (None, ""):
        return None
    if not isinstance(key, str):
        raise ConfigError(f"{where} must be text ({HOW_TO})")
    key = key.strip()
    if len(key.encode("utf-8")) < MIN_KEY_BYTES:
        raise ConfigError(f"{where} is {len(key.encode('utf-8'))} bytes long; it must be at least "
                          f"{MIN_KEY_BYTES} random bytes ({HOW_TO})")
    reason = weakness(key)
    if reason is not None:
        raise ConfigError(f"{where} is too easy to guess: {reason}; {HOW_TO}")
    return key.encode("utf-8")


def read_section(path: str | os.PathLike, name: str) -> dict[str, Any]:
    """Return one top-level section of a users file (empty if absent), checked as load_config checks it."""
    return _section(_read_yaml(Path(path)), name, "key", fields=("key",))


def load_config(path: str | os.PathLike) -> AuthConfig:
    """Read and check an auth config; raise ConfigError naming the first thing to fix (field, value, allowed)."""
    path = Path(path)
    data = _read_yaml(path)
    cookie = _section(data, "cookie", "name, key and expiry_days")
    key = check_cookie_key(cookie.get("key"))
    expiry = _number(cookie, "cookie", "expiry_days", DEFAULT_EXPIRY_DAYS, whole=False, low=0,
                     allowed=f"a number of days from 0 to {MAX_EXPIRY_DAYS:g}")
    if expiry > MAX_EXPIRY_DAYS:
        raise ConfigError(f"cookie.expiry_days is {expiry:g}; at most {MAX_EXPIRY_DAYS:g} day is allowed for "
                          "personal data (0 means no login cookie: sign in again on each visit)")
    name = cookie.get("name")
    if name in (None, ""):
        name = "ose_auth"
    elif not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", name):
        raise ConfigError(f"cookie.name={_shown(name)} is not a cookie name: use 1-64 letters, digits, _ . or -")
    secure = cookie.get("secure")
    secure = False if secure is None else secure
    if not isinstance(secure, bool):
        raise ConfigError(f"cookie.secure={_shown(secure)} is not true or false")
    credentials = _section(data, "credentials", "usernames")
    users = credentials.get("usernames") or {}
    if not isinstance(users, dict):
        raise ConfigError("credentials.usernames must be a mapping of usernames")
    for username, entry in users.items():
        _check_user(username, entry)
    lockout = _section(data, "lockout", "attempts and minutes", fields=("attempts", "minutes"))
    low, high = LOCKOUT_ATTEMPTS_RANGE
    attempts = _number(lockout, "lockout", "attempts", DEFAULT_LOCKOUT_ATTEMPTS, whole=True, low=low, high=high,
                       allowed=f"a whole number of failed sign-ins from {low} to {high}")
    minutes = _number(lockout, "lockout", "minutes", DEFAULT_LOCKOUT_MINUTES, whole=False, low=0,
                      high=MAX_LOCKOUT_MINUTES, above_low=True,
                      allowed=f"a number of minutes above 0, at most {MAX_LOCKOUT_MINUTES} (a week)")
    disclosure = _section(data, "disclosure", "threshold", fields=("threshold",))
    low, high = DISCLOSURE_RANGE
    threshold = _number(disclosure, "disclosure", "threshold", None, whole=True, low=low, high=high,
                        allowed=f"a whole number from {low} to {high} (counts below it are hidden)")
    pseudonymisation = _section(data, "pseudonymisation", "key", fields=("key",))
    pseudonym_key = pseudonymisation.get("key")
    if pseudonym_key not in (None, ""):
        if not isinstance(pseudonym_key, str):
            raise ConfigError("pseudonymisation.key must be text (at least 32 random bytes)")
        if len(pseudonym_key.strip().encode("utf-8")) < MIN_KEY_BYTES:
            raise ConfigError(f"pseudonymisation.key is {len(pseudonym_key.strip().encode('utf-8'))} bytes long; "
                              f"it must be at least {MIN_KEY_BYTES}")
    check_audit_key(_section(data, "audit", "key", fields=("key",)).get("key"))
    return AuthConfig(path=path, users={str(k): v for k, v in users.items()}, cookie_name=name, cookie_key=key,
                      expiry_days=float(expiry), cookie_secure=secure, lockout_attempts=int(attempts),
                      lockout_minutes=float(minutes), disclosure_threshold=threshold)


def _shown(value: Any) -> str:
    """Return a value as a message quotes it, cut short."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _section(data: dict[str, Any], name: str, holds: str, fields: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Return a top-level section (empty if absent); raise ConfigError unless it is a mapping of known fields."""
    section = data.get(name)
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise ConfigError(f"{name} must be a mapping with {holds}, not {_shown(section)}")
    unknown = [str(k) for k in section if fields is not None and k not in fields]
    if unknown:
        raise ConfigError(f"{name} has unknown field {', '.join(map(repr, unknown))}; allowed: {', '.join(fields)}")
    return section


def _number(section: dict[str, Any], name: str, field: str, default: float | None, *, whole: bool,
            allowed: str, low: float | None = None, high: float | None = None,
            above_low: bool = False) -> Any:
    """Return a numeric field (the default if absent); raise ConfigError naming it unless it is `allowed`."""
    value = section.get(field)
    if value is None:
        return default
    number: float | int | None = None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int) or (isinstance(value, float) and not whole):
        number = value
    elif isinstance(value, str):
        try:
            number = int(value.strip()) if whole else float(value.strip())
        except ValueError:
            number = None
    bad = (number is None or not math.isfinite(number)
           or (low is not None and (number <= low if above_low else number < low))
           or (high is not None and number > high))
    if bad:
        raise ConfigError(f"{name}.{field}={_shown(value)} is not {allowed}")
    return number


def _check_user(username: Any, entry: Any) -> None:
    """Raise ConfigError naming the user and the field unless one entry of credentials.usernames is usable."""
    if not isinstance(entry, dict):
        raise ConfigError(f"user {username!r} must be a mapping with name, password and roles")
    hashed = entry.get("password")
    if not isinstance(hashed, str) or not hashed.startswith(("$2a$", "$2b$", "$2y$")):
        raise ConfigError(f"user {username!r} has no bcrypt password hash; set one with "
                          f"`python -m lib.users passwd {username}`")
    roles = entry.get("roles") or []
    roles = [roles] if isinstance(roles, str) else roles
    if not isinstance(roles, list):
        raise ConfigError(f"user {username!r}: roles={_shown(roles)} is not a list of roles from {', '.join(ROLES)}")
    unknown = [r for r in roles if not isinstance(r, str) or r not in ROLES]
    if not roles or unknown:
        raise ConfigError(f"user {username!r} needs roles from {', '.join(ROLES)}"
                          + (f"; unknown: {', '.join(map(str, unknown))}" if unknown else ""))
    name = entry.get("name")
    if name is not None and not isinstance(name, str | int):
        raise ConfigError(f"user {username!r}: name={_shown(name)} is not text")
    for field in SCOPE_FIELDS:
        value = entry.get(field)
        if value is None or isinstance(value, str):
            continue
        if not isinstance(value, list) or not all(isinstance(v, str | int) and not isinstance(v, bool) for v in value):
            raise ConfigError(f"user {username!r}: {field}={_shown(value)} is not a name or a list of names")


# --- changing the config --------------------------------------------------------------------


def hash_password(password: str) -> str:
    """Return a bcrypt hash of a password (the format streamlit-authenticator's Hasher writes)."""
    return bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt(rounds=12)).decode()


def check_password_strength(password: str, username: str) -> None:
    """Raise ValueError if a password is too weak to protect personal data."""
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"the password must be at least {MIN_PASSWORD} characters")
    if username.lower() in password.lower():
        raise ValueError("the password must not contain the username")


def new_config() -> dict[str, Any]:
    """Return a fresh config with a random cookie key and no users.

    No pseudonymisation key is written: the key file already under the data directory (made at the first
    ingest) keeps serving, so officers keep the pseudonyms they had in local mode. A deployment that wants
    the key in this file copies it here once (README, Deployment), and never changes it afterwards.
    """
    return {"credentials": {"usernames": {}},
            "cookie": {"name": "ose_auth", "key": secrets.token_urlsafe(48), "expiry_days": DEFAULT_EXPIRY_DAYS},
            "lockout": {"attempts": 5, "minutes": 15}}


def write_config(path: Path, data: dict[str, Any]) -> None:
    """Write a config atomically, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".users-", suffix=".yaml")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            yaml.safe_dump(data, out, sort_keys=False, allow_unicode=True)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def upsert_user(path: Path, username: str, *, role: str | None = None, password: str | None = None,
                name: str | None = None, force: str | None = None, teams: list[str] | None = None,
                areas: list[str] | None = None) -> bool:
    """Create or update a user in a config (created if missing); return True if the user is new."""
    if not username or any(c.isspace() for c in username) or len(username) > 64:
        raise ValueError("a username is 1-64 characters without spaces")
    data = _read_yaml(path) if path.exists() else new_config()
    users = data.setdefault("credentials", {}).setdefault("usernames", {}) or {}
    data["credentials"]["usernames"] = users
    created = username not in users
    entry = users.setdefault(username, {})
    if role is not None:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; choose from {', '.join(ROLES)}")
        entry["roles"] = [role]
    elif created:
        raise ValueError("a new user needs --role")
    if password is not None:
        check_password_strength(password, username)
        entry["password"] = hash_password(password)
    elif created:
        raise ValueError("a new user needs a password")
    entry["name"] = name or entry.get("name") or username
    if force is not None:
        if force:
            entry["force"] = force
        else:
            entry.pop("force", None)
    for key, values in (("teams", teams), ("areas", areas)):
        if values is not None:
            if values:
                entry[key] = list(values)
            else:
                entry.pop(key, None)
    write_config(path, data)
    return created


def remove_user(path: Path, username: str) -> None:
    """Remove a user from a config."""
    data = _read_yaml(path)
    users = (data.get("credentials") or {}).get("usernames") or {}
    if username not in users:
        raise ValueError(f"no user {username!r} in {path}")
    del users[username]
    write_config(path, data)


# --- command line ---------------------------------------------------------------------------


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    second = getpass.getpass("Repeat it: ")
    if first != second:
        raise ValueError("the two passwords differ")
    return first


def _audit(event: str, username: str, **detail: object) -> None:
    from lib.security import audit

    audit.record(event, user=getpass.getuser(), role="command line", detail={"account": username, **detail})


def main(argv: list[str] | None = None) -> int:
    """Run the users command line."""
    parser = argparse.ArgumentParser(prog="python -m lib.users", description="Manage Officer Safety Explorer users.")
    parser.add_argument("--config", help=f"auth config YAML (default: ${CONFIG_ENV})")
    sub = parser.add_subparsers(dest="command", required=True)
    add = sub.add_parser("add", help="create a user, or update one (role, force, teams, password)")
    add.add_argument("username")
    add.add_argument("--role", choices=list(ROLES))
    add.add_argument("--name", help="display name")
    add.add_argument("--force", help="the only force whose rows this user sees ('' to clear)")
    add.add_argument("--area", action="append", help="an area this user is limited to (repeat)")
    add.add_argument("--team", action="append", help="a team a supervisor looks after (repeat)")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    add.add_argument("--keep-password", action="store_true", help="update an existing user without a new password")
    passwd = sub.add_parser("passwd", help="set a new password (signs the user out everywhere)")
    passwd.add_argument("username")
    passwd.add_argument("--password-stdin", action="store_true")
    remove = sub.add_parser("remove", help="delete a user (signs them out everywhere)")
    remove.add_argument("username")
    sub.add_parser("list", help="list users, roles and scopes")
    sub.add_parser("check", help="check the config is safe to serve with")
    args = parser.parse_args(argv)
    try:
        path = config_path(args.config)
    except ValueError as exc:  # a bad OSE_* setting
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if path is None:
        print(f"error: name the config with --config or {CONFIG_ENV}", file=sys.stderr)
        return 2
    try:
        if args.command == "add":
            password = None if args.keep_password else _read_password(args.password_stdin)
            created = upsert_user(path, args.username, role=args.role, password=password, name=args.name,
                                  force=args.force, teams=args.team, areas=args.area)
            if password is not None and not created:
                _revoke(args.username)
            _audit("user_change", args.username, action="created" if created else "updated",
                   role=args.role or "unchanged")
            print(f"{'created' if created else 'updated'} user {args.username} in {path}")
        elif args.command == "passwd":
            upsert_user(path, args.username, password=_read_password(args.password_stdin))
            ended = _revoke(args.username)
            _audit("password_change", args.username, sessions_ended=ended)
            print(f"new password set for {args.username}; {ended} session(s) signed out")
        elif args.command == "remove":
            remove_user(path, args.username)
            ended = _revoke(args.username)
            _audit("user_change", args.username, action="removed")
            print(f"removed user {args.username}; {ended} session(s) signed out")
        elif args.command == "list":
            config = load_config(path)
            for username in sorted(config.users):
                user = config.user(username)
                scope = user.scope.describe()
                teams = f"; teams {', '.join(sorted(user.teams))}" if user.teams else ""
                print(f"{username}\t{user.role}\t{scope}{teams}")
        elif args.command == "check":
            config = load_config(path)
            print(f"auth config OK: {len(config.users)} user(s), cookie expiry {config.expiry_days:g} day(s)")
    except (ConfigError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _revoke(username: str) -> int:
    """End every session of a user (in the store under OSE_DATA_DIR)."""
    from lib.security import sessions

    return sessions.Store.for_data_dir().revoke_user(username)


if __name__ == "__main__":
    raise SystemExit(main())
