"""The column-mapping step: a proposal the user can edit, saved as a profile that loads the file."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from lib import ingest
from lib.ingest import mapping
from lib.ingest.formats.profile import ProfileFormat, load_profile

from . import us_export
from .conftest import ROOT

OWN_LAYOUT = (b"Ref,When,Clock,PC number,Hurt,Tactic Used,Division\n"
              b"A1,05/01/2024,08:10,1234,Yes,Handcuffing,North\n"
              b"A2,06/01/2024,23:40,2345,No,Taser,South\n"
              b"A3,07/01/2024,,1234,,Baton,North\n")


@pytest.mark.slow
def test_proposal_for_the_dallas_file_loads_it_whole(tmp_path, realdata):
    data = (realdata / "dallas_uof_2016_cpe_37-00049.csv").read_bytes()
    raw = ingest.read_extract("dallas.csv", data)
    proposal = mapping.propose(raw.frame, "dallas upload")
    table = mapping.editor_frame(proposal, raw.frame).set_index("key")
    assert table.loc["date", "Source column"] == "INCIDENT_DATE"
    assert table.loc["officer_injured", "Source column"] == "OFFICER_INJURY"
    fmt = mapping.save(proposal, table.reset_index(), "dallas-mine", tmp_path, force="Dallas PD")
    profile = load_profile(tmp_path / "dallas-mine.json")
    result = ingest.ingest([("dallas.csv", data)], fmt=fmt, formats=[ProfileFormat(profile)])
    r = result.report
    assert (r["rows_in"], r["rows_loaded"], r["rows_quarantined"]) == (2383, 2383, 0)
    assert int(result.reports["officer_injured"].sum()) == 234


def test_user_edits_change_the_mapping(tmp_path):
    raw = ingest.read_extract("own.csv", OWN_LAYOUT)
    proposal = mapping.propose(raw.frame, "own")
    table = mapping.editor_frame(proposal, raw.frame)
    edits = {"date": "When", "time": "Clock", "report_id": "Ref", "officer_id": "PC number",
             "officer_injured": "Hurt", "area": "Division", mapping.TACTICS_FIELD: "Tactic Used"}
    table["Source column"] = [edits.get(k, mapping.NONE) for k in table["key"]]
    fmt = mapping.save(proposal, table, "own-force", tmp_path, force="Northshire Police")
    profile = load_profile(tmp_path / "own-force.json")
    result = ingest.ingest([("own.csv", OWN_LAYOUT)], fmt=fmt, formats=[ProfileFormat(profile)])
    reports = result.reports.set_index("report_id")
    assert reports.loc["A1", "officer_injured"] == True  # noqa: E712 (nullable boolean)
    assert reports.loc["A2", "shift"] == "Night"
    assert pd.isna(reports.loc["A3", "shift"])  # no time: no shift, never Night by default
    assert set(reports["force"]) == {"Northshire Police"}
    assert result.report["rows_loaded"] == 3


def test_a_mapping_without_date_or_force_is_refused(tmp_path):
    raw = ingest.read_extract("own.csv", OWN_LAYOUT)
    proposal = mapping.propose(raw.frame, "own")
    table = mapping.editor_frame(proposal, raw.frame)
    no_date = table.assign(**{"Source column": [mapping.NONE] * len(table)})
    with pytest.raises(ValueError, match="date"):
        mapping.apply(proposal, no_date, "x", force="Kent Police")
    dated = table.copy()
    dated.loc[dated["key"] == "date", "Source column"] = "When"
    with pytest.raises(ValueError, match="force"):
        mapping.apply(proposal, dated, "x", force="")


def test_unknown_layout_is_not_guessed_silently():
    with pytest.raises(ingest.RejectedFile, match=ingest.NO_FORMAT):
        ingest.ingest([("own.csv", OWN_LAYOUT)])


def test_tactic_names_can_be_matched_to_the_home_office_list(tmp_path):
    raw = ingest.read_extract("own.csv", OWN_LAYOUT)
    proposal = mapping.propose(raw.frame, "own")
    table = mapping.editor_frame(proposal, raw.frame)
    table.loc[table["key"] == "date", "Source column"] = "When"
    table.loc[table["key"] == "report_id", "Source column"] = "Ref"
    table.loc[table["key"] == mapping.TACTICS_FIELD, "Source column"] = "Tactic Used"
    proposal.tactic_columns = ["Tactic Used"]
    names = mapping.tactic_frame(proposal, raw.frame).set_index("Tactic in the extract")
    assert set(names.index) == {"Handcuffing", "Taser", "Baton"}
    names["Home Office tactic"] = names.index.map(
        {"Handcuffing": "Compliant handcuffing", "Taser": mapping.KEEP, "Baton": "Baton used"})
    fmt = mapping.save(proposal, table, "own-tactics", tmp_path, force="Kent Police",
                       tactics_edited=names.reset_index())
    profile = load_profile(tmp_path / "own-tactics.json")
    result = ingest.ingest([("own.csv", OWN_LAYOUT)], fmt=fmt, formats=[ProfileFormat(profile)])
    tactics = dict(zip(result.tactics["report_id"], result.tactics["tactic"], strict=True))
    assert tactics == {"A1": "Compliant handcuffing", "A2": "Taser", "A3": "Baton used"}
    assert result.report["unmapped"]["tactic"] == {"Taser": 1}  # kept as given, and shown


# --- a US-style export: misspelt date header, month-first dates, an incident number that repeats ---------


def test_us_export_proposal_finds_the_misspelt_date_its_order_and_no_false_report_id(tmp_path):
    path = tmp_path / "us.csv"
    us_export.write(path)
    raw = ingest.read_extract("us.csv", path.read_bytes())
    proposal = mapping.propose(raw.frame, "us")
    assert proposal.date_column == "Occured_date_time"  # "Occured": one letter short of "occurred"
    assert proposal.dayfirst is False  # later rows have 06/23-style dates, which only read month first
    # Incident_Num repeats for the officers of one incident: it is the incident id, and rows are numbered.
    assert (proposal.report_id_column, proposal.incident_id_column) == (None, "Incident_Num")
    assert proposal.group_by == []
    assert any("Incident_Num repeats" in n and "not a report id" in n for n in proposal.notes)
    assert (proposal.officer_id_column, proposal.area_column) == ("Officer_Badge", "District")
    assert proposal.columns["officer_injured"] == "Officer_Injured"


def test_us_export_loads_every_date_right_with_the_proposed_mapping_from_the_command_line(tmp_path):
    path = tmp_path / "us.csv"
    truth = us_export.write(path)
    env = {**os.environ, "OSE_DATA_DIR": str(tmp_path / "var")}
    refused = subprocess.run([sys.executable, "-m", "lib.ingest", str(path), "--out", str(tmp_path / "a")],
                             cwd=ROOT, env=env, capture_output=True, text=True)
    assert refused.returncode == 2 and ingest.NO_FORMAT in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and "--accept-proposed-mapping" in refused.stderr
    no_force = subprocess.run([sys.executable, "-m", "lib.ingest", str(path), "--out", str(tmp_path / "b"),
                               "--accept-proposed-mapping"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert no_force.returncode == 2 and "--force" in no_force.stderr
    done = subprocess.run([sys.executable, "-m", "lib.ingest", str(path), "--out", str(tmp_path / "c"),
                           "--accept-proposed-mapping", "--force", "Springfield PD"],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    reports = pd.read_parquet(tmp_path / "c" / "reports.parquet")
    assert reports["occurred_at"].tolist() == truth  # every row, in file order, on its true date and time
    report = json.loads((tmp_path / "c" / "report.json").read_text())
    assert (report["rows_in"], report["rows_loaded"]) == (len(truth), len(truth))
    assert report["proposed_mapping"]["date_column"] == "Occured_date_time"
    assert report["proposed_mapping"]["dayfirst"] is False
    assert reports["incident_id"].nunique() == 400 and reports["report_id"].is_unique


@pytest.mark.parametrize(("word", "header", "matches"), [
    ("occurred", "occured", True), ("occurred", "ocurred", True), ("officer", "oficer", True),
    ("incident", "incidnet", False),  # two letters swapped is two edits
    ("date", "data", False), ("rank", "race", False),  # short words: too near to others
    ("district", "distrct", True), ("district", "distinct", False), ("subject", "object", False),
])
def test_misspelt_headers_match_within_one_letter_for_long_words(word, header, matches):
    from lib.ingest.formats.profile import _word_in

    assert _word_in(word, (header,)) is matches


@pytest.mark.parametrize(("cells", "dayfirst", "examples"), [
    (["01/02/2014", "06/23/2014 10:30:00 PM", "07/04/2014"], False, ("06/23/2014",)),
    (["01/02/2014", "23/06/2014", "04/07/2014 22:30"], True, ("23/06/2014",)),
    (["01/02/2014", "03/04/2014"], None, ("01/02/2014", "03/04/2014")),
    (["13/02/2014", "02/13/2014"], None, ("13/02/2014", "02/13/2014")),  # both kinds: the user must say
])
def test_date_order_is_read_from_the_values(cells, dayfirst, examples):
    from lib.ingest.formats.profile import date_order

    order = date_order(pd.Series(cells, dtype="string"))
    assert order.dayfirst is dayfirst
    assert order.examples == examples


def test_a_column_is_read_in_one_order_only_and_a_date_that_fits_only_the_other_is_set_aside_with_it(tmp_path):
    path = tmp_path / "us.csv"
    truth = us_export.write(path)
    raw = ingest.read_extract("us.csv", path.read_bytes())
    proposal = mapping.propose(raw.frame, "us")
    proposal.force, proposal.dayfirst = "Springfield PD", True  # the wrong order, as a user might pick it
    adapted = ProfileFormat(proposal).adapt(raw.frame)
    loaded = adapted.reports.set_index("_row")["occurred_at"] if "_row" in adapted.reports else None
    reasons = adapted.quarantine["reason"]
    unambiguous = [i for i, w in enumerate(truth) if w.day > 12]
    assert len(reasons) == len(unambiguous)  # never read month first behind the user's back
    first = truth[unambiguous[0]].strftime("%m/%d/%Y")
    assert reasons.iloc[0].startswith(f"Occured_date_time '{first}")
    assert reasons.iloc[0].endswith("is not a date day first (as 23/06/2014), the order the mapping reads")
    assert loaded is None or len(loaded) == len(truth) - len(unambiguous)


def test_the_order_of_day_and_month_is_read_from_the_whole_date_column_not_its_first_rows():
    from lib.ingest.formats.profile import propose_profile

    dates = ["03/04/2014 10:00"] * 2500 + ["03/25/2014 11:00"] * 10  # only row 2,501 on settles it
    raw = pd.DataFrame({"Incident Date": dates, "Officer Injured": ["No"] * len(dates)}, dtype="string")
    assert propose_profile(raw, "late").dayfirst is False
