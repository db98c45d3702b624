"""Tests for lib/ingest/formats/uk_national.py (the national recording form, read) and
lib/synth/uk_national.py (written)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lib import synth
from lib.ingest.formats import FILE, ROW, ROWS, Adapted
from lib.ingest.formats.uk_national import FORM_COLUMNS, UkNationalForm
from lib.model import schema
from lib.synth.uk_national import add_drift, export, main, write_csv

from .conftest import ROOT

FIXTURES = Path(__file__).parent / "fixtures"
N_REPORTS = 5000

# The first 58 columns of the published FY20-21 file, in order (shared/formats, section 2.2).
PUBLISHED_START = (
    "IncidentDate", "IncidentTime", "Incident Location: Street/Highway",
    "Incident Location: Public Transport", "Incident Location: Retail Premises",
    "Incident Location: Open ground (e.g. park, car park, field)",
    "Incident Location: Licensed Premises", "Incident Location: Sports or Event Stadia",
    "Incident Location: Hospital/A&E (non-mental-health setting)",
    "Incident Location: Mental Health Setting",
    "Incident Location: Police vehicle with prisoner handling cage",
    "Incident Location: Police vehicle without prisoner handling cage",
    "Incident Location: Dwelling", "Incident Location: Police station (excluding custody block)",
    "Incident Location: Custody Block", "Incident Location: Ambulance", "Incident Location: Other",
    "Borough", "PrimaryConduct", "AssaultedBySubject", "ThreatenedWithWeapon",
    "AssaultedWithWeapon", "Impact Factor: Possesion of a weapon", "Impact Factor: Alcohol",
    "Impact Factor: Drugs", "Impact Factor: Mental Health", "Impact Factor: Prior Knowledge",
    "Impact Factor: Size/Gender/Build", "Impact Factor: Acute Behavioural Disorder",
    "Impact Factor: Crowd", "Impact Factor: Other", "Reason for Force: Protect self",
    "Reason for Force: Protect Public", "Reason for Force: Protect Subject",
    "Reason for Force: Protect Other Officers", "Reason for Force: Prevent Offence",
    "Reason for Force: Secure Evidence", "Reason for Force: Effect Search",
    "Reason for Force: Effect Arrest", "Reason for Force: Method of Entry",
    "Reason for Force: Remove Handcuffs", "Reason for Force: Prevent Harm",
    "Reason for Force: Prevent Escape", "Reason for Force: Other", "MainDuty", "SingleCrewed",
    "TrainedCED", "CarryingCED", "Tactic 1", "Effective 1", "Tactic 2", "Effective 2", "Tactic 3",
    "Effective 3", "Tactic 4", "Effective 4", "Tactic 5", "Effective 5",
)


def read_extract(path: Path) -> pd.DataFrame:
    """Read a CSV the way the ingester does: every cell as text, plus the file and row."""
    raw = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="cp1252")
    return raw.assign(**{FILE: path.name, ROW: np.arange(1, len(raw) + 1)})


def one_row(**cells: str) -> pd.DataFrame:
    """A one-row extract: a dated report plus the given cells."""
    row = {"IncidentDate": "01/04/2020", "IncidentTime": "12:00", **cells}
    return pd.DataFrame([row]).assign(**{FILE: "one.csv", ROW: 1})


def as_lists(values: pd.Series) -> list:
    """Cell values as plain Python, lists as tuples and nulls as None, for comparison."""
    out = []
    for v in values.tolist():
        if isinstance(v, (list, np.ndarray)):
            out.append(tuple(v))
        else:
            out.append(None if v is None or v is pd.NA or v is pd.NaT or v != v else v)
    return out


def records(frame: pd.DataFrame, columns: list[str]) -> list[list]:
    """Rows of some columns as plain Python lists, nulls as None."""
    return [list(r) for r in zip(*(as_lists(frame[c].astype(object)) for c in columns), strict=True)]


@pytest.fixture(scope="module")
def canonical() -> tuple[pd.DataFrame, pd.DataFrame]:
    generated = synth.generate(N_REPORTS, seed=7)
    return generated.reports.to_pandas(), generated.tactics.to_pandas()


@pytest.fixture(scope="module")
def round_trip(canonical, tmp_path_factory) -> tuple[pd.DataFrame, Adapted]:
    reports, tactics = canonical
    path = tmp_path_factory.mktemp("uk") / "mps_fy2021.csv"
    write_csv(export(reports, tactics), path)
    raw = read_extract(path)
    return raw, UkNationalForm().adapt(raw)


# --- export ---------------------------------------------------------------------------------


def test_export_writes_the_published_header(canonical):
    wide = export(*canonical)
    assert len(FORM_COLUMNS) == 271 and len(set(FORM_COLUMNS)) == 271
    assert list(wide.columns) == list(FORM_COLUMNS)
    assert tuple(FORM_COLUMNS[:58]) == PUBLISHED_START
    assert FORM_COLUMNS[FORM_COLUMNS.index("Tactic 20") + 1] == "Tactic Effective 20"
    assert "CED2 ArCED2" in FORM_COLUMNS and FORM_COLUMNS[-1] == "Outcome: Other"
    assert len(wide) == N_REPORTS


def test_export_writes_uk_dates_times_and_yes_no(canonical):
    reports, tactics = canonical
    wide = export(reports, tactics)
    first = reports.iloc[0]
    assert wide.loc[0, "IncidentDate"] == first["occurred_at"].strftime("%d/%m/%Y")
    assert wide.loc[0, "IncidentTime"] == first["occurred_at"].strftime("%H:%M")
    flags = wide["SingleCrewed"]
    assert set(flags.dropna()) == {"Yes", "No"}
    assert flags.isna().sum() == reports["single_crewed"].isna().sum()


def test_export_leaves_columns_blank_for_fields_a_frame_lacks(canonical):
    reports, tactics = canonical
    wide = export(reports.drop(columns=["area", "resistance", "officer_injured"]), tactics)
    assert wide["Borough"].isna().all() and wide["StaffInjured"].isna().all()
    assert wide["StaffInjuryIntentional"].isna().all()


# --- round trip through a cp1252 CSV ---------------------------------------------------------


def test_round_trip_accounts_for_every_row(round_trip):
    raw, adapted = round_trip
    assert len(raw) == adapted.reports[ROWS].sum() + len(adapted.quarantine)
    assert adapted.quarantine.empty
    assert (adapted.reports[ROWS] == 1).all()
    assert adapted.reports["report_id"].tolist()[:2] == ["mps_fy2021-1", "mps_fy2021-2"]
    assert adapted.reports["officer_id"].isna().all()
    assert any("no officer identifier" in note for note in adapted.notes)


@pytest.mark.parametrize("field", [
    "occurred_at", "shift", "area", "location_type", "officer_role", "single_crewed",
    "ced_trained", "subject_age_band", "subject_gender", "subject_ethnicity",
    "subject_physical_disability", "subject_mental_disability", "resistance", "reasons",
    "impact_factors", "officer_injured", "officer_injury_level", "officer_assaulted",
    "subject_injured", "subject_injury_level", "outcomes",
])
def test_round_trip_keeps_each_field_the_form_carries(canonical, round_trip, field):
    reports, _ = canonical
    _, adapted = round_trip
    original = reports[field]
    if field == "area":
        original = original.astype(str)
    assert as_lists(adapted.reports[field].astype(object) if field == "area" else
                    adapted.reports[field]) == as_lists(original)


@pytest.mark.parametrize("field", ["officer_injured", "shift", "officer_role"])
def test_round_trip_keeps_counts_including_unknowns(canonical, round_trip, field):
    reports, _ = canonical
    _, adapted = round_trip
    expected = reports[field].astype(object).value_counts(dropna=False).to_dict()
    got = adapted.reports[field].astype(object).value_counts(dropna=False).to_dict()
    assert {str(k): v for k, v in got.items()} == {str(k): v for k, v in expected.items()}
    if field == "officer_injured":
        assert set(map(str, got)) == {"True", "False", "nan"} or set(map(str, got)) == {
            "True", "False", "<NA>"}


def test_round_trip_keeps_tactics_with_one_ced_per_report(canonical, round_trip):
    _, tactics = canonical
    _, adapted = round_trip

    def counts(frame: pd.DataFrame) -> dict:
        grouped = frame.astype({"tactic": str, "effective": object}).groupby(
            ["tactic", "effective"], dropna=False).size()
        return {(t, str(e)): n for (t, e), n in grouped.items()}

    assert counts(adapted.tactics) == counts(tactics)
    ced = adapted.tactics[adapted.tactics["tactic"].isin(schema.CED_LADDER)]
    assert not ced["report_id"].duplicated().any()
    assert set(adapted.tactics.columns) == set(schema.TACTIC_COLUMNS)
    assert not adapted.unmapped


def test_adapt_then_export_gives_the_same_reports(round_trip):
    _, adapted = round_trip
    again = export(adapted.reports, adapted.tactics).assign(**{FILE: "again.csv",
                                                               ROW: np.arange(1, N_REPORTS + 1)})
    second = UkNationalForm().adapt(again)
    for field in ("occurred_at", "shift", "officer_role", "location_type", "reasons", "outcomes"):
        assert as_lists(second.reports[field]) == as_lists(adapted.reports[field])
    assert len(second.tactics) == len(adapted.tactics)


# --- drift across years ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_wide(canonical) -> pd.DataFrame:
    reports, tactics = canonical
    head = reports.iloc[:400]
    wide = export(head, tactics[tactics["report_id"].isin(head["report_id"])])
    return wide.assign(**{FILE: "w.csv", ROW: np.arange(1, len(wide) + 1)})


@pytest.mark.parametrize("published, drifted", [
    ("IncidentDate", "Incident Date"),
    ("IncidentTime", "INCIDENT TIME"),
    ("MainDuty", "Main Duty"),
    ("StaffInjured", "staff_injured"),
    ("AssaultedBySubject", "Assaulted by subject"),
    ("SubjectAge", "Subject Age"),
    ("Impact Factor: Possesion of a weapon", "Impact Factor: Possession of a Weapon"),
    ("Impact Factor: Size/Gender/Build", "Impact factor: Size / gender / build"),
    ("Incident Location: Street/Highway", "Incident Location: Street / highway"),
    ("Incident Location: Open ground (e.g. park, car park, field)",
     "Incident Location: Open ground (e.g. park, car park, field etc.)"),
    ("Reason for Force: Protect self", "Reason for force: protect self"),
    ("Outcome: Detained - Mental Health Act", "Outcome: Detained (Mental Health Act)"),
    ("Tactic 1", "Tactic1"),
    ("Effective 1", "Tactic Effective 1"),
    ("Tactic Effective 20", "Effective 20"),
    ("CED Red-Dotted", "CED Red Dotted"),
])
def test_renamed_header_still_maps(small_wide, published, drifted):
    expected = UkNationalForm().adapt(small_wide)
    adapted = UkNationalForm().adapt(small_wide.rename(columns={published: drifted}))
    pd.testing.assert_frame_equal(adapted.reports, expected.reports)
    pd.testing.assert_frame_equal(adapted.tactics, expected.tactics)
    assert not any(drifted in note for note in adapted.notes)


def test_missing_optional_columns_leave_fields_null(small_wide):
    adapted = UkNationalForm().adapt(small_wide.drop(columns=["StaffInjured", "CarryingCED",
                                                              "Tactic 3", "Effective 3"]))
    assert adapted.reports["officer_injured"].isna().all()
    assert adapted.reports["officer_assaulted"].notna().any()
    assert any("officer_injured" in note for note in adapted.notes)


@pytest.mark.parametrize("column, field", [
    ("Report ID", "report_id"), ("Form ID", "report_id"), ("Incident Reference", "incident_id"),
    ("Officer ID", "officer_id"), ("Staff ID", "officer_id"),
])
def test_identifier_columns_are_used_when_present(column, field):
    adapted = UkNationalForm().adapt(one_row(**{column: " X17 "}))
    assert adapted.reports[field].tolist() == ["X17"]
    assert adapted.mapping[field] == column
    if field == "officer_id":
        assert not any("no officer identifier" in note for note in adapted.notes)


def test_unknown_columns_are_listed_in_the_notes(small_wide):
    adapted = UkNationalForm().adapt(small_wide.assign(**{"Collar colour": "blue"}))
    assert any("Collar colour" in note for note in adapted.notes)


@pytest.mark.parametrize("value, tactic", [
    ("Compliant Handcuffing", "Compliant handcuffing"),
    ("Non-Compliant Handcuffing", "Non-compliant handcuffing"),
    ("Non-compliant handcuffing", "Non-compliant handcuffing"),
    ("NON-COMPLIANT HANDCUFFING ", "Non-compliant handcuffing"),
    ("Unarmed Skills (including pressure points, strikes, restraints and take-downs)",
     "Unarmed skills"),
    ("Unarmed skills (including pressure points, strikes, restraints and take downs)",
     "Unarmed skills"),
    ("Limb/Body Restraints", "Limb/body restraints"),
    ("Ground Restraint", "Ground restraint"),
    ("Irritant Spray - CS Drawn", "Irritant spray drawn"),
    ("Irritant Spray - PAVA Used", "Irritant spray used"),
    ("Baton Drawn", "Baton drawn"),
    ("Spit Guard", "Spit and bite guard"),
    ("CED (Taser) Red-Dotted", "CED red-dot"),
    ("CED (Taser) Red-dotted", "CED red-dot"),
    ("CED (Taser) Angle Drive Stun", "CED angle drive-stun"),
    ("CED Drive-stun", "CED drive-stun"),
    ("AEP Aimed", "AEP drawn"),
    ("Firearm Aimed", "Firearm aimed"),
    ("Dog Bite", "Dog bite"),
    ("Other/Improvised", "Other/improvised"),
    ("Tactical Communications", "Tactical communication"),
])
def test_tactic_spellings_map_to_the_home_office_names(value, tactic):
    adapted = UkNationalForm().adapt(one_row(**{"Tactic 1": value, "Effective 1": "Yes"}))
    assert records(adapted.tactics, ["tactic", "effective"]) == [[tactic, True]]
    assert "tactic" not in adapted.unmapped


def test_unknown_tactic_is_kept_and_counted():
    adapted = UkNationalForm().adapt(one_row(**{"Tactic 1": "Headlock", "Tactic 2": "Shield"}))
    assert sorted(adapted.tactics["tactic"].astype(str)) == ["Headlock", "Shield"]
    assert adapted.unmapped["tactic"] == {"Headlock": 1}
    assert adapted.tactics["tactic_group"].isna().sum() == 1


def test_ced_flags_and_tactics_fold_to_the_highest_use():
    adapted = UkNationalForm().adapt(one_row(**{
        "Tactic 1": "CED (Taser) Drawn", "Effective 1": "No", "Tactic 2": "CED (Taser) Aimed",
        "CED Drawn": "Yes", "CED Red-Dotted": "Yes", "CED2 ArCED2": "Yes", "CED Fired": "No",
        "Firearms Aimed": "Yes", "Tactic 3": "Firearm Aimed", "Effective 3": "Yes"}))
    got = records(adapted.tactics, ["tactic", "effective"])
    assert sorted(got, key=str) == [["CED arced", None], ["Firearm aimed", True]]


@pytest.mark.parametrize("duty, role", [
    ("Emergency Response and Patrol", "Response"), ("ERPT", "Response"), ("Patrol", "Response"),
    ("Safer Neighbourhoods", "Neighbourhood"), ("SNT", "Neighbourhood"),
    ("Custody", "Custody"), ("Roads and Transport Policing", "Roads policing"),
    ("Traffic", "Roads policing"), ("TSG", "Public order"), ("Public Order", "Public order"),
    ("CTSFO", "Armed response"), ("ARV", "Armed response"), ("AFO", "Armed response"),
    ("CID", "Investigation"), ("Dog handler duty", "Dog handler"), ("Other", "Other"),
])
def test_main_duty_maps_to_officer_role(duty, role):
    adapted = UkNationalForm().adapt(one_row(MainDuty=duty))
    assert adapted.reports["officer_role"].tolist() == [role]
    assert "officer_role" not in adapted.unmapped


@pytest.mark.parametrize("field, column, value, expected", [
    ("subject_age_band", "SubjectAge", "18 - 34", "18-34"),
    ("subject_age_band", "SubjectAge", "65 and over", "65 and over"),
    ("subject_age_band", "SubjectAge", "0-10", "0-10"),
    ("subject_ethnicity", "SubjectEthnicity", "Black (or Black British)", "Black (or Black British)"),
    ("subject_ethnicity", "SubjectEthnicity", "Asian (or Asian British)", "Asian (or Asian British)"),
    ("subject_ethnicity", "SubjectEthnicity", "Chinese", "Asian (or Asian British)"),
    ("subject_ethnicity", "SubjectEthnicity", "Other ethnic group", "Other"),
    ("subject_ethnicity", "SubjectEthnicity", "Mixed", "Mixed"),
    ("subject_ethnicity", "SubjectEthnicity", "Not recorded", None),
    ("subject_ethnicity", "SubjectEthnicity", "Not Stated", None),
    ("resistance", "PrimaryConduct", "Serious or aggravated resistance",
     "Serious or aggravated resistance"),
    ("resistance", "PrimaryConduct", "verbal resistance / gestures", "Verbal resistance/gestures"),
    ("area", "Borough", "City of Westminster", "Westminster"),
    ("area", "Borough", "Kingston Upon Thames", "Kingston upon Thames"),
    ("area", "Borough", "Out of force", "Out of force"),
    ("officer_injury_level", "StaffInjuryLevel", "Minor", "Minor"),
    ("subject_injury_level", "SubjectNatureOfInjury", "Death", "Death"),
    ("subject_injury_level", "SubjectNatureOfInjury", "cut lip", None),
    ("officer_injured", "StaffInjured", "Yes", True),
    ("officer_injured", "StaffInjured", "no", False),
    ("officer_injured", "StaffInjured", "", None),
    ("officer_assaulted", "AssaultedBySubject", "Yes", True),
])
def test_values_map_to_the_canonical_vocabulary(field, column, value, expected):
    adapted = UkNationalForm().adapt(one_row(**{column: value}))
    assert as_lists(adapted.reports[field].astype(object)) == [expected]
    assert field not in adapted.unmapped


@pytest.mark.parametrize("date, time, occurred_at, shift", [
    ("01/04/2020", "14:35", "2020-04-01 14:35", "Early"),
    ("13/04/2020", "06:59", "2020-04-13 06:59", "Night"),
    ("2020-04-01 00:00:00", "23:10:00", "2020-04-01 23:10", "Night"),
    ("01/04/2020 00:00", "15:00", "2020-04-01 15:00", "Late"),
    ("43922", "07:00", "2020-04-01 07:00", "Early"),
    ("01/04/2020", "1899-12-30 08:15:00", "2020-04-01 08:15", "Early"),
    ("01/04/2020", "", "2020-04-01 00:00", None),
    ("01/04/2020", "quarter past", "2020-04-01 00:00", None),
])
def test_date_and_time_read_into_occurred_at_and_shift(date, time, occurred_at, shift):
    adapted = UkNationalForm().adapt(one_row(IncidentDate=date, IncidentTime=time))
    assert adapted.reports["occurred_at"].tolist() == [pd.Timestamp(occurred_at)]
    assert as_lists(adapted.reports["shift"].astype(object)) == [shift]


@pytest.mark.parametrize("date, reason", [
    ("", "IncidentDate is missing"),
    ("Not recorded", "IncidentDate is missing"),
    ("xx/yy", "IncidentDate 'xx/yy' is not a date"),
    ("31/02/2021", "IncidentDate '31/02/2021' is not a date"),
])
def test_rows_without_a_readable_date_are_quarantined(date, reason):
    raw = pd.concat([one_row(IncidentDate=date), one_row()], ignore_index=True)
    raw[ROW] = [1, 2]
    adapted = UkNationalForm().adapt(raw)
    assert adapted.quarantine[[ROW, ROWS, "reason"]].values.tolist() == [[1, 1, reason]]
    assert adapted.reports[ROW].tolist() == [2]


def test_an_extract_with_no_rows_adapts_to_empty_tables():
    raw = pd.DataFrame({c: pd.Series([], dtype="str") for c in FORM_COLUMNS})
    adapted = UkNationalForm().adapt(raw.assign(**{FILE: pd.Series([], dtype="str"),
                                                  ROW: pd.Series([], dtype="int64")}))
    assert list(adapted.reports.columns) == [*schema.REPORT_COLUMNS, FILE, ROW, ROWS]
    assert adapted.reports.empty and adapted.tactics.empty and adapted.quarantine.empty


def test_empty_rows_are_quarantined_as_empty():
    raw = pd.concat([one_row(), one_row(IncidentDate="", IncidentTime="")], ignore_index=True)
    raw[ROW] = [1, 2]
    adapted = UkNationalForm().adapt(raw)
    assert adapted.quarantine["reason"].tolist() == ["empty row"]


def test_drifted_file_loads_and_accounts_for_every_row(canonical, tmp_path):
    reports, tactics = canonical
    path = tmp_path / "mps_fy1819.csv"
    write_csv(add_drift(export(reports, tactics), seed=3), path)
    raw = read_extract(path)
    adapted = UkNationalForm().adapt(raw)
    assert len(raw) == adapted.reports[ROWS].sum() + len(adapted.quarantine)
    reasons = adapted.quarantine["reason"]
    assert reasons.str.contains("is not a date").sum() == 2
    assert (reasons == "IncidentDate is missing").sum() == 2
    assert (reasons == "empty row").sum() == 1
    assert not adapted.unmapped
    assert any("Free Text Notes" in note for note in adapted.notes)
    # Drift changes spellings, not meaning: the loaded rows match the originals.
    kept = reports.iloc[adapted.reports[ROW].to_numpy() - 1]
    for field in ("subject_age_band", "single_crewed", "officer_injured", "officer_role"):
        assert as_lists(adapted.reports[field]) == as_lists(kept[field])
    expected = tactics[tactics["report_id"].isin(kept["report_id"])]
    assert (adapted.tactics["tactic"].astype(str).value_counts().to_dict()
            == expected["tactic"].astype(str).value_counts().to_dict())


# --- the hand-written fixture ------------------------------------------------------------------


@pytest.fixture(scope="module")
def small() -> Adapted:
    return UkNationalForm().adapt(read_extract(FIXTURES / "uk_national_small.csv"))


def test_fixture_is_cp1252_with_non_ascii_text():
    data = (FIXTURES / "uk_national_small.csv").read_bytes()
    assert "£".encode("cp1252") in data and "é".encode("cp1252") in data
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")


def test_fixture_quarantines_the_bad_date(small):
    assert small.quarantine[[ROW, "reason"]].values.tolist() == [
        [3, "IncidentDate '31/02/2021' is not a date"]]
    assert small.reports[ROW].tolist() == [1, 2, 4, 5]
    assert small.reports["report_id"].tolist() == [
        "uk_national_small-1", "uk_national_small-2", "uk_national_small-4", "uk_national_small-5"]


def test_fixture_reports_have_the_expected_values(small):
    r = small.reports
    assert r["occurred_at"].tolist() == [pd.Timestamp(t) for t in (
        "2020-04-01 14:35", "2020-04-02 00:00", "2020-04-03 23:30", "2020-04-04 07:00")]
    assert as_lists(r["shift"].astype(object)) == ["Early", None, "Night", "Early"]
    assert r["area"].astype(str).tolist() == ["Westminster", "Croydon", "Out of force", "Hackney"]
    assert r["location_type"].astype(str).tolist() == [
        "Street/highway", "Dwelling", "Custody block", "Dwelling"]
    assert r["officer_role"].astype(str).tolist() == [
        "Response", "Neighbourhood", "Mounted Branch", "Armed response"]
    assert as_lists(r["subject_age_band"].astype(object)) == ["18-34", "35-49", "65 and over", "11-17"]
    assert as_lists(r["subject_ethnicity"].astype(object)) == [
        "Black (or Black British)", "Asian (or Asian British)", None, "Mixed"]
    assert as_lists(r["officer_injured"]) == [True, False, None, False]
    assert as_lists(r["officer_injury_level"].astype(object)) == ["Minor", None, None, None]
    assert as_lists(r["officer_assaulted"]) == [True, False, False, False]
    assert as_lists(r["subject_injury_level"].astype(object)) == [None, None, None, "Severe"]
    assert as_lists(r["reasons"]) == [("Protect self", "Effect arrest"), ("Effect arrest",), (),
                                      ("Protect self", "Effect arrest")]
    assert as_lists(r["outcomes"]) == [("Arrested",), ("Arrested",), ("Hospitalised",),
                                       ("Arrested", "Hospitalised")]
    assert (r["force"] == "Metropolitan Police").all()


def test_fixture_counts_the_unknown_main_duty(small):
    assert small.unmapped == {"officer_role": {"Mounted Branch": 1}}
    assert any("Officer Notes" in note for note in small.notes)


def test_fixture_tactics(small):
    got = records(small.tactics, ["report_id", "tactic", "effective"])
    assert got == [
        ["uk_national_small-1", "Compliant handcuffing", True],
        ["uk_national_small-1", "CED red-dot", True],
        ["uk_national_small-2", "Non-compliant handcuffing", None],
        ["uk_national_small-2", "Ground restraint", True],
        ["uk_national_small-4", "Spit and bite guard", True],
        ["uk_national_small-4", "CED fired", None],
        ["uk_national_small-5", "Firearm aimed", True],
        ["uk_national_small-5", "Tactical communication", True],
    ]


def test_force_and_shift_boundaries_come_from_the_caller():
    raw = one_row(IncidentTime="06:30")
    form = UkNationalForm(force="City of London Police",
                          shifts=schema.parse_shift_boundaries("06:00,14:00,22:00"))
    adapted = form.adapt(raw)
    assert adapted.reports["force"].astype(str).tolist() == ["City of London Police"]
    assert adapted.reports["shift"].astype(str).tolist() == ["Early"]


# --- detection ---------------------------------------------------------------------------------


def test_score_recognises_the_form(canonical):
    form = UkNationalForm()
    assert form.score(list(FORM_COLUMNS)) >= 0.8
    assert form.score(list(add_drift(export(*canonical).iloc[:50]).columns)) >= 0.8
    older = [c for c in FORM_COLUMNS if c not in ("StaffInjuryIntentional", "Firearms Aimed")]
    assert form.score(older) >= 0.8


def test_score_rejects_other_layouts(realdata):
    form = UkNationalForm()
    dallas = (realdata / "dallas_uof_2016_cpe_37-00049.csv").read_text().splitlines()[0].split(",")
    nopd = (realdata / "nopd_uof_incidents_2016-2019.csv").read_text(
        encoding="utf-8", errors="replace").splitlines()[0].split(",")
    assert form.score(dallas) < 0.2
    assert form.score(nopd) < 0.2
    assert form.score(list(schema.REPORT_COLUMNS)) < 0.2
    assert form.score(list(schema.REPORT_COLUMNS) + ["tactics"]) < 0.2


# --- command line --------------------------------------------------------------------------------


def test_command_line_writes_a_cp1252_extract(tmp_path, capsys):
    path = tmp_path / "uof.csv"
    assert main(["--reports", "300", "--seed", "2", "--out", str(path), "--drift"]) == 0
    assert "x 271 columns" in capsys.readouterr().out
    raw = read_extract(path)
    adapted = UkNationalForm().adapt(raw)
    # 300 reports and a trailing blank line; one blank and one garbage date are set aside.
    assert len(raw) == 301
    assert adapted.reports[ROWS].sum() == 298
    assert sorted(adapted.quarantine["reason"]) == [
        "IncidentDate '31/02/2021' is not a date", "IncidentDate is missing", "empty row"]


def test_the_module_run_writes_the_extract_and_the_adapter_needs_no_generator(tmp_path):
    path = tmp_path / "uof.csv"
    done = subprocess.run([sys.executable, "-m", "lib.synth.uk_national", "--reports", "50", "--seed", "1",
                           "--out", str(path)], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert len(read_extract(path)) == 50
    # The product's adapter (and the ingester that loads it) import nothing from lib.synth.
    probe = ("import sys, lib.ingest.formats.uk_national, lib.ingest.pipeline; "
             "print(sorted(m for m in sys.modules if m.startswith('lib.synth')))")
    loaded = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "[]"


def test_times_and_dates_met_in_earlier_batches_read_as_parsing_them_afresh(monkeypatch) -> None:
    # Distinct times and dates are parsed once and remembered across batches, up to a cap past which the memory
    # starts again: every read equals a fresh parse, over the cap too.
    from lib.ingest.formats import uk_national

    monkeypatch.setattr(uk_national, "_REMEMBER_AT_MOST", 5)
    monkeypatch.setattr(uk_national, "_REMEMBERED", {})
    batches = [["10:00", "23:59", "7:05 PM"], ["23:59", "0.5", "not a time", "", "0930"], ["10:00", "12:00:00.5"]]
    for values in batches:
        fresh = uk_national._parse_times(values).to_numpy(dtype="float64", na_value=np.nan)
        np.testing.assert_array_equal(uk_national._remembered(uk_national._parse_times, values, "float64"), fresh)
    days = [["01/02/2024", "13/02/2024"], ["45123", "01/02/2024", "2024-02-01 10:00:00", "x", "31/12/23"]]
    for values in days:
        fresh = uk_national._parse_dates(values).to_numpy(dtype="datetime64[us]")
        np.testing.assert_array_equal(uk_national._remembered(uk_national._parse_dates, values, "datetime64[us]"),
                                      fresh)
