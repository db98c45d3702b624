"""Uploads staged on disk: spooled under OSE_DATA_DIR/uploads, read in batches in the worker, kept as a folder.

The app's uploads take the command line's path (pipeline.load): the uploaded bytes are written to a
spool file (never copied into pandas), the worker reads them a batch at a time (or whole, where the
command line would) into a dataset folder, and the server keeps only the report and the folder's
name. The library saves and appends such a folder file by file, so a large upload never sits in
the server's memory as frames.

    OSE_DATA_DIR/uploads/upload-PID-TOKEN/          reports, tactics, quarantine.csv, report.json, origins
    OSE_DATA_DIR/uploads/upload-PID-TOKEN.files/    the spooled uploads while they are read (then removed)

A staged folder is removed when its StagedUpload is forgotten (the session's next upload, or the
session's end); one left by a server that died is removed by the next upload of any session.
"""
from __future__ import annotations

import io
import os
import secrets
import shutil
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from lib.ingest import worker
from lib.ingest.formats import ROW, ROWS
from lib.ingest.formats.lists import ITEMS
from lib.ingest.pipeline import AUTO, IngestResult, Progress, load, tables
from lib.model import files
from lib.model.paths import data_dir

PREFIX = "upload-"
SPOOL_SUFFIX = ".files"
REPORTS, TACTICS, QUARANTINE = "reports.parquet", "tactics.parquet", "quarantine.csv"
Upload = tuple[str, bytes | io.BytesIO]  # a name and its bytes, or a buffer (an UploadedFile)


def uploads_dir() -> Path:
    """Return where uploads are spooled and staged (OSE_DATA_DIR/uploads)."""
    return data_dir() / "uploads"


@dataclass(eq=False)
class StagedUpload:
    """An upload read into a dataset folder; the report (small) in memory, the tables on disk."""

    folder: Path
    report: dict
    _quarantine: pd.DataFrame | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        # The folder lives as long as this object: a session's next upload, or its end, removes it.
        weakref.finalize(self, shutil.rmtree, str(self.folder), True)

    @property
    def quarantine(self) -> pd.DataFrame:
        """Return the set-aside rows with their reasons and cells, as the whole-file result holds them."""
        if self._quarantine is None:
            self._quarantine = read_quarantine(self.folder / QUARANTINE)
        return self._quarantine

    @property
    def reports_loaded(self) -> int:
        """Return how many reports the folder holds (from the Parquet footer, without reading them)."""
        return pq.read_metadata(self.folder / REPORTS).num_rows

    def discard(self) -> None:
        """Remove the staged folder now."""
        shutil.rmtree(self.folder, ignore_errors=True)


def read_quarantine(path: Path) -> pd.DataFrame:
    """Read a quarantine.csv back as text, its counts as integers; cells as written ('NA' stays 'NA')."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    for col in (ROW, ROWS):
        if col in frame.columns:
            frame[col] = frame[col].astype("int64")
    if ITEMS in frame.columns:
        frame[ITEMS] = pd.to_numeric(frame[ITEMS].where(frame[ITEMS] != "")).astype("Int64")
    return frame.astype({c: "string" for c in frame.columns if c not in (ROW, ROWS, ITEMS)})


def tables_of(result: IngestResult | StagedUpload) -> tuple[pa.Table, pa.Table]:
    """Return an upload's reports and tactics as Arrow tables in the canonical layout."""
    if isinstance(result, StagedUpload):
        return pq.read_table(result.folder / REPORTS), pq.read_table(result.folder / TACTICS)
    return tables(result)


def _safe_name(name: str) -> str:
    """Return an uploaded file's name as a file name (a browser sends a base name; anything else is cut to one)."""
    base = Path(name.replace("\\", "/")).name
    return base if base not in ("", ".", "..") else "upload"


def content(data: bytes | io.BytesIO) -> bytes:
    """Return an upload's bytes (a copy of a buffer's)."""
    return data if isinstance(data, bytes) else data.getvalue()


def spool(files: Sequence[Upload], folder: Path) -> list[Path]:
    """Write each upload into its own sub-folder under its own name; return the paths, in order.

    An upload given as a buffer (Streamlit's UploadedFile) is written from its memory without a copy.
    """
    paths = []
    for i, (name, data) in enumerate(files):
        path = folder / str(i) / _safe_name(name)  # one folder each: two uploads may share a name
        path.parent.mkdir(parents=True)
        with open(path, "wb") as out:
            if isinstance(data, bytes | bytearray | memoryview):
                out.write(data)
            else:
                with data.getbuffer() as view:
                    out.write(view)
        paths.append(path)
    return paths


def remove_abandoned() -> list[Path]:
    """Remove staged and spooled folders of server processes that have died; return what went."""
    where = uploads_dir()
    gone: list[Path] = []
    if not where.is_dir():
        return gone
    for path in where.glob(f"{PREFIX}*"):
        pid = path.name[len(PREFIX):].split("-", 1)[0]
        if pid.isdigit() and not files.alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
            gone.append(path)
    return gone



def read_upload(files: Sequence[Upload], *, fmt: str = AUTO, force: str | None = None,
                duplicates: str = "set-aside", progress: Progress | None = None) -> StagedUpload:
    """Spool uploads to disk and read them in the worker (in batches where the command line would); return them staged.

    Raises RejectedFile as `ingest` does; the spooled files are removed in every case.
    """
    stem = _stem()
    inbox = uploads_dir() / (stem + SPOOL_SUFFIX)
    try:
        return _stage(spool(files, inbox), stem, fmt=fmt, force=force, duplicates=duplicates, progress=progress)
    finally:
        shutil.rmtree(inbox, ignore_errors=True)


def read_files(paths: Sequence[Path], *, fmt: str = AUTO, force: str | None = None,
               duplicates: str = "set-aside", progress: Progress | None = None) -> StagedUpload:
    """Read files already on disk as uploads are read (in the worker, in batches where it can be); stage them."""
    return _stage(list(paths), _stem(), fmt=fmt, force=force, duplicates=duplicates, progress=progress)


def _stem() -> str:
    """Return a new staged folder's name (naming this process, so a later upload can tell it was abandoned)."""
    remove_abandoned()
    uploads_dir().mkdir(parents=True, exist_ok=True)
    return f"{PREFIX}{os.getpid()}-{secrets.token_hex(6)}"


def _stage(paths: list[Path], stem: str, *, fmt: str, force: str | None, duplicates: str,
           progress: Progress | None) -> StagedUpload:
    """Read files into the staged folder `stem` in the worker; remove it (and the worker's leftovers) on failure."""
    folder = uploads_dir() / stem
    try:
        report = worker.run(load, paths, folder, fmt=fmt, duplicates=duplicates, force=force, origins=True,
                            progress=progress)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        for left in uploads_dir().glob(f".{stem}.*"):  # a worker stopped part-way leaves its temporary folder
            shutil.rmtree(left, ignore_errors=True)
        raise
    return StagedUpload(folder, report)
