"""Downloads: CSV bytes that a spreadsheet cannot mistake for formulas."""
from __future__ import annotations

import pandas as pd

# A cell starting with one of these is run as a formula by Excel and its relatives.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: object) -> object:
    """Prefix a text cell that a spreadsheet would run as a formula with an apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def to_csv_bytes(frame: pd.DataFrame) -> bytes:
    """Return a frame as UTF-8 CSV (with BOM, so Excel reads it right), formulas neutralised."""
    text = frame.astype("object").map(neutralise)
    text.columns = [neutralise(str(c)) for c in frame.columns]
    # CRLF line ends make the writer quote any cell holding a bare CR or LF.
    return text.to_csv(index=False, lineterminator="\r\n").encode("utf-8-sig")
