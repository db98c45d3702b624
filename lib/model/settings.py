"""One configuration: every `OSE_*` environment variable, read and checked once into a frozen `Settings`.

`settings()` returns the current settings. They are read from the environment the first time and kept;
the cache is keyed on the `OSE_*` items of `os.environ`, so a changed environment (a test's
monkeypatch, a CLI that sets a variable) gives a fresh, checked object, and an unchanged one costs a
scan of the environment. A bad value raises `SettingsError`, whose message names the variable, the
value and what is allowed (secrets are never echoed: the key by its length, a URL's password as ***).

| variable | field | default |
|---|---|---|
| OSE_DATA_DIR | data_dir | ./var |
| OSE_CACHE_DIR | cache_dir (what is derived once per dataset version and kept) | none: the data directory's cache/ |
| OSE_DATASET | dataset | none: the bundled sample |
| OSE_AUTH_CONFIG | auth_config (the users file, checked by lib/security/users.py) | none: local mode |
| OSE_DEMO | demo | off |
| OSE_DISCLOSURE_THRESHOLD | disclosure_threshold | 10 |
| OSE_ENGINE_URL | engine_url | duckdb:// |
| OSE_SPARK_SHUFFLE_PARTITIONS | spark_shuffle_partitions | 2 |
| OSE_PSEUDONYM_KEY | pseudonym_key | none: the users file's key, else the key file |
| OSE_AUDIT_KEY | audit_key (signs the audit chain) | none: the users file's audit.key, else secrets/audit.key |
| OSE_TRUSTED_PROXIES | trusted_proxies (whose X-Forwarded-For names the client) | none |
| OSE_MAX_UPLOAD_MB | max_upload_mb | 1024 |
| OSE_MAX_EXPANDED_MB | max_expanded_mb (what a compressed upload may expand to) | 4096 |
| OSE_MAX_ROWS | max_rows | 20000000 |
| OSE_UPLOAD_MEMORY_MB | upload_memory_mb (the reading worker's address space) | half the machine's memory |
| OSE_UPLOAD_SECONDS | upload_seconds (the reading worker's time) | 600 |
| OSE_SHIFT_STARTS | shift_starts | 07:00,15:00,23:00 |
| OSE_KEEP_VERSIONS | keep_versions | 5 |
| OSE_VIEWER_DAILY_SELECTIONS | viewer_daily_selections (different views of a dataset a viewer opens in 24 h) | 200 |

A blank value is the same as none. This module stays light (standard library only): the login gate
reads it before pandas and the engine load.
"""
from __future__ import annotations

import ipaddress
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import time
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

from lib.model.keys import HOW_TO, weakness

PREFIX = "OSE_"
DATA_DIR = "OSE_DATA_DIR"
CACHE_DIR = "OSE_CACHE_DIR"
DATASET = "OSE_DATASET"
AUTH_CONFIG = "OSE_AUTH_CONFIG"
DEMO = "OSE_DEMO"
DISCLOSURE_THRESHOLD = "OSE_DISCLOSURE_THRESHOLD"
ENGINE_URL = "OSE_ENGINE_URL"
SPARK_SHUFFLE_PARTITIONS = "OSE_SPARK_SHUFFLE_PARTITIONS"
PSEUDONYM_KEY = "OSE_PSEUDONYM_KEY"
MAX_UPLOAD_MB = "OSE_MAX_UPLOAD_MB"
MAX_EXPANDED_MB = "OSE_MAX_EXPANDED_MB"
MAX_ROWS = "OSE_MAX_ROWS"
UPLOAD_MEMORY_MB = "OSE_UPLOAD_MEMORY_MB"
UPLOAD_SECONDS = "OSE_UPLOAD_SECONDS"
SHIFT_STARTS = "OSE_SHIFT_STARTS"
KEEP_VERSIONS = "OSE_KEEP_VERSIONS"
AUDIT_KEY = "OSE_AUDIT_KEY"
TRUSTED_PROXIES = "OSE_TRUSTED_PROXIES"
VIEWER_DAILY_SELECTIONS = "OSE_VIEWER_DAILY_SELECTIONS"
VARIABLES = (DATA_DIR, DATASET, AUTH_CONFIG, DEMO, DISCLOSURE_THRESHOLD, ENGINE_URL, SPARK_SHUFFLE_PARTITIONS,
             PSEUDONYM_KEY, MAX_UPLOAD_MB, MAX_EXPANDED_MB, MAX_ROWS, UPLOAD_MEMORY_MB, UPLOAD_SECONDS, SHIFT_STARTS,
             KEEP_VERSIONS, AUDIT_KEY, TRUSTED_PROXIES, VIEWER_DAILY_SELECTIONS)

DEFAULT_DATA_DIR = Path("var")
DEFAULT_DISCLOSURE_THRESHOLD = 10
# A supervisor's day needs a few dozen views; averaging differences over a hidden count needs hundreds.
DEFAULT_VIEWER_DAILY_SELECTIONS = 200
VIEWER_SELECTIONS_RANGE = (10, 1_000_000)
DISCLOSURE_RANGE = (2, 1000)
DEFAULT_ENGINE_URL = "duckdb://"
# URL schemes and the backend each names (lib/engine/backends.py).
ENGINE_SCHEMES = {"duckdb": "duckdb", "postgres": "postgres", "postgresql": "postgres", "pyspark": "pyspark",
                  "spark": "pyspark"}
DEFAULT_SPARK_SHUFFLE_PARTITIONS = 2
SPARK_PARTITION_RANGE = (1, 100_000)
DEFAULT_MAX_UPLOAD_MB = 1024.0
# A Parquet or Excel file is compressed: what it holds once decompressed is limited apart from its size.
DEFAULT_MAX_EXPANDED_MB = 4096.0
DEFAULT_MAX_ROWS = 20_000_000
MAX_ROWS_RANGE = (1, 1_000_000_000)
UPLOAD_SECONDS_RANGE = (1, 86_400)
DEFAULT_UPLOAD_SECONDS = 600
DEFAULT_KEEP_VERSIONS = 5  # versions of a saved dataset kept for rollback, the current one included
KEEP_VERSIONS_RANGE = (1, 1000)
MIN_KEY_BYTES = 32
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")

T = TypeVar("T")


class SettingsError(ValueError):
    """An `OSE_*` variable has a value the app cannot use; the message names it and what is allowed."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = tuple(problems)
        self.variables = tuple(name for name, _ in problems)
        super().__init__("; ".join(message for _, message in problems))


# --- shifts (here, not in schema.py, so the setting is checked without loading pandas) ---------------


@dataclass(frozen=True)
class ShiftBoundaries:
    """Start times of the Early, Late and Night shifts; each runs until the next starts."""

    early: time = time(7, 0)
    late: time = time(15, 0)
    night: time = time(23, 0)

    def __post_init__(self) -> None:
        if not (self.early < self.late < self.night or self.late < self.night < self.early
                or self.night < self.early < self.late):
            raise ValueError("shift start times must be distinct and in Early, Late, Night order")

    def __str__(self) -> str:
        return ",".join(t.strftime("%H:%M") for t in (self.early, self.late, self.night))


DEFAULT_SHIFTS = ShiftBoundaries()


def parse_shift_boundaries(text: str) -> ShiftBoundaries:
    """Read 'HH:MM,HH:MM,HH:MM' (Early, Late and Night start times) into shift boundaries."""
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 3:
        raise ValueError(f"expected three start times like 07:00,15:00,23:00, got {text!r}")
    try:
        starts = [time.fromisoformat(p) for p in parts]
    except ValueError as exc:
        raise ValueError(f"{text!r} is not three HH:MM times") from exc
    return ShiftBoundaries(*starts)


def redact_url(url: str) -> str:
    """Return a URL fit for a log or a message: the password replaced by ***."""
    # Not urlsplit: "pyspark://local[2]" is no valid host for it.
    return re.sub(r"^([a-z]+://[^:/@]*):[^/]*@", r"\1:***@", url, count=1)


# --- the settings -------------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class Settings:
    """Every `OSE_*` setting, checked. Make one with `settings()` (or `Settings.from_environ(mapping)`)."""

    data_dir: Path = DEFAULT_DATA_DIR
    cache_dir: Path | None = None  # None: <data dir>/cache (see derived_dir)
    dataset: Path | None = None
    auth_config: Path | None = None
    demo: bool = False
    disclosure_threshold: int = DEFAULT_DISCLOSURE_THRESHOLD
    engine_url: str = DEFAULT_ENGINE_URL
    spark_shuffle_partitions: int = DEFAULT_SPARK_SHUFFLE_PARTITIONS
    pseudonym_key: bytes | None = None  # None: the users file's key, else the key file under data_dir
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB
    max_expanded_mb: float = DEFAULT_MAX_EXPANDED_MB
    max_rows: int = DEFAULT_MAX_ROWS
    upload_memory_mb: float | None = None  # None: half the machine's memory (default_upload_memory_mb)
    upload_seconds: int = DEFAULT_UPLOAD_SECONDS
    shift_starts: ShiftBoundaries = DEFAULT_SHIFTS
    keep_versions: int = DEFAULT_KEEP_VERSIONS
    audit_key: bytes | None = None  # None: the users file's audit.key, else the key file under data_dir
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    viewer_daily_selections: int = DEFAULT_VIEWER_DAILY_SELECTIONS

    @property
    def max_upload_bytes(self) -> int:
        """The largest upload the ingester accepts, in bytes."""
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def max_expanded_bytes(self) -> int:
        """The most a compressed upload (Parquet, Excel) may hold once decompressed, in bytes."""
        return int(self.max_expanded_mb * 1024 * 1024)

    @property
    def upload_memory_bytes(self) -> int:
        """The address space the reading worker may use, in bytes."""
        mb = self.upload_memory_mb if self.upload_memory_mb is not None else default_upload_memory_mb()
        return int(mb * 1024 * 1024)

    @property
    def engine_kind(self) -> str:
        """Which backend the engine URL names: duckdb, postgres or pyspark."""
        return ENGINE_SCHEMES[self.engine_url.split("://", 1)[0].lower()]

    @property
    def derived_dir(self) -> Path:
        """Where what is derived once per dataset version is kept (OSE_CACHE_DIR, else <data dir>/cache)."""
        return self.cache_dir if self.cache_dir is not None else self.data_dir / "cache"

    @property
    def pseudonym_key_file(self) -> Path:
        """Where the generated pseudonymisation key lives (<data dir>/secrets/pseudonym.key)."""
        return self.data_dir / "secrets" / "pseudonym.key"

    @property
    def audit_key_file(self) -> Path:
        """Where the generated audit key lives (<data dir>/secrets/audit.key), apart from the log."""
        return self.data_dir / "secrets" / "audit.key"

    def __repr__(self) -> str:
        shown = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("pseudonym_key", "audit_key") and value is not None:
                value = "<hidden>"
            elif f.name == "engine_url":
                value = redact_url(value)
            elif isinstance(value, ShiftBoundaries):
                value = str(value)
            elif f.name == "trusted_proxies":
                value = tuple(str(network) for network in value)
            shown.append(f"{f.name}={value!r}")
        return f"Settings({', '.join(shown)})"

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Settings:
        """Read and check every setting from a mapping like os.environ; raise SettingsError naming each bad one."""
        problems: list[tuple[str, str]] = []

        def read(name: str, parse: Callable[[str], T], default: T) -> T:
            raw = environ.get(name, "").strip()
            if not raw:
                return default
            try:
                return parse(raw)
            except _Bad as bad:
                problems.append((name, bad.message(name, raw)))
                return default

        values = dict(
            data_dir=read(DATA_DIR, _folder, DEFAULT_DATA_DIR),
            cache_dir=read(CACHE_DIR, _folder, None),
            dataset=read(DATASET, Path, None),
            auth_config=read(AUTH_CONFIG, Path, None),
            demo=read(DEMO, _switch, False),
            disclosure_threshold=read(DISCLOSURE_THRESHOLD, _whole(*DISCLOSURE_RANGE), DEFAULT_DISCLOSURE_THRESHOLD),
            engine_url=read(ENGINE_URL, _engine_url, DEFAULT_ENGINE_URL),
            spark_shuffle_partitions=read(SPARK_SHUFFLE_PARTITIONS, _whole(*SPARK_PARTITION_RANGE),
                                          DEFAULT_SPARK_SHUFFLE_PARTITIONS),
            pseudonym_key=read(PSEUDONYM_KEY, _key, None),
            max_upload_mb=read(MAX_UPLOAD_MB, _megabytes, DEFAULT_MAX_UPLOAD_MB),
            max_expanded_mb=read(MAX_EXPANDED_MB, _megabytes, DEFAULT_MAX_EXPANDED_MB),
            max_rows=read(MAX_ROWS, _whole(*MAX_ROWS_RANGE), DEFAULT_MAX_ROWS),
            upload_memory_mb=read(UPLOAD_MEMORY_MB, _megabytes, None),
            upload_seconds=read(UPLOAD_SECONDS, _whole(*UPLOAD_SECONDS_RANGE), DEFAULT_UPLOAD_SECONDS),
            shift_starts=read(SHIFT_STARTS, _shifts, DEFAULT_SHIFTS),
            keep_versions=read(KEEP_VERSIONS, _whole(*KEEP_VERSIONS_RANGE), DEFAULT_KEEP_VERSIONS),
            audit_key=read(AUDIT_KEY, _random_key, None),
            trusted_proxies=read(TRUSTED_PROXIES, _networks, ()),
            viewer_daily_selections=read(VIEWER_DAILY_SELECTIONS, _whole(*VIEWER_SELECTIONS_RANGE),
                                         DEFAULT_VIEWER_DAILY_SELECTIONS),
        )
        if problems:
            raise SettingsError(problems)
        return cls(**values)


def default_upload_memory_mb() -> float:
    """Return half the machine's memory in MB: the reading worker's default budget, leaving the rest to the server."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):  # a platform that does not say: 4 GB
        return 4096.0
    return float(total // 2 // (1024 * 1024))


def settings() -> Settings:
    """Return the current settings, checked; read again only when an `OSE_*` variable has changed."""
    return _cached(tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith(PREFIX))))


@lru_cache(maxsize=8)
def _cached(items: tuple[tuple[str, str], ...]) -> Settings:
    return Settings.from_environ(dict(items))


# --- parsers: each returns the value or raises _Bad saying what is allowed ------------------


class _Bad(Exception):
    """A value a parser refuses: `allowed` completes "OSE_X='value' ..."; `shown` replaces a secret value."""

    def __init__(self, allowed: str, shown: str | None = None) -> None:
        super().__init__(allowed)
        self.allowed, self.shown = allowed, shown

    def message(self, name: str, raw: str) -> str:
        return f"{name}={raw!r} {self.allowed}" if self.shown is None else f"{name}{self.shown} {self.allowed}"


def _whole(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise _Bad(f"is not a whole number from {low} to {high}") from None
        if not low <= value <= high:
            raise _Bad(f"is not a whole number from {low} to {high}")
        return value

    return parse


def _switch(raw: str) -> bool:
    word = raw.lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise _Bad(f"is not on or off: use {', '.join(TRUE_WORDS)} for on, or {', '.join(FALSE_WORDS)} for off")


def _folder(raw: str) -> Path:
    path = Path(raw)
    if path.exists() and not path.is_dir():
        raise _Bad("is a file, not a folder: name the folder the app may write its data in")
    return path


def _engine_url(raw: str) -> str:
    scheme, sep, rest = raw.partition("://")
    if not sep or scheme.lower() not in ENGINE_SCHEMES:
        raise _Bad("names no engine: use duckdb:// (optionally duckdb://PATH), postgres://user:pass@host/db "
                   "or pyspark://local[2]", shown=f"={redact_url(raw)!r}")
    if ENGINE_SCHEMES[scheme.lower()] != "duckdb" and not rest:
        raise _Bad(f"names no {'server' if scheme.lower().startswith('postgres') else 'Spark master'}: use "
                   "postgres://user:pass@host/db or pyspark://local[2]", shown=f"={redact_url(raw)!r}")
    return raw


def _key(raw: str) -> bytes:
    key = raw.encode("utf-8")
    if len(key) < MIN_KEY_BYTES:
        raise _Bad(f"is {len(key)} bytes long; the pseudonymisation key must be at least {MIN_KEY_BYTES} "
                   "(e.g. the output of `python -c \"import secrets; print(secrets.token_hex(32))\"`)", shown="")
    return key


def _random_key(raw: str) -> bytes:
    key = raw.encode("utf-8")
    if len(key) < MIN_KEY_BYTES:
        raise _Bad(f"is {len(key)} bytes long; the key must be at least {MIN_KEY_BYTES} random bytes ({HOW_TO})",
                   shown="")
    reason = weakness(raw)
    if reason is not None:
        raise _Bad(f"is too easy to guess: {reason}; {HOW_TO}", shown="")
    return key


def _networks(raw: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    found = []
    for part in (p.strip() for p in raw.split(",")):
        try:
            found.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise _Bad(f"holds {part!r}, which is no IP address or network: list the proxies' addresses, "
                       "comma-separated (e.g. 127.0.0.1,10.0.0.0/24)") from None
    return tuple(found)


def _megabytes(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise _Bad("is not a number of megabytes above 0 (e.g. 1024)") from None
    if not math.isfinite(value) or value <= 0 or int(value * 1024 * 1024) < 1:
        raise _Bad("is not a number of megabytes above 0 (e.g. 1024)")
    return value


def _shifts(raw: str) -> ShiftBoundaries:
    try:
        return parse_shift_boundaries(raw)
    except ValueError as exc:
        if "order" in str(exc):
            raise _Bad("is not three distinct start times in Early, Late, Night order "
                       "(e.g. 07:00,15:00,23:00)") from None
        raise _Bad("is not three HH:MM start times for the Early, Late and Night shifts "
                   "(e.g. 07:00,15:00,23:00)") from None
