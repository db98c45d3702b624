"""The cell key method on the Training page: counts of officers and reports published perturbed, analysts exact.

Every published count is checked against the perturbation of its exact count by the key sum of what it counts,
worked out here independently with pandas over the bundled sample (report keys from the report ids, officer keys
from the officer ids, under a test secret).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from lib import ingest
from lib.analysis import debriefs, stats, training
from lib.engine import query
from lib.engine.query import UNRESTRICTED, Filters, Scope
from lib.engine.store import SAMPLE_DIR, Engine
from lib.ingest import debriefs as debrief_files
from lib.privacy import cellkey

SECRET = b"test-only cell key secret for the training page tests"
VIEWER = Scope(perturbed=True)
EFFECT_COUNTS = ("officers_trained", "officers_comparison", "events", "observed_events")


def keys_of(ids: pd.Series | np.ndarray) -> np.ndarray:
    """Return record keys under the test secret (reports: of their ids; officers: of theirs)."""
    return cellkey.record_keys(np.asarray(ids, dtype=object), SECRET).astype(np.int64)


def keyed_engine(record_keys) -> Engine:
    return Engine(read_file=ingest.read_file, record_keys=record_keys)


@pytest.fixture(scope="module")
def keyed() -> tuple[Engine, object]:
    engine = keyed_engine(lambda ids: pa.array(cellkey.record_keys(ids.to_numpy(zero_copy_only=False), SECRET),
                                               pa.int16()))
    return engine, engine.open(SAMPLE_DIR)


@pytest.fixture(scope="module")
def roster() -> dict[str, pd.DataFrame]:
    tables = {kind: pd.read_parquet(SAMPLE_DIR / f"{kind}.parquet") for kind in ("officers", "training", "exposure")}
    tables["officers"][training.OFFICER_KEY] = keys_of(tables["officers"]["officer_id"].astype(str))
    return tables


@pytest.fixture(scope="module")
def reports() -> pd.DataFrame:
    frame = pd.read_parquet(SAMPLE_DIR / "reports.parquet",
                            columns=["report_id", "officer_id", "occurred_at", "officer_injured", "officer_assaulted"])
    return frame.assign(key=keys_of(frame["report_id"].astype(str)))


@pytest.fixture(scope="module")
def panels(keyed, roster) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The officer-month panel as an analyst's query builds it, and as a viewer's (with key sums and officer keys)."""
    engine, ds = keyed
    exact = training.panel_from_counts(training.officer_month_counts(engine, ds, Filters(), UNRESTRICTED),
                                       roster["exposure"], roster["officers"])
    published = training.panel_from_counts(training.officer_month_counts(engine, ds, Filters(), VIEWER),
                                           roster["exposure"], roster["officers"])
    published[training.OFFICER_KEY] = keys_of(published["officer_id"])
    return exact, published


@pytest.fixture(scope="module")
def fitted(panels) -> dict[str, tuple[dict, pd.DataFrame]]:
    exact, published = panels
    return {"exact": training.effects_and_profile(exact),
            "published": training.effects_and_profile(published, perturbed=True)}


def test_the_engine_keys_are_the_test_secrets_keys_of_the_report_ids(keyed, reports) -> None:
    engine, ds = keyed
    got = engine.execute(engine.reports(ds).select("report_id", cellkey.RECORD_KEY))
    got = got.set_index(got["report_id"].astype(str))[cellkey.RECORD_KEY]
    assert (got.reindex(reports["report_id"].astype(str)).to_numpy() == reports["key"].to_numpy()).all()


# --- compliance: counts of officers -------------------------------------------------------


@pytest.mark.parametrize("group", ["officer_role", "team"])
def test_compliance_counts_are_perturbed_by_their_officers_keys(keyed, roster, group: str) -> None:
    _, ds = keyed
    per_officer = training.compliance(roster["training"], roster["officers"], ds.last.date())
    published = training.summarise_compliance(per_officer, by=(group,), perturbed=True).set_index(group)
    exact = training.summarise_compliance(per_officer, by=(group,)).set_index(group)
    officers = roster["officers"].assign(officer_id=roster["officers"]["officer_id"].astype(str))
    hours = per_officer.set_index("officer_id")["hours"]
    compliant_ids = set(per_officer.loc[per_officer["compliant"], "officer_id"])
    differs = False
    for name, rows in officers.groupby(group, observed=True):
        keys = keys_of(rows["officer_id"])
        meets = rows["officer_id"].isin(compliant_ids).to_numpy()
        n, n_compliant = len(rows), int(meets.sum())
        assert exact.loc[name, "officers"] == n and exact.loc[name, "compliant"] == n_compliant  # analysts: exact
        shown = cellkey.perturb_one(n, int(keys.sum()))
        shown_compliant = min(cellkey.perturb_one(n_compliant, int(keys[meets].sum())), shown)
        row = published.loc[name]
        assert (row["officers"], row["compliant"]) == (shown, shown_compliant)
        # Derived from the published counts, so neither gives the exact count back.
        assert row["share_compliant"] == pytest.approx(shown_compliant / shown)
        assert row["mean_hours"] == pytest.approx(hours.reindex(rows["officer_id"]).sum() / shown)
        differs |= (shown, shown_compliant) != (n, n_compliant)
    assert differs
    low, high = stats.wilson_interval(published["compliant"].to_numpy(), published["officers"].to_numpy())
    with_ci = training.with_intervals(published.reset_index())
    assert np.allclose(with_ci["low"], low) and np.allclose(with_ci["high"], high)


def test_officers_short_of_the_standard_are_a_published_count(keyed, roster) -> None:
    _, ds = keyed
    per_officer = training.compliance(roster["training"], roster["officers"], ds.last.date())
    keys = keys_of(per_officer["officer_id"])
    short = ~per_officer["compliant"].to_numpy()
    assert training.compliance_totals(per_officer) == (int(short.sum()), len(per_officer))
    officers = cellkey.perturb_one(len(per_officer), int(keys.sum()))
    shown = min(cellkey.perturb_one(int(short.sum()), int(keys[short].sum())), officers)
    assert training.compliance_totals(per_officer, perturbed=True) == (shown, officers)
    with pytest.raises(ValueError, match="record keys"):  # no keys, no published count
        training.compliance_totals(per_officer.drop(columns=[training.OFFICER_KEY]), perturbed=True)


# --- the effect of training: counts of reports and of officers -------------------------------


def test_officer_month_counts_carry_their_reports_key_sums(panels, reports) -> None:
    exact, published = panels
    assert not any(c.endswith(cellkey.KEY_SUFFIX) for c in exact.columns)  # an analyst's query is unchanged
    frame = reports[reports["officer_id"].notna()]
    frame = frame.assign(officer_id=frame["officer_id"].astype(str),
                           month=reports["occurred_at"].dt.to_period("M").dt.to_timestamp())
    for field in ("officer_injured", "officer_assaulted"):
        frame[f"{field}_key"] = np.where(frame[field].fillna(False).astype(bool), frame["key"], 0)
    by_month = frame.groupby(["officer_id", "month"]).agg(
        reports=("key", "size"), reports_key=("key", "sum"), officer_injured_key=("officer_injured_key", "sum"),
        officer_assaulted_key=("officer_assaulted_key", "sum"))
    got = published.set_index(["officer_id", "month"])
    got = got[got["reports"] > 0]
    assert len(got) == len(by_month)
    want = by_month.reindex(got.index)
    assert (got["reports"] == want["reports"]).all()
    for field in training.MEASURES:
        assert (got[cellkey.key_column(field)] == want[f"{field}_key"]).all()
    assert (published[["officer_id", "month", *training.MEASURES]].to_numpy()
            == exact[["officer_id", "month", *training.MEASURES]].to_numpy()).all()


def test_training_effects_publish_perturbed_counts_beside_the_models_estimates(fitted) -> None:
    exact, exact_profile = fitted["exact"]
    published, profile = fitted["published"]
    differs = False
    for measure in training.MEASURES:
        e, p = exact[measure], published[measure]
        # Model estimates stay the model's (fitted to the exact panel): they are not counts.
        for key in ("estimate", "ci_low", "ci_high", "pre_trend_p", "minimum_detectable_effect", "twfe"):
            assert p[key] == e[key]
        for key in EFFECT_COUNTS:
            assert e[key] is not None  # the sample gives every measure an estimate
            assert abs(p[key] - e[key]) <= cellkey.MAX_ADJUSTMENT and (p[key] > 0) == (e[key] > 0)
            differs |= p[key] != e[key]
        # Observed over expected is the estimate, so expected moves with the published observed count.
        assert p["observed_events"] / p["expected_events"] == pytest.approx(1 + p["estimate"])
        assert p["verdict"] == training.verdict(p)
    for column in ("estimate", "ci_low", "ci_high"):
        assert np.allclose(profile[column], exact_profile[column], equal_nan=True)
    for column in ("officers", "events"):
        gap = (profile[column] - exact_profile[column]).abs()
        assert (gap <= cellkey.MAX_ADJUSTMENT).all() and ((profile[column] > 0) == (exact_profile[column] > 0)).all()
        differs |= bool((gap > 0).any())
    assert differs


def test_crude_rates_are_from_events_perturbed_by_their_reports_keys(fitted, panels) -> None:
    _, published_panel = panels
    published, _ = fitted["published"]
    exact, _ = fitted["exact"]
    rows = published_panel[(published_panel["shifts"].fillna(0) > 0).to_numpy()
                           & ~(published_panel["months_since_training"] == 0).fillna(False).to_numpy(dtype=bool)]
    since = rows["months_since_training"]
    groups = {"trained_before": (since < 0).fillna(False), "trained_after": (since > 0).fillna(False),
              "never_trained": since.isna()}
    differs = False
    for measure in training.MEASURES:
        for name, mask in groups.items():
            part = rows[mask.to_numpy(dtype=bool)]
            events = int(part[measure].sum())
            shown = cellkey.perturb_one(events, int(part[cellkey.key_column(measure)].sum()))
            got = published[measure]["rates"][name]
            assert exact[measure]["rates"][name]["events"] == events
            assert got["events"] == shown
            assert got["rate"] == pytest.approx(shown / part["shifts"].sum() * training.PER_SHIFTS)
            differs |= shown != events
    assert differs


def test_every_published_training_count_takes_the_keys_of_what_it_counts(roster) -> None:
    """With every record key 1, a count's key sum is the count itself: of reports, and of distinct officers."""
    engine = keyed_engine(lambda ids: pa.array(np.ones(len(ids), dtype=np.int16), pa.int16()))
    ds = engine.open(SAMPLE_DIR)
    panel = training.panel_from_counts(training.officer_month_counts(engine, ds, Filters(), VIEWER),
                                       roster["exposure"], roster["officers"])
    panel[training.OFFICER_KEY] = 1
    exact, exact_profile = training.effects_and_profile(panel)
    published, profile = training.effects_and_profile(panel, perturbed=True)
    for measure in training.MEASURES:
        for key in EFFECT_COUNTS:
            n = exact[measure][key]
            assert published[measure][key] == cellkey.perturb_one(n, n), (measure, key)
    for column in ("officers", "events"):
        want = [cellkey.perturb_one(int(n), int(n)) for n in exact_profile[column]]
        assert profile[column].tolist() == want


def test_a_panel_without_key_sums_is_refused_when_perturbed(panels) -> None:
    exact, published = panels
    with pytest.raises(ValueError, match="key sums"):
        training.staggered_effect(exact.assign(**{training.OFFICER_KEY: 0}), perturbed=True)
    with pytest.raises(ValueError, match="record keys"):
        training.staggered_effect(published.drop(columns=[training.OFFICER_KEY]), perturbed=True)


# --- debriefs: counts of reports ----------------------------------------------------------


def test_debrief_counts_are_perturbed_by_their_reports_keys(keyed, reports) -> None:
    engine, ds = keyed
    filters = Filters()
    rows = engine.execute(query.filtered_reports(engine, ds, filters, UNRESTRICTED).select(
        "report_id", "occurred_at", "officer_injured", "officer_assaulted"))
    records = debrief_files.read("debriefs.csv",
                                 debriefs.synthesise(rows, seed=3).to_csv(index=False).encode()).records
    missing, review, factors = debriefs.analyse(engine, ds, filters, VIEWER, records)
    exact_missing, exact_review, exact_factors = debriefs.analyse(engine, ds, filters, UNRESTRICTED, records)
    assert list(review.columns) == list(exact_review.columns)  # no record key reaches the list
    frame = reports.assign(report_id=reports["report_id"].astype(str))
    named = records.assign(report_id=records["report_id"].astype(str)).groupby("report_id")["contributing_factors"]
    factors_of = named.agg(lambda lists: {f for fs in lists for f in fs})
    debriefed = frame["report_id"].isin(factors_of.index).to_numpy()
    harmed = (frame["officer_injured"].fillna(False).astype(bool)
              | frame["officer_assaulted"].fillna(False).astype(bool)).to_numpy()
    keys = frame["key"].to_numpy()
    gap = harmed & ~debriefed
    assert exact_missing == int(gap.sum())
    assert missing == cellkey.perturb_one(int(gap.sum()), int(keys[gap].sum()))

    joined = frame[debriefed].reset_index(drop=True)
    joined_keys = joined["key"].to_numpy()
    sets = factors_of.reindex(joined["report_id"]).to_numpy()
    yes = joined["officer_injured"].fillna(False).astype(bool).to_numpy()
    answered = joined["officer_injured"].notna().to_numpy()
    published, exact = factors.set_index("factor"), exact_factors.set_index("factor")
    differs = False
    for factor in published.index:
        has = np.array([factor in s for s in sets])
        chosen = {"debriefs": has, "yes": has & yes, "answered": has & answered,
                  "reference_yes": ~has & yes, "reference_answered": ~has & answered}
        want = {name: cellkey.perturb_one(int(m.sum()), int(joined_keys[m].sum())) for name, m in chosen.items()}
        want["yes"] = min(want["yes"], want["answered"])
        # The reference (debriefs not naming the factor) is the published total less the published part.
        total_yes, total_answered = (cellkey.perturb_one(int(m.sum()), int(joined_keys[m].sum()))
                                     for m in (yes & answered, answered))
        want["reference_answered"] = max(total_answered - want["answered"], 0)
        want["reference_yes"] = min(max(min(total_yes, total_answered) - want["yes"], 0), want["reference_answered"])
        for name, m in chosen.items():
            assert exact.loc[factor, name] == int(m.sum())
            assert published.loc[factor, name] == want[name], (factor, name)
            differs |= want[name] != int(m.sum())
    assert differs
    ratio = stats.rate_ratio(factors["yes"], factors["answered"], factors["reference_yes"],
                             factors["reference_answered"])
    assert np.allclose(factors["ratio"], np.asarray(ratio.ratio), equal_nan=True)
    assert np.allclose(factors["ci_low"], np.asarray(ratio.low), equal_nan=True)


# --- the page's seam -------------------------------------------------------------------------


def test_officer_keys_are_the_installations_keyed_hash_of_the_pseudonym() -> None:
    from lib.ingest import pseudonym
    from lib.ingest import roster as roster_files

    ids = pd.Series(["OF2", "OF1", "OF2", "OF3"])
    want = cellkey.record_keys(np.array(["OF2", "OF1", "OF2", "OF3"], dtype=object), pseudonym.secret())
    assert roster_files.officer_keys(ids).tolist() == want.astype(np.int64).tolist()
    assert roster_files.with_officer_keys(pd.DataFrame({"officer_id": ids}))[training.OFFICER_KEY].tolist() \
        == want.tolist()


def test_a_demonstration_shows_the_training_page_with_published_officer_counts(fresh_caches, tmp_path) -> None:
    import json

    from streamlit.testing.v1 import AppTest

    from lib.ingest import pseudonym
    from lib.ingest import roster as roster_files

    from .conftest import ROOT

    fresh_caches.setenv("OSE_DEMO", "1")
    fresh_caches.delenv("OSE_AUTH_CONFIG", raising=False)
    fresh_caches.setenv("OSE_DATA_DIR", str(tmp_path / "var"))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180).run()
    at.switch_page("app_pages/training.py").run()
    assert not at.exception
    shown: dict[str, int] = {}
    for el in at.get("vega_lite_chart"):
        rows = [r for d in el.proto.datasets for r in pa.ipc.open_stream(d.data.data).read_all().to_pylist()]
        data = json.loads(el.proto.spec).get("data")
        rows += data.get("values", []) if isinstance(data, dict) else []
        shown.update({r["officer_role"]: r["officers"] for r in rows if "officer_role" in r and "share_compliant" in r})
    # What the viewer should see: the folder's roster (pseudonymised as the app reads it), officers keyed by the
    # installation's secret, each role's count perturbed by its officers' keys.
    tables = roster_files.read_folder(SAMPLE_DIR)
    officers = tables["officers"].assign(**{training.OFFICER_KEY: cellkey.record_keys(
        tables["officers"]["officer_id"].astype(str).to_numpy(dtype=object), pseudonym.secret()).astype(np.int64)})
    last = pd.read_parquet(SAMPLE_DIR / "reports.parquet", columns=["occurred_at"])["occurred_at"].max().date()
    per_officer = training.compliance(tables["training"], officers, last)
    want = training.summarise_compliance(per_officer, perturbed=True).set_index("officer_role")["officers"]
    exact = training.summarise_compliance(per_officer).set_index("officer_role")["officers"]
    assert shown and shown == {role: int(n) for role, n in want.items() if n >= 10}
    assert any(shown[role] != exact[role] for role in shown)
    assert any("cell key method" in c.value for c in at.caption)
