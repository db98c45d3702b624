"""The Training page's figures are those the slower code gave: pinned from a run before the speed work.

`tests/fixtures/training_figures.json` holds every figure the page shows (effects, intervals, p-values, verdicts,
counts, the event profile, compliance) for exact and perturbed scopes, on the sample and on a generated dataset,
as computed by the code before issue 17's speed work (`python -m tests.test_training_figures` wrote it then).
Counts, verdicts and words must be equal; model figures equal to 1e-9 relative (the linear algebra's rounding).
"""
from __future__ import annotations

import json
import math
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from lib import ingest, synth
from lib.analysis import training, training_dense
from lib.engine.query import UNRESTRICTED, Filters, Scope
from lib.engine.store import SAMPLE_DIR, Engine
from lib.privacy import cellkey
from tests import pins

PINNED = Path(__file__).parent / "fixtures" / "training_figures.json"
SECRET = b"test-only cell key secret for the training figures"
VIEWER = Scope(perturbed=True)
SCOPES = {"exact": UNRESTRICTED, "perturbed": VIEWER}
FILTERS = {"all": Filters(), "night": Filters(shifts=("Night",))}
GENERATED = 60_000
RELATIVE = 1e-9


def keyed_engine() -> Engine:
    return Engine(read_file=ingest.read_file, record_keys=lambda ids: pa.array(
        cellkey.record_keys(ids.to_numpy(zero_copy_only=False), SECRET), pa.int16()))


def roster_of(folder: Path) -> dict[str, pd.DataFrame]:
    return {kind: pd.read_parquet(folder / f"{kind}.parquet") for kind in ("officers", "training", "exposure")}


def plain(value: Any) -> Any:
    """Turn a figure into JSON: numbers as floats or ints, NaN as None, frames as lists of records."""
    if isinstance(value, pd.DataFrame):
        return [plain(record) for record in value.to_dict("records")]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else float(value)
    if isinstance(value, (date, pd.Timestamp)):
        return str(value)
    return value


def page_figures(engine: Engine, ds: Any, folder: Path, filters: Filters, scope: Scope,
                 dense: bool = True) -> dict[str, Any]:
    """Compute what the Training page shows for a filter state and scope, as its lib calls compute it.

    dense: the effects by the page's path (`training_dense`, officers x months matrices); else by the row panel.
    """
    tables = training.scoped_roster(roster_of(folder), scope)
    officers = tables["officers"]
    if scope.perturbed:
        officers = officers.assign(**{training.OFFICER_KEY: cellkey.record_keys(
            officers["officer_id"].astype(str).to_numpy(dtype=object), SECRET).astype(np.int64)})
    per_officer = training.compliance(tables["training"], officers, ds.last.date())
    summaries = {group: training.with_intervals(training.summarise_compliance(per_officer, by=(group,),
                                                                              perturbed=scope.perturbed))
                 for group in ("officer_role", "team")}
    summaries["team"] = training.lowest_shares(summaries["team"], "team")
    if dense:  # as the page counts: one scan on integer officer keys, into the roster's matrices
        roster = training_dense.DenseRoster(training.roster_months(tables["exposure"], tables["officers"]))
        keys = None
        if scope.perturbed:
            ids = roster.ids.take(roster.officers).to_numpy(dtype=object).astype(str)
            keys = cellkey.record_keys(ids, SECRET).astype(np.int64)
        rows = training_dense.key_rows(engine, ds, roster)
        assert rows is not None  # the DuckDB engine has the integer keys: the fast count is the one pinned
        panel = training_dense.counted(engine, ds, filters, scope, roster, keys, rows)
        found, profile = training_dense.effects_and_profile(panel, perturbed=scope.perturbed)
    else:
        counts = training.officer_month_counts(engine, ds, filters, scope)
        panel = training.panel_from_counts(counts, tables["exposure"], tables["officers"])
        if scope.perturbed:
            panel[training.OFFICER_KEY] = cellkey.record_keys(
                panel["officer_id"].astype(str).to_numpy(dtype=object), SECRET).astype(np.int64)
        found, profile = training.effects_and_profile(panel, perturbed=scope.perturbed)
    words = {measure: {"label": training.verdict_label(result), "reading": training.reading(result),
                       "pre_trend": training.pre_trend_reading(result),
                       "detectable": training.detectable_reading(result), "twfe": training.twfe_reading(result)}
             for measure, result in found.items()}
    return plain({"effects": found, "profile": profile, "words": words, "compliance": summaries,
                  "totals": training.compliance_totals(per_officer, perturbed=scope.perturbed),
                  "overdue": training.overdue(per_officer).head(20)[["officer_id", "hours", "shortfall"]]})


def every_figure(generated: Path, dense: bool = True) -> dict[str, Any]:
    """Compute the page's figures for every dataset, filter state and scope the pin holds."""
    engine = keyed_engine()
    out = {}
    for name, folder in (("sample", SAMPLE_DIR), ("generated", generated)):
        ds = engine.open(folder)
        for filter_name, filters in FILTERS.items():
            for scope_name, scope in SCOPES.items():
                out[f"{name}/{filter_name}/{scope_name}"] = page_figures(engine, ds, folder, filters, scope, dense)
    return out


def generate(folder: Path) -> Path:
    synth.write(synth.generate(GENERATED, seed=7), folder)
    return folder


def differences(got: Any, want: Any, where: str = "") -> list[str]:
    """List where got differs from want: exactly, but for floats to RELATIVE (tests/pins.py)."""
    return pins.differences(got, want, RELATIVE, where)


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp("generated"))


@pytest.fixture(scope="module")
def figures(generated: Path) -> dict[str, Any]:
    return every_figure(generated)


@pytest.fixture(scope="module")
def row_figures(generated: Path) -> dict[str, Any]:
    return every_figure(generated, dense=False)


def test_the_pin_covers_exact_and_perturbed_scopes_with_estimates() -> None:
    pinned = json.loads(PINNED.read_text())
    assert set(pinned) == {f"{d}/{f}/{s}" for d in ("sample", "generated") for f in FILTERS for s in SCOPES}
    # The pin would prove little if the models had made no estimate: every headline has one.
    assert all(pinned[key]["effects"]["reports"]["estimate"] is not None for key in pinned)


@pytest.mark.parametrize("key", [f"{d}/{f}/{s}" for d in ("sample", "generated") for f in FILTERS for s in SCOPES])
def test_the_page_figures_are_those_pinned_before_the_speed_work(figures, key: str) -> None:
    pinned = json.loads(PINNED.read_text())
    assert differences(figures[key], pinned[key]) == []


@pytest.mark.parametrize("key", [f"{d}/{f}/{s}" for d in ("sample", "generated") for f in FILTERS for s in SCOPES])
def test_the_row_panel_gives_the_pinned_figures_too(row_figures, key: str) -> None:
    # The row panel stays for rosters uploaded in a session's panel and for the panels the cell fit refuses.
    pinned = json.loads(PINNED.read_text())
    assert differences(row_figures[key], pinned[key]) == []


def test_a_changed_figure_is_caught() -> None:
    assert differences({"a": 1.0, "c": "x"}, {"a": 1.0 + 1e-6, "c": "x"}) == ["/a: 1.0, pinned 1.000001"]
    assert differences({"b": 3}, {"b": 2}) == ["/b: 3, pinned 2"]
    assert differences({"a": 1.0 + 1e-12}, {"a": 1.0}) == []


if __name__ == "__main__":  # write the pin (once, from the code before the speed work)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        PINNED.write_text(json.dumps(every_figure(generate(Path(tmp))), sort_keys=True) + "\n")


def reference_panel(counts: pd.DataFrame, exposure: pd.DataFrame, officers: pd.DataFrame) -> pd.DataFrame:
    """Build the panel as `training.panel_from_counts` did before the speed work (pandas merge and sort)."""
    counts = counts.assign(officer_id=counts["officer_id"].astype(str),
                           month=pd.to_datetime(counts["month"]).dt.to_period("M").dt.to_timestamp())
    worked = pd.DataFrame({
        "officer_id": exposure["officer_id"].astype(str).to_numpy(),
        "month": pd.to_datetime(exposure["month"]).dt.to_period("M").dt.to_timestamp().to_numpy(),
        "shifts": pd.to_numeric(exposure["shifts"]).astype("float64").to_numpy(),
    })
    worked = worked.groupby(["officer_id", "month"], sort=False)["shifts"].sum().reset_index()
    panel = worked.merge(counts, on=["officer_id", "month"], how="outer")
    for field in training.MEASURES:
        panel[field] = panel[field].fillna(0).astype("int64") if field in panel else 0
        if cellkey.key_column(field) in panel:
            panel[cellkey.key_column(field)] = panel[cellkey.key_column(field)].fillna(0).astype("int64")
    roster = officers.assign(officer_id=officers["officer_id"].astype(str)).set_index("officer_id")
    trained_on = pd.to_datetime(roster["pst_trained_on"]).reindex(panel["officer_id"])
    for column in ("officer_role", "team"):
        if column in roster:
            panel[column] = roster[column].astype(str).reindex(panel["officer_id"]).to_numpy()
    month = pd.DatetimeIndex(panel["month"])
    since = pd.array((month.year * 12 + month.month).to_numpy()
                     - (trained_on.dt.year * 12 + trained_on.dt.month).to_numpy(), dtype="Int64")
    panel["trained"] = np.asarray((since > 0).fillna(False), dtype=bool)
    panel["months_since_training"] = since
    return panel.sort_values(["officer_id", "month"], ignore_index=True)


@pytest.mark.parametrize("scope", SCOPES.values(), ids=SCOPES.keys())
@pytest.mark.parametrize("filters", FILTERS.values(), ids=FILTERS.keys())
def test_the_panel_is_the_one_the_merge_built(scope: Scope, filters: Filters) -> None:
    engine = keyed_engine()
    ds = engine.open(SAMPLE_DIR)
    tables = training.scoped_roster(roster_of(SAMPLE_DIR), scope)
    counts = training.officer_month_counts(engine, ds, filters, scope)
    want = reference_panel(counts, tables["exposure"], tables["officers"])
    months = training.roster_months(tables["exposure"], tables["officers"])
    pd.testing.assert_frame_equal(training.panel_from_counts(counts, None, None, months=months), want)
    pd.testing.assert_frame_equal(training.panel_from_counts(counts, tables["exposure"], tables["officers"]), want)


def test_the_panel_keeps_reports_outside_the_roster_and_months_without_shifts() -> None:
    officers = pd.DataFrame({"officer_id": ["B", "A"], "officer_role": ["Response", "Custody"], "team": ["T1", "T2"],
                             "pst_trained_on": [date(2024, 3, 10), None]})
    exposure = pd.DataFrame({"officer_id": ["A", "A", "B", "B", "A"],
                             "month": [date(2024, 1, 1), date(2024, 2, 1), date(2024, 2, 1), date(2024, 5, 1),
                                       date(2024, 1, 1)], "shifts": [10, 12, 9, 11, 3]})
    counts = pd.DataFrame({"officer_id": ["Z", "B", "A", "B"],
                           "month": pd.to_datetime(["2024-02-01", "2024-04-01", "2024-01-01", "2024-05-01"]),
                           "reports": [1, 2, 3, 4], "officer_injured": [0, 1, 1, 0], "officer_assaulted": [1, 0, 0, 0]})
    got = training.panel_from_counts(counts, exposure, officers)
    pd.testing.assert_frame_equal(got, reference_panel(counts, exposure, officers))
    assert got[["officer_id", "reports"]].to_dict("list") == {"officer_id": ["A", "A", "B", "B", "B", "Z"],
                                                              "reports": [3, 0, 0, 2, 4, 1]}
    assert got["shifts"].iloc[:3].tolist() == [13.0, 12.0, 9.0] and got["shifts"].iloc[[3, 5]].isna().all()
    assert got["months_since_training"].tolist()[2:5] == [-1, 1, 2]
