"""Reading uploaded files into text cells: CSV, Parquet or Excel, refusing anything unsafe with a clear reason.

`read_extract(name, data)` returns a `RawExtract`: every cell as text, data rows numbered from 1 in
`_row`, the file's name in `_file`, and rows that cannot be read (a malformed CSV row, an over-long
cell) already set aside with their reason. A whole file that cannot be read raises `RejectedFile`.
Compressed files are judged before they are decompressed: a Parquet file by the sizes in its footer,
an Excel workbook by its zip directory, its rows counted as its sheets stream by; the header is
checked (`header=`) before the rows are decoded.
"""
from __future__ import annotations

import csv
import io
import re
import sys
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from lib.ingest.formats import FILE, ROW, ROWS, empty_quarantine
from lib.model.settings import settings


class RejectedFile(Exception):
    """A whole file cannot be read; the message is one line a user can act on."""


@dataclass(frozen=True)
class Limits:
    """What one upload may hold before it is refused, so no file can take the server down."""

    max_bytes: int = 1 << 30
    max_columns: int = 2_000
    max_rows: int = 20_000_000
    max_cell_chars: int = 1_000_000
    max_expanded_bytes: int = 4 << 30  # what a compressed file (Parquet, Excel) may hold once decompressed

    @classmethod
    def from_env(cls) -> Limits:
        """Read OSE_MAX_UPLOAD_MB, OSE_MAX_EXPANDED_MB and OSE_MAX_ROWS."""
        current = settings()
        return cls(max_bytes=current.max_upload_bytes, max_rows=current.max_rows,
                   max_expanded_bytes=current.max_expanded_bytes)


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
    # Lines of a mostly UTF-8 file that were not UTF-8 and were read as cp1252 (file lines, the header is 1).
    cp1252_lines: list[int] = field(default_factory=list)

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


Header = Callable[[list[str]], object]


def read_extract(name: str, data: bytes, limits: Limits = Limits(),
                 columns: Callable[[list[str]], Sequence[str] | None] | None = None,
                 header: Header | None = None) -> RawExtract:
    """Read one uploaded file into text cells, refusing anything unsafe with a clear reason.

    `columns`, given the header, may name the only columns needed up front (None: all). A CSV is
    then read that far; the other columns are read only if a set-aside row needs its cells.
    `header`, given the header, may refuse the file (raise RejectedFile) before its rows are decoded.
    """
    if len(data) > limits.max_bytes:
        raise RejectedFile(f"{name} is {_size_text(len(data))}; the limit is {_size_text(limits.max_bytes)}")
    if not data or data.isspace():  # as `not data.strip()`, without copying the file
        raise RejectedFile(f"{name} is empty")
    check = header or (lambda names: None)
    if data[:4] == b"PAR1":
        return _read_parquet(name, data, limits, check)
    if data[:4] == b"PK\x03\x04":
        return _read_xlsx(name, data, limits, check)
    if name.lower().endswith((".parquet", ".xlsx", ".xls")):
        kind = "Parquet" if name.lower().endswith(".parquet") else "Excel"
        raise RejectedFile(f"{name} is not a readable {kind} file (its content is not {kind})")
    return _read_csv(name, data, limits, columns, check)


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


# A byte that starts a UTF-8 multi-byte character, followed by a continuation byte. It is looked
# for among the file's non-ASCII bytes alone (few, and found fast): where they never pair so, the
# file holds no UTF-8 beyond ASCII and is read whole in its Windows encoding, as fast as before.
_UTF8_MULTIBYTE = re.compile(rb"[\xc2-\xf4][\x80-\xbf]")
_ASCII = bytes(range(0x80))
_WINDOW = 1 << 20  # the most bytes decoded at a time; after a line that is not UTF-8, a few KB


def _decode_per_line(data: bytes) -> tuple[bytes, list[int]] | None:
    """Decode a file that is mostly UTF-8 line by line: its UTF-8 lines as they are, the others as cp1252.

    Returns the file as UTF-8 bytes (its UTF-8 lines byte for byte) and the numbers of the lines read
    as cp1252 (the header is line 1), or None when no UTF-8 line holds more than ASCII: the whole file
    is then in its Windows encoding. Lines are found on the newline byte, the same in both encodings,
    so a quoted cell spanning lines stays whole whichever way each of its lines is decoded.
    """
    if not _UTF8_MULTIBYTE.search(data.translate(None, _ASCII)):  # pairs across lines only over-include
        return None
    view, size = memoryview(data), len(data)
    pieces: list[str] = []
    lines: list[int] = []
    utf8_beyond_ascii = False  # whether any line read as UTF-8 holds more than ASCII
    pos = counted = 0  # pos is always at the start of a line
    window = _WINDOW
    line = 1  # the number of the line at `counted`
    while pos < size:
        # Whole lines at a time, about a window's worth: a failed attempt costs at most that much.
        cut = data.rfind(b"\n", pos, pos + window) + 1 or data.find(b"\n", pos) + 1 or size
        try:  # the decoder stops at the first byte that is not UTF-8, in C
            text = str(view[pos:cut], "utf-8")
            pieces.append(text)
            utf8_beyond_ascii = utf8_beyond_ascii or not text.isascii()
            pos = cut
            window = min(window * 2, _WINDOW)
            continue
        except UnicodeDecodeError as exc:
            bad = pos + exc.start
            # The decoder sizes its output to its input: after a line that is not UTF-8, where
            # more are likely (a file mostly in cp1252), try small windows, growing as they pass.
            window = 4096
        brk = data.rfind(b"\n", pos, bad)
        start = brk + 1 if brk >= 0 else pos
        end = data.find(b"\n", bad)
        end = size if end < 0 else end
        pieces.append(str(view[pos:start], "utf-8"))  # whole lines before the bad byte: valid UTF-8
        utf8_beyond_ascii = utf8_beyond_ascii or not pieces[-1].isascii()
        line += data.count(b"\n", counted, start)
        counted = start
        lines.append(line)
        raw = data[start:end]
        # latin-1 reads the five bytes cp1252 leaves undefined, as the whole-file reader does.
        pieces.append(raw.decode("latin-1" if any(b in raw for b in _CP1252_UNDEFINED) else "cp1252"))
        pos = end
    if not utf8_beyond_ascii:
        return None
    return "".join(pieces).encode("utf-8"), lines


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
              wanted: Callable[[list[str]], Sequence[str] | None] | None = None,
              header_check: Header = lambda names: None) -> RawExtract:
    encoding = _encoding(name, data)
    cp1252_lines: list[int] = []
    if encoding in ("cp1252", "latin-1"):  # only when the whole file is not UTF-8: pure UTF-8 pays nothing
        mixed = _decode_per_line(data)
        if mixed is not None:
            data, cp1252_lines = mixed
            encoding = "utf-8"
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
    header_check(columns)
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
    rows = len(frame) + int(quarantine[ROWS].sum())
    if rows > limits.max_rows:
        raise RejectedFile(f"{name} holds {rows:,} rows; the limit is {limits.max_rows:,} (OSE_MAX_ROWS)")
    out = RawExtract(name, "CSV", encoding, columns, frame, quarantine=quarantine, read_rest=read_rest,
                     cp1252_lines=cp1252_lines)
    if encoding != "utf-8":
        out.notes.append(f"{name}: read as {encoding}")
    if cp1252_lines:
        out.notes.append(cp1252_note(name, cp1252_lines))
    return _set_aside_long_cells(out, limits, could_hold_long_cell=could_hold_long_cell)


def cp1252_note(name: str, lines: Sequence[int], shown: int = 10) -> str:
    """Say which lines of a mostly UTF-8 file were read as cp1252."""
    listed = ", ".join(f"{n:,}" for n in lines[:shown]) + (" ..." if len(lines) > shown else "")
    return (f"{name}: {len(lines):,} line(s) were not UTF-8 and were read as cp1252 (line {listed}; the header "
            "is line 1): check their accented letters; every other line was read as UTF-8")


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
    except MemoryError:  # Arrow's included: not a malformed row, so no slower reader either
        raise
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


# Rows decoded at a time: the text of one batch is made before the next is decoded.
_PARQUET_BATCH_ROWS = 65_536


def _gb_text(n: int) -> str:
    return f"{n / 1024 ** 3:,.1f} GB" if n >= 1024 ** 3 else _size_text(n)


def open_parquet(name: str, where: pa.BufferReader | Path, limits: Limits,
                 header: Header) -> tuple[pq.ParquetFile, list[str]]:
    """Open a Parquet file and check its footer (columns, rows, expansion) and header before any row is decoded."""
    try:
        source = pq.ParquetFile(where)
        meta = source.metadata
        names = source.schema_arrow.names
    except (pa.ArrowException, OSError) as exc:
        raise RejectedFile(f"{name} is not a readable Parquet file ({exc})") from exc
    if meta.num_columns > limits.max_columns:
        raise RejectedFile(f"{name} has {meta.num_columns:,} columns; the limit is {limits.max_columns:,}")
    if meta.num_rows > limits.max_rows:
        raise RejectedFile(f"{name} says it holds {meta.num_rows:,} rows; the limit is {limits.max_rows:,} "
                           "(OSE_MAX_ROWS)")
    check_parquet_expansion(name, meta, limits)
    columns = _unique(names)
    header(columns)
    return source, columns


def _read_parquet(name: str, data: bytes, limits: Limits, header: Header) -> RawExtract:
    source, columns = open_parquet(name, pa.BufferReader(data), limits, header)
    pieces = []
    rows = 0
    try:
        for batch in source.iter_batches(batch_size=_PARQUET_BATCH_ROWS, use_pandas_metadata=False):
            rows += batch.num_rows
            if rows > limits.max_rows:  # the metadata said otherwise: count what is really there
                raise RejectedFile(f"{name} holds more than {limits.max_rows:,} rows; the limit is "
                                   f"{limits.max_rows:,} (OSE_MAX_ROWS)")
            pieces.append(pd.DataFrame({c: _as_text(pa.chunked_array([batch.column(i)]))
                                        for i, c in enumerate(columns)}))
        if not pieces:
            empty = source.schema_arrow.empty_table()
            pieces.append(pd.DataFrame({c: _as_text(empty.column(i)) for i, c in enumerate(columns)}))
    except MemoryError:  # Arrow's included: the file is readable, the budget too small (lib/ingest/worker.py)
        raise
    except (pa.ArrowException, OSError) as exc:
        raise RejectedFile(f"{name} is not a readable Parquet file ({exc})") from exc
    frame = pd.concat(pieces, ignore_index=True) if len(pieces) > 1 else pieces[0]
    return RawExtract(name, "Parquet", None, columns, _numbered(frame, name))


def check_parquet_expansion(name: str, meta: pq.FileMetaData, limits: Limits) -> None:
    """Refuse a Parquet file whose column chunks expand past the limits, from its footer alone.

    The footer gives each column chunk's size once decompressed: a few KB of zstd can stand for
    gigabytes of zeros. A chunk holding more bytes per row than a cell may hold has cells too long.
    """
    chunks = [(meta.row_group(i).num_rows, meta.row_group(i).column(j))
              for i in range(meta.num_row_groups) for j in range(meta.num_columns)]
    expanded = sum(chunk.total_uncompressed_size for _, chunk in chunks)
    if expanded > limits.max_expanded_bytes:
        raise RejectedFile(f"{name} expands to {_gb_text(expanded)} when decompressed; the limit is "
                           f"{_gb_text(limits.max_expanded_bytes)} (OSE_MAX_EXPANDED_MB)")
    for rows, chunk in chunks:
        if rows and chunk.total_uncompressed_size / rows > limits.max_cell_chars:
            raise RejectedFile(f"{name}: column '{chunk.path_in_schema[:40]}' holds cells of about "
                               f"{_size_text(chunk.total_uncompressed_size // rows)} each; the limit is "
                               f"{limits.max_cell_chars:,} characters")


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


def _read_xlsx(name: str, data: bytes, limits: Limits, header_check: Header) -> RawExtract:
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
    header_check(columns)
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
_XLSX_ANY_R = re.compile(rb"\sr\s*=")  # an `r` attribute anywhere
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
    if not prefixed and not placed_rows and not placed and not _XLSX_ANY_R.search(xml):
        # Nothing is placed (rows written without `r`): counted, not parsed, whatever space ends the tag name.
        ends = (b" ", b">", b"/", b"\t", b"\n", b"\r")
        return 0, 0, sum(xml.count(b"<row" + end) for end in ends), sum(xml.count(b"<c" + end) for end in ends)
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
        check_zip_expansion(name, zf.infolist(), limits)
        expanded = 0
        for info in zf.infolist():  # every part: a sheet may be stored under any name
            rows = columns = unplaced_rows = unplaced_cells = 0
            with zf.open(info) as part:
                tail = b""
                while chunk := part.read(_XML_CHUNK):
                    # The declared sizes were checked; what the parts really hold is counted too.
                    expanded += len(chunk)
                    if expanded > limits.max_expanded_bytes:
                        raise RejectedFile(f"{name} expands to more than {_gb_text(limits.max_expanded_bytes)} "
                                           "when decompressed; the limit is "
                                           f"{_gb_text(limits.max_expanded_bytes)} (OSE_MAX_EXPANDED_MB)")
                    text = tail + chunk
                    cut = text.rfind(b"<")  # a start tag holds no '<': every one before `cut` is whole
                    cut = len(text) if cut <= 0 else cut
                    text, tail = text[:cut], text[cut:]
                    row, column, more_rows, more_cells = _xml_extent(text)
                    rows, columns = max(rows, row), max(columns, column)
                    unplaced_rows, unplaced_cells = unplaced_rows + more_rows, unplaced_cells + more_cells
                    # Rows are counted as the sheet streams by (a <dimension> element can say anything).
                    if rows + unplaced_rows > limits.max_rows:
                        raise RejectedFile(f"{name} holds more than {limits.max_rows:,} rows; the limit is "
                                           f"{limits.max_rows:,} (OSE_MAX_ROWS)")
                text = tail  # the last tag
                row, column, more_rows, more_cells = _xml_extent(text)
            rows = max(rows, row) + unplaced_rows + more_rows
            columns = max(columns, column) + unplaced_cells + more_cells
            if columns > limits.max_columns:
                raise RejectedFile(f"{name} has {columns:,} columns; the limit is {limits.max_columns:,}")
            if rows > limits.max_rows:
                raise RejectedFile(f"{name} says it holds {rows:,} rows; the limit is {limits.max_rows:,} "
                                   "(OSE_MAX_ROWS)")
            if rows * columns > XLSX_MAX_CELLS:
                raise RejectedFile(f"{name} spans {rows:,} rows x {columns:,} columns; the limit is "
                                   f"{XLSX_MAX_CELLS:,} cells")


# Parts of a real workbook compress 5 to 30 times; past this, a large part is a zip bomb.
ZIP_MAX_RATIO = 100
ZIP_RATIO_FROM = 32 << 20  # a part smaller than this (once decompressed) is harmless whatever its ratio


def check_zip_expansion(name: str, members: Sequence[zipfile.ZipInfo], limits: Limits) -> None:
    """Refuse a workbook whose parts declare more bytes than the limit, or a large part compressed like a bomb."""
    declared = sum(info.file_size for info in members)
    if declared > limits.max_expanded_bytes:
        raise RejectedFile(f"{name} expands to {_gb_text(declared)} when decompressed; the limit is "
                           f"{_gb_text(limits.max_expanded_bytes)} (OSE_MAX_EXPANDED_MB)")
    for info in members:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > ZIP_RATIO_FROM and ratio > ZIP_MAX_RATIO:
            raise RejectedFile(f"{name}: its part {info.filename[:60]} expands {ratio:,.0f} times (to "
                               f"{_gb_text(info.file_size)}); a workbook's parts expand at most "
                               f"{ZIP_MAX_RATIO} times")


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
