"""Fault injection on the dataset library, through the real command (`python -m lib.library`).

Many processes appending at once, two saves of one new name, kill -9 at random points of an append,
a corrupt version planted on disk, readers during appends. Each checks that nothing is lost: every
row of a writer that reported success is present exactly once, rows of a writer that failed are not,
provenance matches content, and the dataset is never missing. The figures each run reaches are
printed (run with -s to see them).
"""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from lib import ingest
from lib.ingest import library

from . import killing
from .conftest import FIXTURES, ROOT

HEADER, TEMPLATE = (FIXTURES / "small_canonical.csv").read_text().split("\n")[:2]
BUSY = "another user is changing"


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("OSE_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("OSE_ENGINE_URL", raising=False)  # the file lock is under test here, on one host
    return tmp_path / "var"


def extract(folder: Path, stem: str, ids: list[str]) -> Path:
    """Write a small canonical CSV holding one report for each id; return its path."""
    rest = TEMPLATE.split(",", 2)[2]
    path = folder / f"{stem}.csv"
    path.write_text("\n".join([HEADER, *(f"{i},I{i},{rest}" for i in ids)]) + "\n")
    return path


def ids_for(stem: str, n: int = 20) -> list[str]:
    return [f"{stem}-{k:02d}" for k in range(n)]


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "lib.library", *args]


def env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT))


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(command(*args), cwd=ROOT, env=env(), capture_output=True, text=True,
                          timeout=killing.LIMIT_S)


def listed() -> dict[str, dict]:
    """Return `list --json` by dataset name."""
    out = run("list", "--json")
    assert out.returncode == 0, out.stderr
    return {d["name"]: d for d in json.loads(out.stdout)}


def held_ids(name: str) -> Counter:
    """Return how many times each report id is in the current version, checking provenance against content."""
    path = library.path_of(name)
    ids = Counter(pq.read_table(path / "reports.parquet", columns=["report_id"]).column(0).to_pylist())
    loads = json.loads((path / "provenance.json").read_text())
    assert sum(p["reports_loaded"] for p in loads) == sum(ids.values()), "provenance does not match content"
    return ids


def loaded_files(name: str) -> list[str]:
    return [f for p in library.provenance(name) for f in p["files"]]


def one_line_refusal(proc: subprocess.CompletedProcess, *allowed: str) -> str:
    """Check a refused command: exit 2, one line on stderr naming an allowed reason, no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "OSError" not in proc.stderr and "Error:" not in proc.stderr, proc.stderr
    assert any(reason in proc.stderr for reason in allowed), proc.stderr
    return proc.stderr.strip()


@pytest.mark.slow
def test_six_processes_appending_at_once_for_twenty_rounds_lose_no_row(tmp_path):
    assert run("save", "Shared", str(extract(tmp_path, "base", ids_for("base")))).returncode == 0
    expected, refused_ids, ok_files = Counter(ids_for("base")), set(), ["base.csv"]
    succeeded = failed = 0
    for r in range(20):
        files = {p: extract(tmp_path, f"p{p}-r{r:02d}", ids_for(f"p{p}-r{r:02d}")) for p in range(6)}
        # Two of the six wait only briefly for the lock, so some appends give up: their rows must then be absent.
        procs = {p: subprocess.Popen(command("append", "Shared", str(f), "--wait", "0.1" if p >= 4 else "30"),
                                     cwd=ROOT, env=env(),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for p, f in files.items()}
        for p, proc in procs.items():
            out, err = proc.communicate(timeout=killing.LIMIT_S)
            ids = ids_for(f"p{p}-r{r:02d}")
            if proc.returncode == 0:
                succeeded += 1
                expected.update(ids)
                ok_files.append(files[p].name)
            else:
                failed += 1
                one_line_refusal(subprocess.CompletedProcess([], proc.returncode, out, err), BUSY)
                refused_ids.update(ids)
        shown = listed()["Shared"]  # never missing, never damaged, between rounds
        assert shown["damaged"] is None and shown["reports"] == sum(expected.values())
    held = held_ids("Shared")
    assert held == expected  # every committed row exactly once; no row of a refused append
    assert not refused_ids & set(held)
    assert sorted(loaded_files("Shared")) == sorted(ok_files)  # provenance lists exactly the loads it holds
    print(f"\nconcurrent appends: {succeeded} succeeded, {failed} refused (lock wait); rows expected "
          f"{sum(expected.values())}, found {sum(held.values())}")
    assert succeeded + failed == 120 and succeeded > 0


def test_two_saves_of_one_new_name_at_once_leave_one_winner_and_a_clear_refusal(tmp_path):
    for attempt in range(6):
        name = f"New {attempt}"
        files = [extract(tmp_path, f"s{attempt}-{w}", ids_for(f"s{attempt}-{w}")) for w in range(2)]
        procs = [subprocess.Popen(command("save", name, str(f)), cwd=ROOT, env=env(), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for f in files]
        outcomes = []
        for proc in procs:
            out, err = proc.communicate(timeout=killing.LIMIT_S)
            outcomes.append((proc.returncode, out, err))
        winners = [w for w, (rc, _, _) in enumerate(outcomes) if rc == 0]
        assert len(winners) == 1, outcomes
        [loser] = [o for w, o in enumerate(outcomes) if w not in winners]
        message = one_line_refusal(subprocess.CompletedProcess([], *loser), "exists already")
        assert message == f"save refused: a dataset called '{name}' exists already: append to it or pick another name"
        assert held_ids(name) == Counter(ids_for(f"s{attempt}-{winners[0]}"))
        assert loaded_files(name) == [files[winners[0]].name]


@pytest.mark.slow
def test_kill_9_during_appends_leaves_the_old_or_the_new_version(tmp_path):
    name = "Killed"
    assert run("save", name, str(extract(tmp_path, "base", ids_for("base")))).returncode == 0
    versions = library.root() / name / "versions"
    rng = random.Random(15)
    landed = Counter()
    kills = attempt = 0
    while kills < 50:
        attempt += 1
        assert attempt < 200, "the kills kept missing the appends"
        old = held_ids(name)
        stem = f"k{attempt:03d}"
        new = old + Counter(ids_for(stem))
        # Kill at a random moment of the run; right when a version or the pointer is half written; or
        # just after the pointer moved (before old versions are pruned and the process exits).
        point = rng.choice(["timer", "timer", "version", "pointer", "moved"])
        due = time.monotonic() + rng.uniform(0.2, 1.5)
        moved = f"{library.entries()[0].version + 1:06d}"
        ready = {"timer": lambda due=due: time.monotonic() > due,
                 "version": lambda: any(p.name.endswith(".part") for p in versions.iterdir()),
                 "pointer": lambda: any(p.name.startswith(".CURRENT.") for p in versions.parent.iterdir()),
                 "moved": lambda moved=moved: (versions.parent / "CURRENT").read_text().strip() == moved}[point]
        outcome = killing.kill_when(["lib.library", "append", name, str(extract(tmp_path, stem, ids_for(stem)))],
                                    ready)
        entry = {e.name: e for e in library.entries()}[name]  # present and readable after every kill
        assert entry.damaged is None
        held = held_ids(name)
        assert held in (old, new), (point, outcome, sum(held.values()), sum(old.values()))
        if outcome == "killed":
            kills += 1
            landed[("old" if held == old else "new", point)] += 1
        else:
            assert held == new
        # The next append succeeds, and leaves no leftover of the killed one behind.
        after = f"n{attempt:03d}"
        extra = library.append(name, ingest.ingest([(f"{after}.csv",
                                                     extract(tmp_path, after, ids_for(after)).read_bytes())]))
        assert extra["reports_loaded"] == 20 and held_ids(name) == held + Counter(ids_for(after))
        hidden = [p for where in (library.root(), versions.parent, versions) for p in where.iterdir()
                  if p.name.startswith(".") and p.name != ".locks"]
        assert hidden == []
    old_count = sum(n for (side, _), n in landed.items() if side == "old")
    print(f"\nkill -9 during appends: {kills} kills in {attempt} runs; landed old {old_count}, "
          f"new {kills - old_count}; by point {dict(landed)}")


def test_a_corrupt_version_is_listed_damaged_and_rollback_repairs_it(tmp_path):
    assert run("save", "Fine", str(extract(tmp_path, "fine", ids_for("fine", 5)))).returncode == 0
    assert run("save", "Hurt", str(extract(tmp_path, "h1", ids_for("h1", 5)))).returncode == 0
    assert run("append", "Hurt", str(extract(tmp_path, "h2", ids_for("h2", 5)))).returncode == 0
    reports = library.path_of("Hurt") / "reports.parquet"
    reports.write_bytes(reports.read_bytes()[: reports.stat().st_size // 2])  # truncated on disk
    shown = listed()
    assert shown["Fine"]["damaged"] is None and shown["Fine"]["reports"] == 5
    assert "Parquet file cannot be read" in shown["Hurt"]["damaged"]
    assert {e.name: bool(e.damaged) for e in library.entries()} == {"Fine": False, "Hurt": True}
    one_line_refusal(run("append", "Hurt", str(extract(tmp_path, "h3", ids_for("h3", 5)))),
                     "roll it back to an earlier version or delete it")
    assert "DAMAGED" in run("versions", "Hurt").stdout
    fixed = run("rollback", "Hurt", "1")
    assert fixed.returncode == 0, fixed.stderr
    hurt = listed()["Hurt"]
    assert (hurt["version"], hurt["reports"], hurt["damaged"]) == (3, 5, None)

    (library.root() / "Hurt" / "CURRENT").write_bytes(b"\x00garbage")  # a garbage pointer
    assert "pointer" in listed()["Hurt"]["damaged"] and listed()["Fine"]["damaged"] is None
    assert run("rollback", "Hurt", "1").returncode == 0
    assert listed()["Hurt"]["damaged"] is None and held_ids("Hurt") == Counter(ids_for("h1", 5))
    # The summary command takes a saved dataset's name, at its current version.
    summary = subprocess.run([sys.executable, "-m", "lib.summary", "Hurt"], cwd=ROOT, env=env(), capture_output=True,
                             text=True, timeout=killing.LIMIT_S)
    assert summary.returncode == 0, summary.stderr
    assert json.loads(summary.stdout)["dataset"] == "Hurt"


def test_readers_see_the_old_or_the_new_version_never_a_mixture(tmp_path):
    name = "Read"
    library.save(name, ingest.ingest([("base.csv", extract(tmp_path, "base", ids_for("base")).read_bytes())]))
    seen: list[tuple[int, int]] = []
    problems: list[str] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            try:
                path = library.path_of(name)
                count = pq.read_metadata(path / "reports.parquet").num_rows
                total = sum(p["reports_loaded"] for p in json.loads((path / "provenance.json").read_text()))
            except Exception as exc:  # noqa: BLE001  (any failure to read is what this test looks for)
                problems.append(f"{type(exc).__name__}: {exc}")
                continue
            seen.append((count, total))
    reader = threading.Thread(target=read)
    reader.start()
    try:
        for r in range(8):
            out = run("append", name, str(extract(tmp_path, f"r{r}", ids_for(f"r{r}"))))
            assert out.returncode == 0, out.stderr
    finally:
        done.set()
        reader.join()
    assert problems == []
    assert all(count == total for count, total in seen)
    assert {count for count, _ in seen} <= {20 * (k + 1) for k in range(9)}
    assert len({count for count, _ in seen}) >= 3  # the reader really read while versions changed
