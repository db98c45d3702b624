"""Risk analytics recover the effects planted in synthetic data, and flag nothing extra by chance."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lib import synth
from lib.analysis import adjust, risk, stats
from lib.engine.query import UNRESTRICTED, Filters, Scope
from lib.present import charts, tables

ALL = Filters()


@pytest.fixture(scope="module")
def planted(engine):
    data = synth.generate(400_000, seed=11)
    ds = engine.add("planted", data.reports, data.tactics, data.officers, key="risk00000011")
    return ds, data.effects


@pytest.mark.parametrize("measure", ["officer_injured", "officer_assaulted"])
@pytest.mark.parametrize(("dimension", "reference", "group"), [
    ("shift", "Early", "Night"), ("shift", "Early", "Late"),
    ("officer_role", "Neighbourhood", "Response"), ("officer_role", "Neighbourhood", "Public order"),
])
def test_planted_rate_ratios_lie_inside_the_95_percent_interval(engine, planted, measure, dimension, reference, group):
    ds, effects = planted
    truth = effects[measure]["expected_marginal_rate_ratio"][dimension]["ratios"][group]
    found = risk.rate_ratios(engine, ds, ALL, UNRESTRICTED, measure, dimension, reference).set_index("group")
    row = found.loc[group]
    assert row["reference"] == reference
    assert row["ci_low"] <= truth <= row["ci_high"], (truth, row["ratio"], row["ci_low"], row["ci_high"])
    assert row["ci_low"] > 1  # each planted effect is a real rise, and the interval says so


def test_planted_outlier_teams_are_above_the_upper_limit(engine, planted):
    ds, effects = planted
    points, limits = risk.funnel(engine, ds, ALL, UNRESTRICTED, "officer_injured", "team")
    flagged = set(risk.outliers(points)["group"])
    planted_teams = {t["team"] for t in effects["outlier_teams"]}
    assert planted_teams <= flagged
    # Chance alone flags few of the other teams (99.8% limits, over a thousand teams).
    assert len(flagged - planted_teams) <= 0.01 * len(points)
    assert {"low_95", "high_95", "low_998", "high_998", "overall"} <= set(limits.columns)


def test_with_no_effects_about_one_in_a_thousand_groups_is_flagged():
    rng = np.random.default_rng(3)
    p, flagged, groups = 0.05, 0, 0
    for _ in range(20):
        n = rng.integers(50, 3000, size=500)
        x = rng.binomial(n, p)
        flags = stats.flag_outliers(x, n, level=0.998, overall=p)
        flagged += int((flags["flag"] == stats.HIGHER).sum())
        groups += len(n)
    assert flagged / groups < 0.003  # nominal 0.1% above the upper limit


def test_intervals_cover_the_planted_ratio_about_95_percent_of_the_time(engine):
    """Rate-ratio intervals cover the truth in about 95% of repeated draws."""
    rng = np.random.default_rng(7)
    p0, ratio, hits, trials = 0.04, 1.6, 0, 400
    for _ in range(trials):
        x1, x0 = rng.binomial(5000, p0 * ratio), rng.binomial(8000, p0)
        r = stats.rate_ratio(x1, 5000, x0, 8000)
        hits += float(r.low) <= ratio <= float(r.high)
    assert 0.92 <= hits / trials <= 0.98


def test_rate_grid_greys_thin_cells_and_keeps_counts(engine, small):
    grid = risk.rate_grid(engine, small, ALL, UNRESTRICTED, "officer_injured", "officer_role", "shift")
    night_response = grid[(grid["officer_role"] == "Response") & (grid["shift"] == "Night")].iloc[0]
    assert (night_response["yes"], night_response["answered"]) == (2, 2)  # R04 and R08
    assert night_response["per_100"] == 100.0
    assert not grid["enough"].any()  # ten reports: every cell too thin to colour
    assert grid["reports"].sum() == 10


def test_scope_applies_to_ratios_and_funnels(engine, small):
    south = Scope(forces=frozenset({"Southshire Police"}))
    ratios = risk.rate_ratios(engine, small, ALL, south, "officer_injured", "shift")
    assert ratios["answered"].sum() == 5
    points, _ = risk.funnel(engine, small, ALL, south, "officer_injured", "area")
    assert set(points["group"]) == {"East", "West"}


def test_funnel_sentence_never_ranks_and_says_what_chance_alone_would_flag():
    points = pd.DataFrame({"flag": [stats.HIGHER, stats.AVERAGE, stats.AVERAGE, stats.LOWER, stats.TOO_FEW],
                           "judged": [True, True, True, True, False]})
    assert risk.funnel_sentence(points, "team") == (
        "Of 5 teams, 4 have at least 30 answering reports and are judged: 1 is higher than expected (above the 99.8% "
        "limit, with a false discovery rate under 5%), 1 lower than expected, and 2 not distinguishable from the "
        "average; 1 has too few reports to judge and is drawn in light grey. By chance alone, about 0.004 of the 4 "
        "judged teams would lie above the 99.8% limit.")


@pytest.mark.parametrize(("value", "text"), [(0.0, "0"), (0.04, "0.04"), (0.2, "0.2"), (0.84, "0.8"), (1.0, "1"),
                                             (1.52, "1.5"), (12.4, "12"), (1234.0, "1,234")])
def test_expected_by_chance_is_rounded_as_said(value, text):
    assert risk.about(value) == text


def test_method_note_says_when_overdispersion_was_applied():
    verdicts = stats.judge_funnel(np.array([1000] * 9 + [3000]), np.full(10, 20_000))
    limits = risk.funnel_curves(verdicts, np.array([10.0, 100.0]))
    note = risk.funnel_method(limits)
    assert note.startswith("Crude rates") and "not judged" in note
    assert ("Overdispersion applied" in note) == verdicts.applied
    plain = risk.funnel_curves(stats.judge_funnel(np.array([50] * 20), np.full(20, 1000)), np.array([10.0]))
    assert "No overdispersion beyond chance" in risk.funnel_method(plain)


# --- null calibration and planted outliers on synthetic data -------------------------------------------------------

SEEDS = range(20)
CALIBRATION_REPORTS = 100_000  # about 1,650 teams a dataset, half of them with 30 or more answered reports
STRATA = ["officer_role", "shift", "single_crewed", "resistance"]


def _teams(reports: pd.DataFrame, injured: np.ndarray) -> pd.DataFrame:
    """Injured and answered reports per team, and the count expected from the case mix (role, shift, ...)."""
    frame = reports.assign(injured=injured).dropna(subset=["team", "injured"])
    frame["injured"] = frame["injured"].astype(float)
    frame["p"] = frame.groupby(STRATA, observed=True, dropna=False)["injured"].transform("mean")
    teams = frame.groupby("team", observed=True).agg(yes=("injured", "sum"), answered=("injured", "size"),
                                                     model=("p", "sum"))
    return teams[teams["answered"] > 0]


@pytest.fixture(scope="module")
def calibration():
    runs = []
    for seed in SEEDS:
        data = synth.generate(CALIBRATION_REPORTS, seed=seed)
        reports = data.reports.select(["team", "officer_injured", *STRATA]).to_pandas()
        injured = reports["officer_injured"].to_numpy(dtype=object)
        answered = ~pd.isna(injured)
        permuted = injured.copy()
        permuted[answered] = np.random.default_rng(1000 + seed).permutation(injured[answered])
        null, real = _teams(reports, permuted), _teams(reports, injured)
        runs.append({
            "seed": seed, "null": null, "real": real, "planted": {t["team"] for t in data.effects["outlier_teams"]},
            "null_crude": stats.judge_funnel(null["yes"], null["answered"]),
            "null_adjusted": stats.judge_funnel(null["yes"], null["answered"], expected=null["model"]),
            "crude": stats.judge_funnel(real["yes"], real["answered"]),
            "adjusted": stats.judge_funnel(real["yes"], real["answered"], expected=real["model"]),
        })
    return runs


@pytest.mark.slow
@pytest.mark.parametrize("basis", ["null_crude", "null_adjusted"])
def test_with_injuries_permuted_at_most_0_15_percent_of_teams_are_flagged(calibration, basis):
    teams = flagged = crossed = judged = 0
    for run in calibration:
        table = run[basis].table
        teams += len(table)
        judged += int(table["judged"].sum())
        flagged += int((table["flag"] == stats.HIGHER).sum())
        crossed += int((table["judged"] & (table["p_high"] < 0.001)).sum())
        small = table["n"] < stats.FUNNEL_MIN_VOLUME
        assert (table.loc[small, "flag"] == stats.TOO_FEW).all() and not table.loc[small, "judged"].any()
    print(f"{basis}: {flagged} of {teams:,} teams flagged higher ({flagged / teams:.4%}); {crossed} of {judged:,} "
          f"judged beyond the 99.8% limit alone ({crossed / judged:.4%})")
    assert flagged / teams <= 0.0015  # was 0.51% with the interpolated limits and no minimum volume
    assert crossed / judged <= 0.002  # the mid-p limit alone is near its nominal 0.1%


@pytest.mark.slow
def test_planted_outlier_teams_are_still_found_crude_and_adjusted(calibration):
    found = {basis: sum(len(run["planted"] & set(run[basis].table.index[run[basis].table["flag"] == stats.HIGHER]))
                        for run in calibration) for basis in ("crude", "adjusted")}
    planted = sum(len(run["planted"]) for run in calibration)
    print(f"planted outlier teams found: crude {found['crude']} of {planted}, "
          f"adjusted {found['adjusted']} of {planted}")
    assert planted == 4 * len(SEEDS)
    assert found["crude"] >= 0.95 * planted and found["adjusted"] >= 0.95 * planted


@pytest.mark.slow
def test_the_engine_funnel_matches_the_team_counts_on_permuted_data(engine, calibration):
    import pyarrow as pa

    data = synth.generate(CALIBRATION_REPORTS, seed=SEEDS[0])
    reports = data.reports.to_pandas()
    injured = reports["officer_injured"].to_numpy(dtype=object)
    answered = ~pd.isna(injured)
    injured[answered] = np.random.default_rng(1000 + SEEDS[0]).permutation(injured[answered])
    injured[~answered] = False  # masked below: unknown stays unknown
    column = pa.array(injured, type=pa.bool_(), mask=~answered)
    permuted = data.reports.set_column(data.reports.schema.get_field_index("officer_injured"), "officer_injured",
                                       column)
    ds = engine.add("permuted", permuted, data.tactics, data.officers, key="funnel_null_0")
    points, limits = risk.funnel(engine, ds, ALL, UNRESTRICTED, "officer_injured", "team")
    expected = calibration[0]["null_crude"].table
    got = points.set_index("group").loc[expected.index.astype(str)]
    np.testing.assert_array_equal(got["answered"], expected["n"])
    assert (got["flag"].to_numpy() == expected["flag"].to_numpy()).all()
    assert not (points.loc[points["answered"] < stats.FUNNEL_MIN_VOLUME, "flag"] != stats.TOO_FEW).any()
    assert risk.outliers(points).empty or (risk.outliers(points)["answered"] >= stats.FUNNEL_MIN_VOLUME).all()
    assert limits["judged_groups"].iloc[0] == int(points["judged"].sum())


def test_the_engine_funnel_judges_observed_against_expected_counts(engine, planted):
    ds, effects = planted
    crude, _ = risk.funnel(engine, ds, ALL, UNRESTRICTED, "officer_injured", "team")
    # Expected counts at the average rate give back the crude verdicts, drawn on the O / E scale.
    model = pd.Series(crude["answered"].to_numpy() * crude["yes"].sum() / crude["answered"].sum(),
                      index=crude["group"])
    points, limits = risk.funnel(engine, ds, ALL, UNRESTRICTED, "officer_injured", "team", expected=model)
    assert (points["basis"] == "expected").all() and limits["basis"].iloc[0] == "expected"
    assert {t["team"] for t in effects["outlier_teams"]} <= set(risk.outliers(points)["group"])
    assert points["ratio"].to_numpy() == pytest.approx(points["yes"] / points["model_expected"])


def test_the_case_mix_funnel_judges_teams_against_the_poisson_model_and_finds_the_planted_ones(engine, planted):
    ds, effects = planted
    points, limits = risk.funnel(engine, ds, ALL, UNRESTRICTED, "officer_injured", "team",
                                 ("officer_role", "shift", "resistance", "single_crewed"))
    assert (points["basis"] == "expected").all()
    # With an intercept the model's expected events add up to the observed ones (teams not recorded included).
    model = adjust.expected_counts(engine, ds, ALL, UNRESTRICTED, "officer_injured", "team",
                                   ("officer_role", "shift", "resistance", "single_crewed"))
    assert model["expected"].sum() == pytest.approx(model["observed"].sum())
    assert {t["team"] for t in effects["outlier_teams"]} <= set(risk.outliers(points)["group"])
    assert not points.loc[points["answered"] < stats.FUNNEL_MIN_VOLUME, "judged"].any()
    assert risk.funnel_method(limits).startswith("Observed against expected counts from the case-mix model")


def test_unknown_measure_is_refused(engine, small):
    with pytest.raises(ValueError, match="unknown measure"):
        risk.rate_ratios(engine, small, ALL, UNRESTRICTED, "coffee", "shift")


@pytest.mark.slow
def test_officer_exposure_shrinks_small_officers_and_names_drivers(engine, planted):
    ds, effects = planted
    exposure = risk.officer_exposure(engine, ds, ALL, UNRESTRICTED, "officer_injured", top=10)
    assert exposure.differ  # case mix makes officers' injury rates really differ in the generator's data
    top = exposure.table
    assert len(top) == 10
    assert (top["low"] <= top["shrunken"]).all() and (top["shrunken"] <= top["high"]).all()
    raw = top["officer_injured_yes"] / top["officer_injured_answered"]
    assert (top["shrunken"] <= raw + 1e-9).all()  # high raw rates are pulled towards the average
    assert (top["rank_low"] <= top["rank_high"]).all()
    assert set(top["role"]) <= set(top["role"].dropna())
    assert isinstance(risk.drivers(top.iloc[0]), str)


def test_drivers_name_what_differs_from_peers():
    row = pd.Series({"night": 0.6, "peer_night": 0.3, "single": 0.1, "peer_single": 0.3,
                     "ced": 0.25, "peer_ced": 0.05})
    assert risk.drivers(row) == "Night shift 60% (peers 30%); Taser (CED) used 25% (peers 5%)"


def test_tactic_group_ratios_compare_using_with_not_using(engine, small):
    frame = risk.rate_ratios(engine, small, ALL, UNRESTRICTED, "officer_injured", "tactic_group").set_index("group")
    # Less lethal weapons: R01 (injured) and R07 (not): 1 of 2; the other 7 answering reports: 2 of 7.
    row = frame.loc["Using Less lethal weapons"]
    assert (row["yes"], row["answered"], row["reference_yes"], row["reference_answered"]) == (1, 2, 2, 7)
    assert row["ratio"] == pytest.approx((1 / 2) / (2 / 7))


NOPD_FILE = "nopd_uof_incidents_2016-2019.csv"


def test_new_orleans_teams_are_judged_only_above_the_minimum_volume(engine, realdata):
    from lib import ingest
    from lib.ingest.pipeline import tables

    result = ingest.ingest([(NOPD_FILE, (realdata / NOPD_FILE).read_bytes())], fmt="profile:nopd")
    ds = engine.add("nopd", *tables(result), key="funnel_nopd")
    points, limits = risk.funnel(engine, ds, ALL, UNRESTRICTED, "officer_injured", "team")
    flagged = risk.outliers(points)
    judged = points["answered"] >= stats.FUNNEL_MIN_VOLUME
    print(f"New Orleans: {len(flagged)} of {len(points)} teams flagged higher ({int(judged.sum())} judged); "
          f"overdispersion applied: {bool(limits['overdispersion_applied'].iloc[0])}, "
          f"phi {float(limits['phi'].iloc[0]):.2f}")
    assert len(points) == 152
    assert (flagged["answered"] >= stats.FUNNEL_MIN_VOLUME).all()  # was 7 flagged teams with 3 reports or fewer
    assert (points.loc[~judged, "flag"] == stats.TOO_FEW).all() and (points["judged"] == judged).all()
    assert len(flagged) < 20  # the interpolated limits with no minimum volume flagged 20
    assert len(flagged) <= 0.1 * judged.sum()


def test_funnel_summary_says_how_many_groups_were_judged_and_expected_by_chance(engine, planted):
    ds, _ = planted
    points, limits = risk.funnel(engine, ds, ALL, UNRESTRICTED, "officer_injured", "team")
    out = risk.funnel_summary(points, limits)
    judged = int((points["answered"] >= stats.FUNNEL_MIN_VOLUME).sum())
    assert out["groups_compared"] == len(points) and out["groups_judged"] == judged
    assert out["minimum_volume"] == 30 and out["expected_by_chance"] == pytest.approx(judged * 0.001)
    assert out["method"].startswith("Crude rates")


def ratios_frame(adjusted_for=()) -> pd.DataFrame:
    """A reference, one group compared, and the groups the issue names: 0 of 6, 0 of 50, 1 of 3."""
    return pd.DataFrame({
        "dimension": "shift", "group": ["A", "B", "C", "D", "E"], "reference": "A",
        "ratio": [1.0, 1.25, 0.57, 0.05, 3.3], "ci_low": [0.8, 0.7, 0.03, 0.003, 0.6],
        "ci_high": [1.2, 2.2, 9.0, 0.9, 17.0], "yes": [16, 10, 0, 0, 1], "answered": [200, 100, 6, 50, 3],
        "reference_yes": 16, "reference_answered": 200, "adjusted_for": [adjusted_for] * 5,
        "method": "crude" if not adjusted_for else adjust.METHOD})


def test_forest_plot_draws_only_groups_it_can_compare_and_lists_the_rest_with_the_reason():
    spec = charts.forest_plot(ratios_frame(), "Officer injury rate").to_dict()
    rules, points, notes, _ = spec["layer"]
    drawn = spec["datasets"][rules["data"]["name"]]
    assert [r["group"] for r in drawn] == ["B"]  # no continuity-corrected point for 0 of 6, nothing for 1 of 3
    assert spec["datasets"][points["data"]["name"]] == drawn
    listed = {r["group"]: r["status"] for r in spec["datasets"][notes["data"]["name"]]}
    assert listed == {"C": "too few to compare", "D": "no events", "E": "too few to compare"}
    domain = rules["encoding"]["y"]["scale"]["domain"]
    assert domain == ["B vs A", "C vs A (too few to compare)", "D vs A (no events)", "E vs A (too few to compare)"]
    title = rules["encoding"]["x"]["title"]
    assert "counting unit: reports" in title and "crude" in title


def test_forest_plot_axis_spans_the_intervals_drawn_and_one_not_whole_powers_of_ten():
    """Ratios of 1.1 to 1.6 drew on a log axis running to 10, squeezed into its first third."""
    near = ratios_frame().iloc[:2].assign(ratio=[1.0, 1.3], ci_low=[1.0, 1.1], ci_high=[1.0, 1.6])
    scale = charts.forest_plot(near, "Officer injury rate").to_dict()["layer"][0]["encoding"]["x"]["scale"]
    assert scale["type"] == "log" and scale["nice"] is False
    low, high = scale["domain"]
    assert 0.85 < low < 1.0 and 1.6 < high < 1.9  # 1 (no difference) and the interval, a little room either side
    wide = charts.forest_plot(ratios_frame(), "Officer injury rate").to_dict()["layer"][0]["encoding"]["x"]["scale"]
    assert wide["domain"][0] < 0.7 and wide["domain"][1] > 2.2  # B's interval, 0.7 to 2.2, fits whole


def test_forest_plot_of_tactics_names_each_tactic_and_says_once_what_it_is_compared_with():
    frame = ratios_frame().assign(group=lambda f: "Using " + f["group"], reference="not using it")
    spec = charts.forest_plot(frame, "Officer injury rate").to_dict()
    encoding = spec["layer"][0]["encoding"]
    assert encoding["y"]["scale"]["domain"][0] == "Using A"  # not "Using A vs not using it", cut short
    assert "each against reports not using it" in encoding["x"]["title"]


def test_forest_plot_and_table_say_what_the_ratios_are_adjusted_for():
    frame = ratios_frame(("officer_role", "shift", "single_crewed"))
    title = charts.forest_plot(frame, "Officer injury rate").to_dict()["layer"][0]["encoding"]["x"]["title"]
    assert "adjusted for role, shift and crewing" in title
    table = tables.ratios_table(frame).set_index("Group")
    assert set(table["Basis"]) == {"adjusted for role, shift and crewing"}
    assert table.loc["B", "Rate ratio"] == 1.25 and table.loc["B", "Compared"] == "compared"
    for group, status in (("C", "too few to compare"), ("D", "no events"), ("E", "too few to compare")):
        assert table.loc[group, "Compared"] == status
        assert table.loc[group, ["Rate ratio", "95% from", "95% to"]].isna().all()  # no estimate shown
    assert table.loc["A", "Rate ratio"] == 1.0 and pd.isna(table.loc["A", "95% from"])


def test_crude_and_adjusted_frames_have_the_same_columns_and_say_which(engine, small):
    crude = risk.rate_ratios(engine, small, ALL, UNRESTRICTED, "officer_injured", "shift")
    adjusted = risk.rate_ratios(engine, small, ALL, UNRESTRICTED, "officer_injured", "shift", None, ("officer_role",))
    assert list(crude.columns) == list(adjusted.columns) == adjust.RATIO_COLUMNS
    assert crude["adjusted_for"].iloc[0] == () and adjusted["adjusted_for"].iloc[0] == ("officer_role",)
    assert crude["method"].iloc[0].startswith("crude") and adjusted["method"].iloc[0] == adjust.METHOD
    assert "adjusted for role" in risk.ratios_caption(adjusted, "All reports")
    assert "crude" in risk.ratios_caption(crude, "All reports")


def test_captions_name_the_unit_each_comparison_counts(engine, small):
    """A field recorded per incident counts incidents between groups; tactics, the model and officers count reports."""
    crude = risk.rate_ratios(engine, small, ALL, UNRESTRICTED, "officer_injured", "shift")
    adjusted = risk.rate_ratios(engine, small, ALL, UNRESTRICTED, "officer_injured", "shift", None, ("officer_role",))
    tactics = risk.rate_ratios(engine, small, ALL, UNRESTRICTED, "officer_injured", "tactic_group")
    assert "Counting unit: incidents answering" in risk.ratios_caption(crude, "All", "incidents")
    for frame in (adjusted, tactics):
        assert "Counting unit: reports answering" in risk.ratios_caption(frame, "All", "incidents")
    points, _ = risk.funnel(engine, small, ALL, UNRESTRICTED, "officer_injured", "area")
    modelled, _ = risk.funnel(engine, small, ALL, UNRESTRICTED, "officer_injured", "area",
                              risk.funnel_adjustment("area"))
    assert risk.funnel_unit(points, "area", "incidents") == "incidents"
    assert risk.funnel_unit(modelled, "area", "incidents") == "reports"
    assert risk.funnel_unit(points, risk.OFFICER_LEVEL, "incidents") == "reports"
    assert risk.funnel_adjustment("area") == adjust.DEFAULT_ADJUSTMENT
    assert "shift" not in risk.funnel_adjustment("shift")
