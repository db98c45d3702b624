"""Reading uploaded files into text cells: CSV, Parquet or Excel, refusing anything unsafe with a clear reason.

`read_extract(name, data)` returns a `RawExtract`: every cell as text, data rows numbered from 1 in
`_row`, the file's name in `_file`, and rows that cannot be read (a malformed CSV row, an over-long
cell) already set aside with their reason. A whole file that cannot be read raises `RejectedFile`.
"""
from __future__ import annotations

import csv
import io
import os
import sys
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from lib.ingest.formats import FILE, ROW, ROWS, empty_quarantine


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
        mb = os.environ.get("OSE_MAX_UPLOAD_MB", "").strip()
        return cls(max_bytes=int(float(mb) * 1024 * 1024)) if mb else cls()


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
    from openpyxl import load_workbook  # only Excel uploads pay for the import

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise RejectedFile(f"{name} is not a readable Excel workbook ({type(exc).__name__})") from exc
    try:
        sheet = next((ws for ws in book.worksheets if ws.max_row and ws.max_row > 0), None)
        if sheet is None:
            raise RejectedFile(f"{name} has no sheet with data")
        if (sheet.max_column or 0) > limits.max_columns:
            raise RejectedFile(f"{name} has {sheet.max_column:,} columns; the limit is {limits.max_columns:,}")
        if (sheet.max_row or 0) > limits.max_rows:
            raise RejectedFile(f"{name} says it holds {sheet.max_row:,} rows; the limit is {limits.max_rows:,}")
        rows = sheet.iter_rows(values_only=True)
        header = next(rows, None)
        if header is None or not any(h is not None and str(h).strip() for h in header):
            raise RejectedFile(f"{name} has an empty header row")
        columns = _unique(["" if h is None else str(h) for h in header])
        width = len(columns)
        cells = [[_cell_text(v) for v in (list(r) + [None] * width)[:width]] for r in rows]
    finally:
        book.close()
    while cells and not any(cells[-1]):
        cells.pop()  # trailing empty rows Excel keeps in its dimensions
    frame = pd.DataFrame(cells, columns=columns, dtype="string")
    out = RawExtract(name, "Excel", None, columns, _numbered(frame, name))
    if len(book.worksheets) > 1:
        out.notes.append(f"{name}: read the first sheet with data ('{sheet.title}')")
    return _set_aside_long_cells(out, limits, could_hold_long_cell=True)


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
