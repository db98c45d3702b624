"""Tactics: hand-counted figures on the small fixture, planted truths on synthetic data, charts, the page."""
from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from lib import synth
from lib.analysis import tactics
from lib.engine import query
from lib.engine.query import UNRESTRICTED, Filters, Scope
from lib.model import schema
from lib.present import tactic_charts
from lib.present.charts import MIN_DENOMINATOR, MUTED

from .conftest import FIXTURES, ROOT

SECTIONS = ["Tactic use over time", "How often each tactic was effective", "Injuries when each tactic was used",
            "Which tactics occur together", "The Taser ladder (highest use per report)"]
ALL = Filters()


def _row(frame: pd.DataFrame, **match: object) -> pd.Series:
    hit = frame
    for col, value in match.items():
        hit = hit[hit[col] == value]
    assert len(hit) == 1, f"expected one row for {match}, found {len(hit)}"
    return hit.iloc[0]


def _datasets(spec: dict) -> list[list[dict]]:
    return list(spec.get("datasets", {}).values())


# --- the hand fixture: ten reports, every count known ---------------------------------------


def test_use_over_time_counts_reports_per_type_of_force_and_month(engine, small):
    frame = tactics.use_over_time(engine, small, ALL, UNRESTRICTED)
    jan = frame[pd.to_datetime(frame["month"]) == pd.Timestamp("2024-01-01")].set_index("tactic_group")
    # January: R01 (restraint + CED), R02 (restraint), R03 (restraint + unarmed skills).
    assert jan.loc["Restraint", "reports"] == 3
    assert jan.loc["Unarmed skills", "reports"] == 1
    assert jan.loc["Less lethal weapons", "reports"] == 1
    assert jan.loc["Other equipment", "reports"] == 0  # a month without it reads 0, not a gap
    assert (jan["total_reports"] == 3).all()
    april = _row(frame[pd.to_datetime(frame["month"]) == pd.Timestamp("2024-04-01")], tactic_group="Restraint")
    # R09 used no tactic but is one of April's two reports.
    assert (april["reports"], april["total_reports"], april["share"]) == (1, 2, 0.5)
    assert frame.groupby("month")["total_reports"].first().sum() == 10


@pytest.mark.parametrize(("tactic", "uses"), [
    ("Compliant handcuffing", 3),  # R01, R06, R10
    ("Unarmed skills", 2),  # R03, R04
    ("CED fired", 1),  # R01: drawn and fired counts as fired only
    ("CED aimed", 1),  # R07
])
def test_effectiveness_counts_uses_and_keeps_unknown_apart(engine, small, tactic, uses):
    row = _row(tactics.effectiveness(engine, small, ALL, UNRESTRICTED), tactic=tactic)
    # The fixture does not record effectiveness: every use is unanswered, none is counted "No".
    assert (row["uses"], row["answered"], row["effective_yes"], row["unanswered_share"]) == (uses, 0, 0, 1.0)
    assert pd.isna(row["rate"])


def test_ced_drawn_is_not_counted_where_ced_was_also_fired(engine, small):
    used = tactics.effectiveness(engine, small, ALL, UNRESTRICTED)
    assert "CED drawn" not in set(used["tactic"])


@pytest.mark.parametrize(("tactic", "reports", "officer", "subject"), [
    ("Compliant handcuffing", 3, (1, 3), (0, 3)),  # R01 injured; R06, R10 not
    ("Unarmed skills", 2, (1, 2), (2, 2)),  # R03 No, R04 Yes; both subjects injured
    ("Limb/body restraints", 1, (0, 0), (0, 1)),  # R05: officer injury unknown, not "No"
    ("CED aimed", 1, (0, 1), (0, 0)),  # R07: subject injury unknown
])
def test_harm_when_used_counts_answered_reports_only(engine, small, tactic, reports, officer, subject):
    row = _row(tactics.harm_when_used(engine, small, ALL, UNRESTRICTED), tactic=tactic)
    assert row["reports"] == reports
    assert (row["officer_injured_yes"], row["officer_injured_answered"]) == officer
    assert (row["subject_injured_yes"], row["subject_injured_answered"]) == subject


def test_harm_when_used_by_type_of_force(engine, small):
    frame = tactics.harm_when_used(engine, small, ALL, UNRESTRICTED, "tactic_group")
    restraint = _row(frame, tactic="Restraint")
    # R01 R02 R03 R05 R06 R08 R10; officer injured R01 and R08; R05 unanswered.
    assert restraint["reports"] == 7
    assert (restraint["officer_injured_yes"], restraint["officer_injured_answered"]) == (2, 6)
    assert restraint["officer_injured_rate"] == pytest.approx(2 / 6)
    # The overall rate is over all reports in view: officer injured in R01, R04, R08 of 9 answering.
    assert restraint["officer_injured_overall"] == pytest.approx(3 / 9)


def test_harm_when_used_rejects_an_unknown_level(engine, small):
    with pytest.raises(ValueError):
        tactics.harm_when_used(engine, small, ALL, UNRESTRICTED, "force")


def test_co_occurrence_counts_reports_using_both(engine, small):
    frame = tactics.co_occurrence(engine, small, ALL, UNRESTRICTED)
    pair = _row(frame, tactic="Compliant handcuffing", other="CED fired")
    assert (pair["both"], pair["tactic_reports"], pair["share"]) == (1, 3, pytest.approx(1 / 3))  # R01
    reverse = _row(frame, tactic="CED fired", other="Compliant handcuffing")
    assert (reverse["both"], reverse["share"]) == (1, 1.0)  # of reports using CED fired, all cuffed
    unarmed = _row(frame, tactic="Unarmed skills", other="Ground restraint")
    assert (unarmed["both"], unarmed["share"]) == (1, 0.5)  # R03 of R03, R04
    assert _row(frame, tactic="Compliant handcuffing", other="Unarmed skills")["both"] == 0
    assert _row(frame, tactic="Unarmed skills", other="Unarmed skills")["both"] == 2
    assert frame["tactic"].nunique() == 8  # all eight tactics used (fewer than the top 12)


def test_co_occurrence_keeps_the_most_used_tactics(engine, small):
    frame = tactics.co_occurrence(engine, small, ALL, UNRESTRICTED, 2)
    assert list(dict.fromkeys(frame["tactic"])) == ["Compliant handcuffing", "Ground restraint"]
    assert len(frame) == 4


def test_taser_ladder_counts_each_report_once_at_its_highest_use(engine, small):
    ladder = tactics.taser_ladder(engine, small, ALL, UNRESTRICTED).set_index("level")
    assert list(ladder.index) == list(schema.CED_LADDER)
    assert ladder.loc["CED fired", "reports"] == 1  # R01, drawn then fired
    assert ladder.loc["CED aimed", "reports"] == 1  # R07
    assert ladder.loc["CED drawn", "reports"] == 0
    assert ladder["reports"].sum() == 2
    assert ladder["ced_share_of_reports"].iloc[0] == pytest.approx(2 / 10)
    assert ladder.loc["CED drawn", "at_least"] == 1.0
    assert ladder.loc["CED red-dot", "at_least"] == 0.5  # only R01 reached beyond aimed
    assert ladder.loc["CED angle drive-stun", "at_least"] == 0.0


def test_scope_and_filters_apply_to_every_query(engine, small):
    south = Scope(forces=frozenset({"Southshire Police"}))
    ladder = tactics.taser_ladder(engine, small, ALL, south).set_index("level")
    assert ladder["reports"].sum() == 1 and ladder.loc["CED aimed", "reports"] == 1  # R07 only
    assert ladder["all_reports"].iloc[0] == 5
    cuffed = _row(tactics.harm_when_used(engine, small, ALL, south), tactic="Compliant handcuffing")
    assert cuffed["reports"] == 2  # R06, R10
    march = Filters(date_from=date(2024, 3, 1), date_to=date(2024, 3, 31))
    pairs = tactics.co_occurrence(engine, small, march, UNRESTRICTED)
    assert set(pairs["tactic"]) == {"Compliant handcuffing", "CED aimed", "Ground restraint"}


def test_a_tactic_filter_keeps_the_other_tactics_of_the_chosen_reports(engine, small):
    fired = Filters(tactics=("CED fired",))
    pairs = tactics.co_occurrence(engine, small, fired, UNRESTRICTED)
    assert set(pairs["tactic"]) == {"CED fired", "Compliant handcuffing"}  # R01's tactics


def test_empty_view_gives_empty_frames(engine, small):
    none = Filters(date_from=date(2030, 1, 1))
    assert tactics.use_over_time(engine, small, none, UNRESTRICTED).empty
    assert tactics.co_occurrence(engine, small, none, UNRESTRICTED).empty
    assert tactics.effectiveness(engine, small, none, UNRESTRICTED).empty
    ladder = tactics.taser_ladder(engine, small, none, UNRESTRICTED)
    assert ladder["reports"].sum() == 0 and ladder["share"].isna().all()
    assert tactic_charts.ladder_sentence(ladder) == "No reports in view."


# --- synthetic data with planted truths -----------------------------------------------------


@pytest.fixture(scope="module")
def generated():
    return synth.generate(20_000, seed=21)


@pytest.fixture(scope="module")
def synthetic(engine, generated):
    data = generated
    return engine.add("Synthetic tactics", data.reports, data.tactics, data.officers, key="tactics_syn21")


def test_ladder_shares_sum_to_one_over_ced_reports(engine, synthetic):
    ladder = tactics.taser_ladder(engine, synthetic, ALL, UNRESTRICTED)
    assert ladder["share"].sum() == pytest.approx(1.0)
    assert ladder["at_least"].iloc[0] == pytest.approx(1.0)
    assert ladder["at_least"].is_monotonic_decreasing


def test_ced_share_of_reports_matches_the_generated_rows(engine, synthetic, generated):
    ladder = tactics.taser_ladder(engine, synthetic, ALL, UNRESTRICTED)
    planted = generated.effects["national_marginals"]["ced"]
    assert ladder["ced_share_of_reports"].iloc[0] == pytest.approx(planted, abs=1e-6)
    assert ladder["ced_share_of_reports"].iloc[0] == pytest.approx(0.06, abs=0.01)
    fired = ladder.set_index("level").loc["CED fired", "reports"] / ladder["all_reports"].iloc[0]
    assert fired == pytest.approx(generated.effects["national_marginals"]["ced_fired"], abs=1e-6)


def test_use_over_time_matches_planted_shares(engine, synthetic, generated):
    frame = tactics.use_over_time(engine, synthetic, ALL, UNRESTRICTED)
    by_group = frame.groupby("tactic_group")["reports"].sum()
    total = frame.groupby("month")["total_reports"].first().sum()
    assert total == 20_000
    marginals = generated.effects["national_marginals"]
    assert by_group["Restraint"] / total == pytest.approx(marginals["restraint"], abs=1e-6)
    assert by_group["Unarmed skills"] / total == pytest.approx(marginals["unarmed_skills"], abs=1e-6)


def test_effectiveness_recovers_the_planted_rate(engine, synthetic):
    frame = tactics.effectiveness(engine, synthetic, ALL, UNRESTRICTED)
    answered, yes = frame["answered"].sum(), frame["effective_yes"].sum()
    # Planted: 85% effective, 10% not, 5% unanswered, independently of the tactic.
    assert yes / answered == pytest.approx(0.85 / 0.95, abs=0.01)
    assert (frame["unanswered"].sum() / frame["uses"].sum()) == pytest.approx(0.05, abs=0.01)
    assert ((frame["low"] <= frame["rate"]) & (frame["rate"] <= frame["high"])).all()


def test_scope_limits_rows_to_its_force(engine, synthetic):
    force = "Kent Police"
    scoped = Scope(forces=frozenset({force}))
    filtered = Filters(forces=(force,))
    expected = query.summarise(engine, synthetic, filtered, UNRESTRICTED).reports
    assert 0 < expected < 20_000
    ladder = tactics.taser_ladder(engine, synthetic, ALL, scoped)
    assert ladder["all_reports"].iloc[0] == expected
    assert ladder.equals(tactics.taser_ladder(engine, synthetic, filtered, UNRESTRICTED))
    use = tactics.use_over_time(engine, synthetic, ALL, scoped)
    assert use.groupby("month")["total_reports"].first().sum() == expected
    harm = tactics.harm_when_used(engine, synthetic, ALL, scoped, "tactic_group")
    assert harm["reports"].max() <= expected
    assert harm.equals(tactics.harm_when_used(engine, synthetic, filtered, UNRESTRICTED, "tactic_group"))
    pairs = tactics.co_occurrence(engine, synthetic, ALL, scoped)
    assert pairs.equals(tactics.co_occurrence(engine, synthetic, filtered, UNRESTRICTED))


# --- chart builders: valid specs, aggregates only, thin groups grey -------------------------


@pytest.fixture(scope="module")
def frames(engine, synthetic):
    return {
        "use": tactics.use_over_time(engine, synthetic, ALL, UNRESTRICTED),
        "effective": tactics.effectiveness(engine, synthetic, ALL, UNRESTRICTED),
        "harm": tactics.harm_when_used(engine, synthetic, ALL, UNRESTRICTED),
        "pairs": tactics.co_occurrence(engine, synthetic, ALL, UNRESTRICTED),
        "ladder": tactics.taser_ladder(engine, synthetic, ALL, UNRESTRICTED),
    }


BUILDERS = [
    ("use", tactic_charts.tactic_use_by_month, "Reports using the type of force"),
    ("effective", tactic_charts.effectiveness_by_tactic, "counting unit: tactic uses"),
    ("harm", tactic_charts.injury_rate_when_used, "counting unit: reports"),
    ("pairs", tactic_charts.tactic_co_occurrence, "counting unit: reports"),
    ("ladder", tactic_charts.taser_ladder_shares, "counting unit: reports using CED"),
]


@pytest.mark.parametrize(("name", "builder", "unit"), BUILDERS, ids=[b[0] for b in BUILDERS])
def test_chart_builders_return_valid_specs_of_aggregates(frames, name, builder, unit):
    spec = builder(frames[name]).to_dict()
    text = json.dumps(spec)
    assert spec["$schema"].startswith("https://vega.github.io/schema/vega-lite/")
    assert unit in text  # every chart states its counting unit
    rows = sum(len(d) for d in _datasets(spec))
    assert 0 < rows <= 200  # aggregates, never the 20,000 reports or 30,000 tactic rows


def test_chart_titles_can_be_replaced_or_dropped(frames):
    assert builder_title(tactic_charts.taser_ladder_shares(frames["ladder"], title="Custom")) == "Custom"
    assert "title" not in tactic_charts.taser_ladder_shares(frames["ladder"], title="").to_dict()


def builder_title(chart) -> str:
    return chart.to_dict()["title"]


def test_share_view_of_use_over_time(frames):
    text = json.dumps(tactic_charts.tactic_use_by_month(frames["use"], measure="share").to_dict())
    assert "Share of the month's reports using it" in text


def _reliability_rows(spec: dict) -> list[dict]:
    return [r for d in _datasets(spec) for r in d if "reliable" in r]


def test_effectiveness_greys_thin_tactics_only(frames):
    rows = _reliability_rows(tactic_charts.effectiveness_by_tactic(frames["effective"]).to_dict())
    state = {r["tactic"]: r["reliable"] for r in rows}
    assert state["Compliant handcuffing"] == tactic_charts.ENOUGH
    thin = frames["effective"].query(f"0 < answered < {MIN_DENOMINATOR}")["tactic"]
    assert len(thin) and all(state[t] == tactic_charts.TOO_FEW for t in thin)


def test_injury_chart_greys_every_tactic_of_the_hand_fixture(engine, small):
    harm = tactics.harm_when_used(engine, small, ALL, UNRESTRICTED)
    rows = _reliability_rows(tactic_charts.injury_rate_when_used(harm).to_dict())
    assert rows and {r["reliable"] for r in rows} == {tactic_charts.TOO_FEW}


def test_injury_chart_draws_only_the_measures_asked_for(frames):
    text = json.dumps(tactic_charts.injury_rate_when_used(frames["harm"], measures=("officer_injured",)).to_dict())
    assert '"field": "officer_injured_low"' in text and '"field": "subject_injured_low"' not in text


def test_co_occurrence_heatmap_greys_thin_rows(engine, small):
    pairs = tactics.co_occurrence(engine, small, ALL, UNRESTRICTED)
    rows = _reliability_rows(tactic_charts.tactic_co_occurrence(pairs).to_dict())
    assert rows and {r["reliable"] for r in rows} == {tactic_charts.TOO_FEW}


def test_ladder_chart_greys_a_thin_ladder(engine, small, frames):
    ladder = tactics.taser_ladder(engine, small, ALL, UNRESTRICTED)
    thin = json.dumps(tactic_charts.taser_ladder_shares(ladder).to_dict())
    assert MUTED in thin and "too few to read" in thin
    assert MUTED not in json.dumps(tactic_charts.taser_ladder_shares(frames["ladder"]).to_dict())


def test_ladder_chart_runs_from_drawn_to_angle_drive_stun(frames):
    spec = tactic_charts.taser_ladder_shares(frames["ladder"]).to_dict()
    sorts = [layer["encoding"]["y"]["sort"] for layer in spec["layer"]]
    assert all(s == list(schema.CED_LADDER) for s in sorts)
    labels = [r["label"] for d in _datasets(spec) for r in d]
    assert any(label.endswith(")") and "%" in label for label in labels)


# --- tables behind the charts ---------------------------------------------------------------


def test_tables_have_readable_headings(frames, engine, small):
    assert "Share of the month's reports (%)" in tactic_charts.use_over_time_table(frames["use"]).columns
    assert "Effective (%)" in tactic_charts.effectiveness_table(frames["effective"]).columns
    harm = tactic_charts.harm_table(frames["harm"])
    assert {"Tactic", "Officer injury rate (%)", "Subject injury rate: answered"} <= set(harm.columns)
    by_group = tactics.harm_when_used(engine, small, ALL, UNRESTRICTED, "tactic_group")
    assert tactic_charts.harm_table(by_group, label="Type of force").columns[0] == "Type of force"
    pairs = tactic_charts.co_occurrence_table(frames["pairs"])
    assert (pairs["Reports using"] != pairs["Also using"]).all()  # the diagonal is not a pair
    ladder = tactic_charts.ladder_table(frames["ladder"])
    assert list(ladder["Highest CED use"]) == list(schema.CED_LADDER)


def test_ladder_sentence_gives_numerator_denominator_and_interval(engine, small):
    text = tactic_charts.ladder_sentence(tactics.taser_ladder(engine, small, ALL, UNRESTRICTED))
    assert text.startswith("2 of 10 reports used CED") and "95% interval" in text


# --- the page, as Streamlit runs it ---------------------------------------------------------




@pytest.fixture
def app_file() -> Path:
    """Return the router, whose navigation lists the Tactics page."""
    return ROOT / "app.py"


def _tactics_page(app_file: Path) -> AppTest:
    at = AppTest.from_file(str(app_file), default_timeout=60).run()
    assert not at.exception
    return at.switch_page("app_pages/tactics.py").run()


def test_tactics_page_draws_every_section(fresh_caches, app_file):
    at = _tactics_page(app_file)
    assert not at.exception
    assert [t.value for t in at.main.title] == ["Tactics"]
    headers = [h.value for h in at.main.subheader]
    assert headers == SECTIONS
    assert len(at.get("vega_lite_chart")) >= 4
    assert len(at.expander) >= 5  # a table behind every chart
    assert any("1 Apr 2024 to 31 Mar 2025" in c.value for c in at.caption)


def test_tactics_page_says_what_the_hand_fixture_lacks(fresh_caches, app_file):
    fresh_caches.setenv("OSE_DATASET", str(FIXTURES / "small_canonical.csv"))
    at = _tactics_page(app_file)
    assert not at.exception
    # The fixture records no effectiveness: the page says so instead of drawing an empty chart.
    assert any("effective" in i.value for i in at.info)


def _fixture_without(tmp_path: Path, *columns: str) -> Path:
    frame = pd.read_csv(FIXTURES / "small_canonical.csv", dtype=str, keep_default_na=False)
    path = tmp_path / "extract.csv"
    frame.drop(columns=list(columns)).to_csv(path, index=False)
    return path


def test_tactics_page_says_injuries_are_unavailable(fresh_caches, app_file, tmp_path):
    extract = _fixture_without(tmp_path, "officer_injured", "officer_injury_level", "officer_assaulted",
                               "subject_injured")
    fresh_caches.setenv("OSE_DATASET", str(extract))
    at = _tactics_page(app_file)
    assert not at.exception
    assert any("Not in this extract" in i.value and "Officer injury rate" in i.value for i in at.info)
    assert [h.value for h in at.main.subheader] == SECTIONS


def test_tactics_page_says_when_no_tactics_are_recorded(fresh_caches, app_file, tmp_path):
    fresh_caches.setenv("OSE_DATASET", str(_fixture_without(tmp_path, "tactics")))
    at = _tactics_page(app_file)
    assert not at.exception
    assert any("records a tactic" in i.value for i in at.info)
    assert not at.get("vega_lite_chart")
