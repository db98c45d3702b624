"""The Tactics page under the cell key method: every count published perturbed, everything else from those.

Expected figures are worked out here in pandas, straight from the sample's Parquet files and the record keys
of a fixed secret, not by the code under test: a published count is `cellkey.perturb_one(exact, key sum)`
(kept within its whole), and every share, rate and interval is the one of the published counts.
"""
from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from lib import ingest
from lib.analysis import tactics
from lib.analysis.stats import wilson_interval
from lib.engine.query import Filters, Scope
from lib.engine.store import SAMPLE_DIR, DatasetError, Engine
from lib.model import schema
from lib.privacy import cellkey

SECRET = b"test-only record key secret for the tactics page"
ALL = Filters()
VIEWER = Scope(perturbed=True)
ANALYST = Scope()
HARM = tuple(schema.HARM_FIELDS)


def _record_keys(ids: pa.Array | pa.ChunkedArray) -> pa.Array:
    return pa.array(cellkey.record_keys(ids.to_numpy(zero_copy_only=False), SECRET), pa.int16())


@pytest.fixture(scope="module")
def keyed() -> Engine:
    """An engine (OSE_ENGINE_URL's backend) that gives every report its record key under SECRET."""
    return Engine(read_file=ingest.read_file, record_keys=_record_keys)


@pytest.fixture(scope="module")
def sample(keyed):
    return keyed.open(SAMPLE_DIR)


@pytest.fixture(scope="module")
def reports() -> pd.DataFrame:
    """The sample's reports with their record keys and months, read by pandas."""
    frame = pd.read_parquet(SAMPLE_DIR / "reports.parquet", columns=["report_id", "occurred_at", *HARM],
                            dtype_backend="numpy_nullable")
    frame["key"] = cellkey.record_keys(frame["report_id"].astype(str).to_numpy(dtype=object), SECRET).astype("int64")
    frame["month"] = pd.to_datetime(frame["occurred_at"]).dt.to_period("M").dt.to_timestamp()
    return frame


@pytest.fixture(scope="module")
def uses(reports) -> pd.DataFrame:
    """The sample's tactic rows, each with its report's record key and month."""
    frame = pd.read_parquet(SAMPLE_DIR / "tactics.parquet", dtype_backend="numpy_nullable")
    frame["tactic"] = frame["tactic"].astype(str)
    frame["tactic_group"] = frame["tactic_group"].astype("string").fillna(tactics.UNCLASSIFIED).astype(str)
    return frame.merge(reports[["report_id", "key", "month", *HARM]], on="report_id")


def _counted(frame: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Return each group's exact count of rows (n) and its key sum (k)."""
    return frame.groupby(by).agg(n=("key", "size"), k=("key", "sum"))


def _published(n: object, k: object) -> np.ndarray:
    return cellkey.perturb(np.asarray(n, dtype="int64"), np.asarray(k, dtype="int64"))


def _some_differ(published: object, exact: object) -> bool:
    return bool((np.asarray(published) != np.asarray(exact)).any())


# --- 1. tactic use over time --------------------------------------------------------------


def test_use_over_time_publishes_perturbed_counts_and_shares_of_them(keyed, sample, reports, uses):
    frame = tactics.use_over_time(keyed, sample, ALL, VIEWER)
    frame["month"] = pd.to_datetime(frame["month"])
    frame = frame.set_index(["month", "tactic_group"])
    totals = _counted(reports, ["month"])
    cells = _counted(uses.drop_duplicates(["report_id", "tactic_group"]), ["month", "tactic_group"])
    cells = cells.reindex(frame.index, fill_value=0)  # a month without the type of force: 0 reports, key 0
    month_of = frame.index.get_level_values("month")
    total = pd.Series(_published(totals["n"], totals["k"]), index=totals.index)
    assert (frame["total_reports"].to_numpy() == total.loc[month_of].to_numpy()).all()
    expected = np.minimum(_published(cells["n"], cells["k"]), total.loc[month_of].to_numpy())
    assert (frame["reports"].to_numpy() == expected).all()
    assert np.allclose(frame["share"], frame["reports"] / frame["total_reports"])
    assert _some_differ(frame["reports"], cells["n"]) and _some_differ(total, totals["n"])

    exact = tactics.use_over_time(keyed, sample, ALL, ANALYST)
    exact["month"] = pd.to_datetime(exact["month"])
    exact = exact.set_index(["month", "tactic_group"]).loc[frame.index]
    assert (exact["reports"] == cells["n"]).all()
    assert (exact["total_reports"].to_numpy() == totals["n"].loc[month_of].to_numpy()).all()


# --- 2. effectiveness ---------------------------------------------------------------------


def test_effectiveness_publishes_uses_answered_and_effective_nested(keyed, sample, uses):
    frame = tactics.effectiveness(keyed, sample, ALL, VIEWER).set_index("tactic")
    every = _counted(uses, ["tactic"])
    answered = _counted(uses[uses["effective"].notna()], ["tactic"]).reindex(every.index, fill_value=0)
    yes = _counted(uses[uses["effective"].fillna(False)], ["tactic"]).reindex(every.index, fill_value=0)
    frame = frame.loc[every.index]
    published_uses = _published(every["n"], every["k"])
    published_answered = np.minimum(_published(answered["n"], answered["k"]), published_uses)
    published_yes = np.minimum(_published(yes["n"], yes["k"]), published_answered)
    assert (frame["uses"].to_numpy() == published_uses).all()
    assert (frame["answered"].to_numpy() == published_answered).all()
    assert (frame["effective_yes"].to_numpy() == published_yes).all()
    assert (frame["unanswered"].to_numpy() == published_uses - published_answered).all()
    assert np.allclose(frame["rate"], published_yes / published_answered)
    assert np.allclose(frame["unanswered_share"], (published_uses - published_answered) / published_uses)
    low, high = wilson_interval(published_yes, published_answered)
    assert np.allclose(frame["low"], low) and np.allclose(frame["high"], high)
    assert _some_differ(frame["uses"], every["n"]) and _some_differ(frame["effective_yes"], yes["n"])

    exact = tactics.effectiveness(keyed, sample, ALL, ANALYST).set_index("tactic").loc[every.index]
    assert (exact["uses"] == every["n"]).all() and (exact["answered"] == answered["n"]).all()
    assert (exact["effective_yes"] == yes["n"]).all()
    assert np.allclose(exact["rate"], yes["n"] / answered["n"])


# --- 3. harm when each tactic was used ----------------------------------------------------


def _harm_expected(frame: pd.DataFrame, by: str) -> dict[str, np.ndarray]:
    """Return the published reports and harm yes/answered per group of a frame of distinct (report, group)."""
    groups = _counted(frame, [by])
    out = {"reports": _published(groups["n"], groups["k"]), "exact": groups["n"].to_numpy(), "index": groups.index}
    for m in HARM:
        answered = _counted(frame[frame[m].notna()], [by]).reindex(groups.index, fill_value=0)
        yes = _counted(frame[frame[m].fillna(False)], [by]).reindex(groups.index, fill_value=0)
        out[f"{m}_answered"] = np.minimum(_published(answered["n"], answered["k"]), out["reports"])
        out[f"{m}_yes"] = np.minimum(_published(yes["n"], yes["k"]), out[f"{m}_answered"])
        out[f"{m}_exact_yes"] = yes["n"].to_numpy()
    return out


@pytest.mark.parametrize("by", ["tactic", "tactic_group"])
def test_harm_when_used_publishes_counts_and_rates_of_them(keyed, sample, reports, uses, by):
    frame = tactics.harm_when_used(keyed, sample, ALL, VIEWER, by).set_index("tactic")
    expected = _harm_expected(uses.drop_duplicates(["report_id", by]), by)
    frame = frame.loc[expected["index"]]
    assert (frame["reports"].to_numpy() == expected["reports"]).all()
    overall = _harm_expected(reports.assign(everything="all"), "everything")
    for m in HARM:
        yes, answered = expected[f"{m}_yes"], expected[f"{m}_answered"]
        assert (frame[f"{m}_yes"].to_numpy() == yes).all()
        assert (frame[f"{m}_answered"].to_numpy() == answered).all()
        assert (frame[f"{m}_unanswered"].to_numpy() == expected["reports"] - answered).all()
        with np.errstate(divide="ignore", invalid="ignore"):
            assert np.allclose(frame[f"{m}_rate"], yes / answered, equal_nan=True)
        low, high = wilson_interval(yes, answered)
        assert np.allclose(frame[f"{m}_low"], low, equal_nan=True)
        assert np.allclose(frame[f"{m}_high"], high, equal_nan=True)
        # The overall rate over every report in view: its counts published the same way.
        assert (frame[f"{m}_overall_yes"] == overall[f"{m}_yes"][0]).all()
        assert (frame[f"{m}_overall_answered"] == overall[f"{m}_answered"][0]).all()
        assert frame[f"{m}_overall"].iloc[0] == pytest.approx(overall[f"{m}_yes"][0] / overall[f"{m}_answered"][0])
    assert _some_differ(frame["reports"], expected["exact"])
    assert _some_differ(frame["officer_injured_yes"], expected["officer_injured_exact_yes"])

    exact = tactics.harm_when_used(keyed, sample, ALL, ANALYST, by).set_index("tactic").loc[expected["index"]]
    assert (exact["reports"].to_numpy() == expected["exact"]).all()
    assert (exact["officer_injured_yes"].to_numpy() == expected["officer_injured_exact_yes"]).all()
    injured = reports["officer_injured"]
    assert exact["officer_injured_overall_yes"].iloc[0] == int(injured.fillna(False).sum())
    assert exact["officer_injured_overall_answered"].iloc[0] == int(injured.notna().sum())


# --- 4. co-occurrence ---------------------------------------------------------------------


def test_co_occurrence_publishes_a_symmetric_table_of_perturbed_pairs(keyed, sample, uses):
    frame = tactics.co_occurrence(keyed, sample, ALL, VIEWER)
    distinct = uses.drop_duplicates(["report_id", "tactic"])
    per_tactic = _counted(distinct, ["tactic"])
    published = pd.Series(_published(per_tactic["n"], per_tactic["k"]), index=per_tactic.index)
    # The most-used tactics are chosen by their published counts, as tactic_counts orders them.
    top = published.rename("p").reset_index().sort_values(["p", "tactic"], ascending=[False, True])
    chosen = top["tactic"].head(tactics.TOP_TACTICS).tolist()
    assert list(dict.fromkeys(frame["tactic"])) == chosen
    assert (frame["tactic_reports"].to_numpy() == published.loc[frame["tactic"]].to_numpy()).all()
    assert (frame["other_reports"].to_numpy() == published.loc[frame["other"]].to_numpy()).all()

    kept = distinct[distinct["tactic"].isin(chosen)][["report_id", "tactic", "key"]]
    pairs = kept.merge(kept[["report_id", "tactic"]].rename(columns={"tactic": "other"}), on="report_id")
    cells = _counted(pairs, ["tactic", "other"]).reindex(pd.MultiIndex.from_frame(frame[["tactic", "other"]]),
                                                           fill_value=0)
    expected = np.minimum(_published(cells["n"], cells["k"]),
                          np.minimum(frame["tactic_reports"], frame["other_reports"]).to_numpy())
    assert (frame["both"].to_numpy() == expected).all()
    assert np.allclose(frame["share"], frame["both"] / frame["tactic_reports"])
    table = frame.pivot(index="tactic", columns="other", values="both").loc[chosen, chosen]
    assert (table.to_numpy() == table.to_numpy().T).all()  # both(a, b) == both(b, a)
    assert (np.diag(table.to_numpy()) == published.loc[chosen].to_numpy()).all()  # a with itself: its reports
    assert _some_differ(frame["both"], cells["n"])

    exact = tactics.co_occurrence(keyed, sample, ALL, ANALYST)
    exact_cells = _counted(pairs, ["tactic", "other"])["n"]
    mine = exact.set_index(["tactic", "other"])["both"]
    shared = mine.index.intersection(exact_cells.index)
    assert len(shared) and (mine.loc[shared] == exact_cells.loc[shared]).all()
    assert (exact["tactic_reports"].to_numpy() == per_tactic["n"].loc[exact["tactic"]].to_numpy()).all()


# --- 5. the Taser (CED) ladder ------------------------------------------------------------


def test_taser_ladder_publishes_levels_within_ced_reports_within_all(keyed, sample, reports, uses):
    ladder = tactics.taser_ladder(keyed, sample, ALL, VIEWER)
    ced = uses[uses["tactic"].isin(schema.CED_LADDER)].assign(rank=lambda f: f["tactic"].map(schema.CED_RANK))
    highest = ced.groupby("report_id").agg(rank=("rank", "max"), key=("key", "first"))
    levels = _counted(highest, ["rank"]).reindex(range(len(schema.CED_LADDER)), fill_value=0)
    everything = cellkey.perturb_one(len(reports), int(reports["key"].sum()))
    ced_reports = min(cellkey.perturb_one(len(highest), int(highest["key"].sum())), everything)
    assert (ladder["all_reports"] == everything).all() and (ladder["ced_reports"] == ced_reports).all()
    # Reaching at least a level (it or any above) is its own count; never more reach a higher level.
    reach = _published(levels["n"][::-1].cumsum()[::-1], levels["k"][::-1].cumsum()[::-1])
    reach = np.minimum([reach[i:].max() for i in range(len(reach))], ced_reports)
    assert np.allclose(ladder["at_least"], reach / ced_reports)
    assert ladder["at_least"].iloc[0] == 1.0 and ladder["at_least"].is_monotonic_decreasing
    level = np.minimum(_published(levels["n"], levels["k"]), reach)
    assert (ladder["reports"].to_numpy() == level).all()
    assert np.allclose(ladder["share"], level / ced_reports)
    low, high = wilson_interval(level, ced_reports)
    assert np.allclose(ladder["share_low"], low) and np.allclose(ladder["share_high"], high)
    assert ladder["ced_share_of_reports"].iloc[0] == pytest.approx(ced_reports / everything)
    low, high = wilson_interval(ced_reports, everything)
    assert ladder["ced_share_low"].iloc[0] == pytest.approx(float(low))
    assert _some_differ(np.r_[level, ced_reports, everything], np.r_[levels["n"], len(highest), len(reports)])

    exact = tactics.taser_ladder(keyed, sample, ALL, ANALYST)
    assert (exact["reports"].to_numpy() == levels["n"].to_numpy()).all()
    assert exact["ced_reports"].iloc[0] == len(highest) and exact["all_reports"].iloc[0] == len(reports)
    assert exact["share"].sum() == pytest.approx(1.0)


# --- the same set of reports, the same published count, wherever it is asked --------------


def test_a_tactic_s_reports_are_published_alike_on_every_section(keyed, sample):
    harm = tactics.harm_when_used(keyed, sample, ALL, VIEWER).set_index("tactic")["reports"]
    pairs = tactics.co_occurrence(keyed, sample, ALL, VIEWER).drop_duplicates("tactic").set_index("tactic")
    assert (pairs["tactic_reports"] == harm.loc[pairs.index]).all()
    ladder = tactics.taser_ladder(keyed, sample, ALL, VIEWER).set_index("level")
    top = schema.CED_LADDER[-1]  # the top level's reports are the reports using it
    if top in harm.index:
        assert ladder.loc[top, "reports"] == harm.loc[top]


def test_a_viewer_of_a_small_view_never_gets_zero_for_a_used_tactic(keyed, sample):
    one_day = Filters(date_from=date(2024, 6, 3), date_to=date(2024, 6, 3))
    exact = tactics.effectiveness(keyed, sample, one_day, ANALYST).set_index("tactic")
    published = tactics.effectiveness(keyed, sample, one_day, VIEWER).set_index("tactic").loc[exact.index]
    assert len(exact) and (published["uses"] >= 1).all()
    assert (published["answered"] <= published["uses"]).all()
    assert (published["effective_yes"] <= published["answered"]).all()
    assert (abs(published["uses"] - exact["uses"]) <= cellkey.MAX_ADJUSTMENT).all()


def test_an_empty_view_stays_empty_for_a_viewer(keyed, sample):
    none = Filters(date_from=date(2030, 1, 1))
    assert tactics.use_over_time(keyed, sample, none, VIEWER).empty
    assert tactics.effectiveness(keyed, sample, none, VIEWER).empty
    assert tactics.co_occurrence(keyed, sample, none, VIEWER).empty
    ladder = tactics.taser_ladder(keyed, sample, none, VIEWER)
    assert ladder["reports"].sum() == 0 and ladder["share"].isna().all() and ladder["all_reports"].iloc[0] == 0


QUERIES = [tactics.use_over_time, tactics.effectiveness, tactics.harm_when_used, tactics.co_occurrence,
           tactics.taser_ladder]


@pytest.mark.parametrize("query", QUERIES, ids=[q.__name__ for q in QUERIES])
def test_a_viewer_of_data_without_record_keys_gets_an_error_not_exact_counts(engine, small, query):
    with pytest.raises(DatasetError, match="record keys"):
        query(engine, small, ALL, VIEWER)
