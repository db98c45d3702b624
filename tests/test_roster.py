"""Roster extracts: officers, training events and exposure, matched by name, bad rows set aside."""
from __future__ import annotations

import pandas as pd
import pytest

from lib import ingest
from lib.ingest import roster
from lib.ingest.pseudonym import pseudonymise

OFFICERS = (b"Officer ID,Role,Team,Length of service\n"
            b"OF1,Response,North Response A,3.5\nOF2,Custody,,12\n,Response,X,1\n")
TRAINING = (b"Officer,Training date,Course,Hours\n"
            b"OF1,05/01/2024,Personal safety training,6\n"
            b"OF1,12/07/2024,Personal safety training,6\n"
            b"OF2,31/02/2024,Personal safety training,12\n"
            b"OF3,,Personal safety training,12\n")
EXPOSURE = b"Officer ID,Month,Shifts worked\nOF1,01/01/2024,16\nOF1,01/02/2024,-2\nOF2,01/01/2024,14.0\n"


@pytest.mark.parametrize(("data", "kind"), [(OFFICERS, "officers"), (TRAINING, "training"), (EXPOSURE, "exposure")])
def test_the_kind_of_roster_file_is_recognised(data, kind):
    assert roster.read("r.csv", data).kind == kind


def test_officers_table_sets_aside_rows_without_an_id():
    table = roster.read("officers.csv", OFFICERS)
    assert table.records["officer_id"].tolist() == pseudonymise(["OF1", "OF2"])  # never the raw ids
    assert table.records["length_of_service_years"].tolist() == [3.5, 12.0]
    assert table.quarantine["reason"].tolist() == ["no officer id"] and table.rows_in == 3


def test_training_events_with_bad_dates_are_set_aside_with_the_value():
    table = roster.read("training.csv", TRAINING)
    assert table.records["hours"].sum() == 12
    assert table.quarantine["reason"].tolist() == ["Training date '31/02/2024' is not a date", "Training date is empty"]
    assert table.records["trained_on"].iloc[1] == pd.Timestamp("2024-07-12")


def test_exposure_rejects_negative_shifts_and_reads_float_counts():
    table = roster.read("exposure.csv", EXPOSURE)
    assert table.records["shifts"].tolist() == [16.0, 14.0]
    assert table.quarantine["reason"].tolist() == ["negative shifts or hours"]


def test_a_file_that_is_not_a_roster_is_refused():
    with pytest.raises(ingest.RejectedFile, match="is not a roster"):
        roster.read("x.csv", b"colour,flavour\nred,sweet\n")


def test_unrecognised_headers_can_be_mapped_by_hand():
    data = b"Warrant,When,What,Length\nOF1,05/01/2024,Personal safety training,6\n,06/01/2024,PST,6\n"
    with pytest.raises(ingest.RejectedFile, match="is not a roster"):
        roster.read("odd.csv", data)
    kind, proposed = roster.propose(["Warrant", "When", "What", "Length"])
    assert kind == "training" and "officer_id" not in proposed
    table = roster.read("odd.csv", data, kind="training",
                        mapping={"officer_id": "Warrant", "trained_on": "When", "course": "What", "hours": "Length"})
    assert table.records["officer_id"].tolist() == pseudonymise(["OF1"]) and table.records["hours"].tolist() == [6.0]
    assert table.quarantine["reason"].tolist() == ["no officer id"]
    with pytest.raises(ingest.RejectedFile, match="has no column"):
        roster.read("odd.csv", data, kind="training", mapping={"officer_id": "Nope"})


def test_column_matching_uses_each_header_once_and_prefers_the_first_alias():
    from lib.model.values import match_columns

    aliases = {"officer_id": ("officer id", "officer"), "team": ("team", "officer")}
    assert match_columns(["Officer", "OFFICER ID", "Team"], aliases) == {"officer_id": "OFFICER ID", "team": "Team"}
    assert match_columns(["Officer"], aliases) == {"officer_id": "Officer"}


def test_a_dataset_folders_roster_is_read_with_pseudonyms_that_join_its_reports():
    from lib.engine.store import SAMPLE_DIR

    tables = roster.read_folder(SAMPLE_DIR)  # lib.synth wrote raw ids (OF000001 ...)
    assert set(tables) == {"officers", "training", "exposure"}
    raw = pd.read_parquet(SAMPLE_DIR / "training.parquet")
    assert tables["training"]["officer_id"].tolist() == pseudonymise(raw["officer_id"].tolist())
    for frame in tables.values():
        assert frame["officer_id"].str.fullmatch(r"P-[0-9a-f]{16}").all()
    assert tables["officers"].drop(columns="officer_id").equals(
        pd.read_parquet(SAMPLE_DIR / "officers.parquet").drop(columns="officer_id"))  # the rest as saved
