"""Uploads staged on disk (lib/ingest/staging.py): read in batches, saved and appended as the whole-file path does.

A national-form CSV of 4,000 reports with drift (bad dates, stray values, empty rows) read 1,000 rows at
a time crosses several batches; the dataset the library stores from it, the set-aside rows with their
reasons and cells, and the load record must be those of the same file read whole.
"""
from __future__ import annotations

import gc
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from lib import ingest
from lib.ingest import library, staging
from lib.ingest.batches import BATCH_ROWS_VARIABLE
from lib.ingest.reading import RejectedFile
from tests.conftest import FIXTURES

ROOT = Path(__file__).resolve().parents[1]
MET = "Metropolitan Police"


@pytest.fixture(autouse=True)
def small_batches(monkeypatch, tmp_path):
    monkeypatch.setenv("OSE_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv(BATCH_ROWS_VARIABLE, "1000")  # the worker inherits it


def national(path: Path, reports: int, *, drift: bool = True, seed: int = 3) -> Path:
    done = subprocess.run([sys.executable, "-m", "lib.synth.uk_national", "--reports", str(reports), "--seed",
                           str(seed), "--out", str(path), *(["--drift"] if drift else [])],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return path


@pytest.fixture(scope="module")
def drifted(tmp_path_factory) -> Path:
    return national(tmp_path_factory.mktemp("national") / "met.csv", 4000)


def stored(path: Path) -> dict:
    """Return what a saved dataset version holds, as the engine and the Data page read it."""
    loads = json.loads((path / library.PROVENANCE).read_text())
    for load in loads:
        load.pop("loaded_at")
    reports, tactics = pq.read_table(path / library.REPORTS), pq.read_table(path / library.TACTICS)
    return {"reports": reports.to_pylist(), "tactics": tactics.to_pylist(), "reports_types": reports.schema.types,
            "tactics_types": tactics.schema.types, "quarantine": (path / library.QUARANTINE).read_text(),
            "provenance": loads}


def without_time(report: dict) -> dict:
    return {k: v for k, v in report.items() if k != "ingested_at"}


def test_an_upload_read_in_batches_is_saved_as_the_whole_file_path_saves_it(drifted):
    data = drifted.read_bytes()
    whole = ingest.ingest([("met.csv", data)], force=MET)
    staged = staging.read_upload([("met.csv", io.BytesIO(data))], force=MET)
    # Read in batches indeed: the batch writer leaves one row group per batch of 1,000 rows.
    assert pq.ParquetFile(staged.folder / library.REPORTS).num_row_groups >= 3
    assert whole.report["rows_quarantined"] > 0 and whole.report["rows_in"] >= 4000
    assert without_time(staged.report) == without_time(whole.report)
    assert staged.quarantine.astype("string").to_csv(index=False) == whole.quarantine.astype("string").to_csv(
        index=False)
    assert stored(library.save("batched", staged)) == stored(library.save("whole", whole))


def canonical(rows: range) -> bytes:
    """Return canonical CSV rows R00000.. (the fixture's rows repeated), every 97th with a date that is none."""
    header, *fixture = (FIXTURES / "small_canonical.csv").read_text().splitlines()
    lines = [header]
    for i in rows:
        cells = fixture[i % len(fixture)].split(",")
        cells[0] = f"R{i:05d}"
        cells[2] = "never" if i % 97 == 0 else cells[2]
        lines.append(",".join(cells))
    return ("\n".join(lines) + "\n").encode()


def test_appending_an_upload_read_in_batches_sets_aside_what_the_dataset_holds():
    first, later = canonical(range(2500)), canonical(range(1500, 5000))  # 1,000 reports in both
    outcomes = []
    for upload in (ingest.ingest([("q2.csv", later)]), staging.read_upload([("q2.csv", io.BytesIO(later))])):
        library.save("Kent", ingest.ingest([("q1.csv", first)]))
        record = library.append("Kent", upload)
        record.pop("loaded_at")
        assert record["already_in_dataset"] > 900 and record["rows_quarantined"] > record["already_in_dataset"]
        outcomes.append((record, stored(library.path_of("Kent"))))
        library.delete("Kent")
    assert pq.ParquetFile(upload.folder / library.REPORTS).num_row_groups >= 3  # the second was read in batches
    assert outcomes[1] == outcomes[0]


def test_a_parquet_upload_read_in_batches_is_saved_as_read_whole():
    import pandas as pd

    sink = io.BytesIO()
    pd.read_csv(io.BytesIO(canonical(range(3500))), dtype=str).to_parquet(sink, row_group_size=500)
    whole = ingest.ingest([("big.parquet", sink.getvalue())])
    staged = staging.read_upload([("big.parquet", sink)])
    assert pq.ParquetFile(staged.folder / library.REPORTS).num_row_groups >= 3
    assert whole.report["rows_quarantined"] == 37
    assert without_time(staged.report) == without_time(whole.report)
    assert stored(library.save("batched", staged)) == stored(library.save("whole", whole))


def test_excel_and_several_files_take_the_whole_file_path_with_the_same_outcome(tmp_path):
    from openpyxl import Workbook

    book = Workbook()
    for row in (FIXTURES / "small_canonical.csv").read_text().splitlines():
        book.active.append(row.split(","))
    book.save(tmp_path / "small.xlsx")
    files = [("small.xlsx", (tmp_path / "small.xlsx").read_bytes()),
             ("small.csv", (FIXTURES / "small_canonical.csv").read_bytes())]
    whole = ingest.ingest(files)
    staged = staging.read_upload([(name, io.BytesIO(data)) for name, data in files])
    assert without_time(staged.report) == without_time(whole.report)
    assert stored(library.save("batched", staged)) == stored(library.save("whole", whole))


def test_the_spooled_files_go_once_read_and_the_staged_folder_with_its_upload():
    staged = staging.read_upload([("small.csv", (FIXTURES / "small_canonical.csv").read_bytes())])
    assert [p.name for p in staging.uploads_dir().iterdir()] == [staged.folder.name]
    assert staged.report["rows_loaded"] == 10
    del staged
    gc.collect()
    assert list(staging.uploads_dir().iterdir()) == []


def test_a_refused_upload_leaves_nothing_behind():
    with pytest.raises(RejectedFile, match="empty.csv is empty"):
        staging.read_upload([("empty.csv", b"")])
    assert list(staging.uploads_dir().iterdir()) == []


def test_a_folder_left_by_a_server_that_died_is_removed_by_the_next_upload():
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    left = staging.uploads_dir() / f"{staging.PREFIX}{dead.stdout.strip()}-abc123"
    (left / "0").mkdir(parents=True)
    staged = staging.read_upload([("small.csv", (FIXTURES / "small_canonical.csv").read_bytes())])
    assert not left.exists() and staged.folder.exists()


def test_uploads_named_alike_or_with_a_path_are_spooled_apart(tmp_path):
    paths = staging.spool([("q.csv", b"a"), ("q.csv", io.BytesIO(b"b")), ("../../x/evil.csv", b"c")], tmp_path)
    assert [p.read_bytes() for p in paths] == [b"a", b"b", b"c"]
    assert [p.name for p in paths] == ["q.csv", "q.csv", "evil.csv"]
    assert all(p.resolve().is_relative_to(tmp_path.resolve()) for p in paths)


def peak_mb(path: Path, var: Path) -> tuple[float, float]:
    """Read and save a file through the Data page's code path in a fresh process; return its peak RSS and its
    worker's, in MB (tests/memory.py)."""
    done = subprocess.run([sys.executable, "-m", "tests.memory", "after", str(path), MET], cwd=ROOT,
                          capture_output=True, text=True,
                          env={**os.environ, BATCH_ROWS_VARIABLE: "10000", "OSE_DATA_DIR": str(var)})
    assert done.returncode == 0, done.stderr
    peaks = json.loads(done.stdout)
    assert peaks["worker_mb"] > 0  # the worker was seen
    return peaks["server_mb"], peaks["worker_mb"]


@pytest.mark.slow
def test_memory_of_the_server_and_its_worker_grows_well_under_the_file(tmp_path):
    smaller = national(tmp_path / "50k.csv", 50_000, drift=False, seed=5)
    larger = national(tmp_path / "250k.csv", 250_000, drift=False, seed=5)
    small_server, small_worker = peak_mb(smaller, tmp_path / "var-small")
    large_server, large_worker = peak_mb(larger, tmp_path / "var-large")
    added_mb = (larger.stat().st_size - smaller.stat().st_size) / 2 ** 20
    # The server holds the upload's bytes (Streamlit's UploadedFile does) and nothing more that grows with it:
    # read whole, it also held a copy of the bytes and the frames the worker sent back (at 1,000,000 national
    # rows, 1.3 GB against 0.7 GB staged). The worker reads in batches of 10,000 rows: 200,000 more rows (about
    # 130 MB of CSV) moved its peak by about 30 MB (the allocator keeps some freed memory).
    assert large_server - small_server < 1.25 * added_mb, (small_server, large_server, added_mb)
    assert large_worker - small_worker < 0.5 * added_mb, (small_worker, large_worker, added_mb)
