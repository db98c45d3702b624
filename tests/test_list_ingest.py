"""Extracts that keep one row per incident and list the officers' values in cells, in step.

Two fixtures in that shape, made here and never stored: the real New Orleans file folded into one
row per PIB File Number (each report of the per-officer load becomes one item of the row's lists),
and generated incidents written by lib/synth/joined.py. Read back, each must give one report per
officer with the injured counts exactly those of the per-officer source, and reconcile at both
levels: incidents (rows) in = loaded + set aside; officer items in = reports loaded + set aside.
"""
from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest

from lib import ingest, synth
from lib.engine import query
from lib.engine.query import UNRESTRICTED, Filters
from lib.ingest import library, mapping
from lib.ingest.formats import FILE, ROW, ROWS
from lib.ingest.formats.lists import ITEM, detect, explode, split_items
from lib.ingest.formats.profile import Profile, ProfileFormat, shipped_profiles
from lib.present import tables
from lib.synth.joined import OFFICER_COLUMNS, TACTICS, joined_profile, list_joined_incidents

SEED = 3  # fixed up front
REPORTS = 3000
NOPD_FILE = "nopd_uof_incidents_2016-2019.csv"
PIB = "PIB File Number"
NOPD_OFFICER = ["Officer Race/Ethnicity", "Officer Gender", "Officer Age", "Officer Years of Service"]
NOPD_SUBJECT = ["Subject Gender", "Subject Ethnicity", "Subject Age", "Subject Build", "Subject Height"]
NOPD_HARM = ["Officer Injured", "Subject Injured"]
NOPD_LISTED = [*NOPD_OFFICER, *NOPD_SUBJECT, *NOPD_HARM, "Use of Force Type"]
HARM = ["officer_injured", "subject_injured", "officer_assaulted"]


def load(data: bytes, profile: Profile, name: str = "joined.csv") -> ingest.IngestResult:
    return ingest.ingest([(name, data)], fmt=f"profile:{profile.name}", formats=[ProfileFormat(profile)])


def reconciles(report: dict) -> bool:
    """Both levels of the promise: no incident and no officer lost."""
    return (report["rows_in"] == report["rows_loaded"] + report["rows_quarantined"]
            and report["items_in"] == report["items_loaded"] + report["items_quarantined"])


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def generated() -> synth.Synthetic:
    return synth.generate(REPORTS, seed=SEED)


@pytest.fixture(scope="module")
def joined(generated) -> pd.DataFrame:
    return list_joined_incidents(generated)


@pytest.fixture(scope="module")
def joined_result(joined) -> ingest.IngestResult:
    return load(joined.to_csv(index=False).encode(), joined_profile())


@pytest.fixture(scope="module")
def nopd_profile() -> Profile:
    return next(p for p in shipped_profiles() if p.name == "nopd")


@pytest.fixture(scope="module")
def nopd_rows(realdata) -> pd.DataFrame:
    return pd.read_csv(realdata / NOPD_FILE, dtype=str, keep_default_na=False, encoding="utf-8-sig")


@pytest.fixture(scope="module")
def nopd_per_officer(realdata, nopd_profile) -> ingest.IngestResult:
    return load((realdata / NOPD_FILE).read_bytes(), nopd_profile, NOPD_FILE)


def fold_nopd(rows: pd.DataFrame, profile: Profile) -> pd.DataFrame:
    """Fold the per-officer file into one row per PIB file, officer-level cells joined by ' | ' in step.

    An item is one report of the per-officer load (the rows sharing the PIB and the officer and
    subject descriptors the profile groups by), in the order the load numbers them.
    """
    key = [PIB, *profile.group_by]

    def harm(cells: pd.Series) -> str:  # yes if any row says yes, as the per-officer load folds it
        return "Yes" if cells.eq("Yes").any() else next((c for c in cells if c), "")

    per_item = {c: "first" for c in rows.columns if c not in key}
    per_item.update({c: harm for c in NOPD_HARM})
    per_item["Use of Force Type"] = lambda cells: ", ".join(dict.fromkeys(c for c in cells if c))
    items = rows.groupby(key, sort=False).agg(per_item).reset_index()
    per_incident = {c: "first" for c in items.columns if c != PIB}
    per_incident.update({c: " | ".join for c in NOPD_LISTED})
    return items.groupby(PIB, sort=False).agg(per_incident).reset_index()[rows.columns]


@pytest.fixture(scope="module")
def nopd_joined(nopd_rows, nopd_profile) -> pd.DataFrame:
    return fold_nopd(nopd_rows, nopd_profile)


@pytest.fixture(scope="module")
def nopd_joined_profile(nopd_profile) -> Profile:
    return replace(nopd_profile, name="nopd-joined", group_by=[], list_columns=NOPD_LISTED, list_separator=" | ",
                   effective_column=None, notes=[])


# --- the generated incidents ---------------------------------------------------------------


def test_generated_incidents_load_one_report_per_officer_with_exact_harm_counts(generated, joined,
                                                                                joined_result):
    truth = generated.reports.to_pandas()
    reports, r = joined_result.reports, joined_result.report
    assert joined["Officer Injured"].str.contains(" | ", regex=False).any()
    assert len(joined) == truth["incident_id"].nunique() < REPORTS  # one row per incident
    assert len(reports) == REPORTS
    for fld in HARM:
        assert int(reports[fld].sum()) == int(truth[fld].sum()), fld
        assert int(reports[fld].isna().sum()) == int(truth[fld].isna().sum()), fld
    assert reports["incident_id"].nunique() == truth["incident_id"].nunique()
    assert reports.groupby("incident_id").size().value_counts().sort_index().to_dict() == \
        truth.groupby("incident_id").size().value_counts().sort_index().to_dict()
    assert reports["report_id"].is_unique
    assert reports["officer_id"].nunique() == truth["officer_id"].nunique()
    # Tactics are the Home Office names, one row per tactic per officer, never the joined strings.
    made = generated.tactics.to_pandas()["tactic"].astype(str).value_counts().sort_index()
    assert joined_result.tactics["tactic"].value_counts().sort_index().to_dict() == made.to_dict()
    assert (r["rows_in"], r["rows_loaded"], r["rows_quarantined"]) == (len(joined), len(joined), 0)
    assert (r["items_in"], r["items_loaded"], r["items_quarantined"]) == (REPORTS, REPORTS, 0)
    assert reconciles(r)


def test_officer_values_keep_their_officer(generated, joined_result):
    truth = generated.reports.to_pandas()
    got = joined_result.reports
    # Officer k of an incident is its k-th report: pair them and compare officer-level fields.
    truth = truth.assign(k=truth.groupby("incident_id").cumcount()).sort_values(["incident_id", "k"])
    got = got.assign(k=got.groupby("incident_id").cumcount()).sort_values(["incident_id", "k"])
    for fld in ("officer_role", "officer_injured", "subject_injured", "length_of_service_years"):
        left = truth[fld].astype("string").fillna("?").to_numpy()
        right = got[fld].astype("string").fillna("?").to_numpy()
        assert (left == right).all(), fld


def test_an_injury_answered_once_per_row_is_counted_in_incidents(engine, tmp_path, monkeypatch):
    """A harm column not listed per officer was recorded for the incident: measures count incidents."""
    monkeypatch.setenv("OSE_DATA_DIR", str(tmp_path / "var"))
    text = ("Incident,Date,Time,Officer Number,Officer Injured,Force Used\n"
            "I1,05/01/2024,10:00,a | b | c,Yes,Handcuffing | Handcuffing | Handcuffing\n"
            "I2,06/01/2024,11:00,d | e,No,Handcuffing | Unarmed skills\n"
            "I3,07/01/2024,12:00,f,Yes,Handcuffing\n")
    profile = Profile(name="once-per-row", force="F", date_column="Date", time_column="Time",
                      report_id_column="Incident", incident_id_column="Incident",
                      officer_id_column="Officer Number", columns={"officer_injured": "Officer Injured"},
                      tactic_columns=["Force Used"], list_columns=["Officer Number", "Force Used"])
    result = load(text.encode(), profile, "once.csv")
    assert result.report["reports_loaded"] == 6 and reconciles(result.report)
    assert result.report["incident_level"] == ["officer_injured"]
    assert int(result.reports["officer_injured"].sum()) == 4  # copied to each of the officers
    rate = query.summarise(engine, engine.open(library.save("Once", result)), Filters(), UNRESTRICTED)
    injured = rate.rates["officer_injured"]
    assert (injured.numerator, injured.denominator, injured.unit) == (2, 3, "incidents")


def test_without_list_columns_the_same_file_is_misread(joined, generated):
    """The bug this fixes: one report per incident, and every listed cell unknown."""
    profile = replace(joined_profile(), list_columns=[])
    result = load(joined.to_csv(index=False).encode(), profile)
    truth = generated.reports.to_pandas()
    assert len(result.reports) == len(joined) < REPORTS
    assert int(result.reports["officer_injured"].sum()) < int(truth["officer_injured"].sum())
    assert "items_in" not in result.report


def test_a_row_whose_lists_disagree_is_set_aside_with_its_reason(joined):
    changed = joined.copy()
    pair = changed.index[changed["Officer Number"].str.count(r" \| ") == 1]
    bad, broadcast = pair[0], pair[1]
    changed.loc[bad, "Officer Injured"] = "No | Yes | No"
    changed.loc[broadcast, "Officer Role"] = "Custody"  # recorded once: given to both officers
    result = load(changed.to_csv(index=False).encode(), joined_profile())
    r = result.report
    assert (r["rows_in"], r["rows_loaded"], r["rows_quarantined"]) == (len(joined), len(joined) - 1, 1)
    assert (r["items_in"], r["items_loaded"]) == (REPORTS - 2, REPORTS - 2)
    assert r["rows_lists_disagree"] == 1
    assert reconciles(r)
    q = result.quarantine
    assert len(q) == 1 and int(q[ROW].iloc[0]) == bad + 1 and int(q[ROWS].iloc[0]) == 1
    reason = q["reason"].iloc[0]
    assert reason.startswith("the officer lists disagree in length (Officer Injured: 3 items; Officer Number, ")
    assert "more: 2 items)" in reason
    assert q["Incident Ref"].iloc[0] == joined.loc[bad, "Incident Ref"]  # the download shows the row
    assert q["Officer Number"].iloc[0] != joined.loc[bad, "Officer Number"]  # officer ids pseudonymised
    roles = result.reports.loc[result.reports["incident_id"] == joined.loc[broadcast, "Incident Ref"],
                               "officer_role"]
    assert list(roles) == ["Custody", "Custody"]
    assert "disagree in length" in tables.items_sentence(r)
    assert tables.reconciliation_sentence(r).startswith(f"{len(joined):,} incidents (rows) read = ")


def test_an_incident_set_aside_later_takes_all_its_officers(joined):
    changed = joined.copy()
    pair = changed.index[changed["Officer Number"].str.count(r" \| ") == 2]
    changed.loc[pair[0], "Incident Date"] = "not a date"
    result = load(changed.to_csv(index=False).encode(), joined_profile())
    r = result.report
    assert (r["rows_loaded"], r["rows_quarantined"]) == (len(joined) - 1, 1)
    assert (r["items_loaded"], r["items_quarantined"]) == (REPORTS - 3, 3)
    assert reconciles(r)
    assert len(result.quarantine) == 1  # one entry for the incident, not one per officer
    assert "Incident Date 'not a date' is not a date" in result.quarantine["reason"].iloc[0]


# --- the real New Orleans file, folded into one row per incident ------------------------------


def test_nopd_folded_per_incident_loads_the_per_officer_reports(nopd_rows, nopd_joined, nopd_joined_profile,
                                                                nopd_per_officer):
    assert len(nopd_rows) == 4907 and len(nopd_joined) == nopd_rows[PIB].nunique() == 1879
    assert nopd_joined["Officer Injured"].str.contains(" | ", regex=False).sum() > 500
    result = load(nopd_joined.to_csv(index=False).encode(), nopd_joined_profile, "nopd-joined.csv")
    r, per_officer = result.report, nopd_per_officer.reports
    assert (r["rows_in"], r["rows_loaded"], r["rows_quarantined"]) == (1879, 1879, 0)
    assert r["items_in"] == r["items_loaded"] == r["reports_loaded"] == len(per_officer)
    assert reconciles(r)
    injured = int(result.reports["officer_injured"].sum())
    assert injured == int(per_officer["officer_injured"].sum())
    assert int(result.reports["subject_injured"].sum()) == int(per_officer["subject_injured"].sum())
    # Report by report: the same ids (PIB/1, PIB/2 ... in the same order) and the same officer's values.
    merged = per_officer.merge(result.reports, on="report_id", suffixes=("", "_joined"))
    assert len(merged) == len(per_officer)
    for fld in ("incident_id", "officer_injured", "subject_injured", "subject_gender", "subject_age_band",
                "length_of_service_years"):
        left = merged[fld].astype("string").fillna("?")
        right = merged[f"{fld}_joined"].astype("string").fillna("?")
        assert (left == right).all(), fld
    assert not result.tactics["tactic"].str.contains("|", regex=False).any()


def test_nopd_folded_file_is_proposed_with_its_list_columns(nopd_joined):
    found = detect(nopd_joined, list(nopd_joined.columns))
    assert found is not None and found.separator == " | "
    assert set(found.columns) == set(NOPD_LISTED)
    assert found.agreement == 1.0


# --- the mapping step -----------------------------------------------------------------------


def test_mapping_step_proposes_the_list_columns_and_the_proposal_loads(tmp_path, joined, generated):
    data = joined.to_csv(index=False).encode()
    raw = ingest.read_extract("incidents.csv", data)
    proposal = mapping.propose(raw.frame, "incidents")
    assert proposal.list_separator == " | "
    assert set(proposal.list_columns) == {*OFFICER_COLUMNS, TACTICS}
    assert any("list several officers" in n for n in proposal.notes)
    table = mapping.editor_frame(proposal, raw.frame).set_index("key")
    assert table.loc["officer_injured", "Source column"] == "Officer Injured"
    assert "|" not in table.loc["officer_injured", "Example values"]  # examples are one officer's values
    assert not mapping.tactic_frame(proposal, raw.frame)["Tactic in the extract"].str.contains("|",
                                                                                                regex=False).any()
    fmt = mapping.save(proposal, table.reset_index(), "incidents", tmp_path, force="Synthetic forces")
    saved = Profile.from_json((tmp_path / "incidents.json").read_text())
    assert saved.list_columns == proposal.list_columns
    result = ingest.ingest([("incidents.csv", data)], fmt=fmt, formats=[ProfileFormat(saved)])
    truth = generated.reports.to_pandas()
    assert result.report["reports_loaded"] == REPORTS
    assert int(result.reports["officer_injured"].sum()) == int(truth["officer_injured"].sum())
    # The user can turn the proposal off: the rows are then read one report each.
    off = mapping.apply(proposal, table.reset_index(), "incidents", force="Synthetic forces", list_columns=[])
    assert off.list_columns == []


@pytest.mark.parametrize("csv", [
    b"Ref,When,Hurt,Tactic Used\nA1,05/01/2024,Yes,Handcuffing\nA2,06/01/2024,No,Taser\n",
    # one column with a separator is that field's own list, not several officers
    b"Ref,When,Hurt,Notes\nA1,05/01/2024,Yes,a; b\nA2,06/01/2024,No,c; d\nA3,07/01/2024,No,e\n",
])
def test_no_list_columns_are_proposed_where_cells_do_not_list_officers(csv):
    raw = ingest.read_extract("own.csv", csv)
    assert mapping.propose(raw.frame, "own").list_columns == []


# --- splitting, broadcasting, subjects ------------------------------------------------------


def test_items_split_at_the_separator_and_empty_items_stay_unknown():
    cells = pd.Series(["No | Yes", "Yes", None, "Yes |", "a|b|c"], dtype="string")
    assert split_items(cells, " | ").tolist() == [["No", "Yes"], ["Yes"], [None], ["Yes", None], ["a", "b", "c"]]


def test_officers_and_subjects_listed_give_one_report_per_pair():
    profile = Profile(name="pairs", force="Kent Police", date_column="Date", report_id_column="Ref",
                      columns={"officer_injured": "Officer Hurt", "subject_gender": "Subject Sex"},
                      list_columns=["Officer Hurt"], subject_list_columns=["Subject Sex"], list_separator=";")
    csv = b"Ref,Date,Officer Hurt,Subject Sex\nA1,01/02/2024,Yes;No,Male;Female\nA2,02/02/2024,No,Female\n"
    result = load(csv, profile)
    got = result.reports.set_index("report_id")
    assert list(got.index) == ["A1/1", "A1/2", "A1/3", "A1/4", "A2"]
    assert list(got["officer_injured"]) == [True, True, False, False, False]
    assert list(got["subject_gender"]) == ["Male", "Female", "Male", "Female", "Female"]
    assert set(got.loc[["A1/1", "A1/4"], "incident_id"]) == {"A1"}
    assert (result.report["items_in"], result.report["rows_in"]) == (5, 2)


def test_explode_numbers_the_items_of_each_row():
    raw = pd.DataFrame({FILE: "f.csv", ROW: [1, 2], "a": ["x | y", "z"], "b": ["1", "2 | 3"]})
    out = explode(raw, [["a", "b"]], " | ")
    assert out.frame[[ROW, ITEM, "a", "b"]].values.tolist() == [[1, 1, "x", "1"], [1, 2, "y", "1"],
                                                               [2, 1, "z", "2"], [2, 2, "z", "3"]]
    assert (out.items_in, out.rows_split, len(out.set_aside)) == (4, 2, 0)
    mismatched = explode(raw.assign(b=["1 | 2 | 3", "4"]), [["a", "b"]], " | ")
    assert mismatched.set_aside["reason"].tolist() == [
        "the officer lists disagree in length (a: 2 items; b: 3 items); set aside rather than guess which "
        "officer each value belongs to"]
    assert mismatched.frame[[ROW, ITEM, "a", "b"]].values.tolist() == [[2, 1, "z", "4"]]


@pytest.mark.parametrize(("changes", "problem"), [
    ({"list_separator": ","}, "cannot be ','"),
    ({"list_separator": "  "}, "list_separator"),
    ({"list_columns": ["Date", "Hurt"]}, "recorded once per row"),
    ({"list_columns": ["Hurt"], "subject_list_columns": ["Hurt"]}, "with the officers and with the subjects"),
    ({"list_columns": "Hurt"}, "list_columns must be a JSON list"),
])
def test_profile_problems_name_what_is_wrong_with_the_lists(changes, problem):
    base = {"name": "x", "force": "Kent Police", "date_column": "Date", "columns": {"officer_injured": "Hurt"},
            "list_columns": ["Hurt"]}
    with pytest.raises(ValueError, match=problem):
        Profile(**{**base, **changes})


def test_list_settings_survive_a_json_round_trip():
    profile = joined_profile(separator=";")
    again = Profile.from_json(profile.to_json())
    assert (again.list_columns, again.list_separator) == (profile.list_columns, ";")


def test_a_row_listing_too_many_officers_is_set_aside_not_split():
    from lib.ingest.formats.lists import MAX_ITEMS

    many = " | ".join(["No"] * (MAX_ITEMS + 1))
    raw = pd.DataFrame({FILE: "f.csv", ROW: [1, 2], "a": [many, "Yes | No"], "b": [many, "x"]})
    out = explode(raw, [["a", "b"]], " | ")
    assert len(out.frame) == 2 and out.items_in == 2
    assert len(out.set_aside) == 1 and f"{MAX_ITEMS + 1:,} officers" in out.set_aside["reason"].iloc[0]
