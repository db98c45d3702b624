"""Ingest extracts: read CSV, Parquet or Excel safely, detect the format, adapt, quarantine, report.

Run headless for scheduled loads:

    python -m lib.ingest FILE... --out DIR [--format auto|canonical|uk-national|profile:NAME]

It writes the canonical dataset (Parquet) and DIR/report.json, exits 0 on success and 2 with a
one-line reason on stderr when a file is rejected. Nothing is lost: every data row is either
loaded or set aside in the quarantine with its reason, and rows_in = rows_loaded + rows_quarantined.
Officer ids are pseudonymised (lib/ingest/pseudonym.py) as the reports leave the format adapter, in the
reports and in the set-aside rows' cells alike, so no raw id is stored, shown or exported.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import re
import sys
import time
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from lib.ingest import pseudonym
from lib.ingest.formats import FILE, ROW, ROWS, Adapted, Format, empty_quarantine
from lib.ingest.formats.canonical import CanonicalFormat
from lib.model import schema
from lib.model.paths import data_dir
from lib.model.settings import PSEUDONYM_KEY, SettingsError, settings

Progress = Callable[[float, str], None]
AUTO = "auto"
DUPLICATE_CHOICES = ("set-aside", "keep-all")
MIN_SCORE = 0.6
NO_FORMAT = "no known format recognises its header"


class RejectedFile(Exception):
    """A whole file cannot be read; the message is one line a user can act on."""


@dataclass(frozen=True)
class Limits:
    """What one upload may hold before it is refused, so no file can take the server down."""

    max_bytes: int = 1 << 30
    max_columns: int = 2_000
    max_rows: int = 20_000_000
    max_cell_chars: int = 1_000_000

    @classmethod
    def from_env(cls) -> Limits:
        """Read OSE_MAX_UPLOAD_MB (default 1024) for the size limit."""
        return cls(max_bytes=settings().max_upload_bytes)


@dataclass
class RawExtract:
    """One file read into text cells, with its data rows numbered from 1.

    `frame` holds every column of the header unless the reader was asked for only some of them
    (a wide CSV whose format reads few of its columns); the others are then read, once, only
    when `cells` needs them for rows that are set aside.
    """

    name: str
    kind: str
    encoding: str | None
    columns: list[str]
    frame: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    quarantine: pd.DataFrame = field(default_factory=empty_quarantine)
    officer_id_columns: list[str] = field(default_factory=list)  # pseudonymised wherever a cell is kept
    read_rest: Callable[[], pa.Table] | None = None  # the columns not in `frame`, every data row in order
    _rest: pa.Table | None = field(default=None, repr=False)
    _rows_dropped: int = 0  # leading rows dropped as extra header rows: `_row` counts after them

    @property
    def rows_in(self) -> int:
        return len(self.frame) + int(self.quarantine[ROWS].sum())

    @property
    def every_column_read(self) -> bool:
        """Whether `frame` holds every column of the header."""
        return self.read_rest is None

    def drop_leading_rows(self, n: int) -> None:
        """Drop the first n data rows (extra header rows) and number the rest from 1 again."""
        self.frame = self.frame.iloc[n:].copy()
        self.frame[ROW] -= n
        self._rows_dropped += n

    def cells(self, rows: Iterable[int]) -> pd.DataFrame:
        """Return every cell of the given data rows (by `_row`), with `_file` and `_row`."""
        picked = self.frame[self.frame[ROW].isin(set(rows))]
        if self.read_rest is None or not len(picked):
            return picked
        if self._rest is None:
            self._rest = self.read_rest()
        at = picked[ROW].to_numpy(dtype="int64") + self._rows_dropped - 1
        rest = _text_frame(self._rest.take(pa.array(at)))
        rest.index = picked.index
        return pd.concat([picked, rest], axis=1)[[FILE, ROW, *self.columns]]


# --- reading ------------------------------------------------------------------------------


def _size_text(n: int) -> str:
    return f"{n / 1024 / 1024:,.1f} MB" if n >= 1024 * 1024 else f"{n:,} bytes"


def read_extract(name: str, data: bytes, limits: Limits = Limits(),
                 columns: Callable[[list[str]], Sequence[str] | None] | None = None) -> RawExtract:
    """Read one uploaded file into text cells, refusing anything unsafe with a clear reason.

    `columns`, given the header, may name the only columns needed up front (None: all). A CSV is
    then read that far; the other columns are read only if a set-aside row needs its cells.
    """
    if len(data) > limits.max_bytes:
        raise RejectedFile(f"{name} is {_size_text(len(data))}; the limit is {_size_text(limits.max_bytes)}")
    if not data or data.isspace():  # as `not data.strip()`, without copying the file
        raise RejectedFile(f"{name} is empty")
    if data[:4] == b"PAR1":
        return _read_parquet(name, data, limits)
    if data[:4] == b"PK\x03\x04":
        return _read_xlsx(name, data, limits)
    if name.lower().endswith((".parquet", ".xlsx", ".xls")):
        kind = "Parquet" if name.lower().endswith(".parquet") else "Excel"
        raise RejectedFile(f"{name} is not a readable {kind} file (its content is not {kind})")
    return _read_csv(name, data, limits, columns)


# Bytes cp1252 leaves undefined: a file holding one is not cp1252 (latin-1 reads every byte).
_CP1252_UNDEFINED = (b"\x81", b"\x8d", b"\x8f", b"\x90", b"\x9d")


def _encoding(name: str, data: bytes) -> str:
    """Detect a CSV's encoding without keeping a decoded copy (Arrow's parser reads the bytes itself)."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return "utf-16"
    if b"\x00" in data[:65536]:
        raise RejectedFile(f"{name} is not a text file (it holds binary content), so it cannot be read as CSV")
    if data.isascii():  # ASCII is UTF-8; checked much faster than a decode
        return "utf-8"
    try:
        data.decode("utf-8-sig")  # validity only; the text is made when a reader needs it
        return "utf-8"
    except UnicodeDecodeError:
        pass
    # One fast byte search each, not a regular expression over the whole file.
    undefined = any(byte in data for byte in _CP1252_UNDEFINED)
    return "latin-1" if undefined else "cp1252"  # cp1252: Windows exports of the form


def _decode(data: bytes, encoding: str) -> str:
    return data.decode({"utf-8": "utf-8-sig"}.get(encoding, encoding))


def _head(data: bytes, encoding: str, size: int = 65536) -> str:
    """Decode the start of a file (a multi-byte character cut at the end is dropped)."""
    if encoding == "utf-16":
        return data[: size * 2].decode("utf-16", errors="ignore")
    return data[:size].decode({"utf-8": "utf-8-sig"}.get(encoding, encoding), errors="ignore")


def _unique(names: Sequence[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for raw in names:
        base = str(raw).replace("\ufeff", "").strip() or "column"
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.append(base if n == 0 else f"{base}.{n + 1}")
    return out


def _numbered(frame: pd.DataFrame, name: str, first_row: int = 1) -> pd.DataFrame:
    frame.insert(0, ROW, np.arange(first_row, first_row + len(frame), dtype="int64"))
    frame.insert(0, FILE, name)
    return frame


def _read_csv(name: str, data: bytes, limits: Limits,
              wanted: Callable[[list[str]], Sequence[str] | None] | None = None) -> RawExtract:
    encoding = _encoding(name, data)
    sample = _head(data, encoding)
    try:
        delimiter = csv.Sniffer().sniff(sample.split("\n", 1)[0], delimiters=",;\t|").delimiter
    except csv.Error:
        delimiter = ","
    if "\n" not in sample and len(data) > len(sample.encode("utf-8", errors="ignore")):
        sample = _decode(data, encoding)  # a header longer than the sample: read it all
    header_line = sample.split("\n", 1)[0]
    if header_line.count(delimiter) + 1 > limits.max_columns:
        raise RejectedFile(f"{name} has {header_line.count(delimiter) + 1:,} columns; "
                           f"the limit is {limits.max_columns:,}")
    header = next(csv.reader([header_line.rstrip("\r")], delimiter=delimiter))
    columns = _unique(header)
    if not any(c.strip() for c in header):
        raise RejectedFile(f"{name} has an empty header row")
    # Arrow's parser is fast; it reads the original bytes and transcodes a Windows encoding itself.
    source, arrow_encoding = ((data, "cp1252" if encoding == "cp1252" else
                               "latin1" if encoding == "latin-1" else "utf8")
                              if encoding != "utf-16" else (_decode(data, encoding).encode("utf-8"), "utf8"))
    could_hold_long_cell = _has_line_longer_than(data, limits.max_cell_chars)
    # Every cell is checked against the length limit, so a file that could break it is read whole.
    first = _columns_first(columns, wanted) if wanted is not None and not could_hold_long_cell else columns
    fast = _read_csv_fast(source, arrow_encoding, columns, delimiter, first)
    read_rest = None
    if fast is not None:
        frame, quarantine = _numbered(_text_frame(fast), name), empty_quarantine()
        read_first = set(first)
        rest = [c for c in columns if c not in read_first]
        if rest:
            read_rest = partial(_read_csv_again, source, arrow_encoding, columns, delimiter, rest, fast.num_rows)
    else:  # a malformed row somewhere: read row by row so every row keeps its number
        frame, quarantine = _read_csv_exact(name, _decode(data, encoding), columns, delimiter)
    out = RawExtract(name, "CSV", encoding, columns, frame, quarantine=quarantine, read_rest=read_rest)
    if encoding != "utf-8":
        out.notes.append(f"{name}: read as {encoding}")
    return _set_aside_long_cells(out, limits, could_hold_long_cell=could_hold_long_cell)


def _columns_first(columns: list[str], wanted: Callable[[list[str]], Sequence[str] | None]) -> list[str]:
    """Return the header columns to read up front, in header order (all when none are named)."""
    named = wanted(columns)
    if not named:
        return columns
    named = set(named)
    return [c for c in columns if c in named]


def _has_line_longer_than(data: bytes, limit: int) -> bool:
    """Whether any line (the bytes between line breaks) is longer than `limit` bytes.

    No cell can be longer than its line. Each step looks for the last line break within the next
    limit + 1 bytes, so a big file is crossed in a few long strides, not byte by byte.
    """
    start = 0
    while len(data) - start > limit:
        brk = data.rfind(b"\n", start, start + limit + 1)
        if brk < 0:
            return True
        start = brk + 1
    return False


def _read_csv_again(data: bytes, encoding: str, columns: list[str], delimiter: str, include: list[str],
                    rows: int) -> pa.Table:
    """Read more columns of a CSV already read without a malformed row: the same rows, in the same order."""
    table = _read_csv_fast(data, encoding, columns, delimiter, include)
    if table is None or table.num_rows != rows:
        raise AssertionError("a second read of the same bytes found different rows")
    return table


def _text_frame(table: pa.Table) -> pd.DataFrame:
    return table.to_pandas(types_mapper={pa.large_string(): pd.StringDtype("pyarrow")}.get)


def _read_csv_fast(data: bytes, encoding: str, columns: list[str], delimiter: str,
                   include: list[str]) -> pa.Table | None:
    """Read some columns with Arrow's parser; None when any row is malformed (the exact reader then numbers them)."""
    bad: list[int] = []

    def invalid(row: pacsv.InvalidRow) -> str:
        bad.append(row.actual_columns)
        return "skip"

    try:
        table = pacsv.read_csv(
            io.BytesIO(data),
            # Blocks parse in parallel; a quoted line break or a huge cell makes a row invalid or
            # the read fail, and the exact reader below then takes over.
            read_options=pacsv.ReadOptions(column_names=columns, skip_rows=1, encoding=encoding,
                                           block_size=8 << 20),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, invalid_row_handler=invalid),
            # Only the included columns' cells are converted, the costly part; every row is still
            # split into all its fields, so a malformed row is found whichever columns are read.
            convert_options=pacsv.ConvertOptions(include_columns=include,
                                                 column_types={c: pa.large_string() for c in include},
                                                 strings_can_be_null=False,
                                                 quoted_strings_can_be_null=False))
    except (pa.ArrowInvalid, pa.ArrowException):
        return None
    if bad:
        return None
    return table


def _read_csv_exact(name: str, text: str, columns: list[str],
                    delimiter: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read row by row, numbering every data row and setting aside malformed ones."""
    csv.field_size_limit(sys.maxsize)
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    next(reader, None)
    good: list[list[str]] = []
    rows: list[int] = []
    bad_rows: list[int] = []
    reasons: list[str] = []
    width = len(columns)
    try:
        for number, record in enumerate(reader, start=1):
            if len(record) == width:
                good.append(record)
                rows.append(number)
            elif not any(cell.strip() for cell in record):
                continue  # a blank line is not a data row
            else:
                bad_rows.append(number)
                reasons.append(f"has {len(record)} fields where the header has {width}")
    except csv.Error as exc:
        raise RejectedFile(f"{name} cannot be read as CSV: {exc}") from exc
    frame = pd.DataFrame(good, columns=columns, dtype="string")
    frame.insert(0, ROW, np.array(rows, dtype="int64"))
    frame.insert(0, FILE, name)
    quarantine = pd.DataFrame({FILE: pd.Series([name] * len(bad_rows), dtype="string"),
                               ROW: pd.Series(bad_rows, dtype="int64"), ROWS: 1,
                               "reason": pd.Series(reasons, dtype="string")})
    return frame, quarantine


def _read_parquet(name: str, data: bytes, limits: Limits) -> RawExtract:
    try:
        meta = pq.ParquetFile(io.BytesIO(data)).metadata
    except (pa.ArrowException, OSError) as exc:
        raise RejectedFile(f"{name} is not a readable Parquet file ({exc})") from exc
    if meta.num_columns > limits.max_columns:
        raise RejectedFile(f"{name} has {meta.num_columns:,} columns; the limit is {limits.max_columns:,}")
    if meta.num_rows > limits.max_rows:
        raise RejectedFile(f"{name} says it holds {meta.num_rows:,} rows; the limit is {limits.max_rows:,}")
    try:
        table = pq.read_table(io.BytesIO(data))
    except (pa.ArrowException, OSError) as exc:
        raise RejectedFile(f"{name} is not a readable Parquet file ({exc})") from exc
    columns = _unique(table.column_names)
    frame = pd.DataFrame({c: _as_text(table.column(i)) for i, c in enumerate(columns)})
    return RawExtract(name, "Parquet", None, columns, _numbered(frame, name))


def _as_text(column: pa.ChunkedArray) -> pd.Series:
    """Turn one typed Parquet column into text cells, lists joined with ';'."""
    kind = column.type
    if pa.types.is_dictionary(kind):
        column = column.cast(kind.value_type)
        kind = kind.value_type
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return pd.Series([";".join(map(str, v)) if v is not None else None for v in column.to_pylist()],
                         dtype="string")
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        # Arrow dates come back as Python date objects: make them timestamps before formatting.
        return pd.Series(pd.to_datetime(column.to_pandas())).dt.strftime("%Y-%m-%d %H:%M:%S").astype("string")
    return pd.Series(column.to_pandas()).astype("string")


def _read_xlsx(name: str, data: bytes, limits: Limits) -> RawExtract:
    from python_calamine import CalamineError, CalamineWorkbook, SheetTypeEnum  # only Excel uploads pay

    try:
        _check_xlsx_extent(name, data, limits)  # before calamine, which holds a sheet as a dense grid
        book = CalamineWorkbook.from_filelike(io.BytesIO(data))
    except (CalamineError, zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise RejectedFile(f"{name} is not a readable Excel workbook ({type(exc).__name__})") from exc
    try:
        sheets = [i for i, m in enumerate(book.sheets_metadata) if m.typ == SheetTypeEnum.WorkSheet]
        sheet = rows = None
        for i in sheets:
            sheet = book.get_sheet_by_index(i)
            if sheet.height > 0:
                rows = sheet.to_python(skip_empty_area=False)  # from A1, as the sheet is numbered
                break
    except CalamineError as exc:
        raise RejectedFile(f"{name} is not a readable Excel workbook ({type(exc).__name__})") from exc
    finally:
        book.close()
    if not rows:
        raise RejectedFile(f"{name} has no sheet with data")
    header = [_excel_value(h) for h in rows[0]]
    if not any(str(h).strip() for h in header):
        raise RejectedFile(f"{name} has an empty header row")
    columns = _unique([str(h) for h in header])
    width = len(columns)
    cells = [[v if type(v) is str else _cell_text(_excel_value(v)) for v in r[:width]] for r in rows[1:]]
    del rows
    while cells and not any(cells[-1]):
        cells.pop()  # trailing empty rows Excel keeps in its dimensions
    frame = pd.DataFrame(cells, columns=columns, dtype="string")
    out = RawExtract(name, "Excel", None, columns, _numbered(frame, name))
    if len(sheets) > 1:
        out.notes.append(f"{name}: read the first sheet with data ('{sheet.name}')")
    return _set_aside_long_cells(out, limits, could_hold_long_cell=True)


# Calamine holds a sheet as a dense grid of 32-byte cells from A1 to its last cell, whatever the
# file's size: a few bytes naming cell XFD1048576 would ask for 550 GB and abort the server. The
# extent is therefore read from the sheet's XML first, and refused past these limits.
XLSX_MAX_CELLS = 50_000_000  # rows x columns of the grid (1.6 GB)
_XML_CHUNK = 8 << 20
_XLSX_ROW = re.compile(rb"<(?:[\w.-]+:)?row[\s/>]")
_XLSX_CELL = re.compile(rb"<(?:[\w.-]+:)?c[\s/>]")
_XLSX_FAST_ROW = re.compile(rb'<row r="(\d{1,7})"')  # as Excel, LibreOffice and openpyxl write them
_XLSX_FAST_CELL = re.compile(rb'<c r="([A-Z]{1,3})(\d{1,7})"')
_XLSX_PLACED_ROW = re.compile(rb"<(?:[\w.-]+:)?row\s[^>]*?(?<=\s)r\s*=\s*[\"'](\d+)[\"']")
_XLSX_PLACED_CELL = re.compile(rb"<(?:[\w.-]+:)?c\s[^>]*?(?<=\s)r\s*=\s*[\"']\$?([A-Za-z]+)\$?(\d+)[\"']")


def _xml_extent(xml: bytes) -> tuple[int, int, int, int]:
    """Return the last row and column placed by the <row> and <c> elements of some sheet XML, and
    how many rows and cells are not placed (no `r`: calamine puts them after the one before).

    Calamine matches elements by local name (`<x:c>` is a cell too). The usual XML, where every
    row and cell has `r` first, is counted fast; any other, by the slower patterns.
    """
    cells = sum(xml.count(b"<c" + end) for end in (b" ", b">", b"/"))
    row_tags = sum(xml.count(b"<row" + end) for end in (b" ", b">", b"/"))
    placed_rows, placed = _XLSX_FAST_ROW.findall(xml), _XLSX_FAST_CELL.findall(xml)
    prefixed = any(s in xml for s in (b":c ", b":c>", b":c/", b":row"))
    if prefixed or len(placed) != cells or len(placed_rows) != row_tags:
        cells, row_tags = len(_XLSX_CELL.findall(xml)), len(_XLSX_ROW.findall(xml))
        placed_rows, placed = _XLSX_PLACED_ROW.findall(xml), _XLSX_PLACED_CELL.findall(xml)
    rows = [int(r) for r in set(placed_rows)]
    column = 0
    if placed:
        letters, digits = zip(*placed, strict=True)
        column = max(map(_column_number, set(letters)))
        rows += map(int, set(digits))
    return max(rows, default=0), column, row_tags - len(placed_rows), cells - len(placed)


def _column_number(letters: bytes) -> int:
    """Return a column's number from its letters (b'A' is 1, b'XFD' 16,384)."""
    n = 0
    for ch in letters.upper():
        n = n * 26 + ch - 64
    return n


def _excel_value(value: object) -> object:
    """Return a calamine cell value as openpyxl gave it, so its text stays the same.

    Calamine reads every number as a float and a date-time at midnight as a date; openpyxl gave
    a whole number as an int ('5', not '5.0') and a date as a date-time ('2024-04-01 00:00:00').
    """
    if type(value) is float and value.is_integer() and abs(value) < 1e16:  # past 1e16 repr says 1e+16
        return int(value)
    if type(value) is date:
        return datetime(value.year, value.month, value.day)
    return value


def _check_xlsx_extent(name: str, data: bytes, limits: Limits) -> None:
    """Refuse an .xlsx whose sheets span more rows, columns or cells than the limits, before reading it.

    The bound is safe, never below what calamine would allocate: cells and rows named by an `r`
    attribute count at their place; ones without it (placed after the one before) are added on top.
    """
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = set(zf.namelist())
        if "xl/workbook.xml" not in names or names & {"xl/workbook.bin", "content.xml"}:
            raise RejectedFile(f"{name} is not a readable Excel workbook (not an .xlsx file)")
        for info in zf.infolist():  # every part: a sheet may be stored under any name
            rows = columns = unplaced_rows = unplaced_cells = 0
            with zf.open(info) as part:
                tail = b""
                while chunk := part.read(_XML_CHUNK):
                    text = tail + chunk
                    cut = text.rfind(b"<")  # a start tag holds no '<': every one before `cut` is whole
                    cut = len(text) if cut <= 0 else cut
                    text, tail = text[:cut], text[cut:]
                    row, column, more_rows, more_cells = _xml_extent(text)
                    rows, columns = max(rows, row), max(columns, column)
                    unplaced_rows, unplaced_cells = unplaced_rows + more_rows, unplaced_cells + more_cells
                text = tail  # the last tag
                row, column, more_rows, more_cells = _xml_extent(text)
            rows = max(rows, row) + unplaced_rows + more_rows
            columns = max(columns, column) + unplaced_cells + more_cells
            if columns > limits.max_columns:
                raise RejectedFile(f"{name} has {columns:,} columns; the limit is {limits.max_columns:,}")
            if rows > limits.max_rows:
                raise RejectedFile(f"{name} says it holds {rows:,} rows; the limit is {limits.max_rows:,}")
            if rows * columns > XLSX_MAX_CELLS:
                raise RejectedFile(f"{name} spans {rows:,} rows x {columns:,} columns; the limit is "
                                   f"{XLSX_MAX_CELLS:,} cells")


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def _set_aside_long_cells(raw: RawExtract, limits: Limits, could_hold_long_cell: bool) -> RawExtract:
    """Quarantine rows with a cell longer than the limit (a 50 MB field is not a record)."""
    if not could_hold_long_cell:
        return raw
    frame = raw.frame
    too_long = pd.Series(False, index=frame.index)
    reason = pd.Series("", index=frame.index, dtype="string")
    for col in raw.columns:
        lengths = frame[col].str.len().fillna(0)
        hit = (lengths > limits.max_cell_chars) & ~too_long
        if hit.any():
            reason[hit] = (f"cell in column '{col[:40]}' is " + lengths[hit].astype(int).map("{:,}".format)
                           + f" characters long; the limit is {limits.max_cell_chars:,}")
            too_long |= hit
    if too_long.any():
        picked = frame.loc[too_long, [FILE, ROW]]
        set_aside = pd.DataFrame({FILE: picked[FILE].astype("string"), ROW: picked[ROW], ROWS: 1,
                                  "reason": reason[too_long]})
        raw.quarantine = pd.concat([raw.quarantine, set_aside], ignore_index=True)
        raw.frame = frame[~too_long]
    return raw


# --- formats ------------------------------------------------------------------------------


def profile_dir() -> Path:
    """Return where user-saved mapping profiles live (OSE_DATA_DIR/profiles)."""
    return data_dir() / "profiles"


def available_formats() -> list[Format]:
    """Return every format the ingester knows: canonical, national form, shipped and saved profiles."""
    from lib.ingest.formats.profile import ProfileFormat, load_profile, shipped_profiles
    from lib.ingest.formats.uk_national import UkNationalForm

    profiles = list(shipped_profiles())
    if profile_dir().is_dir():
        for path in sorted(profile_dir().glob("*.json")):
            try:
                profiles.append(load_profile(path))
            except (ValueError, OSError):  # one broken saved profile must not block every upload
                continue
    return [CanonicalFormat(), UkNationalForm(), *(ProfileFormat(p) for p in profiles)]


def _columns_read(columns: list[str], wanted: str, formats: Sequence[Format]) -> list[str] | None:
    """Return the columns the format chosen for this header reads (None: all, or no format yet)."""
    try:
        chosen, _ = choose_format(columns, wanted, formats)
    except RejectedFile:
        return None  # reported when the file has been read, as for any other file
    needs = getattr(chosen, "columns_read", None)
    return None if needs is None else needs(columns)


def choose_format(columns: list[str], wanted: str = AUTO,
                  formats: Sequence[Format] | None = None) -> tuple[Format | None, dict[str, float]]:
    """Pick the named format, or the best-scoring one for this header; None if nothing fits."""
    formats = list(formats) if formats is not None else available_formats()
    scores = {f.name: round(float(f.score(columns)), 3) for f in formats}
    if wanted != AUTO:
        match = next((f for f in formats if f.name == wanted), None)
        if match is None:
            raise RejectedFile(f"unknown format '{wanted}'; known: {', '.join(f.name for f in formats)}")
        return match, scores
    best = max(formats, key=lambda f: scores[f.name])
    return (best if scores[best.name] >= MIN_SCORE else None), scores


# --- the pipeline -------------------------------------------------------------------------


@dataclass
class IngestResult:
    """Canonical tables ready for the store, the quarantine, and the report a user reads."""

    reports: pd.DataFrame
    tactics: pd.DataFrame
    quarantine: pd.DataFrame
    report: dict


def ingest(files: Sequence[tuple[str, bytes]], *, fmt: str = AUTO, duplicates: str = "set-aside",
           force: str | None = None, limits: Limits | None = None,
           formats: Sequence[Format] | None = None, progress: Progress | None = None) -> IngestResult:
    """Read, adapt and validate one or more extracts of the same kind into canonical tables."""
    try:
        settings()  # every setting checked before reading anything (shift starts, size limit, key)
    except SettingsError as exc:
        unusable = "officer ids cannot be pseudonymised: " if PSEUDONYM_KEY in exc.variables else ""
        raise RejectedFile(f"{unusable}{exc}") from exc
    limits = limits or Limits.from_env()
    try:
        key = pseudonym.secret()  # before reading anything: no key, no load
    except pseudonym.PseudonymKeyError as exc:
        raise RejectedFile(f"officer ids cannot be pseudonymised: {exc}") from exc
    say = progress or (lambda fraction, message: None)
    formats = list(formats) if formats is not None else available_formats()
    parts: list[Adapted] = []
    file_reports = []
    raws: list[RawExtract] = []
    for i, (name, data) in enumerate(files):
        say(i / max(len(files), 1) * 0.8, f"Reading {name}")
        raw = read_extract(name, data, limits, columns=partial(_columns_read, wanted=fmt, formats=formats))
        chosen, scores = choose_format(raw.columns, fmt, formats)
        if chosen is None:
            raise RejectedFile(f"{name}: {NO_FORMAT} "
                               f"({', '.join(raw.columns[:6])}{' ...' if len(raw.columns) > 6 else ''}); "
                               "map its columns in the app, or pass --format profile:NAME")
        if chosen.extra_header_rows:
            skipped = min(chosen.extra_header_rows, len(raw.frame))
            raw.drop_leading_rows(chosen.extra_header_rows)
            raw.notes.append(f"{name}: skipped {skipped} extra header row(s)")
        say((i + 0.5) / max(len(files), 1) * 0.8, f"Mapping {name} as {chosen.label}")
        # A frame with only the columns the format reads comes with the extract for the rest.
        adapted = chosen.adapt(raw.frame) if raw.every_column_read else chosen.adapt(raw.frame, source=raw)
        _pseudonymise(adapted, raw, key)
        adapted.quarantine = pd.concat([raw.quarantine, adapted.quarantine], ignore_index=True)
        parts.append(adapted)
        raws.append(raw)
        file_reports.append({"name": name, "kind": raw.kind, "encoding": raw.encoding,
                             "rows_in": raw.rows_in, "format": chosen.name, "scores": scores})
    say(0.85, "Checking required fields and duplicates")
    reports, tactics, quarantine, dup = _finalise(parts, duplicates=duplicates, force=force)
    rows_in = sum(f["rows_in"] for f in file_reports)
    rows_loaded = int(reports[ROWS].sum()) if len(reports) else 0
    rows_quarantined = int(quarantine[ROWS].sum()) if len(quarantine) else 0
    if rows_in != rows_loaded + rows_quarantined:  # the promise to the user: nothing lost
        raise AssertionError(f"rows do not reconcile: {rows_in} in, {rows_loaded} loaded, "
                             f"{rows_quarantined} set aside")
    names = sorted({f["format"] for f in file_reports})
    report = {
        "rows_in": rows_in,
        "rows_loaded": rows_loaded,
        "rows_quarantined": rows_quarantined,
        "reports_loaded": len(reports),
        "tactics_loaded": len(tactics),
        "detected_format": names[0] if len(names) == 1 else "mixed: " + ", ".join(names),
        "mapping": _merge_dicts(p.mapping for p in parts),
        "unmapped": _merge_counts(p.unmapped for p in parts),
        "completeness": completeness(reports),
        "quarantine_reasons": reason_counts(quarantine),
        "duplicates": dup,
        "files": file_reports,
        "notes": [n for r in raws for n in r.notes] + [n for p in parts for n in p.notes],
        "date_range": _date_range(reports),
        "pseudonym_key": pseudonym.fingerprint(key),  # rosters join only to reports hashed with the same key
        "ingested_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    quarantine = _with_raw_values(quarantine, raws, key)
    say(1.0, "Done")
    return IngestResult(reports, tactics, quarantine, report)


def _pseudonymise(adapted: Adapted, raw: RawExtract, key: bytes) -> None:
    """Replace the adapted reports' officer ids by pseudonyms; note which raw columns hold officer ids."""
    if "officer_id" in adapted.reports.columns:
        adapted.reports["officer_id"] = pseudonym.pseudonymise(adapted.reports["officer_id"], key)
    named = [c for c in raw.columns if pseudonym.is_officer_id_header(c)]  # even when the format ignores it
    raw.officer_id_columns = list(dict.fromkeys([*adapted.officer_id_columns, *named]))


def _merge_dicts(dicts) -> dict:
    out: dict = {}
    for d in dicts:
        out.update(d)
    return out


def _merge_counts(dicts) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for d in dicts:
        for fld, counts in d.items():
            slot = out.setdefault(fld, {})
            for value, n in counts.items():
                slot[value] = slot.get(value, 0) + int(n)
    return {f: dict(sorted(c.items(), key=lambda kv: -kv[1])) for f, c in out.items()}


def _date_range(reports: pd.DataFrame) -> dict[str, str | None]:
    if not len(reports):
        return {"first": None, "last": None}
    return {"first": str(reports["occurred_at"].min()), "last": str(reports["occurred_at"].max())}


def _finalise(parts: list[Adapted], *, duplicates: str, force: str | None
              ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict]:
    if duplicates not in DUPLICATE_CHOICES:
        raise ValueError(f"duplicates must be one of {DUPLICATE_CHOICES}")
    reports = pd.concat([p.reports for p in parts], ignore_index=True) if parts else pd.DataFrame()
    tactics = pd.concat([p.tactics for p in parts], ignore_index=True) if parts else pd.DataFrame()
    quarantine = [p.quarantine for p in parts]
    reports = _conform(reports, force)
    missing = pd.Series("", index=reports.index, dtype="string")
    for col, label in (("report_id", "no report id"), ("occurred_at", "no date"),
                       ("force", "no force (name one with --force or in the upload form)")):
        gap = reports[col].isna() & (missing == "")
        missing[gap] = label
    bad = missing != ""
    quarantine.append(pd.DataFrame({FILE: reports.loc[bad, FILE].astype("string"),
                                    ROW: reports.loc[bad, ROW].astype("int64"),
                                    ROWS: reports.loc[bad, ROWS].astype("int64"),
                                    "reason": missing[bad]}))
    reports = reports[~bad]
    reports, dup_quarantine, dup = _deduplicate(reports, duplicates)
    quarantine.append(dup_quarantine)
    tactics = _conform_tactics(tactics, reports)
    q = pd.concat([x for x in quarantine if len(x)], ignore_index=True) if any(len(x) for x in quarantine) \
        else empty_quarantine()
    return reports.reset_index(drop=True), tactics, q, dup


def _conform(reports: pd.DataFrame, force: str | None) -> pd.DataFrame:
    """Give a frame every canonical column with its canonical type; unknown stays null."""
    out = pd.DataFrame(index=reports.index)
    for meta in (FILE, ROW, ROWS):
        out[meta] = reports[meta] if meta in reports else (1 if meta == ROWS else pd.NA)
    for col, kind in schema.REPORT_COLUMNS.items():
        have = col in reports.columns
        if kind == "list":
            out[col] = reports[col] if have else pd.Series([[] for _ in range(len(reports))],
                                                           index=reports.index, dtype=object)
        elif kind == "timestamp":
            out[col] = pd.to_datetime(reports[col], errors="coerce") if have else pd.NaT
        elif kind == "bool":
            out[col] = reports[col].astype("boolean") if have else pd.Series(pd.NA, index=reports.index,
                                                                              dtype="boolean")
        elif kind == "float":
            out[col] = pd.to_numeric(reports[col], errors="coerce") if have else np.nan
        else:
            out[col] = (_as_string(reports[col]) if have
                        else pd.Series(pd.NA, index=reports.index, dtype="string"))
    if force:
        out["force"] = out["force"].fillna(force)
    if "shift" not in reports.columns:
        # Only a layout with no shift at all gets one derived here; adapters that read a time
        # already derived it, and never from a date with no time (midnight is not Night).
        out = schema.fill_shift(out)
    out["shift"] = out["shift"].astype("string")
    return out


def _as_string(values: pd.Series) -> pd.Series:
    """Return values.astype("string"); a categorical of text is taken through Arrow, not Python objects."""
    if isinstance(values.dtype, pd.CategoricalDtype) and values.cat.categories.inferred_type in ("string", "empty"):
        codes = values.cat.codes.to_numpy()
        labels = pa.array(values.cat.categories.tolist(), type=pa.large_string())
        text = pc.take(labels, pa.array(codes, mask=codes < 0))
        return pd.Series(pd.arrays.ArrowStringArray(text), index=values.index, name=values.name)
    return values.astype("string")


def _arrow_strings(values: pd.Series) -> pa.Array:
    """Return a column as one Arrow string array (no copy for Arrow-backed text)."""
    arr = pa.array(values.astype("string").array)
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


def _repeats(columns: Sequence[pd.Series | np.ndarray]) -> np.ndarray:
    """Which rows repeat an earlier row's values in these columns (DataFrame.duplicated, on codes)."""
    key = np.zeros(len(columns[0]), dtype=np.int64)
    for values in columns:
        codes, uniques = pd.factorize(values, use_na_sentinel=True)  # nulls match each other, code -1
        key = key * (len(uniques) + 1) + (codes + 1)
    return pd.Series(key).duplicated(keep="first").to_numpy()


def _deduplicate(reports: pd.DataFrame, duplicates: str) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Report repeated report ids and identical rows; set later copies aside or keep them all."""
    repeated = reports["report_id"].duplicated(keep="first")
    # Identical rows share their report id, so only the rows whose id repeats are compared.
    shared = reports["report_id"].duplicated(keep=False) if repeated.any() else repeated
    identical = int(pd.Series(_row_hashes(reports[shared])).duplicated().sum()) if shared.any() else 0
    info = {"repeated_report_ids": int(repeated.sum()), "identical_rows": identical, "choice": duplicates}
    if not repeated.any():
        return reports, empty_quarantine(), info
    if duplicates == "keep-all":
        n = reports.groupby("report_id").cumcount() + 1
        reports = reports.assign(report_id=reports["report_id"].where(~repeated,
                                                                      reports["report_id"] + "-copy"
                                                                      + n.astype(str)))
        return reports, empty_quarantine(), info
    first = reports.loc[~repeated].set_index("report_id")
    later = reports.loc[repeated]
    where = first.loc[later["report_id"], [FILE, ROW]]
    reason = ("duplicate of report '" + later["report_id"].astype(str) + "' first seen in "
              + where[FILE].astype(str).to_numpy() + " row " + where[ROW].astype(str).to_numpy())
    q = pd.DataFrame({FILE: later[FILE].astype("string"), ROW: later[ROW].astype("int64"),
                      ROWS: later[ROWS].astype("int64"), "reason": reason.astype("string")})
    return reports.loc[~repeated], q, info


def _row_hashes(reports: pd.DataFrame) -> np.ndarray:
    """Hash each report's canonical content (lists joined), so identical rows can be counted."""
    lists = [c for c, kind in schema.REPORT_COLUMNS.items() if kind == "list"]
    plain = [c for c in schema.REPORT_COLUMNS if c not in lists]
    combined = pd.util.hash_pandas_object(reports[plain], index=False).to_numpy()
    for col in lists:
        joined = reports[col].map(lambda items: "\x1f".join(items), na_action="ignore")
        combined = combined * np.uint64(1_000_003) ^ pd.util.hash_array(joined.fillna("").to_numpy(dtype=object))
    return combined


def _conform_tactics(tactics: pd.DataFrame, reports: pd.DataFrame) -> pd.DataFrame:
    if not len(tactics):
        return pd.DataFrame({"report_id": pd.Series(dtype="string"), "tactic": pd.Series(dtype="string"),
                             "tactic_group": pd.Series(dtype="string"),
                             "effective": pd.Series(dtype="boolean")})
    # Where each tactic's report id is among the loaded reports' (-1: not loaded). Equal ids get
    # equal positions, so the positions also stand for the ids when repeats are dropped.
    at = pc.index_in(_arrow_strings(tactics["report_id"]), value_set=_arrow_strings(reports["report_id"]))
    position = pc.fill_null(at, -1).to_numpy(zero_copy_only=False)
    keep = (position >= 0) & tactics["tactic"].notna().to_numpy()
    t = tactics[keep]
    t = t[~_repeats([position[keep], t["tactic"]])]  # one row per report and tactic
    t = schema.apply_ced_highest_use(t.reset_index(drop=True))
    effective = t["effective"].astype("boolean") if "effective" in t else pd.NA
    return pd.DataFrame({"report_id": _as_string(t["report_id"]), "tactic": _as_string(t["tactic"]),
                         "tactic_group": t["tactic"].map(schema.TACTIC_GROUP_OF).astype("string"),
                         "effective": effective}).reset_index(drop=True)


def completeness(reports: pd.DataFrame) -> dict[str, float]:
    """Return the share of loaded reports that answer each canonical field."""
    if not len(reports):
        return {c: 0.0 for c in schema.REPORT_COLUMNS}
    out = {}
    for col, kind in schema.REPORT_COLUMNS.items():
        if kind == "list":
            items, at, _ = _distinct_objects(reports[col])
            answered = np.array([len(v) > 0 for v in items], dtype=bool)[at]
        else:
            answered = reports[col].notna()
        out[col] = round(float(answered.mean()), 4)
    return out


def _distinct_objects(values: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return an object column's distinct objects (by identity), where each row's is among them, and
    the first row holding each.

    Adapters give the rows that hold the same items one shared list, so a list column of a million
    rows holds only a few thousand objects: work on each once and spread the result by position.
    """
    cells = values.to_numpy(dtype=object)
    at, _ = pd.factorize(np.fromiter(map(id, cells), dtype=np.uintp, count=len(cells)))
    first = np.empty(at.max() + 1 if len(at) else 0, dtype=np.int64)
    first[at[::-1]] = np.arange(len(at) - 1, -1, -1)  # the last write for an object is its first row
    return cells[first], at, first


def reason_counts(quarantine: pd.DataFrame) -> dict[str, int]:
    """Count quarantined rows by the kind of reason (values in quotes folded together)."""
    if not len(quarantine):
        return {}
    kinds = quarantine["reason"].astype(str).str.replace(r"'[^']*'", "'…'", regex=True)
    kinds = kinds.str.replace(r"\d[\d,]*", "N", regex=True)
    counts = quarantine.groupby(kinds)[ROWS].sum().sort_values(ascending=False)
    return {str(k): int(v) for k, v in counts.items()}


def _with_raw_values(quarantine: pd.DataFrame, raws: list[RawExtract], key: bytes) -> pd.DataFrame:
    """Attach each set-aside row's original cells (officer ids pseudonymised), so the download shows what to fix."""
    if not len(quarantine):
        return quarantine
    pieces = []
    for raw in raws:
        rows = quarantine.loc[quarantine[FILE] == raw.name, ROW]
        if len(rows) and len(raw.frame):
            pieces.append(pseudonym.pseudonymise_columns(raw.cells(rows), raw.officer_id_columns, key))
    if not pieces:
        return quarantine
    original = pd.concat(pieces, ignore_index=True)
    return quarantine.merge(original, on=[FILE, ROW], how="left")


# --- output -------------------------------------------------------------------------------


def tables(result: IngestResult) -> tuple[pa.Table, pa.Table]:
    """Return the loaded reports and tactics as Arrow tables in the canonical layout."""
    reports = result.reports[list(schema.REPORT_COLUMNS)]
    return _arrow_table(reports), pa.Table.from_pandas(result.tactics, preserve_index=False)


def _arrow_table(frame: pd.DataFrame) -> pa.Table:
    """Return pa.Table.from_pandas(frame), converting each list object of a list column only once."""
    lists = [c for c, kind in schema.REPORT_COLUMNS.items()
             if kind == "list" and c in frame.columns and frame[c].dtype == object]
    if not len(frame) or not lists:
        return pa.Table.from_pandas(frame, preserve_index=False)
    distinct = {c: _distinct_objects(frame[c]) for c in lists}
    # The rows holding every distinct list give Arrow the same types (and pandas metadata) as all rows.
    firsts = np.unique(np.concatenate([first for _, _, first in distinct.values()]))
    layout = pa.Table.from_pandas(frame.iloc[firsts], preserve_index=False).schema
    rest = pa.Table.from_pandas(frame.drop(columns=lists), preserve_index=False)
    columns = [pc.take(pa.array(distinct[c][0], type=layout.field(c).type, from_pandas=True),
                       pa.array(distinct[c][1])) if c in distinct else rest.column(c) for c in frame.columns]
    return pa.Table.from_arrays(columns, schema=layout)


def read_file(path: Path) -> tuple[tuple[pa.Table, pa.Table, None], dict]:
    """Read one extract into canonical tables for the engine (`Engine(read_file=read_file)`).

    Returns the reports and tactics tables (no roster) and the ingest report; a file that cannot be
    read, or whose every row is set aside, raises the engine's DatasetError with the reason.
    """
    from lib.engine.store import DatasetError

    try:
        result = ingest([(path.name, path.read_bytes())])
    except RejectedFile as exc:
        raise DatasetError(str(exc)) from exc
    except OSError as exc:
        raise DatasetError(f"{path.name} cannot be read: {exc.strerror or exc}") from exc
    if result.report["rows_loaded"] == 0:
        reasons = result.report["quarantine_reasons"]
        first = next(iter(reasons), "no data rows")
        raise DatasetError(f"none of the {result.report['rows_in']:,} rows in {path.name} could be loaded "
                           f"(most common reason: {first})")
    reports, tactics = tables(result)
    return (reports, tactics, None), result.report


def write(result: IngestResult, out_dir: Path) -> None:
    """Write the canonical dataset, the quarantine and report.json into a folder."""
    out_dir.mkdir(parents=True, exist_ok=True)
    reports, tactics = tables(result)
    pq.write_table(reports, out_dir / "reports.parquet")
    pq.write_table(tactics, out_dir / "tactics.parquet")
    result.quarantine.astype("string").to_csv(out_dir / "quarantine.csv", index=False)
    (out_dir / "report.json").write_text(json.dumps(result.report, indent=2, default=str))


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ingest files into a dataset folder; exit 2 with a reason if one is rejected."""
    parser = argparse.ArgumentParser(prog="python -m lib.ingest", description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--format", default=AUTO, help="auto | canonical | uk-national | profile:NAME")
    parser.add_argument("--force", help="force name for extracts that do not carry one")
    parser.add_argument("--duplicates", default="set-aside", choices=DUPLICATE_CHOICES)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        files = []
        for path in args.files:
            try:
                files.append((path.name, path.read_bytes()))
            except OSError as exc:
                raise RejectedFile(f"{path} cannot be read: {exc.strerror or exc}") from exc
        result = ingest(files, fmt=args.format, duplicates=args.duplicates, force=args.force)
    except RejectedFile as exc:
        print(f"rejected: {exc}", file=sys.stderr)
        return 2
    write(result, args.out)
    r = result.report
    print(f"{r['rows_in']:,} rows in, {r['rows_loaded']:,} loaded, {r['rows_quarantined']:,} set aside "
          f"({r['detected_format']}) -> {args.out} in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
