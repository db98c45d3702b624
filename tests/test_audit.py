"""The audit log is a keyed hash chain: any edit, removal, insertion or reordering is found, and its line named,
and rewriting it without the key (plain SHA-256, or a key of one's own) is found too."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import multiprocessing
import os
import secrets
import stat
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from lib.model.keys import weakness
from lib.security import audit
from tests.conftest import ROOT, TEST_AUDIT_KEY

KEY = TEST_AUDIT_KEY.encode()


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
    """Return a line with fields changed and its hash recomputed with the key, as an insider holding it could."""
    entry = json.loads(line)
    entry.update(changes)
    entry["hash"] = audit.sign(entry, KEY)
    return audit.canonical(entry) + "\n"


def forge(rows: list[str], start: int, *, key: bytes | None = None, keep_format: bool = False) -> list[str]:
    """Rewrite the chain from row `start` (0-based) on, renumbered, without the log's key, as a forger would.

    With no key: plain SHA-256, in the old unkeyed format (no key id, no client) unless keep_format. With a key of
    the forger's own: HMAC under it, naming that key's id unless keep_format keeps the log's.
    """
    out = rows[:start]
    prev = json.loads(rows[start - 1])["hash"] if start else audit.GENESIS
    for seq, line in enumerate(rows[start:], start=start + 1):
        entry = json.loads(line)
        entry.update(seq=seq, prev=prev)
        if key is None and not keep_format:
            entry = {k: v for k, v in entry.items() if k in audit.UNKEYED_FIELDS}
        elif key is not None and not keep_format:
            entry["key"] = audit.key_id(key)
        entry["hash"] = audit.digest(entry) if key is None else audit.sign(entry, key)
        prev = entry["hash"]
        out.append(audit.canonical(entry) + "\n")
    return out


def test_a_chain_of_records_verifies_and_links(tmp_path):
    log = tmp_path / "audit.jsonl"
    written = write_chain(log)
    result = audit.verify(log)
    assert result == audit.VerifyResult(True, 6, None, f"audit log OK: 6 entries, chain intact ({log})")
    assert [r["seq"] for r in written] == [1, 2, 3, 4, 5, 6]
    assert written[0]["prev"] == "0" * 64
    assert all(b["prev"] == a["hash"] for a, b in zip(written, written[1:], strict=False))
    # Each hash is an HMAC under the key over the previous hash and the line: not a plain SHA-256.
    for entry in written:
        body = audit.canonical({k: v for k, v in entry.items() if k != "hash"})
        assert entry["hash"] == hmac.new(KEY, (entry["prev"] + body).encode(), hashlib.sha256).hexdigest()
        assert entry["hash"] != audit.digest(entry) and entry["key"] == audit.key_id(KEY)
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
    (edit_keep_hash, 3, "keyed hash does not match its contents: the line was edited"),
    (edit_user_keep_hash, 3, "keyed hash does not match its contents: the line was edited"),
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
    assert bad.stdout.strip() == ("audit log TAMPERED at line 5: its keyed hash does not match its contents: the line "
                                  "was edited, or rewritten without the key")


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


# --- rewriting the log without the key (issue 16, part 5) -----------------------------------------------------


def without_officer_view(log: Path) -> list[str]:
    """The log's lines with the officer_view entry (line 3) removed."""
    rows = lines(log)
    assert json.loads(rows[2])["event"] == "officer_view"
    return rows[:2] + rows[3:]


@pytest.mark.parametrize(("rewrite", "line", "why"), [
    # The issue's attack: remove an officer_view entry, recompute the chain with SHA-256 in the old format.
    (lambda rows: forge(rows, 2), 3, "unkeyed (plain SHA-256) after keyed lines from line 1: the log was rewritten "
                                     "without the key"),
    # The same, keeping the new format's fields (the key id of the real key).
    (lambda rows: forge(rows, 2, keep_format=True), 3, "keyed hash does not match its contents"),
    # The same with a key of the forger's own, named by its own id, or passing off the real key's id.
    (lambda rows: forge(rows, 2, key=secrets.token_bytes(32)), 3, "signed with another key"),
    (lambda rows: forge(rows, 2, key=secrets.token_bytes(32), keep_format=True), 3,
     "keyed hash does not match its contents"),
    # Only the entries after the removed one rewritten, the old format throughout.
    (lambda rows: forge(rows, 3), 3, "sequence number is 4, expected 3"),
])
def test_removing_an_officer_view_and_recomputing_the_chain_without_the_key_is_found(tmp_path, rewrite, line, why):
    log = tmp_path / "audit.jsonl"
    write_chain(log)
    log.write_text("".join(rewrite(without_officer_view(log))), encoding="utf-8")
    result = audit.verify(log)
    assert (result.ok, result.first_bad) == (False, line), result.message
    assert result.message.startswith(f"audit log TAMPERED at line {line}: ") and why in result.message


def test_a_log_rewritten_whole_without_the_key_does_not_verify(tmp_path):
    log = tmp_path / "audit.jsonl"
    write_chain(log)
    log.write_text("".join(forge(without_officer_view(log), 0)), encoding="utf-8")
    result = audit.verify(log)
    assert (result.ok, result.first_bad, result.unkeyed) == (False, 1, 5)
    assert result.message.startswith("audit log NOT VERIFIED at line 1: all 5 entries are unkeyed")


def test_editing_one_field_is_found_at_its_line(tmp_path):
    log = tmp_path / "audit.jsonl"
    write_chain(log)
    rows = lines(log)
    rows[3] = rows[3].replace('"format":"csv"', '"format":"pdf"')
    log.write_text("".join(rows), encoding="utf-8")
    result = audit.verify(log)
    assert (result.ok, result.first_bad) == (False, 4)
    assert "line 4: its keyed hash does not match its contents: the line was edited" in result.message


def test_the_wrong_key_fails_at_the_first_line(tmp_path):
    log = tmp_path / "audit.jsonl"
    write_chain(log)
    result = audit.verify(log, secrets.token_bytes(32))
    assert (result.ok, result.first_bad) == (False, 1)
    assert "line 1: signed with another key" in result.message and audit.key_id(KEY) in result.message
    assert audit.verify(log, KEY).ok


def test_the_cli_names_the_line_of_the_issues_attack_and_verifies_with_a_key_file(tmp_path, monkeypatch):
    monkeypatch.setenv("OSE_DATA_DIR", str(tmp_path))
    write_chain(audit.path())
    good = audit.path().read_bytes()
    audit.path().write_text("".join(forge(without_officer_view(audit.path()), 2)), encoding="utf-8")
    bad = run_cli(tmp_path, "verify")
    assert bad.returncode == 1
    assert bad.stdout.startswith("audit log TAMPERED at line 3: unkeyed (plain SHA-256) after keyed lines")
    audit.path().write_bytes(good)
    backup = tmp_path / "elsewhere" / "audit.key"
    backup.parent.mkdir()
    backup.write_bytes(KEY)
    assert run_cli(tmp_path, "verify", "--key-file", str(backup)).returncode == 0
    backup.write_bytes(secrets.token_bytes(32))
    other = run_cli(tmp_path, "verify", "--key-file", str(backup))
    assert other.returncode == 1 and "line 1: signed with another key" in other.stdout


def unkeyed_log(log: Path, n: int = 6) -> None:
    """Write a log as it was before the key: the same records, chained by plain SHA-256."""
    write_chain(log, n)
    log.write_text("".join(forge(lines(log), 0)), encoding="utf-8")


def test_an_old_unkeyed_log_is_sealed_once_and_then_verifies_up_to_where_keyed_lines_start(tmp_path, monkeypatch):
    monkeypatch.setenv("OSE_DATA_DIR", str(tmp_path))
    unkeyed_log(audit.path())
    before = run_cli(tmp_path, "verify")
    assert before.returncode == 1 and "all 6 entries are unkeyed" in before.stdout and "lib.audit seal" in before.stdout
    sealed = run_cli(tmp_path, "seal")
    assert sealed.returncode == 0 and sealed.stdout.strip() == "sealed 6 unkeyed entries under the audit key"
    assert run_cli(tmp_path, "seal").stdout.strip() == "nothing to seal"
    after = audit.verify()
    assert (after.ok, after.entries, after.unkeyed) == (True, 7, 6)
    assert ("lines 1-6 are unkeyed, written before the audit key was introduced, and sealed by line 7"
            in after.message)
    assert audit.entries()[-1]["event"] == "audit_sealed" and audit.entries()[-1]["detail"] == {"unkeyed_entries": 6}
    # After the seal, an old line edited and its unkeyed chain recomputed no longer meets the sealing line.
    rows = lines(audit.path())
    rows[1] = rows[1].replace('"rows":1200', '"rows":12')
    audit.path().write_text("".join(forge(rows[:6], 1) + rows[6:]), encoding="utf-8")
    result = audit.verify()
    assert (result.ok, result.first_bad) == (False, 7) and "does not follow line 6" in result.message


def test_any_new_record_seals_an_old_log_and_a_broken_old_log_is_not_sealed(tmp_path, monkeypatch):
    log = tmp_path / "audit.jsonl"
    unkeyed_log(log, 3)
    audit.record("login", user="alice", role="analyst", log=log)
    assert audit.verify(log).ok and audit.verify(log).unkeyed == 3
    broken = tmp_path / "broken.jsonl"
    unkeyed_log(broken, 3)
    broken.write_text(broken.read_text().replace('"rows":1200', '"rows":12'), encoding="utf-8")
    refused = run_cli(tmp_path, "seal", "--log", str(broken))
    assert refused.returncode == 1 and "not sealed: audit log TAMPERED at line 2" in refused.stderr
    assert len(lines(broken)) == 3


def test_the_key_file_is_made_once_in_secrets_apart_from_the_log_and_never_written_into_it(tmp_path, monkeypatch):
    monkeypatch.delenv("OSE_AUDIT_KEY", raising=False)
    monkeypatch.delenv("OSE_AUTH_CONFIG", raising=False)
    monkeypatch.setenv("OSE_DATA_DIR", str(tmp_path))
    written = write_chain(audit.path(), 3)
    key_file = tmp_path / "secrets" / "audit.key"
    key = key_file.read_bytes()
    assert len(key) == 32 and stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(key_file.parent).st_mode) == 0o700
    assert audit.path().parent != key_file.parent
    assert all(entry["key"] == audit.key_id(key) for entry in written)
    text = audit.path().read_bytes()
    for shown in (key, key.hex().encode(), base64.b64encode(key), base64.urlsafe_b64encode(key).rstrip(b"=")):
        assert shown not in text
    audit.record("logout", user="alice", role="analyst")
    assert key_file.read_bytes() == key and audit.verify().ok
    assert not audit.verify(key=KEY).ok  # the test key is not the one the file holds


def test_the_key_comes_from_the_setting_else_the_users_file(tmp_path, monkeypatch):
    monkeypatch.setenv("OSE_DATA_DIR", str(tmp_path))
    assert audit.secret() == KEY
    monkeypatch.delenv("OSE_AUDIT_KEY")
    config = tmp_path / "users.yaml"
    own = secrets.token_urlsafe(48)
    config.write_text(yaml.safe_dump({"credentials": {"usernames": {}}, "audit": {"key": own}}))
    monkeypatch.setenv("OSE_AUTH_CONFIG", str(config))
    assert audit.secret() == own.encode()
    assert audit.record("login", user="a", role="admin")["key"] == audit.key_id(own.encode())
    assert not (tmp_path / "secrets" / "audit.key").exists()
    config.write_text(yaml.safe_dump({"credentials": {"usernames": {}}, "audit": {"key": "secret" * 6}}))
    with pytest.raises(audit.AuditKeyError, match="audit.key in .* is too easy to guess"):
        audit.secret()
    monkeypatch.setenv("OSE_AUDIT_KEY", "0" * 40)
    with pytest.raises(audit.AuditKeyError, match="OSE_AUDIT_KEY is too easy to guess"):
        audit.record("login", user="a", role="admin")
    assert "0" * 40 not in str(pytest.raises(audit.AuditKeyError, audit.secret).value)


def test_the_test_key_is_one_the_checks_accept():
    assert weakness(TEST_AUDIT_KEY) is None


# --- the client address ------------------------------------------------------------------------------------------

PROXY = ("127.0.0.1/32", "10.0.0.0/24")


@pytest.mark.parametrize(("peer", "forwarded", "trusted", "expected"), [
    ("203.0.113.7", [], PROXY, "203.0.113.7"),  # no proxy
    ("203.0.113.7", ["198.51.100.1"], PROXY, "203.0.113.7"),  # an untrusted peer cannot name someone else
    ("127.0.0.1", ["198.51.100.1"], (), "127.0.0.1"),  # no trusted proxies configured
    ("127.0.0.1", ["198.51.100.1"], PROXY, "198.51.100.1"),
    ("127.0.0.1", ["6.6.6.6, 198.51.100.1, 10.0.0.2"], PROXY, "198.51.100.1"),  # the left part is the client's word
    ("127.0.0.1", ["6.6.6.6", "198.51.100.1"], PROXY, "198.51.100.1"),  # two headers read as one list
    ("127.0.0.1", ["10.0.0.3"], PROXY, "10.0.0.3"),  # every hop trusted: the farthest one
    ("127.0.0.1", ["<script>"], PROXY, "127.0.0.1"),  # not an address: the last one vouched for
    ("127.0.0.1", ["2001:db8::1"], ("::1/128", "127.0.0.0/8"), "2001:db8::1"),
    (None, ["198.51.100.1"], PROXY, None),
])
def test_the_client_address_is_taken_from_x_forwarded_for_only_through_trusted_proxies(peer, forwarded, trusted,
                                                                                       expected):
    import ipaddress

    networks = [ipaddress.ip_network(n) for n in trusted]
    assert audit.client_address(peer, forwarded, networks) == expected


def test_the_client_address_is_recorded_and_signed(tmp_path):
    log = tmp_path / "audit.jsonl"
    written = audit.record("login", user="alice", role="analyst", client="198.51.100.1", log=log)
    assert written["client"] == "198.51.100.1" and audit.verify(log).ok
    log.write_text(log.read_text().replace("198.51.100.1", "198.51.100.2"), encoding="utf-8")
    assert audit.verify(log).first_bad == 1


def test_a_rejected_upload_is_audited_with_its_file_names_and_reason(tmp_path, monkeypatch):
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    monkeypatch.delenv("OSE_DATASET", raising=False)
    monkeypatch.setenv("OSE_DATA_DIR", str(tmp_path / "var"))
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    at = at.switch_page("app_pages/data.py").run()
    photo = b"\x89PNG\r\n\x1a\n\x00\x00" + bytes(range(256))
    at.file_uploader(key="upload_files").set_value([("photo.csv", photo, "text/csv")]).run()
    next(b for b in at.button if b.label == "Read files").click().run()
    assert not at.exception and any("cannot be read" in e.value for e in at.error)
    last = audit.entries()[-1]
    assert (last["event"], last["user"], last["client"]) == ("upload_rejected", "local", None)
    assert last["detail"]["files"] == ["photo.csv"] and "not a text file" in last["detail"]["reason"]
    assert "\n" not in last["detail"]["reason"] and audit.verify().ok
