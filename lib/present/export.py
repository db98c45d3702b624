"""Downloads: CSV and XLSX bytes that a spreadsheet cannot mistake for formulas."""
from __future__ import annotations

import datetime as dt
import io
import math
import re
import unicodedata
from collections.abc import Callable

import numpy as np
import pandas as pd

# openpyxl is imported when an XLSX file is made (a tenth of a second off every server's start).

# A cell starting with one of these is run as a formula by Excel and its relatives.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
FORMULA_CHARACTERS = ("=", "+", "-", "@")
# Characters a spreadsheet may skip before it reads a formula: whitespace (NBSP and the other Unicode
# spaces, LF), control characters (NUL, C0 and C1) and invisible format characters (BOM, bidi marks).
_INVISIBLE_CATEGORIES = ("Cc", "Cf", "Zs", "Zl", "Zp")
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_SHEET_BAD = re.compile(r"[\[\]:*?/\\]")


def _visible(text: str) -> str:
    """Return text from its first character a reader would see (no whitespace, control or format character)."""
    for at, char in enumerate(text):
        if not (char.isspace() or unicodedata.category(char) in _INVISIBLE_CATEGORIES):
            return text[at:]
    return ""


def neutralise(value: object) -> object:
    """Prefix a text cell that a spreadsheet would run as a formula with an apostrophe."""
    if isinstance(value, str) and (value.startswith(FORMULA_STARTS) or _visible(value).startswith(FORMULA_CHARACTERS)):
        return "'" + value
    return value


def to_csv_bytes(frame: pd.DataFrame) -> bytes:
    """Return a frame as UTF-8 CSV (with BOM, so Excel reads it right), formulas neutralised."""
    text = frame.astype("object").map(neutralise)
    text.columns = [neutralise(str(c)) for c in frame.columns]
    # CRLF line ends make the writer quote any cell holding a bare CR or LF.
    return text.to_csv(index=False, lineterminator="\r\n").encode("utf-8-sig")


def _xlsx_value(value: object) -> object:
    """Return a cell value openpyxl can write: a number, bool, date or time as itself, anything else as text."""
    if isinstance(value, list | tuple | set | frozenset | np.ndarray):
        return "; ".join(str(v) for v in value)
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return value if math.isfinite(value) else str(value)  # Excel has no infinity; say it in words
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, dt.datetime | dt.time) and value.tzinfo is not None:
        value = value.replace(tzinfo=None)  # Excel has no time zones; keep the wall-clock time shown
    if isinstance(value, dt.date | dt.time):
        return value
    if isinstance(value, pd.Timedelta):
        return value.to_pytimedelta()
    if isinstance(value, dt.timedelta):
        return value
    return str(value)


def sheet_name(name: str) -> str:
    """Return a name Excel accepts for a sheet: no []:*?/\\, at most 31 characters, not blank."""
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    clean = _SHEET_BAD.sub("_", ILLEGAL_CHARACTERS_RE.sub("", name)).strip("'")[:31]
    return clean if clean.strip() else "Data"


def to_xlsx_bytes(frame: pd.DataFrame, sheet: str = "Data") -> bytes:
    """Return a frame as an XLSX workbook of one sheet, text cells neutralised and stored as strings."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    book = Workbook(write_only=True)
    page = book.create_sheet(sheet_name(sheet))

    def cell(value: object) -> WriteOnlyCell:
        """Return one cell; text is neutralised and stored as a string, so it is never evaluated."""
        value = _xlsx_value(value)
        if isinstance(value, str):
            text = neutralise(ILLEGAL_CHARACTERS_RE.sub("", value))
            # XML reads a bare CR as LF anyway; say so in the file rather than leave it to the reader.
            # Control characters an XLSX file cannot hold are dropped (openpyxl refuses them).
            made = WriteOnlyCell(page, value=str(text).replace("\r\n", "\n").replace("\r", "\n"))
            made.data_type = "s"
            return made
        return WriteOnlyCell(page, value=value)

    page.append([cell(str(c)) for c in frame.columns])
    for row in frame.astype("object").itertuples(index=False, name=None):
        page.append([cell(v) for v in row])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


# name -> (writer, MIME type, file extension), for the download helper.
FORMATS: dict[str, tuple[Callable[[pd.DataFrame], bytes], str, str]] = {
    "csv": (to_csv_bytes, "text/csv", ".csv"),
    "xlsx": (to_xlsx_bytes, XLSX_TYPE, ".xlsx"),
}
