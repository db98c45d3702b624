"""Pseudonymised officer ids: the keyed hash, its key, and no raw id surviving an ingest anywhere."""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lib import ingest
from lib.ingest import library, mapping, pseudonym, roster
from lib.ingest.formats.profile import PROFILE_DIR, ProfileFormat, load_profile
from lib.ingest.pseudonym import PseudonymKeyError, pseudonymise

from .conftest import ROOT

KEY = b"k" * 32
OTHER_KEY = b"o" * 32
PSEUDONYM = re.compile(r"^P-[0-9a-f]{16}$")
DALLAS_FILE = "dallas_uof_2016_cpe_37-00049.csv"


@pytest.fixture
def key_file_only(tmp_path, monkeypatch) -> Path:
    """No key in the environment or config: the key comes from <data dir>/secrets/pseudonym.key."""
    monkeypatch.delenv("OSE_PSEUDONYM_KEY", raising=False)
    monkeypatch.delenv("OSE_AUTH_CONFIG", raising=False)
    monkeypatch.setenv("OSE_DATA_DIR", str(tmp_path / "var"))
    return tmp_path / "var" / "secrets" / "pseudonym.key"


def _in_fresh_process(code: str, env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120, check=True)
    return done.stdout.strip()


def _env_without_key(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OSE_PSEUDONYM_KEY", "OSE_AUTH_CONFIG")}
    return {**env, "OSE_DATA_DIR": str(data_dir)}


# --- the hash ----------------------------------------------------------------------------


def test_same_id_gives_the_same_pseudonym_and_it_is_the_keyed_hash():
    first = pseudonymise(["PC-4471-SECRET"], KEY)
    assert first == pseudonymise(["PC-4471-SECRET"], KEY)
    expected = "P-" + hmac.new(KEY, b"pc-4471-secret", hashlib.sha256).hexdigest()[:16]
    assert first == [expected]


def test_long_keys_follow_hmac_too():
    long_key = bytes(range(100))
    assert pseudonymise(["AB12"], long_key) == ["P-" + hmac.new(long_key, b"ab12", hashlib.sha256).hexdigest()[:16]]


def test_different_keys_give_different_pseudonyms():
    assert pseudonymise(["AB12"], KEY) != pseudonymise(["AB12"], OTHER_KEY)


@pytest.mark.parametrize(("a", "b", "same"), [
    (" ab12 ", "AB12", True),
    ("ab12\t", "Ab12", True),
    ("AB12", "AB13", False),
    ("AB 12", "AB12", False),  # inner spaces are part of the id
])
def test_case_and_surrounding_whitespace_do_not_matter(a, b, same):
    assert (pseudonymise([a], KEY) == pseudonymise([b], KEY)) is same


def test_a_pseudonym_is_never_hashed_again():
    once = pseudonymise(["AB12", "CD34"], KEY)
    assert all(PSEUDONYM.match(p) for p in once)
    assert pseudonymise(once, KEY) == once
    assert pseudonymise(once, OTHER_KEY) == once  # whatever the key: it is already not a raw id
    assert pseudonymise([f" {once[0]} "], KEY) == [once[0]]
    assert pseudonymise(["P-NOT-A-PSEUDONYM"], KEY) != ["P-NOT-A-PSEUDONYM"]


@pytest.mark.parametrize("blank", [None, "", "   ", pd.NA, float("nan")])
def test_nulls_and_blanks_stay_null(blank):
    assert pseudonymise([blank, "AB12"], KEY)[0] is None


def test_each_kind_comes_back_as_the_same_kind():
    series = pd.Series(["AB12", None, " ab12", ""], index=[10, 11, 12, 13], name="officer_id", dtype="string")
    out = pseudonymise(series, KEY)
    assert isinstance(out, pd.Series) and list(out.index) == [10, 11, 12, 13] and out.name == "officer_id"
    assert out.isna().tolist() == [False, True, False, True] and out[10] == out[12]
    arrow = pseudonymise(pa.array(["AB12", None]), KEY)
    assert isinstance(arrow, pa.Array) and arrow.to_pylist() == [out[10], None]
    chunked = pseudonymise(pa.chunked_array([["AB12"], [None, "ab12"]]), KEY)
    assert isinstance(chunked, pa.ChunkedArray) and chunked.to_pylist() == [out[10], None, out[10]]
    assert pseudonymise(pd.Series([1234, None], dtype=object), KEY).tolist()[0] == pseudonymise(["1234"], KEY)[0]


def test_a_million_ids_keep_one_pseudonym_per_officer():
    ids = pd.Series(np.char.add("PC", np.random.default_rng(1).integers(0, 50_000, 1_000_000).astype(str)),
                    dtype="string")
    out = pseudonymise(ids, KEY)
    assert out.nunique() == ids.nunique()
    assert (out.groupby(ids).nunique() == 1).all()  # one officer, one pseudonym, however often they appear


# --- the key ------------------------------------------------------------------------------


def test_the_key_file_is_made_private_once_and_reused(key_file_only):
    assert not key_file_only.exists()
    first = pseudonymise(["PC-4471-SECRET"])
    assert key_file_only.exists() and len(key_file_only.read_bytes()) == 32
    assert stat.S_IMODE(key_file_only.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file_only.parent.stat().st_mode) == 0o700
    made = key_file_only.read_bytes()
    assert pseudonymise(["PC-4471-SECRET"]) == first and key_file_only.read_bytes() == made
    assert first == pseudonymise(["PC-4471-SECRET"], made)
    assert list(key_file_only.parent.iterdir()) == [key_file_only]  # no temporary file left behind


def test_a_fresh_process_with_the_same_key_file_gives_the_same_pseudonym(key_file_only):
    here = pseudonymise(["PC-4471-SECRET"])
    there = _in_fresh_process("from lib.ingest.pseudonym import pseudonymise; "
                              "print(pseudonymise(['PC-4471-SECRET'])[0])",
                              _env_without_key(key_file_only.parents[1]))
    assert there == here[0]


def test_processes_racing_to_make_the_key_all_get_the_same_one(key_file_only):
    code = "from lib.ingest.pseudonym import secret; print(secret().hex())"
    env = _env_without_key(key_file_only.parents[1])
    racers = [subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
              for _ in range(4)]
    keys = {p.communicate(timeout=120)[0].strip() for p in racers}
    assert keys == {key_file_only.read_bytes().hex()}


def test_the_ingest_report_names_the_key_by_a_fingerprint_that_does_not_reveal_it():
    report = ingest.ingest([("x.csv", b"report_id,occurred_at,force,officer_id\nR1,2024-01-01,F,AB12\n")]).report
    assert report["pseudonym_key"] == pseudonym.fingerprint() != pseudonym.fingerprint(OTHER_KEY)
    assert pseudonym.fingerprint(KEY) == pseudonym.fingerprint(KEY) and len(pseudonym.fingerprint(KEY)) == 8
    assert pseudonym.fingerprint().encode() not in pseudonym.secret()


def test_a_short_key_is_refused(key_file_only, monkeypatch, tmp_path):
    monkeypatch.setenv("OSE_PSEUDONYM_KEY", "too short")
    with pytest.raises(PseudonymKeyError, match="at least 32"):
        pseudonymise(["AB12"])
    monkeypatch.delenv("OSE_PSEUDONYM_KEY")
    config = tmp_path / "auth.yaml"
    config.write_text("pseudonymisation:\n  key: short\n")
    monkeypatch.setenv("OSE_AUTH_CONFIG", str(config))
    with pytest.raises(PseudonymKeyError, match="auth.yaml"):
        pseudonym.secret()
    monkeypatch.delenv("OSE_AUTH_CONFIG")
    key_file_only.parent.mkdir(parents=True)
    key_file_only.write_bytes(b"x" * 16)
    with pytest.raises(PseudonymKeyError, match="pseudonym.key"):
        pseudonym.secret()


def test_an_ingest_without_a_usable_key_is_refused_with_the_reason(monkeypatch):
    monkeypatch.setenv("OSE_PSEUDONYM_KEY", "too short")
    with pytest.raises(ingest.RejectedFile, match="pseudonymised.*at least 32"):
        ingest.ingest([("x.csv", b"report_id,occurred_at,force,officer_id\nR1,2024-01-01,F,AB12\n")])


def test_the_environment_wins_over_the_config_and_the_config_over_the_key_file(key_file_only, monkeypatch, tmp_path):
    config = tmp_path / "auth.yaml"
    config.write_text("credentials: {usernames: {}}\npseudonymisation:\n  key: " + "c" * 40 + "\n")
    monkeypatch.setenv("OSE_AUTH_CONFIG", str(config))
    assert pseudonym.secret() == b"c" * 40
    assert not key_file_only.exists()
    monkeypatch.setenv("OSE_PSEUDONYM_KEY", "e" * 40)
    assert pseudonym.secret() == b"e" * 40
    assert pseudonymise(["AB12"]) == pseudonymise(["AB12"], b"e" * 40)
    monkeypatch.delenv("OSE_PSEUDONYM_KEY")
    config.write_text("credentials: {usernames: {}}\n")  # no pseudonymisation section: the key file
    assert pseudonym.secret() == key_file_only.read_bytes()


# --- end to end: no raw id survives an ingest -----------------------------------------------

RAW_IDS = ("PC-4471-SECRET", "PC-9902-HIDDEN", "PC-5555-BROKEN")
CANONICAL = (b"report_id,occurred_at,force,officer_id,officer_injured,tactics\n"
             b"R1,2024-01-05 08:10,Northshire Police,PC-4471-SECRET,Yes,CED drawn\n"
             b"R2,2024-01-06 09:10,Northshire Police, pc-4471-secret ,No,\n"
             b"R3,2024-01-07 10:10,Northshire Police,PC-9902-HIDDEN,No,Baton drawn\n"
             b"R4,not a date,Northshire Police,PC-5555-BROKEN,No,\n"
             b"R3,2024-01-07 10:10,Northshire Police,PC-9902-HIDDEN,No,Baton drawn\n")
ROSTER = b"Officer ID,Role,Team\nPC-4471-SECRET,Response,North A\npc-9902-hidden,Custody,Custody 1\n"


def _all_bytes(*folders: Path) -> dict[Path, bytes]:
    found = {p: p.read_bytes() for folder in folders for p in sorted(folder.rglob("*")) if p.is_file()}
    assert found, "nothing was written"
    return found


def _decoded_text(path: Path) -> str:
    """Return every value a file holds as text (Parquet decoded, so compression cannot hide an id)."""
    if path.suffix == ".parquet":
        return pq.read_table(path).to_pandas().astype(str).to_csv()
    return path.read_text(errors="replace")


def _assert_no_raw_ids(files: dict[Path, bytes], raw_ids) -> None:
    for path, data in files.items():
        text = _decoded_text(path).casefold()
        for raw in raw_ids:
            assert raw.encode() not in data and raw.casefold().encode() not in data, f"{raw} in {path.name}"
            assert raw.casefold() not in text, f"{raw} in {path.name}"


def test_a_canonical_ingest_stores_no_raw_officer_id_yet_counts_and_roster_joins(key_file_only, tmp_path):
    source = tmp_path / "reports.csv"
    source.write_bytes(CANONICAL)
    assert all(raw.encode() in CANONICAL for raw in RAW_IDS)  # the check below can fail
    out = tmp_path / "cli-out"
    env = _env_without_key(key_file_only.parents[1])  # a separate process, which makes the key file
    _in_fresh_process(f"from lib.ingest import pipeline; raise SystemExit(pipeline.main([{str(source)!r}, '--out', "
                      f"{str(out)!r}]))", env)
    result = ingest.ingest([("reports.csv", CANONICAL)])
    saved = library.save("Northshire", result, user="analyst")
    _assert_no_raw_ids(_all_bytes(saved, out), RAW_IDS)

    reports = pq.read_table(saved / "reports.parquet").to_pandas()
    assert len(reports) == 3 and reports["officer_id"].map(lambda v: bool(PSEUDONYM.match(v))).all()
    assert reports["officer_id"].nunique() == 2  # " pc-4471-secret " is the same officer as PC-4471-SECRET
    assert pq.read_table(out / "reports.parquet").column("officer_id").to_pylist() == reports["officer_id"].tolist()
    quarantine = pd.read_csv(saved / "quarantine.csv", dtype=str).set_index("report_id")
    assert quarantine["officer_id"].tolist() == pseudonymise(["PC-5555-BROKEN", "PC-9902-HIDDEN"])
    report = json.loads((out / "report.json").read_text())
    assert report["rows_loaded"] == 3 and report["rows_quarantined"] == 2

    officers = roster.read("officers.csv", ROSTER).records  # uploaded after the reports
    joined = reports.drop(columns="officer_role").merge(officers[["officer_id", "officer_role"]], on="officer_id",
                                                        how="left")
    assert joined.set_index("report_id")["officer_role"].to_dict() == {"R1": "Response", "R2": "Response",
                                                                       "R3": "Custody"}


def test_appending_to_a_dataset_saved_before_pseudonymisation_hashes_its_old_ids(tmp_path, monkeypatch):
    monkeypatch.setenv("OSE_DATA_DIR", str(tmp_path / "var"))
    first = ingest.ingest([("reports.csv", CANONICAL)])
    library.save("Legacy", first)
    folder = library.root() / "Legacy"
    _as_saved_before_versions(folder)
    legacy = pq.read_table(folder / "reports.parquet").to_pandas()  # as an older version saved it: raw ids
    legacy["officer_id"] = ["PC-4471-SECRET", " pc-4471-secret ", "PC-9902-HIDDEN"]
    legacy.to_parquet(folder / "reports.parquet", index=False)
    quarantine = pd.read_csv(folder / "quarantine.csv", dtype=str).assign(officer_id=["PC-5555-BROKEN", None])
    quarantine.to_csv(folder / "quarantine.csv", index=False)
    later = CANONICAL.replace(b"R1,", b"R9,").replace(b"R2,", b"R8,")
    library.append("Legacy", ingest.ingest([("later.csv", later)]))
    _assert_no_raw_ids(_all_bytes(folder), RAW_IDS)
    ids = pq.read_table(library.path_of("Legacy") / "reports.parquet").column("officer_id").to_pylist()
    assert len(ids) == 5 and set(ids) == set(pseudonymise(["PC-4471-SECRET", "PC-9902-HIDDEN"]))
    assert [v.number for v in library.versions("Legacy")] == [1, 2]  # the old dataset kept, pseudonymised, as v1


def _as_saved_before_versions(folder: Path) -> None:
    """Turn a saved dataset into the layout the library wrote before versions: its files directly in its folder."""
    [version] = (folder / "versions").iterdir()
    for child in version.iterdir():
        child.rename(folder / child.name)
    shutil.rmtree(folder / "versions")
    (folder / "CURRENT").unlink()


def test_a_session_dataset_opened_from_a_file_holds_pseudonyms(engine, tmp_path):
    source = tmp_path / "reports.csv"
    source.write_bytes(CANONICAL)
    ds = engine.open(source)
    ids = engine.execute(engine.reports(ds).select("officer_id"))["officer_id"]
    assert set(ids) == set(pseudonymise(["PC-4471-SECRET", "PC-9902-HIDDEN"]))


def test_reingesting_our_own_export_does_not_hash_twice(tmp_path):
    first = ingest.ingest([("reports.csv", CANONICAL)])
    ingest.write(first, tmp_path / "out")
    again = ingest.ingest([("reports.parquet", (tmp_path / "out" / "reports.parquet").read_bytes())])
    assert sorted(again.reports["officer_id"]) == sorted(first.reports["officer_id"])


def test_the_national_form_pseudonymises_its_officer_id_columns_in_the_quarantine():
    text = (b"IncidentDate,IncidentTime,Staff ID,MainDuty,StaffInjured\n"
            b"05/01/2024,08:10,PC-4471-SECRET,Patrol,Yes\n"
            b"not a date,09:00,PC-5555-BROKEN,Patrol,No\n")
    result = ingest.ingest([("form.csv", text)], fmt="uk-national", force="Metropolitan Police")
    assert result.reports["officer_id"].tolist() == pseudonymise(["PC-4471-SECRET"])
    assert result.quarantine["Staff ID"].tolist() == pseudonymise(["PC-5555-BROKEN"])
    dumped = result.quarantine.to_csv() + json.dumps(result.report, default=str)
    assert not any(raw in dumped for raw in RAW_IDS)


def test_the_mapping_step_shows_pseudonyms_not_raw_ids():
    own = (b"Ref,When,Collar,Hurt\nA1,05/01/2024,PC-4471-SECRET,Yes\nA2,06/01/2024,PC-9902-HIDDEN,No\n")
    raw = ingest.read_extract("own.csv", own)
    proposal = mapping.propose(raw.frame, "own")
    table = mapping.editor_frame(proposal, raw.frame)
    assert "PC-" not in table.to_csv()
    shown = table.set_index("key").loc["officer_id", "Example values"]
    assert proposal.officer_id_column == "Collar"
    assert set(pseudonymise(["PC-4471-SECRET", "PC-9902-HIDDEN"])) <= set(re.findall(r"P-[0-9a-f]{16}", shown))


# --- the real Dallas file -------------------------------------------------------------------


def test_no_raw_dallas_officer_id_survives_an_ingest(tmp_path, monkeypatch, realdata):
    DALLAS = realdata / DALLAS_FILE
    monkeypatch.setenv("OSE_DATA_DIR", str(tmp_path / "var"))
    data = DALLAS.read_bytes()
    lines = data.split(b"\n")
    lines[2] = re.sub(rb"^[^,]*", b"31/31/31", lines[2])  # the first data row's date, broken
    data = b"\n".join(lines)
    raw = pd.read_csv(DALLAS, dtype=str, keep_default_na=False, skiprows=[1])
    broken_id = raw["OFFICER_ID"].iloc[0]
    raw_ids = set(raw["OFFICER_ID"]) - {"0", ""}  # the profile maps 0 to unknown
    dallas = ProfileFormat(load_profile(PROFILE_DIR / "dallas.json"))
    result = ingest.ingest([("dallas.csv", data)], fmt=dallas.name, formats=[dallas])
    saved = library.save("Dallas", result)
    ingest.write(result, tmp_path / "out")

    for folder in (saved, tmp_path / "out"):
        reports = pq.read_table(folder / "reports.parquet").to_pandas()
        ids = reports["officer_id"].dropna()
        assert ids.map(lambda v: bool(PSEUDONYM.match(v))).all() and not set(ids) & raw_ids
        # Every officer is still there: one pseudonym per raw id of the loaded rows.
        assert ids.nunique() == len(set(raw["OFFICER_ID"].iloc[1:]) - {"0"})
        quarantine = pd.read_csv(folder / "quarantine.csv", dtype=str)
        assert quarantine["OFFICER_ID"].tolist() == pseudonymise([broken_id])
    strings = json.dumps(result.report, default=str)
    quoted = set(re.findall(r"'([^']*)'", strings)) | set(re.findall(r'"([^"]*)"', strings))
    assert not quoted & raw_ids
    upload = ingest.read_extract("d.csv", DALLAS.read_bytes()).frame
    examples = mapping.editor_frame(mapping.propose(upload, "d"), upload)
    shown = examples.set_index("key").loc["officer_id", "Example values"]
    assert shown and not set(re.split(r"[, ()]+", shown)) & raw_ids
    assert all(PSEUDONYM.match(v) for v in re.findall(r"P-\S{16}", shown))
