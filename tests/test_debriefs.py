"""Debriefs: read safely, recurring factors against injury, and the supervisor's review list."""
from __future__ import annotations

import pandas as pd
import pytest

from lib import ingest, synth
from lib.analysis import debriefs
from lib.engine.query import UNRESTRICTED, Filters, Scope
from lib.ingest import debriefs as debrief_files

ALL = Filters()
HAND = (b"Incident ID,Report ID,Debrief date,Contributing factors,Learning points,Actions\n"
        b"I01,,12/01/2024,Single crewed on arrival; Radio coverage,Call for backup earlier,Radio check\n"
        b",R04,09/02/2024,Intoxicated subject,Use spit guard,None\n"
        b",,10/02/2024,Radio coverage,,\n")


def test_reading_matches_columns_by_name_and_sets_aside_rows_without_an_id():
    read = debrief_files.read("debriefs.csv", HAND)
    assert read.mapping["incident_id"] == "Incident ID"
    assert read.mapping["contributing_factors"] == "Contributing factors"
    assert len(read.records) == 2 and read.rows_in == 3
    assert read.quarantine["reason"].tolist() == ["no report or incident id"]
    assert read.records.loc[0, "contributing_factors"] == ["Single crewed on arrival", "Radio coverage"]


def test_a_file_with_no_id_column_is_refused():
    with pytest.raises(ingest.RejectedFile, match="no report or incident id column"):
        debrief_files.read("x.csv", b"Date,Notes\n01/01/2024,hello\n")


def test_review_list_names_harmed_reports_without_a_debrief(engine, small):
    read = debrief_files.read("debriefs.csv", HAND)
    # Officer injured or assaulted: R01, R04, R08. R01 is reviewed through incident I01, R04 by id.
    missing, rows = debriefs.review_list(engine, small, ALL, UNRESTRICTED, read.records)
    assert missing == 1 and rows["report_id"].tolist() == ["R08"]
    south = Scope(forces=frozenset({"Northshire Police"}))
    assert debriefs.review_list(engine, small, ALL, south, read.records)[0] == 0


def test_factor_table_relates_factors_to_injury(engine, small):
    read = debrief_files.read("debriefs.csv", HAND)
    table = debriefs.factor_table(engine, small, ALL, UNRESTRICTED, read.records).set_index("factor")
    # Debriefed reports: R01 and R02 (incident I01, injured yes / no) and R04 (injured yes).
    radio = table.loc["Radio coverage"]
    assert (radio["debriefs"], radio["yes"], radio["answered"]) == (2, 1, 2)
    assert (radio["reference_yes"], radio["reference_answered"]) == (1, 1)


def test_planted_factor_stands_out_in_synthetic_debriefs(engine):
    data = synth.generate(60_000, seed=9)
    ds = engine.add("debrief world", data.reports, data.tactics, data.officers, key="debrief00009")
    made = debriefs.synthesise(data.reports.to_pandas(), seed=9)
    read = debrief_files.read("synthetic.csv", made.to_csv(index=False).encode())
    table = debriefs.factor_table(engine, ds, ALL, UNRESTRICTED, read.records)
    top = table.sort_values("ratio", ascending=False).iloc[0]
    assert top["factor"] == "Single crewed on arrival" and top["ci_low"] > 1
    missing, _ = debriefs.review_list(engine, ds, ALL, UNRESTRICTED, read.records)
    harmed = (data.reports.to_pandas()[["officer_injured", "officer_assaulted"]].fillna(False).any(axis=1)).sum()
    assert 0.2 * harmed < missing < 0.4 * harmed  # about 30% of harmed reports left without a debrief
    assert isinstance(made, pd.DataFrame)


def test_analyse_gives_the_review_list_and_factors_from_one_read(engine, small):
    read = debrief_files.read("debriefs.csv", HAND)
    missing, rows, factors = debriefs.analyse(engine, small, ALL, UNRESTRICTED, read.records)
    assert (missing, rows["report_id"].tolist()) == (1, ["R08"])
    assert factors.equals(debriefs.factor_table(engine, small, ALL, UNRESTRICTED, read.records))
