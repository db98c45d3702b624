"""The cell key method: the published table, record keys, and the counts a viewer's queries publish.

A viewer's (perturbed) scope gets every count adjusted by the table's entry for (count, cell key), the
cell key being the sum of the record keys of the reports counted, modulo 256. Checked against counts and
key sums worked out here with pandas from the same reports, on every backend (this file is a query test).
"""
from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from lib import ingest
from lib.engine import query
from lib.engine.store import SAMPLE_DIR, DatasetError, Engine
from lib.model import schema
from lib.privacy import cellkey

from .conftest import FIXTURES, ROOT

SECRET = b"a test installation's secret key, 40 bytes"
VIEWER = replace(query.UNRESTRICTED, perturbed=True)
YEAR = query.filters_from_mapping({"date_from": date(2023, 4, 1), "date_to": date(2024, 3, 31)})


def keyer(ids: pa.Array | pa.ChunkedArray) -> pa.Array:
    return pa.array(cellkey.record_keys(ids.to_numpy(zero_copy_only=False), SECRET), pa.int16())


@pytest.fixture(scope="module")
def keyed() -> Engine:
    return Engine(read_file=ingest.read_file, record_keys=keyer)


@pytest.fixture(scope="module")
def sample(keyed):
    return keyed.open(SAMPLE_DIR)


@pytest.fixture(scope="module")
def reports() -> pd.DataFrame:
    """The sample's reports with their record keys, worked out here."""
    frame = pd.read_parquet(SAMPLE_DIR / "reports.parquet")
    frame["key"] = cellkey.record_keys(frame["report_id"].to_numpy(dtype=object), SECRET)
    return frame


def in_year(reports: pd.DataFrame) -> pd.DataFrame:
    when = pd.to_datetime(reports["occurred_at"])
    return reports[(when >= "2023-04-01") & (when < "2024-04-01")]


# --- the published table --------------------------------------------------------------------


def test_the_published_table_is_the_methods_table():
    run = subprocess.run([sys.executable, "-m", "lib.privacy.cellkey", "--check"], cwd=ROOT,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    published = pd.read_csv(ROOT / "data" / "perturbation_table.csv", dtype={"value": str})
    assert list(published.columns) == ["value", "cell_key_from", "cell_key_to", "adjustment"]
    for _, rows in published.groupby("value"):
        # Every cell key from 0 to 255 is covered once, in order.
        assert rows["cell_key_from"].iloc[0] == 0 and rows["cell_key_to"].iloc[-1] == 255
        assert (rows["cell_key_from"].iloc[1:].to_numpy() == rows["cell_key_to"].iloc[:-1].to_numpy() + 1).all()


def test_zero_stays_zero_nothing_becomes_zero_and_the_adjustment_averages_nothing():
    values = np.repeat(np.arange(0, 40), 256)
    keys = np.tile(np.arange(256), 40)
    published = cellkey.perturb(values, keys)
    assert (published[values == 0] == 0).all()
    assert (published[values >= 1] >= 1).all()  # a count of one or more is never published as zero
    assert np.abs(published - values).max() == cellkey.MAX_ADJUSTMENT
    for v in range(40):
        assert (published[values == v] - v).mean() == 0  # unbiased for every value
    big = cellkey.adjustments(np.full(256, 100), np.arange(256))
    chances = {a: (big == a).mean() for a in range(-3, 4)}
    assert chances == pytest.approx({-3: 0.05, -2: 0.10, -1: 0.20, 0: 0.30, 1: 0.20, 2: 0.10, 3: 0.05}, abs=0.005)


# --- record keys ----------------------------------------------------------------------------


def test_record_keys_are_fixed_for_a_key_spread_evenly_and_unknowable_without_it(reports):
    ids = reports["report_id"].to_numpy(dtype=object)
    again = cellkey.record_keys(ids, SECRET)
    other = cellkey.record_keys(ids, b"another installation's secret key, 40 b.")
    assert (again == reports["key"].to_numpy()).all()
    assert (again != other).mean() > 0.99
    assert again.min() == 0 and again.max() == 255
    counts = np.bincount(again, minlength=256)
    expected = len(ids) / 256
    assert ((counts - expected) ** 2 / expected).sum() < 350  # chi-square, 255 degrees of freedom
    # One report's key does not depend on which other reports are in the file.
    assert (cellkey.record_keys(ids[:100], SECRET) == again[:100]).all()


def test_the_engine_gives_every_report_its_key_and_keeps_one_the_file_carries(keyed, sample, reports, tmp_path):
    t = keyed.reports(sample)
    loaded = keyed.execute(t.select("report_id", cellkey.RECORD_KEY)).set_index("report_id")[cellkey.RECORD_KEY]
    assert (loaded.loc[reports["report_id"]].to_numpy() == reports["key"].to_numpy()).all()
    # A folder that already carries record keys keeps them (a dataset saved with its keys).
    folder = tmp_path / "carried"
    folder.mkdir()
    carried = pd.read_parquet(SAMPLE_DIR / "reports.parquet").head(500).assign(record_key=np.int16(7))
    carried.to_parquet(folder / "reports.parquet")
    pd.read_parquet(SAMPLE_DIR / "tactics.parquet").to_parquet(folder / "tactics.parquet")
    ds = keyed.open(folder)
    t = keyed.reports(ds)
    assert set(keyed.execute(t.select(cellkey.RECORD_KEY))[cellkey.RECORD_KEY]) == {7}


def test_a_report_keeps_its_key_in_every_version_of_a_saved_dataset(monkeypatch, tmp_path):
    from lib.ingest import library

    monkeypatch.setenv("OSE_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("OSE_PSEUDONYM_KEY", SECRET.decode())
    header, *lines = (FIXTURES / "small_canonical.csv").read_text().splitlines()

    def extract(rows: list[str]) -> ingest.IngestResult:
        return ingest.ingest([("extract.csv", "\n".join([header, *rows]).encode())])

    library.save("keys", extract(lines[:6]))
    before = library.path_of("keys")
    library.append("keys", extract(lines[6:]))
    after = library.path_of("keys")
    assert before != after
    engine = Engine(read_file=ingest.read_file, pseudonymise=ingest.pseudonymise_ids, record_keys=ingest.record_keys)
    keys = []
    for path in (before, after):
        t = engine.reports(engine.open(path))
        found = engine.execute(t.select("report_id", cellkey.RECORD_KEY))
        keys.append(found.set_index("report_id")[cellkey.RECORD_KEY])
    old, new = keys
    assert len(old) == 6 and len(new) == len(lines)
    assert (new.loc[old.index] == old).all()
    assert (old == cellkey.record_keys(old.index.to_numpy(dtype=object), SECRET)).all()


# --- published counts -----------------------------------------------------------------------


def test_a_viewers_headline_counts_are_the_tables_entry_for_each_count_and_its_cell_key(keyed, sample, reports):
    exact = query.summarise(keyed, sample, YEAR, query.UNRESTRICTED)
    shown = query.summarise(keyed, sample, YEAR, VIEWER)
    rows = in_year(reports)
    assert exact.reports == len(rows)  # the analyst's figure is exact
    assert shown.reports == cellkey.perturb_one(len(rows), int(rows["key"].sum()))
    changed = 0
    for col in schema.HARM_FIELDS:
        if col in sample.incident_level:
            continue
        answered = rows[rows[col].notna()]
        yes = answered[answered[col].astype(bool)]
        rate = shown.rates[col]
        assert exact.rates[col].numerator == len(yes) and exact.rates[col].denominator == len(answered)
        assert rate.denominator == min(cellkey.perturb_one(len(answered), int(answered["key"].sum())), shown.reports)
        assert rate.numerator == min(cellkey.perturb_one(len(yes), int(yes["key"].sum())), rate.denominator)
        assert rate.rate == pytest.approx(rate.numerator / rate.denominator)
        assert rate.unanswered == shown.reports - rate.denominator
        changed += (rate.numerator != len(yes)) + (rate.denominator != len(answered))
    assert changed  # the perturbation is on
    assert abs(shown.officers - exact.officers) <= 3 and abs(shown.incidents - exact.incidents) <= 3


def test_a_viewers_breakdown_publishes_perturbed_counts_and_rates_from_them(keyed, sample, reports):
    rows = in_year(reports)
    for by in (("shift",), ("subject_ethnicity",), ("officer_role", "shift")):
        frame = query.breakdown(keyed, sample, YEAR, VIEWER, by)
        exact = query.breakdown(keyed, sample, YEAR, query.UNRESTRICTED, by)
        assert frame[list(by)].equals(exact[list(by)])
        for i, group in frame.iterrows():
            mine = rows
            for d in by:
                values = mine[d].astype(object).where(mine[d].notna(), query.NOT_RECORDED)
                mine = mine[values == group[d]]
            assert group["reports"] == cellkey.perturb_one(len(mine), int(mine["key"].sum()))
            assert exact.loc[i, "reports"] == len(mine)
            injured = mine[mine["officer_injured"].fillna(False).astype(bool)]
            answered = mine[mine["officer_injured"].notna()]
            assert group["officer_injured_answered"] == min(
                cellkey.perturb_one(len(answered), int(answered["key"].sum())), group["reports"])
            assert group["officer_injured_yes"] == min(
                cellkey.perturb_one(len(injured), int(injured["key"].sum())), group["officer_injured_answered"])
            if group["officer_injured_answered"]:
                assert group["officer_injured_rate"] == pytest.approx(
                    group["officer_injured_yes"] / group["officer_injured_answered"])
        assert (frame["reports"] != exact["reports"]).any()


def test_the_same_reports_always_get_the_same_answer_however_the_question_is_put(keyed, sample):
    everything = query.summarise(keyed, sample, query.Filters(), VIEWER)
    spanned = query.summarise(keyed, sample, query.filters_from_mapping(
        {"date_from": sample.first.date(), "date_to": sample.last.date()}), VIEWER)
    assert everything == spanned
    assert everything == query.summarise(keyed, sample, query.Filters(), VIEWER)  # asked again
    by_shift = query.breakdown(keyed, sample, YEAR, VIEWER, ("shift",))
    for shift in by_shift["shift"]:
        only = query.summarise(keyed, sample, replace(YEAR, shifts=(shift,)), VIEWER)
        assert only.reports == by_shift.loc[by_shift["shift"] == shift, "reports"].item()


def test_tactic_counts_and_the_minimum_selection_use_published_counts(keyed, sample, reports):
    tactics = pd.read_parquet(SAMPLE_DIR / "tactics.parquet")
    rows = in_year(reports)
    used = tactics[tactics["report_id"].isin(rows["report_id"])].drop_duplicates(["report_id", "tactic"])
    used = used.merge(rows[["report_id", "key"]], on="report_id")
    frame = query.tactic_counts(keyed, sample, YEAR, VIEWER).set_index("tactic")
    total = cellkey.perturb_one(len(rows), int(rows["key"].sum()))
    for tactic, group in used.groupby("tactic"):
        assert frame.loc[tactic, "reports"] == cellkey.perturb_one(len(group), int(group["key"].sum()))
        assert frame.loc[tactic, "share"] == pytest.approx(frame.loc[tactic, "reports"] / total)
    assert query.report_count(keyed, sample, YEAR, VIEWER) == total
    assert query.report_count(keyed, sample, YEAR, query.UNRESTRICTED) == len(rows)


def test_an_engine_without_record_keys_refuses_a_viewers_query_rather_than_publish_exact_counts(engine):
    ds = engine.open(SAMPLE_DIR)
    if cellkey.RECORD_KEY in engine.reports(ds).columns:
        pytest.skip("this engine gives record keys")
    with pytest.raises(DatasetError, match="no record keys"):
        query.summarise(engine, ds, YEAR, VIEWER)
