"""Files are written whole or not at all (lib/model/files.py)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lib.model.files import remove_stale, write_whole, write_whole_folder


class Interrupted(Exception):
    """Raised by a writer half-way through."""


def _write_half_then_raise(tmp: Path) -> None:
    with open(tmp, "wb") as f:
        f.write(b"PAR1" + b"x" * 1000)
    raise Interrupted


def test_whole_file_appears_after_a_clean_write(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "t.parquet"
    with write_whole(path) as tmp:
        assert tmp.parent == path.parent and tmp.name.startswith(".t.parquet.")
        pq.write_table(pa.table({"a": [1, 2, 3]}), tmp)
        assert not path.exists()  # nothing under the final name until the writer is done
    assert pq.read_table(path).column("a").to_pylist() == [1, 2, 3]
    assert os.listdir(path.parent) == ["t.parquet"]


def test_writer_raising_half_way_leaves_no_file_and_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    with pytest.raises(Interrupted), write_whole(path) as tmp:
        _write_half_then_raise(tmp)
    assert os.listdir(tmp_path) == []


def test_writer_raising_half_way_leaves_an_existing_file_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"a": [7]}), path)
    before = path.read_bytes()
    with pytest.raises(Interrupted), write_whole(path) as tmp:
        _write_half_then_raise(tmp)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["t.parquet"]


def test_folder_appears_with_all_its_files_or_not_at_all(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    with pytest.raises(Interrupted), write_whole_folder(out) as tmp:
        pq.write_table(pa.table({"a": [1]}), tmp / "reports.parquet")
        _write_half_then_raise(tmp / "tactics.parquet")
    assert os.listdir(tmp_path) == []
    with write_whole_folder(out) as tmp:
        pq.write_table(pa.table({"a": [1]}), tmp / "reports.parquet")
        pq.write_table(pa.table({"b": [2]}), tmp / "tactics.parquet")
        assert not out.exists()
    assert sorted(os.listdir(out)) == ["reports.parquet", "tactics.parquet"]
    assert os.listdir(tmp_path) == ["ds"]


def test_folder_rewrite_keeps_other_files_and_failure_changes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    pq.write_table(pa.table({"a": [1]}), out / "reports.parquet")
    before = (out / "reports.parquet").read_bytes()
    with pytest.raises(Interrupted), write_whole_folder(out) as tmp:
        _write_half_then_raise(tmp / "reports.parquet")
    assert (out / "reports.parquet").read_bytes() == before
    with write_whole_folder(out) as tmp:
        pq.write_table(pa.table({"a": [5, 6]}), tmp / "reports.parquet")
    assert pq.read_table(out / "reports.parquet").column("a").to_pylist() == [5, 6]
    assert (out / "notes.txt").read_text() == "mine"
    assert os.listdir(tmp_path) == ["ds"]


def test_temporaries_of_a_killed_writer_are_removed_by_the_next_write(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    pid = int(dead.stdout)  # that process has exited: its temporaries are stale
    (tmp_path / f".t.csv.{pid}-abcd.part").write_text("half")
    (tmp_path / f".ds.{pid}-abcd.part").mkdir()
    (tmp_path / f".t.csv.{os.getpid()}-abcd.part").write_text("a live writer's")  # left alone
    with write_whole(tmp_path / "t.csv") as tmp:
        tmp.write_text("a\n1\n")
    with write_whole_folder(tmp_path / "ds") as tmp:
        (tmp / "x.json").write_text("{}")
    assert sorted(os.listdir(tmp_path)) == [f".t.csv.{os.getpid()}-abcd.part", "ds", "t.csv"]
    assert remove_stale(tmp_path / "t.csv") == []
