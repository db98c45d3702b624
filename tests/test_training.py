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
