"""Canonical model rules: shifts from the time of day, the CED highest-use rule, tactic groups."""
from __future__ import annotations

from datetime import time

import pandas as pd
import pytest

from lib import ingest
from lib.engine.store import Engine
from lib.model import schema

from .conftest import FIXTURES


@pytest.mark.parametrize(("clock", "shift"), [
    ("06:59", "Night"), ("07:00", "Early"), ("14:59", "Early"), ("15:00", "Late"),
    ("22:59", "Late"), ("23:00", "Night"), ("00:00", "Night"),
])
def test_default_shifts(clock, shift):
    ts = pd.Series(pd.to_datetime([f"2024-01-01 {clock}"]))
    assert schema.derive_shift(ts).iloc[0] == shift


def test_custom_boundaries_and_unknown_time():
    bounds = schema.parse_shift_boundaries("06:00, 14:00, 22:00")
    ts = pd.Series(pd.to_datetime(["2024-01-01 06:30", "2024-01-01 21:59", "2024-01-01 22:00", None]))
    assert schema.derive_shift(ts, bounds).tolist()[:3] == ["Early", "Late", "Night"]
    assert pd.isna(schema.derive_shift(ts, bounds).iloc[3])


@pytest.mark.parametrize("text", ["07:00,15:00", "7am,3pm,11pm", "07:00,07:00,23:00"])
def test_bad_boundaries_are_refused(text):
    with pytest.raises(ValueError):
        schema.parse_shift_boundaries(text)


def test_shift_from_data_wins_over_the_clock():
    frame = pd.DataFrame({"occurred_at": pd.to_datetime(["2024-01-01 08:00", "2024-01-01 08:00"]),
                          "shift": ["Night", None]})
    assert schema.fill_shift(frame)["shift"].tolist() == ["Night", "Early"]


def test_environment_sets_shift_boundaries_for_loaded_files(monkeypatch):
    monkeypatch.setenv("OSE_SHIFT_STARTS", "08:00,16:00,00:00")
    eng = Engine(read_file=ingest.read_file)
    ds = eng.open(FIXTURES / "small_canonical.csv")
    shifts = eng.execute(eng.reports(ds).select("report_id", "shift")).set_index("report_id")["shift"]
    assert shifts["R10"] == "Night"   # 07:00 is before an 08:00 early start
    assert shifts["R07"] == "Late"    # 22:15
    assert ds.rows == 10


def test_ced_highest_use_keeps_one_ced_tactic_per_report():
    tactics = pd.DataFrame({"report_id": ["a", "a", "a", "b", "b"],
                            "tactic": ["CED drawn", "CED fired", "Ground restraint", "CED aimed",
                                       "CED red-dot"]})
    kept = schema.apply_ced_highest_use(tactics)
    assert sorted(map(tuple, kept.values.tolist())) == [
        ("a", "CED fired"), ("a", "Ground restraint"), ("b", "CED red-dot")]


def test_every_tactic_has_one_group_and_the_ladder_is_in_the_vocabulary():
    assert len(schema.TACTIC_GROUP_OF) == len(schema.TACTICS)
    assert set(schema.CED_LADDER) <= set(schema.TACTICS)
    assert schema.tactic_group(pd.Series(["Baton used", "made up"])).tolist()[0] == "Other equipment"
    assert schema.ShiftBoundaries().early == time(7, 0)
