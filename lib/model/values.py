"""Parsing of messy cell values: yes/no flags, dates and times, lists, counts, header names.

Every parser returns null for what it cannot read (never a guess, never "No"), so callers can
tell a missing value from a bad one by comparing with the raw cell.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

NULL_MARKERS = frozenset({"", "null", "none", "n/a", "na", "nan", "-", "not recorded", "not stated",
                          "not reported", "unknown"})
TRUE_WORDS = frozenset({"yes", "y", "true", "t", "1", "1.0"})
FALSE_WORDS = frozenset({"no", "n", "false", "f", "0", "0.0"})


def blank_to_null(values: pd.Series) -> pd.Series:
    """Strip cells and turn empty strings and null markers such as 'NULL' into nulls."""
    text = values.astype("string").str.strip()
    return text.mask(text.str.lower().isin(NULL_MARKERS))


def to_bool(values: pd.Series) -> pd.Series:
    """Read Yes/No, True/False and 1/0 flags; anything else is null (unknown)."""
    low = blank_to_null(values).str.lower()
    out = pd.Series(pd.NA, index=values.index, dtype="boolean")
    out[low.isin(TRUE_WORDS).fillna(False).astype(bool)] = True
    out[low.isin(FALSE_WORDS).fillna(False).astype(bool)] = False
    return out


def to_number(values: pd.Series) -> pd.Series:
    """Read numbers, including floats written for counts ('3.0') and thousands separators."""
    text = blank_to_null(values).str.replace(",", "", regex=False)
    return pd.to_numeric(text, errors="coerce")


_DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%m/%d/%Y", "%m/%d/%y", "%d-%m-%Y", "%d.%m.%Y", "%Y/%m/%d",
                 "%d %b %Y", "%d %B %Y")


def to_datetime(values: pd.Series, *, dayfirst: bool = True,
                formats: tuple[str, ...] | None = None, strict: bool = False) -> pd.Series:
    """Read dates or date-times written in any of several formats; unreadable cells are null.

    UK extracts write day first; US ones (say `dayfirst=False`) month first. Each cell is tried
    against the formats in turn, so a column that mixes `9/3/16` and `09/03/2016` still reads.
    With `strict`, only the given order is tried: a month-first cell in a day-first column is null,
    never read the other way (which would give 06/07 and 06/23 of one column different orders).
    """
    text = blank_to_null(values)
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[us]")
    todo = text.notna()
    order = formats or _ordered_formats(dayfirst)
    if strict:
        order = tuple(f for f in order if f not in (_MONTH_FIRST if dayfirst else _DAY_FIRST))
    for fmt in order:
        if not todo.any():
            break
        parsed = pd.to_datetime(text[todo], format=fmt, errors="coerce")
        hit = parsed.notna()
        out.loc[hit[hit].index] = parsed[hit].astype("datetime64[us]")
        todo.loc[hit[hit].index] = False
    if todo.any():  # last resort: ISO date-times with a time part, Excel's own timestamps
        parsed = pd.to_datetime(text[todo], errors="coerce", format="ISO8601")
        out.loc[parsed.dropna().index] = parsed.dropna().astype("datetime64[us]")
    return out


_MONTH_FIRST = ("%m/%d/%Y", "%m/%d/%y")
_DAY_FIRST = ("%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y")


def _ordered_formats(dayfirst: bool) -> tuple[str, ...]:
    if dayfirst:
        return _DATE_FORMATS
    us = ("%m/%d/%Y", "%m/%d/%y")
    return ("%Y-%m-%d",) + us + tuple(f for f in _DATE_FORMATS if f not in us and f != "%Y-%m-%d")


_TIME_RE = re.compile(r"^\s*(\d{1,2})[:.](\d{2})(?:[:.](\d{2}))?\s*([AaPp][Mm])?\s*$")


def to_time_minutes(values: pd.Series) -> pd.Series:
    """Read clock times ('16:30', '4:14:00 AM', '0930') as minutes after midnight; else null."""
    text = blank_to_null(values).fillna("")
    compact = text.str.fullmatch(r"\d{3,4}")
    text = text.where(~compact, text.str.zfill(4).str[:2] + ":" + text.str.zfill(4).str[2:])
    parts = text.str.extract(_TIME_RE)
    hour = pd.to_numeric(parts[0], errors="coerce")
    minute = pd.to_numeric(parts[1], errors="coerce")
    ampm = parts[3].str.lower()
    # Without AM/PM the comparison is null, and a null condition would count as "replace".
    pm = (ampm == "pm").fillna(False).astype(bool)
    am = (ampm == "am").fillna(False).astype(bool)
    hour = hour.where(~(pm & (hour < 12)), hour + 12)
    hour = hour.where(~(am & (hour == 12)), 0)
    valid = hour.between(0, 23) & minute.between(0, 59)
    return (hour * 60 + minute).where(valid).astype("Float64")


def combine_date_time(dates: pd.Series, minutes: pd.Series) -> pd.Series:
    """Put a date and a time of day together; a missing time leaves the date at midnight."""
    offset = pd.to_timedelta(minutes.astype("float64").fillna(0), unit="m")
    return dates.dt.normalize() + offset


def split_list(values: pd.Series, separator: str = ",") -> pd.Series:
    """Split multi-valued cells ('Taser, Hands') into lists of stripped, non-null items."""
    text = blank_to_null(values)

    def split(cell: object) -> list[str]:
        if cell is None or cell is pd.NA or (isinstance(cell, float) and np.isnan(cell)):
            return []
        items = (p.strip() for p in str(cell).split(separator))
        return [p for p in items if p and p.lower() not in NULL_MARKERS]

    return pd.Series([split(v) for v in text.tolist()], index=values.index, dtype=object)


def normalise_name(name: str) -> str:
    """Fold a header or value for matching: case, spacing, punctuation and a known misspelling."""
    text = str(name).replace("\ufeff", "").strip().lower()
    text = text.replace("possesion", "possession")
    text = re.sub(r"[^a-z0-9]+", " ", text)
    return re.sub(r"\s+", " ", text).strip()


def match_columns(columns: list[str], aliases: dict[str, tuple[str, ...]]) -> dict[str, str]:
    """Map each canonical name to the first header matching one of its aliases; a header is used once."""
    by_name = {normalise_name(c): c for c in columns}
    found: dict[str, str] = {}
    for canon, names in aliases.items():
        for alias in names:
            if alias in by_name and by_name[alias] not in found.values():
                found[canon] = by_name[alias]
                break
    return found
