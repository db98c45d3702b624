"""Reading an extract on disk in batches of rows, so memory stays flat however large the file is.

`open_batches(path, limits, columns=, header=)` makes the same decisions as `reading.read_extract`
(encoding, cp1252 lines of a mostly UTF-8 file, delimiter, header, limits, long cells, malformed
rows) from passes over the file in chunks, then `FileBatches.batches()` yields `RawExtract`s of at
most `batch_rows` rows each, numbered as the whole-file reader numbers them. A CSV is read with
Arrow's streaming reader; when that finds a malformed row the caller starts again with `exact=True`
(Python's csv module, row by row, as the whole-file reader does). Parquet streams by its batches.
Excel is not streamed (`NotStreamable`): calamine reads a sheet whole, and the workbook limits
(`XLSX_MAX_CELLS`, the upload size) bound it.
"""
from __future__ import annotations

import codecs
import csv
import os
import queue
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from lib.ingest.formats import FILE, ROW, ROWS, empty_quarantine
from lib.ingest.reading import (
    _ASCII,
    _CP1252_UNDEFINED,
    _PARQUET_BATCH_ROWS,
    _UTF8_MULTIBYTE,
    Header,
    Limits,
    RawExtract,
    RejectedFile,
    _as_text,
    _columns_first,
    _decode_per_line,
    _numbered,
    _set_aside_long_cells,
    _size_text,
    _text_frame,
    _unique,
    cp1252_note,
    open_parquet,
)

# Rows per batch (OSE_INGEST_BATCH_ROWS). Measured on 5,000,000 national-form rows (271 columns, about half
# of them read), one batch adapted while the next is read: 75,000 rows peaked at 0.84 GB, the command and its
# worker together, and 100,000 at 0.97 GB; before reading ahead, 250,000 rows peaked at 1.6 GB (1,000,000 rows).
BATCH_ROWS = 75_000
BATCH_ROWS_VARIABLE = "OSE_INGEST_BATCH_ROWS"
_CHUNK = 16 << 20  # bytes read at a time by the passes over a file
_HEAD = 65536


class NotStreamable(Exception):
    """This file is read whole (an Excel workbook)."""


class ReadExactly(Exception):
    """Arrow's reader met a malformed row: read this file again row by row, from the start."""

    def __init__(self, path: Path) -> None:
        super().__init__(str(path))
        self.path = path


def batch_rows() -> int:
    """Return the rows per batch: OSE_INGEST_BATCH_ROWS, else BATCH_ROWS."""
    value = os.environ.get(BATCH_ROWS_VARIABLE, "").strip()
    if not value:
        return BATCH_ROWS
    if not value.isdigit() or int(value) < 1:  # a setting's mistake is one line, not a traceback
        raise RejectedFile(f"{BATCH_ROWS_VARIABLE} must be a whole number of rows, at least 1, not {value!r}")
    return int(value)


@dataclass
class _Scan:
    """What one pass over a file's bytes learns: what `reading._encoding` and friends look at."""

    size: int = 0
    blank: bool = True  # only whitespace (or nothing)
    ascii: bool = True
    utf8: bool = True
    undefined: bool = False  # a byte cp1252 leaves undefined
    multibyte: bool = False  # among the non-ASCII bytes, a UTF-8 lead byte then a continuation byte
    long_line: bool = False  # a line longer than the cell limit, in bytes
    head: bytes = b""


def _scan(path: Path, limit: int, chunk: int = _CHUNK) -> _Scan:
    """Pass over a file once, in chunks, learning what the encoding and limit checks need."""
    out = _Scan()
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    run = 0  # bytes since the last line break
    previous = b""  # the last non-ASCII byte of the chunks before, so a pair across chunks is seen
    with open(path, "rb") as source:
        while data := source.read(chunk):
            if not out.head:
                out.head = data[:_HEAD]
            out.size += len(data)
            out.blank = out.blank and data.isspace()
            if out.ascii and not data.isascii():
                out.ascii = False
            if not out.ascii:
                if out.utf8:
                    try:
                        decoder.decode(data)
                    except UnicodeDecodeError:
                        out.utf8 = False
                if not out.undefined:
                    out.undefined = any(byte in data for byte in _CP1252_UNDEFINED)
                if not out.multibyte:
                    high = previous + data.translate(None, _ASCII)
                    out.multibyte = _UTF8_MULTIBYTE.search(high) is not None
                    previous = high[-1:]
            if not out.long_line:
                run, out.long_line = _long_line(data, run, limit)
    if not out.ascii and out.utf8:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            out.utf8 = False
    return out


def _long_line(data: bytes, run: int, limit: int) -> tuple[int, bool]:
    """Carry the length of the line in progress across a chunk; say whether a line is longer than `limit`.

    Within the chunk, a few long strides as `reading._has_line_longer_than` takes, not one step a line.
    """
    first = data.find(b"\n")
    if first < 0:
        run += len(data)
        return run, run > limit
    if run + first > limit:
        return 0, True
    pos, last = first + 1, data.rfind(b"\n")
    while last - pos > limit:
        brk = data.rfind(b"\n", pos, pos + limit + 1)
        if brk < 0:
            return 0, True
        pos = brk + 1
    run = len(data) - last - 1
    return run, run > limit


def _encoding(name: str, scan: _Scan) -> str:
    """Decide a CSV's encoding as `reading._encoding` does, from a scan."""
    if scan.head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return "utf-16"
    if b"\x00" in scan.head:
        raise RejectedFile(f"{name} is not a text file (it holds binary content), so it cannot be read as CSV")
    if scan.ascii or scan.utf8:
        return "utf-8"
    return "latin-1" if scan.undefined else "cp1252"


def _windows(path: Path, chunk: int = _CHUNK) -> Iterator[bytes]:
    """Yield a file's bytes in pieces that end at a line break (the last piece where the file ends)."""
    tail = b""
    with open(path, "rb") as source:
        while data := source.read(chunk):
            data = tail + data
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                tail = data
                continue
            tail = data[cut:]
            yield data[:cut]
    if tail:
        yield tail


def _transcode_mixed(path: Path, into: Path) -> list[int] | None:
    """Write a mostly UTF-8 file as UTF-8, its other lines read as cp1252; return their numbers (None: not mixed)."""
    lines: list[int] = []
    beyond_ascii = False
    line = 1
    with open(into, "wb") as out:
        for window in _windows(path):
            mixed = _decode_per_line(window)
            if mixed is None:  # no UTF-8 beyond ASCII here: as cp1252, unless a later window has some
                text, found = _per_line_plain(window)
            else:
                text, found = mixed
                beyond_ascii = True
            out.write(text)
            lines += [line + n - 1 for n in found]
            line += window.count(b"\n")
    return lines if beyond_ascii else None


def _per_line_plain(window: bytes) -> tuple[bytes, list[int]]:
    """Decode a window with no UTF-8 beyond ASCII: each line that is not UTF-8 read as cp1252 (or latin-1)."""
    pieces: list[bytes] = []
    found: list[int] = []
    if window.isascii():
        return window, found
    for number, raw in enumerate(window.split(b"\n"), start=1):
        try:
            raw.decode("utf-8")
            pieces.append(raw)
        except UnicodeDecodeError:
            found.append(number)
            codec = "latin-1" if any(b in raw for b in _CP1252_UNDEFINED) else "cp1252"
            pieces.append(raw.decode(codec).encode("utf-8"))
    return b"\n".join(pieces), found


def _transcode_utf16(path: Path, into: Path) -> None:
    """Write a UTF-16 file as UTF-8."""
    decoder = codecs.getincrementaldecoder("utf-16")()
    with open(path, "rb") as source, open(into, "wb") as out:
        while data := source.read(_CHUNK):
            out.write(decoder.decode(data).encode("utf-8"))
        out.write(decoder.decode(b"", final=True).encode("utf-8"))


def _first_line(path: Path) -> bytes:
    """Return a file's bytes up to its first line break (all of it when it has none, as the whole-file reader)."""
    pieces: list[bytes] = []
    with open(path, "rb") as source:
        while data := source.read(_HEAD):
            brk = data.find(b"\n")
            if brk >= 0:
                pieces.append(data[:brk])
                break
            pieces.append(data)
    return b"".join(pieces)


@dataclass
class FileBatches:
    """One extract on disk, read in batches: its header, how it is read, and what was learned."""

    path: Path
    name: str
    kind: str
    encoding: str | None
    columns: list[str]
    rows: int  # rows per batch
    limits: Limits
    notes: list[str] = field(default_factory=list)
    cp1252_lines: list[int] = field(default_factory=list)
    read: list[str] = field(default_factory=list)  # the columns read up front
    source: Path | None = None  # the bytes Arrow reads (a UTF-8 copy of a transcoded file)
    arrow_encoding: str = "utf8"
    delimiter: str = ","
    exact: bool = False
    long_cells: bool = False  # whether some line is longer than a cell may be: every cell is checked
    rows_in: int = 0  # data rows met so far (read or set aside as malformed)
    frame_rows: int = 0  # rows read into frames so far
    cleanup: list[Path] = field(default_factory=list)

    @property
    def every_column_read(self) -> bool:
        """Whether the batches hold every column of the header."""
        return len(self.read) == len(self.columns)

    @property
    def rest(self) -> list[str]:
        """The header's columns not read up front."""
        chosen = set(self.read)
        return [c for c in self.columns if c not in chosen]

    def close(self) -> None:
        """Remove any transcoded copy."""
        for path in self.cleanup:
            path.unlink(missing_ok=True)

    def batches(self) -> Iterator[tuple[RawExtract, pd.DataFrame]]:
        """Yield each batch as a RawExtract (its set-aside long-cell rows in `quarantine`) and its malformed rows."""
        if self.kind == "Parquet":
            frames = self._parquet_frames()
        elif self.exact:
            frames = self._exact_frames()
        else:
            frames = self._arrow_frames()
        made = False
        for frame, malformed in frames:
            made = True
            yield self._batch(frame), malformed
        if not made:
            yield self._batch(self._empty_frame()), empty_quarantine()

    def _batch(self, frame: pd.DataFrame) -> RawExtract:
        frame = _numbered(frame, self.name, self.frame_rows + 1) if ROW not in frame.columns else frame
        self.frame_rows += len(frame)
        raw = RawExtract(self.name, self.kind, self.encoding, self.columns, frame)
        if self.kind == "CSV":
            raw = _set_aside_long_cells(raw, self.limits, could_hold_long_cell=self.long_cells)
        elif self.kind != "Parquet":
            raise AssertionError(self.kind)
        return raw

    def _count(self, rows: int) -> None:
        self.rows_in += rows

    def check_rows(self) -> None:
        """Refuse the file, as the whole-file reader does, when it held more rows than the limit."""
        if self.kind == "CSV" and self.rows_in > self.limits.max_rows:
            raise RejectedFile(f"{self.name} holds {self.rows_in:,} rows; the limit is "
                               f"{self.limits.max_rows:,} (OSE_MAX_ROWS)")

    def _over(self) -> bool:
        return self.rows_in > self.limits.max_rows

    def _empty_frame(self) -> pd.DataFrame:
        if self.kind == "Parquet":
            source = pq.ParquetFile(self.path)
            empty = source.schema_arrow.empty_table()
            return pd.DataFrame({c: _as_text(empty.column(i)) for i, c in enumerate(self.columns)})
        if self.exact:
            return pd.DataFrame({c: pd.Series(dtype="string") for c in self.columns})
        return _text_frame(pa.table({c: pa.array([], pa.large_string()) for c in self.read}))

    def _reader(self, include: Sequence[str], bad: list[int]) -> pacsv.CSVStreamingReader:
        def invalid(row: pacsv.InvalidRow) -> str:
            bad.append(row.actual_columns)
            return "skip"

        assert self.source is not None
        return pacsv.open_csv(
            str(self.source),
            read_options=pacsv.ReadOptions(column_names=self.columns, skip_rows=1, encoding=self.arrow_encoding,
                                           block_size=self._block_size()),
            parse_options=pacsv.ParseOptions(delimiter=self.delimiter, invalid_row_handler=invalid),
            convert_options=pacsv.ConvertOptions(include_columns=list(include),
                                                 column_types={c: pa.large_string() for c in include},
                                                 strings_can_be_null=False, quoted_strings_can_be_null=False))

    def _block_size(self) -> int:
        """Bytes Arrow parses at a time: the streaming reader reads about 40 blocks ahead, so they are small.

        A block must hold a whole line: where a line may be longer than 1 MB, the whole-file reader's 8 MB.
        """
        return 8 << 20 if self.long_cells or self.limits.max_cell_chars >= (1 << 20) - 1024 else 1 << 20

    def _arrow_batches(self, include: Sequence[str]) -> Iterator[pa.Table]:
        """Yield tables of about `rows` rows of some columns; raise ReadExactly at a malformed row."""
        bad: list[int] = []
        pending: list[pa.RecordBatch] = []
        held = 0
        try:
            reader = self._reader(include, bad)
            for batch in reader:
                if bad:
                    raise ReadExactly(self.path)
                pending.append(batch)
                held += batch.num_rows
                if held >= self.rows:
                    table = pa.Table.from_batches(pending)
                    pending, held = [], 0
                    yield table
        except MemoryError:
            raise
        except (pa.ArrowInvalid, pa.ArrowException) as exc:
            raise ReadExactly(self.path) from exc
        if bad:
            raise ReadExactly(self.path)
        if pending:
            yield pa.Table.from_batches(pending)

    def _arrow_frames(self) -> Iterator[tuple[pd.DataFrame, pd.DataFrame]]:
        for table in _ahead(self._arrow_batches(self.read)):
            self._count(table.num_rows)
            if self._over():
                continue  # counted to the end, so the refusal says how many rows the file holds
            for start in range(0, table.num_rows, self.rows):
                yield _text_frame(table.slice(start, self.rows)), empty_quarantine()

    def _exact_frames(self) -> Iterator[tuple[pd.DataFrame, pd.DataFrame]]:
        """Read row by row as `reading._read_csv_exact` does, a batch at a time."""
        csv.field_size_limit(sys.maxsize)
        text_encoding = {"utf-8": "utf-8-sig", "utf-16": "utf-8-sig"}.get(self.encoding or "", self.encoding)
        width = len(self.columns)
        assert self.source is not None
        with open(self.source, encoding=text_encoding, newline="") as text:
            reader = csv.reader(text, delimiter=self.delimiter)
            next(reader, None)
            good: list[list[str]] = []
            rows: list[int] = []
            bad_rows: list[int] = []
            reasons: list[str] = []
            try:
                for number, record in enumerate(reader, start=1):
                    if len(record) == width:
                        good.append(record)
                        rows.append(number)
                    elif not any(cell.strip() for cell in record):
                        continue
                    else:
                        bad_rows.append(number)
                        reasons.append(f"has {len(record)} fields where the header has {width}")
                    if len(good) >= self.rows:
                        yield self._exact_frame(good, rows, bad_rows, reasons)
                        good, rows, bad_rows, reasons = [], [], [], []
            except csv.Error as exc:
                raise RejectedFile(f"{self.name} cannot be read as CSV: {exc}") from exc
            if good or bad_rows:
                yield self._exact_frame(good, rows, bad_rows, reasons)

    def _exact_frame(self, good: list[list[str]], rows: list[int], bad_rows: list[int],
                     reasons: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
        self._count(len(good) + len(bad_rows))
        frame = pd.DataFrame(good, columns=self.columns, dtype="string")
        frame.insert(0, ROW, np.array(rows, dtype="int64"))
        frame.insert(0, FILE, self.name)
        quarantine = pd.DataFrame({FILE: pd.Series([self.name] * len(bad_rows), dtype="string"),
                                   ROW: pd.Series(bad_rows, dtype="int64"), ROWS: 1,
                                   "reason": pd.Series(reasons, dtype="string")})
        return frame, quarantine

    def _parquet_frames(self) -> Iterator[tuple[pd.DataFrame, pd.DataFrame]]:
        source = pq.ParquetFile(self.path)
        pieces: list[pd.DataFrame] = []
        held = 0
        try:
            for batch in source.iter_batches(batch_size=min(_PARQUET_BATCH_ROWS, self.rows),
                                             use_pandas_metadata=False):
                self._count(batch.num_rows)
                if self._over():  # the metadata said otherwise: count what is really there
                    raise RejectedFile(f"{self.name} holds more than {self.limits.max_rows:,} rows; the limit is "
                                       f"{self.limits.max_rows:,} (OSE_MAX_ROWS)")
                pieces.append(pd.DataFrame({c: _as_text(pa.chunked_array([batch.column(i)]))
                                            for i, c in enumerate(self.columns)}))
                held += batch.num_rows
                if held >= self.rows:
                    yield pd.concat(pieces, ignore_index=True), empty_quarantine()
                    pieces, held = [], 0
        except MemoryError:
            raise
        except (pa.ArrowException, OSError) as exc:
            raise RejectedFile(f"{self.name} is not a readable Parquet file ({exc})") from exc
        if pieces:
            yield pd.concat(pieces, ignore_index=True), empty_quarantine()

    def cells(self, frame: pd.DataFrame, rows: Sequence[int] | np.ndarray) -> pd.DataFrame:
        """Return every cell of the given rows (by `_row`) of a batch frame, reading the other columns again."""
        picked = frame[frame[ROW].isin(set(rows))]
        if self.every_column_read or not len(picked):
            return picked
        rest = self.rest_cells(picked[ROW].to_numpy(dtype="int64"))
        rest.index = picked.index
        return pd.concat([picked, rest], axis=1)[[FILE, ROW, *self.columns]]

    def rest_cells(self, rows: np.ndarray) -> pd.DataFrame:
        """Return the columns not read up front for the given rows (numbers, in order), in one pass."""
        wanted = np.asarray(rows, dtype="int64") - 1  # Arrow numbers the rows it reads from 0, as `_row` from 1
        pieces: list[pa.Table] = []
        start = 0
        for table in self._arrow_batches(self.rest):
            end = start + table.num_rows
            lo, hi = np.searchsorted(wanted, [start, end])
            if hi > lo:
                pieces.append(table.take(pa.array(wanted[lo:hi] - start)))
            start = end
        if not pieces:
            return _text_frame(pa.table({c: pa.array([], pa.large_string()) for c in self.rest}))
        return _text_frame(pa.concat_tables(pieces))


def _ahead(items: Iterator[pa.Table]) -> Iterator[pa.Table]:
    """Yield what an iterator yields, taking the next item in a thread while the caller works on this one.

    Arrow parses only about 40 blocks ahead of its reader: without this, it would wait while a batch is
    adapted, and the batch would wait for it. One batch is held ahead, so memory holds two at most.
    """
    ready: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()
    end = object()

    def offer(item: object) -> bool:
        """Hand an item over; False once the caller has stopped taking them."""
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def take() -> None:
        try:
            for item in items:
                if not offer(item):
                    return
            offer(end)
        except BaseException as exc:  # handed to the caller, who raises it in its own thread
            offer(exc)

    worker = threading.Thread(target=take, name="ingest-read-ahead", daemon=True)
    worker.start()
    try:
        while True:
            item = ready.get()
            if item is end:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join()


@dataclass
class BatchSource:
    """The whole extract behind one batch frame (lib/ingest/formats Source): every cell of a row on demand."""

    file: FileBatches
    frame: pd.DataFrame

    @property
    def columns(self) -> list[str]:
        return self.file.columns

    def cells(self, rows) -> pd.DataFrame:
        """Return every cell of the given data rows of this batch."""
        return self.file.cells(self.frame, list(rows))


def open_batches(path: Path, limits: Limits, rows: int,
                 columns: Callable[[list[str]], Sequence[str] | None] | None = None,
                 header: Header | None = None, exact: bool = False) -> FileBatches:
    """Check a file on disk as `read_extract` would and make ready to read it in batches of `rows` rows."""
    name = path.name
    size = path.stat().st_size
    if size > limits.max_bytes:
        raise RejectedFile(f"{name} is {_size_text(size)}; the limit is {_size_text(limits.max_bytes)}")
    with open(path, "rb") as source:
        magic = source.read(4)
    check = header or (lambda names: None)
    if magic == b"PAR1":
        return _open_parquet(path, limits, rows, check)
    if magic == b"PK\x03\x04" or name.lower().endswith((".parquet", ".xlsx", ".xls")):
        raise NotStreamable(name)  # Excel, or a file whose content is not what its name says: read whole
    scan = _scan(path, limits.max_cell_chars)
    if scan.blank:
        raise RejectedFile(f"{name} is empty")
    return _open_csv(path, limits, rows, scan, columns, check, exact)


def _open_parquet(path: Path, limits: Limits, rows: int, header: Header) -> FileBatches:
    name = path.name
    _, columns = open_parquet(name, path, limits, header)
    return FileBatches(path, name, "Parquet", None, columns, rows, limits, read=list(columns))


def _open_csv(path: Path, limits: Limits, rows: int, scan: _Scan,
              wanted: Callable[[list[str]], Sequence[str] | None] | None, header_check: Header,
              exact: bool) -> FileBatches:
    name = path.name
    encoding = _encoding(name, scan)
    out = FileBatches(path, name, "CSV", encoding, [], rows, limits, source=path, exact=exact)
    if encoding in ("cp1252", "latin-1") and scan.multibyte:  # else no line can be UTF-8 beyond ASCII
        copy = _temporary(path)
        out.cleanup.append(copy)
        lines = _transcode_mixed(path, copy)
        if lines is not None:
            out.source, out.cp1252_lines, encoding = copy, lines, "utf-8"
            out.encoding = encoding
            scan = _scan(copy, limits.max_cell_chars)  # limits judge the bytes read, as the whole-file reader's
        else:
            copy.unlink()
            out.cleanup.clear()
    elif encoding == "utf-16":
        copy = _temporary(path)
        out.cleanup.append(copy)
        _transcode_utf16(path, copy)
        out.source = copy
    try:
        line = _first_line(out.source)
        codec = {"utf-8": "utf-8-sig", "utf-16": "utf-8"}.get(encoding, encoding)
        header_line = line.decode(codec, errors="ignore")
        try:
            out.delimiter = csv.Sniffer().sniff(header_line, delimiters=",;\t|").delimiter
        except csv.Error:
            out.delimiter = ","
        if header_line.count(out.delimiter) + 1 > limits.max_columns:
            raise RejectedFile(f"{name} has {header_line.count(out.delimiter) + 1:,} columns; "
                               f"the limit is {limits.max_columns:,}")
        names = next(csv.reader([header_line.rstrip("\r")], delimiter=out.delimiter))
        out.columns = _unique(names)
        if not any(c.strip() for c in names):
            raise RejectedFile(f"{name} has an empty header row")
        header_check(out.columns)
        out.arrow_encoding = ("cp1252" if encoding == "cp1252" else "latin1" if encoding == "latin-1" else "utf8")
        out.long_cells = scan.long_line
        out.read = (out.columns if exact or out.long_cells or wanted is None
                    else _columns_first(out.columns, wanted))
    except BaseException:
        out.close()
        raise
    if encoding != "utf-8":
        out.notes.append(f"{name}: read as {encoding}")
    if out.cp1252_lines:
        out.notes.append(cp1252_note(name, out.cp1252_lines))
    return out


def _temporary(path: Path) -> Path:
    """Return a new temporary file's path for a UTF-8 copy of `path` (private to this user)."""
    handle, name = tempfile.mkstemp(prefix="ose-utf8-", suffix=".csv")
    os.close(handle)
    return Path(name)
