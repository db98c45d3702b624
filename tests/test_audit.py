"""The audit log is a hash chain: any edit, removal, insertion or reordering is found, and its line named."""
from __future__ import annotations

import json
import multiprocessing
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lib.security import audit
from tests.conftest import ROOT


def write_chain(log: Path, n: int = 6) -> list[dict]:
    """Write n varied records and return them."""
    kinds = [("login", None, None), ("upload", 1200, None), ("officer_view", 40, {"officer": "O123"}),
             ("export", 12, {"format": "csv", "page": "Teams"}), ("append", 300, None), ("logout", None, None)]
    written = []
    for i in range(n):
        event, rows, detail = kinds[i % len(kinds)]
        written.append(audit.record(event, user="alice", role="analyst", dataset="Met 2024",
                                    filters={"shift": ["Night"], "force": "Met"}, rows=rows, detail=detail, log=log))
    return written


def lines(log: Path) -> list[str]:
    return log.read_text(encoding="utf-8").splitlines(keepends=True)


def rehash(line: str, **changes: object) -> str:
    """Return a line with fields changed and its own hash recomputed, as a careful forger would."""
    entry = json.loads(line)
    entry.update(changes)
    entry["hash"] = audit.digest(entry)
    return audit.canonical(entry) + "\n"


def test_a_chain_of_records_verifies_and_links(tmp_path):
    log = tmp_path / "audit.jsonl"
    written = write_chain(log)
    result = audit.verify(log)
    assert result == audit.VerifyResult(True, 6, None, f"audit log OK: 6 entries, chain intact ({log})")
    assert [r["seq"] for r in written] == [1, 2, 3, 4, 5, 6]
    assert written[0]["prev"] == "0" * 64
    assert all(b["prev"] == a["hash"] for a, b in zip(written, written[1:], strict=False))
    assert written[0]["ts"].endswith("Z") and len(written[0]["ts"]) == len("2024-01-01T00:00:00.000000Z")
    assert [json.loads(line) for line in lines(log)] == written


def test_an_empty_or_missing_log_is_ok(tmp_path):
    assert audit.verify(tmp_path / "none.jsonl") == audit.VerifyResult(
        True, 0, None, f"audit log OK: 0 entries, chain intact ({tmp_path / 'none.jsonl'})")
    (tmp_path / "empty.jsonl").write_bytes(b"")
    assert audit.verify(tmp_path / "empty.jsonl").ok


def edit_keep_hash(rows: list[str]) -> list[str]:
    entry = json.loads(rows[2])
    entry["rows"] = 4  # was 40: a smaller count of officer-level rows viewed
    rows[2] = audit.canonical(entry) + "\n"
    return rows


def edit_user_keep_hash(rows: list[str]) -> list[str]:
    rows[2] = rows[2].replace('"user":"alice"', '"user":"bob"')
    return rows


def edit_and_rehash(rows: list[str]) -> list[str]:
    rows[2] = rehash(rows[2], user="bob")
    return rows


def delete_middle(rows: list[str]) -> list[str]:
    del rows[3]
    return rows


def delete_middle_and_renumber(rows: list[str]) -> list[str]:
    """Remove line 4 and re-sequence line 5 so only the chain can tell."""
    del rows[3]
    rows[3] = rehash(rows[3], seq=4)
    return rows


def swap(rows: list[str]) -> list[str]:
    rows[2], rows[3] = rows[3], rows[2]
    return rows


def insert_line(rows: list[str]) -> list[str]:
    forged = rehash(rows[1], event="login", user="mallory", seq=3)
    return rows[:2] + [forged] + rows[2:]


def append_wrong_prev(rows: list[str]) -> list[str]:
    return rows + [rehash(rows[-1], seq=7, prev="f" * 64, event="logout")]


def append_wrong_seq(rows: list[str]) -> list[str]:
    last = json.loads(rows[-1])
    return rows + [rehash(rows[-1], seq=9, prev=last["hash"])]


def truncate_mid_line(rows: list[str]) -> list[str]:
    rows[-1] = rows[-1][: len(rows[-1]) // 2]
    return rows


def garbage_line(rows: list[str]) -> list[str]:
    rows[1] = "{not json\n"
    return rows


@pytest.mark.parametrize(("tamper", "line", "why"), [
    (edit_keep_hash, 3, "hash does not match its contents"),
    (edit_user_keep_hash, 3, "hash does not match its contents"),
    (edit_and_rehash, 4, "does not follow line 3"),
    (delete_middle, 4, "sequence number is 5, expected 4"),
    (delete_middle_and_renumber, 4, "does not follow line 3"),
    (swap, 3, "sequence number is 4, expected 3"),
    (insert_line, 3, "does not follow line 2"),
    (append_wrong_prev, 7, "does not follow line 6"),
    (append_wrong_seq, 7, "sequence number is 9, expected 7"),
    (truncate_mid_line, 6, "incomplete"),
    (garbage_line, 2, "not valid JSON"),
])
def test_tampering_is_found_at_the_right_line(tmp_path, tamper, line, why):
    log = tmp_path / "audit.jsonl"
    write_chain(log)
    assert audit.verify(log).ok
    log.write_text("".join(tamper(lines(log))), encoding="utf-8")
    result = audit.verify(log)
    assert not result.ok
    assert result.first_bad == line
    assert result.message.startswith(f"audit log TAMPERED at line {line}: ")
    assert why in result.message


def test_a_forged_line_that_is_rehashed_still_breaks_the_inserted_place(tmp_path):
    log = tmp_path / "audit.jsonl"
    write_chain(log, 3)
    rows = lines(log)
    first = json.loads(rows[0])
    # A forger who rebuilds one line's prev and hash still cannot fix the seq or the next line's prev.
    forged = rehash(rows[1], seq=2, prev=first["hash"], user="mallory")
    log.write_text(rows[0] + forged + rows[1] + rows[2], encoding="utf-8")
    result = audit.verify(log)
    assert (result.ok, result.first_bad) == (False, 3)


def test_a_torn_last_line_is_kept_and_new_records_start_a_fresh_line(tmp_path):
    log = tmp_path / "audit.jsonl"
    write_chain(log, 3)
    rows = lines(log)
    log.write_text(rows[0] + rows[1] + rows[2][:30], encoding="utf-8")
    written = audit.record("login", user="alice", role="analyst", log=log)
    assert written["seq"] == 3 and written["prev"] == json.loads(rows[1])["hash"]
    assert len(lines(log)) == 4
    result = audit.verify(log)
    assert (result.ok, result.first_bad) == (False, 3)  # the torn line stays as evidence


def _write_from_process(log: str, writer: int, n: int) -> None:
    for i in range(n):
        audit.record("export", user=f"proc{writer}", role="analyst", rows=i, detail={"writer": writer}, log=Path(log))


def test_concurrent_processes_and_threads_keep_one_unbroken_chain(tmp_path):
    log = tmp_path / "audit.jsonl"
    spawn = multiprocessing.get_context("spawn")
    processes = [spawn.Process(target=_write_from_process, args=(str(log), w, 50)) for w in range(4)]
    for p in processes:
        p.start()
    threads = [threading.Thread(target=_write_from_process, args=(str(log), 10 + t, 50)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for p in processes:
        p.join(timeout=120)
        assert p.exitcode == 0
    result = audit.verify(log)
    assert result.ok, result.message
    assert result.entries == 400
    seqs = [json.loads(line)["seq"] for line in lines(log)]
    assert seqs == list(range(1, 401))
    users = pd.Series([json.loads(line)["user"] for line in lines(log)]).value_counts()
    assert len(users) == 8 and set(users) == {50}


@pytest.mark.parametrize(("field", "value"), [
    ("filters", {"rows": pd.DataFrame({"a": [1]})}),
    ("filters", {"ids": pd.Series(["O1", "O2"])}),
    ("detail", {"file": b"report_id,officer_id\n"}),
    ("detail", {"raw": bytearray(b"x")}),
    ("detail", {"note": "x" * 201}),
    ("filters", {"officers": ["O1", "y" * 201]}),
    ("filters", {"officers": [f"O{i}" for i in range(101)]}),
    ("detail", {"nested": {"a": 1}}),
    ("detail", {"array": np.array([1, 2, 3])}),
    ("detail", {"frames": [pd.DataFrame()]}),
    ("detail", pd.DataFrame({"a": [1]})),
])
def test_data_values_are_refused(tmp_path, field, value):
    log = tmp_path / "audit.jsonl"
    with pytest.raises(ValueError):
        audit.record("export", user="alice", role="analyst", log=log, **{field: value})
    assert not log.exists() or log.read_bytes() == b""


@pytest.mark.parametrize("kwargs", [
    {"user": "x" * 201, "role": "analyst"},
    {"user": "alice", "role": "analyst", "dataset": "d" * 201},
    {"user": "alice", "role": "analyst", "rows": -1},
    {"user": "alice", "role": "analyst", "rows": 2.5},
    {"user": b"alice", "role": "analyst"},
])
def test_bad_who_and_counts_are_refused(tmp_path, kwargs):
    with pytest.raises(ValueError):
        audit.record("login", log=tmp_path / "audit.jsonl", **kwargs)


def test_unknown_event_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown audit event"):
        audit.record("peek", user="alice", role="analyst", log=tmp_path / "audit.jsonl")
    assert "failed_login" in audit.EVENTS and "audit_download" in audit.EVENTS


def test_short_scalars_dates_and_numpy_counts_are_kept(tmp_path):
    import datetime as dt

    written = audit.record(
        "export", user="alice", role="analyst", rows=np.int64(12), log=tmp_path / "audit.jsonl",
        filters={"from": dt.date(2024, 1, 1), "years": (2023, 2024), "shift": ["Night", "Late"], "taser": True},
        detail={"format": "xlsx", "share": np.float64(0.5), "suppressed": None})
    assert written["rows"] == 12
    assert written["filters"] == {"from": "2024-01-01", "years": [2023, 2024], "shift": ["Night", "Late"],
                                  "taser": True}
    assert written["detail"] == {"format": "xlsx", "share": 0.5, "suppressed": None}
    assert audit.verify(tmp_path / "audit.jsonl").ok


def test_default_path_is_under_the_data_dir_and_private(tmp_path, monkeypatch):
    monkeypatch.setenv("OSE_DATA_DIR", str(tmp_path / "data"))
    assert audit.path() == tmp_path / "data" / "audit" / "audit.jsonl"
    assert stat.S_IMODE(os.stat(tmp_path / "data" / "audit").st_mode) == 0o700
    audit.record("login", user="alice", role="admin")
    assert stat.S_IMODE(os.stat(audit.path()).st_mode) == 0o600
    assert audit.verify().entries == 1


def test_read_gives_the_admin_table(tmp_path):
    log = tmp_path / "audit.jsonl"
    write_chain(log, 4)
    frame = audit.read(log)
    assert list(frame.columns) == audit.COLUMNS
    assert frame["seq"].tolist() == [1, 2, 3, 4]
    assert frame["event"].tolist() == ["login", "upload", "officer_view", "export"]
    assert str(frame["time"].dt.tz) == "UTC"
    assert frame.loc[0, "filters"] == "force: Met; shift: Night"
    assert frame.loc[3, "detail"] == "format: csv; page: Teams"
    assert frame["rows"].tolist()[1:] == [1200, 40, 12] and pd.isna(frame["rows"][0])
    empty = audit.read(tmp_path / "none.jsonl")
    assert list(empty.columns) == audit.COLUMNS and empty.empty


def run_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OSE_DATA_DIR": str(tmp_path)}
    return subprocess.run([sys.executable, "-m", "lib.audit", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def test_cli_verify_exit_codes(tmp_path, monkeypatch):
    monkeypatch.setenv("OSE_DATA_DIR", str(tmp_path))
    write_chain(audit.path(), 1234 // 200)
    ok = run_cli(tmp_path, "verify")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == f"audit log OK: 6 entries, chain intact ({tmp_path / 'audit' / 'audit.jsonl'})"

    rows = lines(audit.path())
    rows[4] = rows[4].replace('"rows":300', '"rows":3')
    audit.path().write_text("".join(rows), encoding="utf-8")
    bad = run_cli(tmp_path, "verify")
    assert bad.returncode == 1
    assert bad.stdout.strip() == "audit log TAMPERED at line 5: hash does not match its contents"


def test_cli_verify_takes_a_log_path_and_tail_shows_the_last_entries(tmp_path):
    log = tmp_path / "elsewhere.jsonl"
    write_chain(log, 5)
    ok = run_cli(tmp_path, "verify", "--log", str(log))
    assert ok.returncode == 0 and "5 entries" in ok.stdout
    tail = run_cli(tmp_path, "tail", "-n", "2", "--log", str(log))
    assert tail.returncode == 0, tail.stderr
    shown = tail.stdout.splitlines()
    assert len(shown) == 2
    assert "export" in shown[0] and "alice (analyst)" in shown[0] and "format: csv" in shown[0]
    assert "append" in shown[1] and "rows=300" in shown[1]
