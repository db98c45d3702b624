"""Property tests: filters conserve counts and agree with an independent pandas count."""
from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lib import synth
from lib.engine import query
from lib.engine.query import FILTER_KINDS, UNRESTRICTED, Filters, Scope
from lib.model import schema


def _settings(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])
REPORT_KINDS = [k for k in FILTER_KINDS if k.table == "reports"]
FIRST = date(2023, 4, 1)


@pytest.fixture(scope="module")
def world(engine):
    data = synth.generate(4000, seed=5)
    ds = engine.add("property world", data.reports, data.tactics, data.officers, key="props0000005")
    reports = data.reports.to_pandas()
    tactics = data.tactics.to_pandas()
    return ds, reports, tactics


def _pick(values: list[str]) -> st.SearchStrategy[tuple[str, ...]]:
    return st.lists(st.sampled_from(values), max_size=3, unique=True).map(tuple)


@st.composite
def filter_states(draw, options: dict[str, list[str]]) -> Filters:
    chosen = {}
    for kind in FILTER_KINDS:
        if options[kind.field] and draw(st.booleans()) and draw(st.booleans()):
            chosen[kind.field] = draw(_pick(options[kind.field]))
    if draw(st.booleans()):
        start = FIRST + timedelta(days=draw(st.integers(0, 700)))
        chosen["date_from"] = start
        chosen["date_to"] = start + timedelta(days=draw(st.integers(0, 400)))
    return Filters(**chosen)


def _pandas_count(reports: pd.DataFrame, tactics: pd.DataFrame, f: Filters) -> int:
    """Count the reports a filter state selects, written independently with pandas."""
    keep = pd.Series(True, index=reports.index)
    if f.date_from:
        keep &= reports["occurred_at"] >= pd.Timestamp(f.date_from)
    if f.date_to:
        keep &= reports["occurred_at"] < pd.Timestamp(f.date_to + timedelta(days=1))
    for kind in FILTER_KINDS:
        values = f.values(kind)
        if not values:
            continue
        if kind.table == "reports":
            keep &= reports[kind.column].astype("string").isin(values).fillna(False)
        else:
            ids = tactics.loc[tactics[kind.column].astype("string").isin(values), "report_id"]
            keep &= reports["report_id"].isin(set(ids))
    return int(keep.sum())


def test_filters_agree_with_an_independent_pandas_count(engine, world):
    ds, reports, tactics = world
    options = query.filter_options(engine, ds, UNRESTRICTED)

    @_settings(80)
    @given(filter_states(options))
    def check(f: Filters) -> None:
        assert query.summarise(engine, ds, f, UNRESTRICTED).reports == _pandas_count(reports, tactics, f)

    check()


@pytest.mark.parametrize("dimension", ["shift", "officer_role", "force", "subject_ethnicity", "month"])
def test_breakdown_parts_sum_to_the_total(engine, world, dimension):
    ds, _, _ = world
    options = query.filter_options(engine, ds, UNRESTRICTED)

    @_settings(15)
    @given(filter_states(options))
    def check(f: Filters) -> None:
        total = query.summarise(engine, ds, f, UNRESTRICTED)
        parts = query.breakdown(engine, ds, f, UNRESTRICTED, (dimension,))
        assert parts["reports"].sum() == total.reports
        for col in schema.HARM_FIELDS:
            assert parts[f"{col}_yes"].sum() == total.rates[col].numerator
            assert parts[f"{col}_answered"].sum() == total.rates[col].denominator

    check()


def test_each_filter_kind_partitions_the_reports(engine, world):
    """Selecting each value of a filter in turn, plus the unrecorded rows, gives back the total."""
    ds, reports, _ = world
    options = query.filter_options(engine, ds, UNRESTRICTED)

    # Kinds with a short list of values, so each example stays a handful of queries.
    kinds = [k for k in REPORT_KINDS if len(options[k.field]) <= 15]

    @_settings(20)
    @given(filter_states(options), st.sampled_from(kinds))
    def check(f: Filters, kind) -> None:
        base = f.with_values(kind.field, ())
        total = query.summarise(engine, ds, base, UNRESTRICTED).reports
        parts = sum(query.summarise(engine, ds, base.with_values(kind.field, (v,)), UNRESTRICTED).reports
                    for v in options[kind.field])
        unrecorded = query.breakdown(engine, ds, base, UNRESTRICTED, (kind.column,))
        missing = unrecorded.loc[unrecorded[kind.column] == query.NOT_RECORDED, "reports"].sum()
        assert parts + missing == total

    check()


def test_scopes_partition_the_reports_by_force(engine, world):
    ds, reports, _ = world
    options = query.filter_options(engine, ds, UNRESTRICTED)

    @_settings(4)
    @given(filter_states(options))
    def check(f: Filters) -> None:
        total = query.summarise(engine, ds, f, UNRESTRICTED).reports
        by_scope = sum(query.summarise(engine, ds, f, Scope(forces=frozenset({force}))).reports
                       for force in options["forces"])
        assert by_scope == total

    check()
