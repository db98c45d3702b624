"""Tests for lib/synth/generator.py: determinism, schema conformance, calibration and planted effects."""
from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lib import synth
from lib.model.schema import (
    CED_LADDER,
    HARM_FIELDS,
    LIST_VOCABULARIES,
    OFFICER_COLUMNS,
    OFFICER_ROLES,
    REPORT_COLUMNS,
    REPORT_VOCABULARIES,
    TACTIC_COLUMNS,
    TACTIC_GROUP_OF,
    TACTIC_GROUPS,
    TACTICS,
    derive_shift,
)

from .killing import kill_when, temporaries, temporary_holds, truncated_parquet

LIST_COLUMNS = list(LIST_VOCABULARIES)
BIG = 300_000


@pytest.fixture(scope="module")
def big() -> synth.Synthetic:
    return synth.generate(BIG, seed=11)


@pytest.fixture(scope="module")
def big_reports(big: synth.Synthetic) -> pd.DataFrame:
    return big.reports.drop_columns(LIST_COLUMNS).to_pandas()


@pytest.fixture(scope="module")
def big_tactics(big: synth.Synthetic) -> pd.DataFrame:
    return big.tactics.to_pandas()


@pytest.fixture(scope="module")
def small_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    synth.write(synth.generate(5_000, seed=3), out)
    return out


def share_of_reports(tactics: pd.DataFrame, n: int, column: str, values: list[str]) -> float:
    return tactics.loc[tactics[column].isin(values), "report_id"].nunique() / n


# --- determinism --------------------------------------------------------------------------


def test_same_seed_gives_identical_tables_and_bytes(tmp_path: Path) -> None:
    a, b = synth.generate(3_000, seed=5), synth.generate(3_000, seed=5)
    for name in ("reports", "tactics", "officers"):
        assert getattr(a, name).equals(getattr(b, name), check_metadata=True)
    assert a.effects == b.effects
    synth.write(a, tmp_path / "a")
    synth.write(b, tmp_path / "b")
    for name in ("reports.parquet", "tactics.parquet", "officers.parquet", "effects.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_different_seeds_differ() -> None:
    a, b = synth.generate(3_000, seed=5), synth.generate(3_000, seed=6)
    assert not a.reports.equals(b.reports)
    assert not a.tactics.equals(b.tactics)


# --- schema conformance -------------------------------------------------------------------


def test_written_reports_have_canonical_columns_and_dtypes(small_dir: Path) -> None:
    df = pd.read_parquet(small_dir / "reports.parquet")
    assert list(df.columns) == list(REPORT_COLUMNS)
    assert len(df) == 5_000
    for column, kind in REPORT_COLUMNS.items():
        dtype = df[column].dtype
        if kind == "category":
            assert isinstance(dtype, pd.CategoricalDtype), column
            if column in REPORT_VOCABULARIES:
                assert list(dtype.categories) == list(REPORT_VOCABULARIES[column]), column
        elif kind == "bool":
            assert dtype == "boolean", column
        elif kind == "float":
            assert dtype == "float64", column
        elif kind == "timestamp":
            assert pd.api.types.is_datetime64_dtype(dtype), column
        elif kind == "string":
            assert pd.api.types.is_string_dtype(dtype), column
    schema = pq.read_schema(small_dir / "reports.parquet")
    for column in LIST_COLUMNS:
        assert schema.field(column).type == pa.list_(pa.string()), column
    for column in ("force", "area", "team", *REPORT_VOCABULARIES):
        assert pa.types.is_dictionary(schema.field(column).type), column


def test_written_tactics_and_officers_have_canonical_columns(small_dir: Path) -> None:
    tactics = pd.read_parquet(small_dir / "tactics.parquet")
    assert list(tactics.columns) == list(TACTIC_COLUMNS)
    assert list(tactics["tactic"].cat.categories) == list(TACTICS)
    assert tactics["effective"].dtype == "boolean"
    officers = pd.read_parquet(small_dir / "officers.parquet")
    assert list(officers.columns) == list(OFFICER_COLUMNS)
    assert list(officers["officer_role"].cat.categories) == list(OFFICER_ROLES)
    assert officers["officer_id"].is_unique
    schema = pq.read_schema(small_dir / "officers.parquet")
    assert schema.field("pst_trained_on").type == pa.date32()


def test_ids_have_the_documented_shapes(small_dir: Path) -> None:
    df = pd.read_parquet(small_dir / "reports.parquet", columns=["report_id", "incident_id",
                                                                  "officer_id", "occurred_at"])
    assert df["report_id"].str.fullmatch(r"R\d{8}").all()
    assert df["report_id"].is_unique
    assert df["incident_id"].str.fullmatch(r"I\d{8}").all()
    assert df["officer_id"].str.fullmatch(r"OF\d{6}").all()
    assert df["occurred_at"].is_monotonic_increasing
    assert df["report_id"].is_monotonic_increasing  # ids follow time order


def test_values_come_from_the_vocabularies(big: synth.Synthetic,
                                           big_tactics: pd.DataFrame) -> None:
    for column, vocab in LIST_VOCABULARIES.items():
        values = pc.list_flatten(big.reports.column(column)).unique().to_pylist()
        assert set(values) <= set(vocab), column
        lengths = pc.list_value_length(big.reports.column(column)).to_numpy()
        assert lengths.min() >= 1 and lengths.max() <= synth.MAX_LIST_ITEMS, column
    assert set(big_tactics["tactic"].astype(str)) <= set(TACTICS)
    assert "Tactical communication" not in set(big_tactics["tactic"].astype(str))
    expected_group = big_tactics["tactic"].astype(str).map(TACTIC_GROUP_OF)
    assert (big_tactics["tactic_group"].astype(str) == expected_group).all()


def test_at_most_one_ced_tactic_per_report(big_tactics: pd.DataFrame) -> None:
    ced = big_tactics[big_tactics["tactic"].isin(CED_LADDER)]
    assert len(ced) > 0
    assert ced["report_id"].is_unique


def test_tactics_reference_reports_and_reports_reference_roster(
        big: synth.Synthetic, big_reports: pd.DataFrame, big_tactics: pd.DataFrame) -> None:
    assert set(big_tactics["report_id"]) <= set(big_reports["report_id"])
    roster = big.officers.to_pandas().set_index("officer_id")
    assert set(big_reports["officer_id"]) <= set(roster.index)
    joined = big_reports.merge(roster, left_on="officer_id", right_index=True,
                               suffixes=("", "_roster"))
    for column in ("force", "area", "officer_role"):
        assert (joined[column].astype(str) == joined[f"{column}_roster"].astype(str)).all()
    team_known = joined["team"].notna()
    assert (joined.loc[team_known, "team"].astype(str)
            == joined.loc[team_known, "team_roster"].astype(str)).all()


def test_organisation_is_realistic(big: synth.Synthetic, big_reports: pd.DataFrame) -> None:
    officers = big.officers.to_pandas()
    assert officers["force"].nunique() == 43
    assert {"Metropolitan Police", "City of London Police", "Dyfed-Powys Police"} <= set(
        officers["force"].astype(str))
    met = (big_reports["force"] == "Metropolitan Police").mean()
    assert 0.2 < met < 0.3
    areas = officers.groupby("force", observed=True)["area"].nunique()
    assert areas.min() >= 2 and areas.max() <= 12
    assert (officers.groupby("team", observed=True)["officer_role"].nunique() == 1).all()
    assert officers["length_of_service_years"].between(0.1, 35).all()
    assert officers["length_of_service_years"].median() < 10  # skewed young
    trained = officers["pst_trained_on"].notna().mean()
    assert 0.55 < trained < 0.65
    # About 1.35 reports per incident, officers at one incident share force and area.
    assert 1.25 < len(big_reports) / big_reports["incident_id"].nunique() < 1.45
    per_incident = big_reports.groupby("incident_id", observed=True)["area"].nunique()
    assert (per_incident == 1).all()


def test_injury_levels_follow_injury_answers(big_reports: pd.DataFrame) -> None:
    for flag, level in (("officer_injured", "officer_injury_level"),
                        ("subject_injured", "subject_injury_level")):
        injured = big_reports[flag].fillna(False).astype(bool)
        assert big_reports.loc[injured, level].notna().all()
        assert big_reports.loc[~injured, level].isna().all()
    levels = big_reports["officer_injury_level"].value_counts(normalize=True)
    assert 0.92 < levels["Minor"] < 0.98


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(reports=st.integers(1, 3_000), seed=st.integers(0, 2**32 - 1),
       months=st.integers(1, 36))
def test_any_size_gives_exact_count_and_valid_rows(reports: int, seed: int, months: int) -> None:
    s = synth.generate(reports, seed, months=months)
    assert s.reports.num_rows == reports
    start = pd.Timestamp(synth.DEFAULT_START)
    times = s.reports.column("occurred_at").to_pandas()
    assert times.min() >= start and times.max() < start + pd.DateOffset(months=months)
    ced = s.tactics.filter(pc.is_in(s.tactics.column("tactic").cast(pa.string()),
                                    pa.array(list(CED_LADDER))))
    assert len(set(ced.column("report_id").to_pylist())) == ced.num_rows


def test_rejects_no_reports() -> None:
    with pytest.raises(ValueError):
        synth.generate(0, seed=1)


# --- calibration --------------------------------------------------------------------------


def test_harm_marginals_match_national_figures(big_reports: pd.DataFrame) -> None:
    assert 0.04 <= big_reports["officer_injured"].mean() <= 0.06
    assert 0.02 <= big_reports["officer_assaulted"].mean() <= 0.03
    assert 0.045 <= big_reports["subject_injured"].mean() <= 0.065
    both = big_reports[["officer_injured", "officer_assaulted"]].dropna().astype(bool)
    assert both.loc[both["officer_assaulted"], "officer_injured"].mean() > 0.5
    assert not both["officer_injured"].equals(both["officer_assaulted"])


def test_tactic_marginals_match_national_figures(big_reports: pd.DataFrame,
                                                 big_tactics: pd.DataFrame) -> None:
    n = len(big_reports)
    restraint = share_of_reports(big_tactics, n, "tactic_group", ["Restraint"])
    assert 0.74 <= restraint <= 0.82
    per_tactic = big_tactics.groupby("tactic", observed=True)["report_id"].nunique()
    handcuffing = list(TACTIC_GROUPS["Restraint"][:2])
    assert per_tactic.idxmax() in handcuffing
    assert share_of_reports(big_tactics, n, "tactic", handcuffing) > per_tactic.drop(
        handcuffing).max() / n
    assert 0.05 <= share_of_reports(big_tactics, n, "tactic_group", ["Less lethal weapons"]) <= 0.07
    assert 0.05 <= share_of_reports(big_tactics, n, "tactic", list(CED_LADDER)) <= 0.07
    assert 0.005 <= share_of_reports(big_tactics, n, "tactic", ["CED fired"]) <= 0.015
    firearms = big_tactics[big_tactics["tactic_group"] == "Firearms"]
    assert 0 < firearms["report_id"].nunique() / n < 0.005
    assert (firearms["tactic"] == "Firearm aimed").mean() > 0.9
    armed = big_reports.set_index("report_id").loc[firearms["report_id"], "officer_role"]
    assert (armed == "Armed response").mean() > 0.8
    assert 0.21 <= share_of_reports(big_tactics, n, "tactic", ["Unarmed skills"]) <= 0.29
    assert 0.16 <= share_of_reports(big_tactics, n, "tactic", ["Ground restraint"]) <= 0.24
    assert 0.07 <= share_of_reports(big_tactics, n, "tactic", ["Limb/body restraints"]) <= 0.13
    effective = big_tactics["effective"].value_counts(normalize=True, dropna=False)
    assert 0.82 < effective[True] < 0.88 and 0.03 < big_tactics["effective"].isna().mean() < 0.07


def test_subjects_and_context_are_realistic(big: synth.Synthetic,
                                            big_reports: pd.DataFrame) -> None:
    assert big_reports["subject_age_band"].value_counts().idxmax() == "18-34"
    assert 0.82 < (big_reports["subject_gender"] == "Male").sum() / big_reports[
        "subject_gender"].notna().sum() < 0.88
    ethnicity = big_reports["subject_ethnicity"].value_counts(normalize=True)
    assert 0.65 < ethnicity["White"] < 0.75 and 0.12 < ethnicity["Black (or Black British)"] < 0.18
    assert 0.27 < big_reports["single_crewed"].mean() < 0.33
    assert 0.30 < big_reports["ced_trained"].mean() < 0.40
    armed = big_reports[big_reports["officer_role"] == "Armed response"]
    assert armed["ced_trained"].dropna().all()
    custody = big_reports[big_reports["officer_role"] == "Custody"]
    assert custody["location_type"].value_counts(normalize=True).idxmax() == "Custody block"
    assert big_reports["location_type"].value_counts().idxmax() == "Street/highway"
    outcomes = pc.list_flatten(big.reports.column("outcomes")).to_pandas()
    assert 0.65 < (outcomes == "Arrested").sum() / len(big_reports) < 0.75


def test_unanswered_fields_are_null_at_the_specified_rates(big_reports: pd.DataFrame) -> None:
    for column, share in synth.NULL_SHARE.items():
        observed = big_reports[column].isna().mean()
        assert abs(observed - share) < 0.01, column
    assert big_reports["area"].notna().all()


def test_time_pattern(big_reports: pd.DataFrame) -> None:
    t = big_reports["occurred_at"]
    hour = t.dt.hour.value_counts(normalize=True)
    assert hour[[5, 6, 7]].max() < hour[[21, 22, 23, 0, 1]].min()
    dow = t.dt.day_of_week.value_counts()
    assert min(dow[4], dow[5]) > dow[[0, 1, 2, 3]].max()
    month = t.dt.month.value_counts()
    assert month[[6, 7, 8]].sum() > month[[12, 1, 2]].sum()
    weekend_night = (t.dt.day_of_week.isin([5, 6])) & (t.dt.hour < 3)
    weekday_night = (t.dt.day_of_week.isin([1, 2])) & (t.dt.hour < 3)
    assert weekend_night.sum() > 1.3 * weekday_night.sum()


def test_shift_is_derived_from_time(big_reports: pd.DataFrame) -> None:
    derived = derive_shift(big_reports["occurred_at"])
    assert (big_reports["shift"].astype(str) == derived.astype(str)).all()


# --- planted effects ----------------------------------------------------------------------


def test_effects_record_planted_and_expected_ratios(big: synth.Synthetic) -> None:
    effects = big.effects
    for field in HARM_FIELDS:
        block = effects[field]
        assert 0 < block["baseline"] < 0.05
        for kind in ("rate_ratio", "expected_marginal_rate_ratio"):
            assert block[kind]["shift"]["reference"] == "Early"
            assert block[kind]["officer_role"]["reference"] == "Neighbourhood"
            assert set(block[kind]["officer_role"]["ratios"]) == set(OFFICER_ROLES) - {
                "Neighbourhood"}
            assert set(block[kind]["single_crewed"]["ratios"]) == {"True"}
    planted = effects["officer_injured"]["rate_ratio"]["shift"]["ratios"]
    assert planted == {"Late": 1.2, "Night": 1.6}
    for field in ("officer_injured", "officer_assaulted"):
        expected = effects[field]["expected_marginal_rate_ratio"]["shift"]["ratios"]
        assert abs(expected["Night"] - 1.6) < 0.05
        assert abs(expected["Late"] - 1.2) < 0.05
    assert effects["training"]["effect_on_use_of_force"] == -0.09
    assert {"officer_injured", "officer_assaulted", "subject_injured", "restraint",
            "handcuffing", "ced", "firearms"} <= set(effects["national_marginals"])
    assert {"seed", "reports", "start", "months", "generator_version"} <= set(effects)


def test_observed_shift_ratio_is_near_the_expected_one(big: synth.Synthetic,
                                                       big_reports: pd.DataFrame) -> None:
    rate = big_reports.groupby("shift", observed=True)["officer_injured"].mean()
    expected = big.effects["officer_injured"]["expected_marginal_rate_ratio"]["shift"]["ratios"]
    assert abs(rate["Night"] / rate["Early"] - expected["Night"]) < 0.2


def test_outlier_teams_stand_out(big: synth.Synthetic, big_reports: pd.DataFrame) -> None:
    outliers = big.effects["outlier_teams"]
    assert len(outliers) == 4
    national = big_reports["officer_injured"].mean()
    team_counts = big_reports["team"].value_counts()
    for team in outliers:
        rows = big_reports[big_reports["team"] == team["team"]]
        assert team["multiplier"] == 3.0
        assert team["reports"] == len(rows)
        assert rows["force"].astype(str).eq(team["force"]).all()
        assert rows["area"].astype(str).eq(team["area"]).all()
        assert rows["officer_injured"].mean() >= 2 * national
        assert team_counts[team["team"]] >= team_counts.iloc[40]  # among the busiest teams


def test_training_reduces_use_of_force_by_about_nine_percent(
        big: synth.Synthetic, big_reports: pd.DataFrame) -> None:
    # Difference in differences: trained officers' reports before and after their training,
    # each against what untrained officers' same-day rate predicts.
    officers = big.officers.to_pandas()
    start = pd.Timestamp(big.effects["start"])
    days = (start + pd.DateOffset(months=big.effects["months"]) - start).days
    trained_day = (pd.to_datetime(officers.set_index("officer_id")["pst_trained_on"])
                   - start).dt.days
    day = (big_reports["occurred_at"] - start).dt.days.to_numpy()
    officer_day = trained_day.reindex(big_reports["officer_id"]).to_numpy()
    untrained = np.isnan(officer_day)
    per_officer_day = np.bincount(day[untrained], minlength=days) / trained_day.isna().sum()
    cumulative = np.concatenate([[0.0], np.cumsum(per_officer_day)])
    cut = trained_day.dropna().to_numpy(dtype=np.int64) + 1
    expected_before = cumulative[cut].sum()
    expected_after = (cumulative[-1] - cumulative[cut]).sum()
    after = day[~untrained] > officer_day[~untrained]
    ratio = (after.sum() / expected_after) / ((~after).sum() / expected_before)
    assert 0.8 < ratio < 1.0


def test_growing_training_effect_is_planted_and_its_average_recorded() -> None:
    constant = synth.generate(8_000, seed=7, training_effect=-0.3)
    # growth 1 is full from the training month: the same float thinning, so the same bytes.
    assert synth.generate(8_000, seed=7, training_effect=-0.3, training_growth_months=1).reports.equals(
        constant.reports)
    assert synth.generate(8_000, seed=7).effects["training"]["growth_months"] == 0
    growing = synth.generate(8_000, seed=7, training_effect=-0.3, training_growth_months=12)
    assert not growing.reports.equals(constant.reports)
    recorded = growing.effects["training"]
    assert recorded["growth_months"] == 12 and "min(1, (m + 1) / 12)" in recorded["effect_shape"]
    # Months 1..10 after training get 2/12..11/12 of the effect, later ones all of it.
    assert -0.3 < recorded["average_effect_on_trained"] < -0.3 * 2 / 12
    assert constant.effects["training"]["average_effect_on_trained"] == -0.3
    with pytest.raises(ValueError, match="training_growth_months"):
        synth.generate(1_000, seed=1, training_growth_months=-1)


def test_growing_effect_thins_later_months_more() -> None:
    data = synth.generate(200_000, seed=8, training_effect=-0.5, training_growth_months=12)
    reports = data.reports.select(["officer_id", "occurred_at"]).to_pandas()
    officers = data.officers.to_pandas()
    first = pd.Timestamp(data.effects["start"]).to_period("M").ordinal
    trained_month = (pd.to_datetime(officers["pst_trained_on"]).dt.to_period("M")
                     .map(lambda p: p.ordinal if pd.notna(p) else np.nan).to_numpy(dtype=float) - first)
    by_officer = pd.Series(trained_month, index=officers["officer_id"])
    month = reports["occurred_at"].dt.to_period("M").map(lambda p: p.ordinal).to_numpy() - first
    report_trained = by_officer.reindex(reports["officer_id"]).to_numpy()
    never = np.isnan(report_trained)
    months = data.effects["months"]
    # Never-trained officers' reports per officer in each calendar month: the untrained rate.
    untrained_rate = np.bincount(month[never], minlength=months) / np.isnan(trained_month).sum()

    def relative(low: int, high: int) -> float:
        """Trained officers' reports low..high months after training, against the untrained rate."""
        since = month - report_trained
        observed = ((since >= low) & (since <= high)).sum()
        grid = np.arange(months)[None, :] - trained_month[~np.isnan(trained_month)][:, None]
        inside = (grid >= low) & (grid <= high)
        expected = (untrained_rate[None, :] * inside).sum()
        return observed / expected

    early, late = relative(1, 2), relative(12, months)
    # Planted: 2/12 to 3/12 of a 50% fall early on, all of it from month 11.
    assert 0.85 < early < 1.0 and 0.4 < late < 0.6, (early, late)


# --- command line -------------------------------------------------------------------------


def test_cli_writes_all_four_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code = synth.main(["--reports", "2000", "--seed", "4", "--out", str(out),
                       "--start", "2024-01-01", "--months", "6"])
    assert code == 0
    for name in ("reports.parquet", "tactics.parquet", "officers.parquet", "effects.json"):
        assert (out / name).stat().st_size > 0
    effects = json.loads((out / "effects.json").read_text())
    assert effects["seed"] == 4 and effects["reports"] == 2000
    assert effects["start"] == "2024-01-01" and effects["months"] == 6
    assert "2,000 reports" in capsys.readouterr().out
    grown = tmp_path / "grown"
    assert synth.main(["--reports", "2000", "--seed", "4", "--out", str(grown), "--training-effect", "-0.2",
                       "--training-growth-months", "6"]) == 0
    assert json.loads((grown / "effects.json").read_text())["training"]["growth_months"] == 6
    times = pd.read_parquet(out / "reports.parquet", columns=["occurred_at"])["occurred_at"]
    assert times.min() >= pd.Timestamp("2024-01-01")
    assert times.max() < pd.Timestamp("2024-07-01")


# --- a run stopped part-way ------------------------------------------------------------------

KILL_REPORTS = 300_000  # large enough that writing reports.parquet takes many polls


def _kill_points(out: Path) -> dict[str, Callable[[], bool]]:
    """Points in a `python -m lib.synth` run at which to kill it: each file begun, then the folder shown."""
    points: dict[str, Callable[[], bool]] = {"temporary folder made": lambda: bool(temporaries(out))}
    for name in (*synth.generator.TABLES, synth.generator.EFFECTS):
        points[f"{name} begun"] = temporary_holds(out, name if "." in name else f"{name}.parquet")
    points["folder in place"] = out.exists
    return points


@pytest.mark.slow
def test_killed_generator_leaves_no_dataset_or_a_whole_one(tmp_path: Path) -> None:
    out = tmp_path / "synth"
    outcomes = {}
    for point, ready in _kill_points(out).items():
        how = kill_when(["lib.synth", "--reports", str(KILL_REPORTS), "--seed", "1", "--out", str(out)], ready)
        mid_write = any(truncated_parquet(tmp) for tmp in temporaries(out))
        # Never a truncated Parquet under the final name: the folder is absent or every file reads whole.
        assert not out.exists() or synth.is_written(out), (point, sorted(p.name for p in out.iterdir()))
        outcomes[point] = (how, "whole" if out.exists() else "absent", "mid-write" if mid_write else "")
        if out.exists():
            assert pq.read_metadata(out / "reports.parquet").num_rows == KILL_REPORTS
            shutil.rmtree(out)
    print("kill -9 of python -m lib.synth:", outcomes)
    assert outcomes["reports begun"][:2] == ("killed", "absent"), outcomes
    assert outcomes["folder in place"][1] == "whole", outcomes  # killed, or (rarely) done just before
    # The next run removes the dead runs' temporaries and writes the folder whole.
    synth.write(synth.generate(2_000, seed=1), out)
    assert synth.is_written(out) and temporaries(out) == []


def test_bench_cache_rebuilds_a_folder_that_is_not_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bench import run

    monkeypatch.setattr(run, "CACHE", tmp_path)
    stale = tmp_path / "synth-2000"
    synth.write(synth.generate(2_000, seed=1), stale)
    whole = (stale / "reports.parquet").read_bytes()
    # What a generator stopped part-way left before writes were atomic: a reports.parquet cut short.
    (stale / "reports.parquet").write_bytes(whole[: len(whole) // 2])
    assert not synth.is_written(stale)
    assert run.dataset(2_000) == stale
    assert synth.is_written(stale) and (stale / "reports.parquet").read_bytes() == whole
    before = (stale / "reports.parquet").stat().st_mtime_ns
    run.dataset(2_000)  # a whole folder is used as it is
    assert (stale / "reports.parquet").stat().st_mtime_ns == before
