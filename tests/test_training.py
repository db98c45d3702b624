"""Tests for lib/analysis/training.py and the synthetic roster records: compliance, panel, DiD and event study."""
from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lib import synth
from lib.analysis import training

PLANTED = -0.09
BIG = 300_000
NULL_SEEDS = 40
NULL_REPORTS = 20_000


def panel_of(data: synth.Synthetic) -> pd.DataFrame:
    reports = data.reports.select(["officer_id", "occurred_at", "officer_injured", "officer_assaulted"]).to_pandas()
    return training.officer_months(reports, data.exposure.to_pandas(), data.officers.to_pandas())


@pytest.fixture(scope="module")
def big() -> synth.Synthetic:
    return synth.generate(BIG, seed=1)


@pytest.fixture(scope="module")
def big_panel(big: synth.Synthetic) -> pd.DataFrame:
    return panel_of(big)


# --- synthetic roster records -------------------------------------------------------------


def test_first_training_event_is_pst_trained_on(big: synth.Synthetic) -> None:
    events = big.training.to_pandas()
    officers = big.officers.to_pandas().set_index("officer_id")
    first = events.groupby("officer_id")["trained_on"].min()
    trained = officers["pst_trained_on"].dropna()
    assert set(first.index) == set(trained.index)
    assert (first.reindex(trained.index) == trained).all()
    assert set(events["hours"]) == {6.0, 12.0}
    assert set(events["course"].astype(str)) == {synth.PST_COURSE}
    assert (events.groupby("officer_id").size() > 1).mean() > 0.5  # refreshers


def test_exposure_covers_every_officer_month_and_no_reports_before_joining(big: synth.Synthetic,
                                                                           big_panel: pd.DataFrame) -> None:
    exposure = big.exposure.to_pandas()
    assert len(exposure) == big.officers.num_rows * big.effects["months"]
    worked = exposure.loc[exposure["shifts"] > 0, "shifts"]
    assert 14 < worked.mean() < 16 and 2.5 < worked.std() < 3.5
    assert 0 < (exposure["shifts"] == 0).mean() < 0.05  # joiners
    assert big.effects["training"]["joiners"] > 0
    assert not ((big_panel["shifts"].fillna(0) == 0) & (big_panel["reports"] > 0)).any()


def test_compliance_varies_by_role(big: synth.Synthetic) -> None:
    per_officer = training.compliance(big.training.to_pandas(), big.officers.to_pandas(), date(2025, 3, 31))
    by_role = training.summarise_compliance(per_officer).set_index("officer_role")["share_compliant"]
    assert by_role["Armed response"] > by_role["Response"] > by_role["Investigation"]
    by_team = training.summarise_compliance(per_officer, by=["officer_role", "team"])
    assert by_team["share_compliant"].std() > 0.1


def test_training_effect_is_recorded_and_validated(tmp_path: Path) -> None:
    assert big_effect(synth.generate(2_000, seed=2)) == PLANTED
    assert big_effect(synth.generate(2_000, seed=2, training_effect=0.0)) == 0.0
    with pytest.raises(ValueError, match="training_effect"):
        synth.generate(2_000, seed=2, training_effect=0.1)
    out = tmp_path / "out"
    assert synth.main(["--reports", "2000", "--seed", "4", "--out", str(out), "--training-effect", "0"]) == 0
    effects = json.loads((out / "effects.json").read_text())
    assert effects["training"]["effect_on_use_of_force"] == 0.0
    assert effects["training"]["measure"] == "reports per 1,000 officer-shifts"
    for name in ("training.parquet", "exposure.parquet"):
        assert (out / name).stat().st_size > 0


def big_effect(data: synth.Synthetic) -> float:
    return data.effects["training"]["effect_on_use_of_force"]


def test_roster_records_are_deterministic_and_leave_reports_alone() -> None:
    a, b = synth.generate(3_000, seed=5), synth.generate(3_000, seed=5)
    assert a.training.equals(b.training) and a.exposure.equals(b.exposure)
    assert not a.exposure.equals(synth.generate(3_000, seed=6).exposure)


# --- officer-month panel ------------------------------------------------------------------


def tiny_inputs() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    reports = pd.DataFrame({
        "officer_id": ["A", "A", "A", "B"],
        "occurred_at": pd.to_datetime(["2024-01-03 10:00", "2024-01-20 23:00", "2024-03-01 02:00",
                                       "2024-02-10 12:00"]),
        "officer_injured": pd.array([True, None, False, True], dtype="boolean"),
        "officer_assaulted": pd.array([False, False, True, None], dtype="boolean"),
    })
    exposure = pd.DataFrame({
        "officer_id": ["A", "A", "A", "B", "B", "B"],
        "month": [date(2024, 1, 1), date(2024, 2, 1), date(2024, 3, 1)] * 2,
        "shifts": [15, 14, 16, 0, 12, 13],
    })
    officers = pd.DataFrame({"officer_id": ["A", "B"], "officer_role": ["Response", "Custody"],
                             "team": ["T1", "T2"], "pst_trained_on": [date(2024, 2, 5), None]})
    return reports, exposure, officers


def test_officer_months_counts_by_hand() -> None:
    panel = training.officer_months(*tiny_inputs())
    assert list(panel["officer_id"]) == ["A", "A", "A", "B", "B", "B"]
    assert list(panel["reports"]) == [2, 0, 1, 0, 1, 0]
    assert list(panel["officer_injured"]) == [1, 0, 0, 0, 1, 0]
    assert list(panel["officer_assaulted"]) == [0, 0, 1, 0, 0, 0]
    assert list(panel["shifts"]) == [15, 14, 16, 0, 12, 13]
    assert list(panel["trained"]) == [False, False, True, False, False, False]
    assert panel["months_since_training"].tolist()[:3] == [-1, 0, 1]
    assert panel["months_since_training"].iloc[3:].isna().all()
    assert list(panel["officer_role"]) == ["Response"] * 3 + ["Custody"] * 3


# --- compliance ---------------------------------------------------------------------------


def test_compliance_by_hand() -> None:
    events = pd.DataFrame({
        "officer_id": ["A", "A", "B", "B", "C", "D"],
        "trained_on": [date(2023, 5, 1), date(2024, 1, 10), date(2023, 3, 31), date(2023, 9, 1),
                       date(2024, 2, 1), date(2024, 6, 1)],
        "course": ["Personal safety training"] * 5 + ["First aid"],
        "hours": [6.0, 6.0, 12.0, 6.0, 12.0, 8.0],
    })
    officers = pd.DataFrame({"officer_id": ["A", "B", "C", "D", "E"],
                             "officer_role": ["Response", "Response", "Custody", "Custody", "Custody"],
                             "team": ["T1", "T1", "T2", "T2", "T2"]})
    # As of 2024-03-31: A has 6 + 6 = 12, B's 12 hours fell out of the window (only 6 count),
    # C has 12, D's course comes later, E has none.
    per_officer = training.compliance(events, officers, date(2024, 3, 31))
    assert per_officer.set_index("officer_id")["hours"].to_dict() == {"A": 12, "B": 6, "C": 12, "D": 0, "E": 0}
    assert list(per_officer["compliant"]) == [True, False, True, False, False]
    assert per_officer.set_index("officer_id")["last_trained_on"]["B"] == date(2023, 9, 1)
    summary = training.summarise_compliance(per_officer).set_index("officer_role")
    assert summary.loc["Response", ["officers", "compliant"]].tolist() == [2, 1]
    assert summary.loc["Custody", "share_compliant"] == pytest.approx(1 / 3)
    late = training.overdue(per_officer)
    assert list(late["officer_id"]) == ["D", "E", "B"]
    assert list(late["shortfall"]) == [12, 12, 6]
    only_pst = training.compliance(events, officers, date(2024, 12, 31), standard_hours=8,
                                   courses=["Personal safety training"])
    assert only_pst.set_index("officer_id")["hours"].to_dict() == {"A": 6, "B": 0, "C": 12, "D": 0, "E": 0}


# --- the proof: planted effect recovered, no effect -> interval covers zero ---------------


def test_planted_effect_is_inside_the_interval(big: synth.Synthetic, big_panel: pd.DataFrame) -> None:
    result = training.difference_in_differences(big_panel)
    truth = big.effects["training"]["effect_on_use_of_force"]
    assert truth == PLANTED
    assert result["ci_low"] < truth < result["ci_high"]
    assert abs(result["estimate"] - truth) < 0.02
    assert result["ci_high"] - result["ci_low"] < 0.05
    assert result["officers_trained"] > 10_000 and result["officers_comparison"] > 10_000
    assert result["events"] > 0.9 * BIG
    assert set(result) >= {"measure", "estimate", "ci_low", "ci_high", "method", "officers_trained",
                           "officers_comparison", "events"}
    assert "fell by about" in training.reading(result)


@pytest.mark.slow
def test_no_effect_interval_covers_zero_in_about_95_percent_of_seeds() -> None:
    covered = []
    for seed in range(NULL_SEEDS):
        data = synth.generate(NULL_REPORTS, seed=100 + seed, training_effect=0.0)
        result = training.difference_in_differences(panel_of(data))
        covered.append(result["ci_low"] <= 0 <= result["ci_high"])
    assert np.mean(covered) >= 0.85


@pytest.mark.parametrize("measure", ["officer_injured", "officer_assaulted"])
def test_harm_measures_give_an_estimate(big_panel: pd.DataFrame, measure: str) -> None:
    result = training.difference_in_differences(big_panel, measure=measure)
    assert result["measure"] == measure
    assert result["ci_low"] < result["estimate"] < result["ci_high"]
    # Harm is drawn per report, so injuries and assaults per shift fall with use of force.
    assert result["ci_low"] < PLANTED < result["ci_high"]


def test_unknown_measure_is_refused(big_panel: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="measure"):
        training.difference_in_differences(big_panel, measure="tactics")


# --- event study --------------------------------------------------------------------------


def test_event_study_shape_and_flat_pre_period(big_panel: pd.DataFrame) -> None:
    study = training.event_study(big_panel, window=(-6, 12))
    assert list(study["months_since_training"]) == list(range(-6, 13))
    assert list(study.columns) == ["months_since_training", "estimate", "ci_low", "ci_high", "officers", "events"]
    reference = study.set_index("months_since_training").loc[-1]
    assert reference[["estimate", "ci_low", "ci_high"]].tolist() == [0.0, 0.0, 0.0]
    pre = study[study["months_since_training"] < -1]
    post = study[study["months_since_training"] > 0]
    assert (pre["estimate"].abs() < 0.05).all()
    assert (pre["ci_low"] < 0.03).all() and (pre["ci_high"] > -0.03).all()
    assert abs(post["estimate"].mean() - PLANTED) < 0.03
    assert (study["ci_low"] <= study["estimate"]).all() and (study["estimate"] <= study["ci_high"]).all()


# --- reading ------------------------------------------------------------------------------


def result_of(estimate: float | None, low: float | None, high: float | None, trained: int = 500) -> dict:
    return {"measure": "reports", "estimate": estimate, "ci_low": low, "ci_high": high,
            "officers_trained": trained}


@pytest.mark.parametrize(("result", "words"), [
    (result_of(-0.09, -0.12, -0.06), "Use of force per 1,000 officer-shifts fell by about 9% after training "
                                     "(95% interval -12% to -6%)"),
    (result_of(0.10, 0.04, 0.16), "rose by about 10%"),
    (result_of(-0.02, -0.08, 0.05), "No clear change"),
    (result_of(-0.05, -0.35, 0.30), "Too few officers to tell"),
    (result_of(-0.09, -0.12, -0.06, trained=12), "Too few officers to tell"),
    (result_of(None, None, None, trained=0), "Too few officers to tell"),
])
def test_reading(result: dict, words: str) -> None:
    assert words in training.reading(result)


def test_reading_names_the_harm_measure() -> None:
    text = training.reading({**result_of(-0.2, -0.3, -0.1), "measure": "officer_assaulted"})
    assert text.startswith("Assaults on officers per 1,000 officer-shifts fell by about 20%")


def test_too_few_officers_on_a_tiny_sample() -> None:
    data = synth.generate(600, seed=9)
    result = training.difference_in_differences(panel_of(data))
    assert training.reading(result).startswith("Too few officers to tell")


def test_engine_counts_build_the_same_panel_as_raw_reports(engine):
    import pandas as pd

    from lib.engine.query import UNRESTRICTED, Filters, Scope
    from lib.engine.store import SAMPLE_DIR

    ds = engine.open(SAMPLE_DIR)
    exposure = pd.read_parquet(SAMPLE_DIR / "exposure.parquet")
    officers = pd.read_parquet(SAMPLE_DIR / "officers.parquet")
    from_engine = training.panel_from_counts(training.officer_month_counts(engine, ds, Filters(), UNRESTRICTED),
                                             exposure, officers)
    from_rows = training.officer_months(pd.read_parquet(SAMPLE_DIR / "reports.parquet"), exposure, officers)
    assert from_engine["reports"].sum() == from_rows["reports"].sum() == 50_000
    assert from_engine["officer_injured"].sum() == from_rows["officer_injured"].sum()
    one = sorted(officers["force"].astype(str).unique())[0]
    scoped = training.scoped_roster({"officers": officers, "exposure": exposure}, Scope(forces=frozenset({one})))
    assert set(scoped["officers"]["force"].astype(str)) == {one}
    assert set(scoped["exposure"]["officer_id"]) <= set(scoped["officers"]["officer_id"])


# --- staggered roll-out: each cohort against officers not yet (or never) trained --------------

GROWTH_REPORTS = 30_000
GROWTH_SEEDS = range(20)  # chosen up front, never tuned
GROWING = {"training_effect": -0.3, "training_growth_months": 12}


def covered(result: dict, truth: float) -> bool:
    return result["ci_low"] <= truth <= result["ci_high"]


def test_staggered_effect_recovers_a_constant_effect_and_reads_plainly(big: synth.Synthetic,
                                                                       big_panel: pd.DataFrame) -> None:
    result = training.staggered_effect(big_panel)
    truth = big.effects["training"]["average_effect_on_trained"]
    assert truth == PLANTED  # a constant effect averages to itself
    assert covered(result, truth) and abs(result["estimate"] - truth) < 0.02
    assert 0 < result["minimum_detectable_effect"] < 0.05  # 300,000 reports can see a few per cent
    # The detectable effect is (1.96 + 0.84) standard errors on the log scale.
    se = (np.log1p(result["ci_high"]) - np.log1p(result["ci_low"])) / (2 * 1.959964)
    assert result["minimum_detectable_effect"] == pytest.approx(-np.expm1(-(1.959964 + 0.8416) * se), rel=1e-4)
    assert result["observed_events"] > 0.2 * BIG and result["expected_events"] > result["observed_events"]
    assert result["officers_trained"] > 10_000 and result["officers_comparison"] > 10_000
    assert result["verdict"] in {"fell", "doubtful"}
    profile = result["profile"]
    months = list(range(-training.PRE_TREND_MONTHS, training.PROFILE_MONTHS + 1))
    assert list(profile["months_since_training"]) == months
    after = profile[profile["months_since_training"] > 0]
    assert abs(after["estimate"].mean() - PLANTED) < 0.03
    assert (after["ci_low"] <= after["estimate"]).all() and (after["estimate"] <= after["ci_high"]).all()
    before = profile[profile["months_since_training"] < 0]
    assert (before["estimate"].abs() < 0.06).all()


def test_staggered_effect_finds_a_growing_effect_the_old_model_understates() -> None:
    data = synth.generate(100_000, seed=3, **GROWING)
    truth = data.effects["training"]["average_effect_on_trained"]
    panel = panel_of(data)
    new, old = training.staggered_effect(panel), training.difference_in_differences(panel)
    assert -0.3 < truth < -0.15
    assert covered(new, truth)
    assert old["estimate"] > new["estimate"]  # already-trained officers as controls pull it towards zero


def test_effects_put_the_two_way_estimate_beside_the_headline(big_panel: pd.DataFrame) -> None:
    found, profile = training.effects_and_profile(big_panel)
    assert set(found) == set(training.MEASURES)
    for result in found.values():
        assert "profile" not in result and set(result["twfe"]) == {"estimate", "ci_low", "ci_high"}
        assert result["method"] == training.STAGGERED_METHOD
    assert "older two-way fixed-effects model" in training.twfe_reading(found["reports"])
    assert list(profile.columns) == ["months_since_training", "estimate", "ci_low", "ci_high", "officers", "events"]


@pytest.mark.slow
def test_growing_effect_interval_covers_the_true_average_in_18_of_20_seeds() -> None:
    hits, old_hits, estimates, old_estimates, truths = 0, 0, [], [], []
    for seed in GROWTH_SEEDS:
        data = synth.generate(GROWTH_REPORTS, seed=seed, **GROWING)
        truth = data.effects["training"]["average_effect_on_trained"]
        panel = panel_of(data)
        new, old = training.staggered_effect(panel), training.difference_in_differences(panel)
        hits += covered(new, truth)
        old_hits += covered(old, truth)
        estimates.append(new["estimate"])
        old_estimates.append(old["estimate"])
        truths.append(truth)
    assert hits >= 18, (hits, np.mean(estimates), np.mean(truths))
    assert abs(np.mean(estimates) - np.mean(truths)) < 0.02
    # The two-way model is biased towards zero here: its mean is nearer zero than the truth by far.
    assert np.mean(old_estimates) - np.mean(truths) > 0.03 and old_hits < hits


@pytest.mark.slow
def test_constant_effect_interval_covers_it_in_18_of_20_seeds() -> None:
    hits, old_hits = 0, 0
    for seed in GROWTH_SEEDS:
        data = synth.generate(GROWTH_REPORTS, seed=seed)
        panel = panel_of(data)
        hits += covered(training.staggered_effect(panel), PLANTED)
        old_hits += covered(training.difference_in_differences(panel), PLANTED)
    assert hits >= 18 and old_hits >= 18


@pytest.mark.slow
def test_with_no_effect_the_pre_trend_test_and_the_verdict_fire_at_their_nominal_rates() -> None:
    pre_trend_fired, worked, detectable = 0, 0, []
    for seed in GROWTH_SEEDS:
        result = training.staggered_effect(panel_of(synth.generate(GROWTH_REPORTS, seed=seed, training_effect=0.0)))
        pre_trend_fired += result["pre_trend_p"] < training.PRE_TREND_ALPHA
        worked += result["verdict"] == "fell"
        detectable.append(result["minimum_detectable_effect"])
    # Nominal: 5% of 20 (1) for the pre-trend test, 2.5% (0.5) for "training worked"; 4 or 3 would
    # each happen by chance under 2% of the time.
    assert pre_trend_fired <= 3 and worked <= 2
    assert 0.04 < np.mean(detectable) < 0.15  # about 3,700 officers can see a change of a tenth, not of 2%


# --- verdicts and their words ---------------------------------------------------------------


def staggered_of(estimate: float, low: float, high: float, p: float | None = 0.5, mde: float | None = 0.07) -> dict:
    result = {**result_of(estimate, low, high), "pre_trend_p": p, "pre_trend_months": 6,
              "minimum_detectable_effect": mde}
    return {**result, "verdict": training.verdict(result)}


@pytest.mark.parametrize(("result", "verdict", "label"), [
    (staggered_of(-0.09, -0.12, -0.06), "fell", "Training worked"),
    (staggered_of(-0.09, -0.18, 0.01), "no_clear_change", "No clear change"),
    (staggered_of(-0.09, -0.12, -0.06, p=0.01), "doubtful", "Not clear the training did it"),
    (staggered_of(0.10, 0.04, 0.16), "rose", "Higher after training"),
    (staggered_of(-0.05, -0.35, 0.30), "too_few", "Too few officers to tell"),
    ({**result_of(None, None, None, trained=0), "verdict": "too_few"}, "too_few", "Too few officers to tell"),
])
def test_verdict_says_training_worked_only_when_the_whole_interval_is_a_fall(result: dict, verdict: str,
                                                                              label: str) -> None:
    assert result["verdict"] == verdict
    assert training.verdict_label(result) == label


def test_a_failed_pre_trend_test_is_a_warning_and_withholds_the_credit() -> None:
    failed = staggered_of(-0.09, -0.12, -0.06, p=0.01)
    assert training.pre_trend_reading(failed).startswith("Warning: in the 6 months before training")
    assert "cannot be credited to the training" in training.reading(failed)
    passed = staggered_of(-0.09, -0.12, -0.06, p=0.43)
    assert training.pre_trend_reading(passed) == ("Before training, trained officers' rates moved like the others' "
                                                  "(test of the 6 months before training: p = 0.43), as a fair "
                                                  "comparison needs.")
    assert "fell by about 9% after training" in training.reading(passed)


def test_detectable_effect_in_plain_words() -> None:
    assert training.detectable_reading(staggered_of(-0.09, -0.12, -0.06, mde=0.072)).startswith(
        "The data could detect a change of about 7% or more")
    assert training.detectable_reading(staggered_of(-0.09, -0.12, -0.06, mde=None)).startswith("Too few officers")


def test_tiny_sample_gives_no_verdict_and_no_overflow_warning() -> None:
    import warnings

    data = synth.generate(600, seed=9)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        panel = panel_of(data)
        result = training.staggered_effect(panel)
        old = training.difference_in_differences(panel)
        study = training.event_study(panel)
    assert result["verdict"] == "too_few" and training.verdict_label(result) == "Too few officers to tell"
    assert training.reading(old).startswith("Too few officers to tell") and len(study)


def test_teams_of_equal_share_are_listed_the_same_way_on_every_machine() -> None:
    # An unstable sort ordered ties by the processor's sort routine; the page lists the 15 lowest shares.
    rng = np.random.default_rng(3)
    names = [f"Team {i:02d}" for i in range(40)]
    summary = pd.DataFrame({"team": names, "officers": rng.integers(5, 30, 40), "share_compliant": 0.0})
    summary.loc[::3, "share_compliant"] = 0.25
    shown = training.lowest_shares(summary.sample(frac=1, random_state=1), "team")
    assert len(shown) == 15 and (shown["officers"] >= training.MIN_TEAM).all()
    assert (shown["share_compliant"] == 0.0).all()  # the lowest share first
    expected = summary[(summary["officers"] >= training.MIN_TEAM) & (summary["share_compliant"] == 0.0)]
    expected = expected.sort_values(["officers", "team"], ascending=[False, True]).head(15)
    assert shown["team"].tolist() == expected["team"].tolist()  # larger teams first, then by name
    again = training.lowest_shares(summary.sample(frac=1, random_state=2), "team")
    assert again["team"].tolist() == shown["team"].tolist()
