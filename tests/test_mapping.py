"""The column-mapping step: a proposal the user can edit, saved as a profile that loads the file."""
from __future__ import annotations

import pandas as pd
import pytest

from lib import ingest
from lib.ingest import mapping
from lib.ingest.formats.profile import ProfileFormat, load_profile

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
