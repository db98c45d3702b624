"""Pseudonymise officer identifiers: a keyed hash replaces each raw id before anything is stored.

Officer ids (collar, warrant or staff numbers) are personal data under the DPA 2018. Every reader
that meets one (reports, roster, the mapping step's examples) passes it through `pseudonymise`,
so the raw id is never stored, shown, logged or exported. The key is a secret: the same key gives
the same pseudonym in every run, so a roster uploaded later joins to reports ingested earlier,
while without the key a pseudonym cannot be turned back into the id (nor guessed from a list of
likely collar numbers, as an unkeyed hash could be).

The key comes from, in order: the environment variable OSE_PSEUDONYM_KEY; `pseudonymisation:
{key: ...}` in the YAML file named by OSE_AUTH_CONFIG; else `<data dir>/secrets/pseudonym.key`,
made with 32 random bytes on first use. Keep that file (and back it up with the data): a new key
gives new pseudonyms, and rosters would no longer join to reports saved before.
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TypeVar

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from lib.model import files, schema
from lib.model.settings import AUTH_CONFIG, MIN_KEY_BYTES, PSEUDONYM_KEY, Settings, SettingsError, settings

KEY_ENV = PSEUDONYM_KEY
CONFIG_ENV = AUTH_CONFIG
KEY_BYTES = MIN_KEY_BYTES
PREFIX = "P-"
HEX_CHARS = 16
PATTERN = re.compile(rf"^{schema.OFFICER_PSEUDONYM}$")
HIDDEN = "hidden: officer identifiers"
# Header names (letters and digits only, lower case) that hold officer ids in any layout.
OFFICER_ID_HEADERS = frozenset({"officerid", "staffid", "officernumber", "officerreference", "warrantnumber",
                                "collarnumber", "badgenumber", "badgeid", "pseudonymisedofficerid",
                                "officerpseudonym"})

Values = TypeVar("Values", pa.Array, pa.ChunkedArray, pd.Series, list)


class PseudonymKeyError(Exception):
    """The pseudonymisation key is missing, unreadable or too short; the message says which."""


def key_path() -> Path:
    """Return where the generated key lives (<data dir>/secrets/pseudonym.key)."""
    return _settings().pseudonym_key_file


def secret() -> bytes:
    """Return the pseudonymisation key: from the environment, else the config file, else the key file."""
    current = _settings()
    if current.pseudonym_key is not None:  # checked (long enough) with the other settings
        return current.pseudonym_key
    configured = _configured_key(current)
    if configured is not None:
        return configured
    return _key_file(current.pseudonym_key_file)


def _settings() -> Settings:
    """Return the settings; a bad OSE_PSEUDONYM_KEY is a PseudonymKeyError, as a bad key anywhere else is."""
    try:
        return settings()
    except SettingsError as exc:
        if KEY_ENV in exc.variables:
            raise PseudonymKeyError(str(exc)) from exc
        raise


def _checked(key: bytes, where: str) -> bytes:
    if len(key) < KEY_BYTES:
        raise PseudonymKeyError(f"the pseudonymisation key in {where} is {len(key)} bytes long; it must be at "
                                f"least {KEY_BYTES} (e.g. the output of `python -c \"import secrets; "
                                f"print(secrets.token_hex(32))\"`)")
    return key


def _configured_key(current: Settings) -> bytes | None:
    """Return `pseudonymisation.key` from the YAML config named by OSE_AUTH_CONFIG, if it sets one."""
    if current.auth_config is None or not current.auth_config.is_file():
        return None
    name = str(current.auth_config)
    import yaml  # installed with streamlit-authenticator; only needed when a config is named

    try:
        config = yaml.safe_load(Path(name).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise PseudonymKeyError(f"{name} cannot be read for the pseudonymisation key: {exc}") from exc
    section = config.get("pseudonymisation") if isinstance(config, dict) else None
    if not isinstance(section, dict) or section.get("key") in (None, ""):
        return None
    key = section["key"]
    if not isinstance(key, str):
        raise PseudonymKeyError(f"pseudonymisation.key in {name} must be text")
    return _checked(key.strip().encode("utf-8"), f"{name} (pseudonymisation.key)")


def _key_file(path: Path) -> bytes:
    """Read the key file, creating it with random bytes first if there is none."""
    if not path.exists():
        files.create_secret_file(path, KEY_BYTES)
    try:
        key = path.read_bytes()
    except OSError as exc:
        raise PseudonymKeyError(f"the pseudonymisation key file {path} cannot be read: {exc.strerror or exc}") from exc
    return _checked(key, str(path))


def fingerprint(key: bytes | None = None) -> str:
    """Return a short public tag of the key, so datasets made with different keys can be told apart."""
    return _Hasher(secret() if key is None else key)("ose key fingerprint").removeprefix(PREFIX)[:8]


def is_officer_id_header(name: object) -> bool:
    """Say whether a column header names an officer id, whatever its case, spacing or punctuation."""
    return re.sub(r"[^a-z0-9]", "", str(name).lower()) in OFFICER_ID_HEADERS


def is_pseudonym(value: object) -> bool:
    """Say whether a value is already one of our pseudonyms."""
    return isinstance(value, str) and PATTERN.match(value) is not None


def _missing(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)


class _Hasher:
    """HMAC-SHA256 with the key's inner and outer pads hashed once (twice as fast as hmac.digest per id)."""

    def __init__(self, key: bytes) -> None:
        block = hashlib.sha256().block_size
        if len(key) > block:
            key = hashlib.sha256(key).digest()
        key = key.ljust(block, b"\0")
        self.inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        self.outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))

    def __call__(self, value: str) -> str | None:
        """Return the pseudonym of one raw id (None when it is blank)."""
        text = value.strip()
        if PATTERN.match(text):  # our own export or canonical Parquet read back: never hash twice
            return text
        folded = text.casefold()
        if not folded:
            return None
        inner = self.inner.copy()
        inner.update(folded.encode("utf-8"))
        outer = self.outer.copy()
        outer.update(inner.digest())
        return PREFIX + outer.hexdigest()[:HEX_CHARS]


def _arrow(values: pa.Array | pa.ChunkedArray, one: _Hasher) -> pa.Array | pa.ChunkedArray:
    """Hash each distinct value once and spread the results back over the array."""
    chunked = isinstance(values, pa.ChunkedArray)
    flat = values.combine_chunks() if chunked else values
    if not pa.types.is_string(flat.type) and not pa.types.is_large_string(flat.type):
        flat = flat.cast(pa.string())
    encoded = flat.dictionary_encode()
    names = pa.array([one(v) for v in encoded.dictionary.to_pylist()], pa.string())
    hashed = pc.take(names, encoded.indices)
    return pa.chunked_array([hashed], pa.string()) if chunked else hashed


def pseudonymise(values: Values | Iterable[object], key: bytes | None = None) -> Values | list:
    """Replace officer ids by `P-` + 16 hex of HMAC-SHA256(key, id stripped and case-folded).

    Nulls and blank cells stay null; values that are already pseudonyms are kept as they are.
    Returns the same kind it is given: an Arrow array, a pandas Series (same index) or a list.
    """
    one = _Hasher(secret() if key is None else key)
    if isinstance(values, pa.Array | pa.ChunkedArray):
        return _arrow(values, one)
    if isinstance(values, pd.Series):
        if isinstance(values.dtype, pd.StringDtype):
            text = pa.array(values.array)  # no copy for Arrow-backed strings
        else:
            text = pa.array([None if _missing(v) else str(v) for v in values.tolist()], pa.string())
        hashed = _arrow(text, one)
        out = hashed.to_pandas(types_mapper=lambda kind: pd.StringDtype("pyarrow"))
        dtype = values.dtype if isinstance(values.dtype, pd.StringDtype) else "string"
        return pd.Series(out.array, index=values.index, name=values.name).astype(dtype)
    return [None if _missing(v) else one(str(v)) for v in values]


def pseudonymise_columns(frame: pd.DataFrame, columns: Iterable[str], key: bytes | None = None) -> pd.DataFrame:
    """Return a copy of a frame whose named columns (those present) hold pseudonyms, not raw ids."""
    present = [c for c in dict.fromkeys(columns) if c in frame.columns]
    if not present:
        return frame
    key = secret() if key is None else key
    return frame.assign(**{c: pseudonymise(frame[c], key) for c in present})
