"""The Tactics and Data quality pages' figures are those the slower code gave: pinned before the speed work.

`tests/fixtures/tactics_figures.json` holds every frame the two pages' lib functions return (tactic use, effectiveness,
harm when used, co-occurrence, the Taser ladder, tactic counts; completeness, invalid codes, contradictions and the
reports behind them, coverage), for exact and perturbed scopes and several filter states, on the bundled sample, on
a messy copy of part of it (tactics recorded twice, without a group, outside the vocabulary, for no report;
off-vocabulary codes) and on the quality tests' planted dataset, as computed by the code before issue 17's speed
work (`python -m tests.test_tactics_figures` wrote it then). Columns, dtypes, counts and words must be equal; rates
equal to 1e-12 relative. Each is checked on the engine's fast path and on the portable Ibis queries alike.
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from lib import ingest
from lib.analysis import quality, tactics
from lib.engine import fastpath, query
from lib.engine.query import UNRESTRICTED, Filters, Scope
from lib.engine.store import SAMPLE_DIR, Dataset, Engine
from lib.privacy import cellkey
from tests import pins
from tests.test_quality import ALPHA, planted_tables

PINNED = Path(__file__).parent / "fixtures" / "tactics_figures.json"
SECRET = b"test-only cell key secret for the tactics figures"
RELATIVE = 1e-12
MET = frozenset({"Metropolitan Police"})
YEAR = {"date_from": date(2024, 4, 1), "date_to": date(2025, 3, 31)}
FILTERS = {
    "all": Filters(),
    "response-year": Filters(**YEAR, roles=("Response", "Neighbourhood")),
    "night-year": Filters(**YEAR, roles=("Response", "Neighbourhood"), shifts=("Night",)),
    "less-lethal": Filters(date_from=date(2024, 1, 1), tactic_groups=("Less lethal weapons",)),
}
SCOPES = {"exact": UNRESTRICTED, "perturbed": Scope(perturbed=True),
          "met-perturbed": Scope(forces=MET, perturbed=True)}
# (dataset, filter states, scopes) the pin holds.
CASES = {
    "sample": (tuple(FILTERS), tuple(SCOPES)),
    "messy": (("all", "night-year"), ("exact", "perturbed")),
    "planted": (("all",), ("exact", "alpha")),
}
EXTRA_SCOPES = {"alpha": Scope(forces=frozenset({ALPHA}))}

Query = Callable[[Engine, Dataset, Filters, Scope], Any]
TACTICS_FIGURES: dict[str, Query] = {
    "tactic_counts": query.tactic_counts,
    "use_over_time": tactics.use_over_time,
    "effectiveness": tactics.effectiveness,
    "harm_by_tactic": lambda e, d, f, s: tactics.harm_when_used(e, d, f, s, "tactic"),
    "harm_by_group": lambda e, d, f, s: tactics.harm_when_used(e, d, f, s, "tactic_group"),
    "co_occurrence": lambda e, d, f, s: tactics.co_occurrence(e, d, f, s, tactics.TOP_TACTICS),
    "co_occurrence_top3": lambda e, d, f, s: tactics.co_occurrence(e, d, f, s, 3),
    "taser_ladder": tactics.taser_ladder,
}


def _rows_behind(engine: Engine, ds: Dataset, filters: Filters, scope: Scope) -> dict[str, Any]:
    """Return the ids of the reports breaking each rule, oldest first (or why a rule cannot be checked)."""
    out: dict[str, Any] = {}
    for rule in quality.RULE_BY_NAME:
        try:
            rows = engine.execute(quality.contradiction_rows(engine, ds, filters, scope, rule))
        except ValueError as exc:
            out[rule] = str(exc)
        else:
            out[rule] = rows["report_id"].astype(str).tolist()
    return out


QUALITY_FIGURES: dict[str, Query] = {
    "completeness": quality.completeness,
    "completeness_by_force": lambda e, d, f, s: quality.completeness_by(e, d, f, s, "force"),
    "completeness_by_area": lambda e, d, f, s: quality.completeness_by(e, d, f, s, "area"),
    "invalid_codes": quality.invalid_codes,
    "contradictions": quality.contradictions,
    "contradiction_rows": _rows_behind,
    "coverage": quality.coverage,
    "late_recorded": quality.late_recorded,
}
FIGURES = {**TACTICS_FIGURES, **QUALITY_FIGURES}


def keyed_engine() -> Engine:
    """Return an engine giving every report its record key under SECRET (the backend OSE_ENGINE_URL names)."""
    return Engine(read_file=ingest.read_file, record_keys=lambda ids: pa.array(
        cellkey.record_keys(ids.to_numpy(zero_copy_only=False), SECRET), pa.int16()))


def messy_tables() -> tuple[pa.Table, pa.Table]:
    """Return the sample's first 6,000 reports with the awkward records real extracts hold planted in them."""
    reports = pd.read_parquet(SAMPLE_DIR / "reports.parquet").iloc[:6000].copy()
    uses = pd.read_parquet(SAMPLE_DIR / "tactics.parquet")
    uses = uses[uses["report_id"].isin(reports["report_id"])].reset_index(drop=True)
    for frame in (reports, uses):  # text, so values outside the vocabularies can be planted
        for col in frame.columns:
            if isinstance(frame[col].dtype, pd.CategoricalDtype):
                frame[col] = frame[col].astype(object).where(frame[col].notna(), None)
    ids = reports["report_id"].to_numpy()
    # The same tactic recorded twice on a report, once answered differently.
    twice = uses.iloc[::97].copy()
    twice["effective"] = pd.array([None, False, True] * (len(twice) // 3 + 1), dtype="boolean")[:len(twice)]
    # A known tactic with no group; a tactic outside the vocabulary; a use with no tactic; uses of no report.
    uses.loc[uses.index[5::211], "tactic_group"] = None
    odd = pd.DataFrame({"report_id": [*ids[7::400], *ids[11::700], "NO-SUCH-1", "NO-SUCH-2"],
                        "tactic": [*(["Taser wave"] * len(ids[7::400])), *([None] * len(ids[11::700])),
                                   "CED fired", "Baton used"],
                        "tactic_group": [*([None] * len(ids[7::400])), *(["Other"] * len(ids[11::700])),
                                         "Less lethal weapons", "Other equipment"],
                        "effective": pd.array([True] * (len(ids[7::400]) + len(ids[11::700]) + 2), dtype="boolean")})
    uses = pd.concat([uses, twice, odd], ignore_index=True)
    reports.loc[reports.index[3::500], "shift"] = "Twilight"
    reports.loc[reports.index[9::300], "reasons"] = pd.Series([np.array(["Self defence", "Effect arrest"],
                                                                        dtype=object)] * len(reports.index[9::300]),
                                                              index=reports.index[9::300])
    ced = uses.loc[uses["tactic"].astype(str).str.startswith("CED"), "report_id"]
    reports.loc[reports["report_id"].isin(set(ced.iloc[::5])), "ced_trained"] = False
    return pa.Table.from_pandas(reports, preserve_index=False), pa.Table.from_pandas(uses, preserve_index=False)


def datasets(engine: Engine) -> dict[str, Dataset]:
    """Load the pin's datasets into an engine."""
    return {"sample": engine.open(SAMPLE_DIR),
            "messy": engine.add("Messy extract", *messy_tables(), key="figures_messy"),
            "planted": engine.add("Planted problems", *planted_tables(), key="figures_planted")}


def plain(value: Any) -> Any:
    """Turn a figure into JSON: frames as their columns, dtypes and records; numbers as ints or floats; NaN None."""
    if isinstance(value, pd.DataFrame):
        return {"columns": [str(c) for c in value.columns], "dtypes": [str(t) for t in value.dtypes],
                "records": [plain(list(row)) for row in value.itertuples(index=False)]}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [plain(v) for v in value]
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else float(value)
    if isinstance(value, (date, pd.Timestamp)):
        return f"{type(value).__name__}:{value}"
    return value


def case_keys() -> list[str]:
    return [f"{d}/{f}/{s}" for d, (fs, ss) in CASES.items() for f in fs for s in ss]


def figures_of(engine: Engine, ds: Dataset, filters: Filters, scope: Scope) -> dict[str, Any]:
    """Compute every pinned figure of one dataset, filter state and scope."""
    query.forget_page_results(engine)
    return {name: plain(function(engine, ds, filters, scope)) for name, function in FIGURES.items()}


def every_figure(engine: Engine) -> dict[str, Any]:
    """Compute the pages' figures for every case the pin holds."""
    loaded = datasets(engine)
    scopes = {**SCOPES, **EXTRA_SCOPES}
    out = {}
    for key in case_keys():
        name, filter_name, scope_name = key.split("/")
        out[key] = figures_of(engine, loaded[name], FILTERS[filter_name], scopes[scope_name])
    return out


# Frames sorted by tactic alone: a tactic recorded under two groups gives two rows whose order the engine chose.
TIED_ROWS = ("effectiveness", "harm_by_tactic")


def canonical(figures: dict[str, Any]) -> dict[str, Any]:
    """Return figures with the rows of one tactic (in frames sorted by tactic alone) in a fixed order."""
    out = dict(figures)
    for name in TIED_ROWS:
        frame = dict(out[name])
        at = frame["columns"].index("tactic")
        runs: dict[str, list] = {}
        for record in frame["records"]:
            runs.setdefault(json.dumps(record[at]), []).append(record)
        frame["records"] = [r for run in runs.values() for r in sorted(run, key=json.dumps)]
        out[name] = frame
    return out


def differences(got: Any, want: Any, where: str = "") -> list[str]:
    """List where got differs from want: exactly, but for floats to RELATIVE (tests/pins.py)."""
    return pins.differences(got, want, RELATIVE, where)


@pytest.fixture(scope="module")
def engine() -> Engine:
    return keyed_engine()


@pytest.fixture(scope="module")
def loaded(engine) -> dict[str, Dataset]:
    return datasets(engine)


@pytest.fixture(scope="module")
def pinned() -> dict[str, Any]:
    return json.loads(PINNED.read_text())


def test_the_pin_covers_every_case_and_every_figure(pinned) -> None:
    assert set(pinned) == set(case_keys())
    assert all(set(figures) == set(FIGURES) for figures in pinned.values())
    # The pin would prove little without perturbed counts that differ from the exact ones, messy records or
    # planted problems: check that they are there.
    exact, perturbed = (pinned[f"sample/night-year/{s}"]["use_over_time"]["records"] for s in ("exact", "perturbed"))
    assert exact != perturbed
    assert any(r[0] == "tactic" and r[1] == "Taser wave" for r in pinned["messy/all/exact"]["invalid_codes"]["records"])
    assert pinned["planted/all/exact"]["contradiction_rows"]["ced_used_not_trained"] == ["A02-2"]


def _run(engine: Engine, ds: Dataset, key: str, monkeypatch, portable: bool) -> dict[str, Any]:
    _, filter_name, scope_name = key.split("/")
    scope = {**SCOPES, **EXTRA_SCOPES}[scope_name]
    if not portable:
        return figures_of(engine, ds, FILTERS[filter_name], scope)
    with monkeypatch.context() as m:  # no one-scan answers: the Ibis queries every backend runs
        m.setattr(fastpath, "_page_columns", lambda engine, ds: None)
        m.setattr(fastpath, "enum_values", lambda engine, ds, table, column: None)
        m.setattr(engine, "list_items_outside", lambda ds: None)
        return figures_of(engine, ds, FILTERS[filter_name], scope)


@pytest.mark.parametrize("portable", [False, True], ids=["engine", "portable"])
@pytest.mark.parametrize("key", case_keys())
def test_the_page_figures_are_those_pinned_before_the_speed_work(engine, loaded, pinned, monkeypatch, key: str,
                                                                 portable: bool) -> None:
    got = _run(engine, loaded[key.split("/")[0]], key, monkeypatch, portable)
    assert differences(canonical(got), canonical(pinned[key])) == []


def test_a_changed_figure_is_caught() -> None:
    assert differences({"a": 1.0, "c": "x"}, {"a": 1.0 + 1e-9, "c": "x"}) == ["/a: 1.0, pinned 1.000000001"]
    assert differences({"b": 3}, {"b": 2}) == ["/b: 3, pinned 2"]
    assert differences({"b": 3.0}, {"b": 3}) == ["/b: 3.0, pinned 3"]
    frame = plain(pd.DataFrame({"n": [1, 2]}))
    assert differences(plain(pd.DataFrame({"n": [1.0, 2.0]})), frame) == ["/dtypes[0]: 'float64', pinned 'int64'",
                                                                         "/records[0][0]: 1.0, pinned 1",
                                                                         "/records[1][0]: 2.0, pinned 2"]


if __name__ == "__main__":  # write the pin (once, from the code before the speed work)
    PINNED.write_text(json.dumps(every_figure(keyed_engine()), sort_keys=True) + "\n")


@pytest.mark.duckdb_only
def test_the_engine_path_is_the_one_under_test(engine, loaded) -> None:
    # One scan answers the Tactics page; a view where a report records one tactic twice counts uses from the rows.
    query.forget_page_results(engine)
    scan = fastpath.tactic_scan(engine, loaded["sample"], Filters(), UNRESTRICTED)
    assert scan is not None and scan.answers is not None
    assert fastpath.tactic_scan(engine, loaded["messy"], Filters(), UNRESTRICTED).answers is None
    # What the load found outside the vocabularies: the check of codes in view skips every other column.
    assert engine.list_items_outside(loaded["sample"]) == {"reasons": (), "impact_factors": (), "outcomes": ()}
    assert engine.list_items_outside(loaded["messy"])["reasons"] == ("Self defence",)
    assert fastpath.enum_values(engine, loaded["messy"], "reports", "shift")[-1] == "Twilight"
