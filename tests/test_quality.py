"""Data-quality checks against the hand fixture and a tiny dataset with planted problems."""
from __future__ import annotations

from datetime import date, datetime

import pandas as pd
import pyarrow as pa
import pytest

from lib.analysis import quality
from lib.engine.query import UNRESTRICTED, Filters, Scope
from lib.model import schema

ALPHA, BETA = "Alpha Police", "Beta Police"
ONLY_BETA = Scope(forces=frozenset({BETA}))
ONLY_ALPHA = Scope(forces=frozenset({ALPHA}))

# Reports per force per month of 2024 in the planted dataset: March is a gap in both forces,
# and August holds a single Alpha report (an extract taken before the month's forms were in).
MONTHS = {1: (4, 2), 2: (4, 2), 3: (0, 0), 4: (4, 2), 5: (4, 2), 6: (4, 2), 7: (4, 2), 8: (1, 0)}

_ARROW_TYPES = {"string": pa.string(), "category": pa.string(), "timestamp": pa.timestamp("us"),
                "bool": pa.bool_(), "float": pa.float64(), "list": pa.list_(pa.string())}
REPORT_SCHEMA = pa.schema([(c, _ARROW_TYPES[k]) for c, k in schema.REPORT_COLUMNS.items()])
TACTIC_SCHEMA = pa.schema([("report_id", pa.string()), ("tactic", pa.string()),
                           ("tactic_group", pa.string()), ("effective", pa.bool_())])

# Planted problems, all in Alpha: report id -> fields that differ from a clean report.
PLANTED: dict[str, dict[str, object]] = {
    "A01-1": {"shift": "Twilight"},
    "A01-2": {"officer_injured": False, "officer_injury_level": "Minor"},
    "A02-1": {"subject_injured": True, "subject_injury_level": "Death", "outcomes": ["Arrested"]},
    "A02-2": {"ced_trained": False, "tactics": ["CED fired"]},
    "A04-1": {"tactics": ["Taser wave"], "subject_ethnicity": None},
    "A04-2": {"reasons": ["Self defence"], "subject_ethnicity": None},
    "A05-1": {"reasons": ["Self defence", "Effect arrest"], "subject_ethnicity": None},
    "A06-1": {"officer_injured": True, "officer_injury_level": None},
    "A07-1": {"officer_injured": None},
}
# Clean, so that no rule fires: a trained officer's CED use; a death that is also a fatality.
CLEAN_EXTRAS: dict[str, dict[str, object]] = {
    "B01-1": {"tactics": ["CED drawn"]},
    "B02-1": {"subject_injured": True, "subject_injury_level": "Death",
              "outcomes": ["Fatality", "Hospitalised"]},
    "B04-1": {"officer_injured": True, "officer_injury_level": "Severe"},
}


def _clean(report_id: str, force: str, when: datetime) -> dict[str, object]:
    return {
        "report_id": report_id, "incident_id": report_id, "occurred_at": when, "shift": "Late",
        "force": force, "area": f"{force.split()[0]} Central", "location_type": "Street/highway",
        "officer_id": f"{report_id[0]}-officer", "officer_role": "Response", "team": "Team 1",
        "single_crewed": False, "ced_trained": True, "length_of_service_years": 4.0,
        "subject_age_band": "18-34", "subject_gender": "Male", "subject_ethnicity": "White",
        "subject_physical_disability": False, "subject_mental_disability": False,
        "resistance": "Active resistance", "reasons": ["Effect arrest"], "impact_factors": ["Alcohol"],
        "officer_injured": False, "officer_injury_level": None, "officer_assaulted": False,
        "subject_injured": False, "subject_injury_level": None, "outcomes": ["Arrested"],
        "tactics": ["Compliant handcuffing"],
    }


def planted_tables() -> tuple[pa.Table, pa.Table]:
    """Build the planted dataset as canonical Arrow tables."""
    reports, tactics = [], []
    for month, per_force in MONTHS.items():
        for force, n in zip((ALPHA, BETA), per_force, strict=True):
            for i in range(1, n + 1):
                rid = f"{force[0]}{month:02d}-{i}"
                row = _clean(rid, force, datetime(2024, month, 2 * i + 1, 16, 30))
                row.update(PLANTED.get(rid, {}) | CLEAN_EXTRAS.get(rid, {}))
                for tactic in row.pop("tactics"):
                    tactics.append({"report_id": rid, "tactic": tactic,
                                    "tactic_group": schema.TACTIC_GROUP_OF.get(tactic),
                                    "effective": True})
                reports.append(row)
    return (pa.Table.from_pylist(reports, schema=REPORT_SCHEMA),
            pa.Table.from_pylist(tactics, schema=TACTIC_SCHEMA))


@pytest.fixture(scope="module")
def planted(engine):
    reports, tactics = planted_tables()
    return engine.add("Planted problems", reports, tactics, key="quality_planted")


def _by_field(frame):
    return frame.set_index("field")


# --- hand fixture -------------------------------------------------------------------------


@pytest.mark.parametrize(("field", "answered", "total"), [
    ("subject_ethnicity", 9, 10),      # R04 blank
    ("officer_injured", 9, 10),        # R05 blank
    ("officer_assaulted", 9, 10),      # R05 blank
    ("subject_injured", 9, 10),        # R07 blank
    ("single_crewed", 9, 10),          # R05 blank
    ("reasons", 9, 10),                # R05 has an empty list
    ("subject_gender", 10, 10),
    ("shift", 10, 10),                 # derived from the time where the file has none
    ("officer_injury_level", 3, 3),    # R01, R04, R08: every injured officer gave a level
    ("subject_injury_level", 0, 2),    # R03 and R04 injured, no level column in the file
    ("resistance", 0, 10),             # not in the file at all
    ("outcomes", 0, 10),
])
def test_completeness_matches_hand_counts(engine, small, field, answered, total):
    row = _by_field(quality.completeness(engine, small, Filters(), UNRESTRICTED)).loc[field]
    assert (row["answered"], row["total"]) == (answered, total)
    assert row["share"] == pytest.approx(answered / total)


def test_completeness_covers_every_field_but_ids_worst_first(engine, small):
    frame = quality.completeness(engine, small, Filters(), UNRESTRICTED)
    assert set(frame["field"]) == set(schema.REPORT_COLUMNS) - {"report_id", "incident_id", "officer_id"}
    assert frame["share"].is_monotonic_increasing
    assert frame.set_index("field").loc["officer_injury_level", "applies_when"] == "officer_injured"


def test_completeness_by_force_is_an_inspection_table(engine, small):
    frame = quality.completeness_by(engine, small, Filters(), UNRESTRICTED).set_index("force")
    assert frame["reports"].to_dict() == {"Northshire Police": 5, "Southshire Police": 5}
    assert frame.loc["Northshire Police", "subject_ethnicity"] == pytest.approx(0.8)   # R04
    assert frame.loc["Southshire Police", "subject_ethnicity"] == 1.0
    assert frame.loc["Northshire Police", "officer_injured"] == pytest.approx(0.8)     # R05
    assert frame.loc["Southshire Police", "subject_injured"] == pytest.approx(0.8)     # R07
    assert frame.loc["Southshire Police", "subject_physical_disability"] == 0.0


def test_completeness_by_area_keeps_force_beside_area(engine, small):
    frame = quality.completeness_by(engine, small, Filters(), UNRESTRICTED, level="area",
                                    fields=("subject_ethnicity", "officer_injured"))
    assert list(frame.columns) == ["force", "area", "reports", "subject_ethnicity", "officer_injured"]
    north = frame.set_index(["force", "area"]).loc[("Northshire Police", "North")]
    assert north["reports"] == 3 and north["subject_ethnicity"] == pytest.approx(2 / 3)
    assert frame["reports"].sum() == 10


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"level": "team"}, "level must be"),
    ({"fields": ("subject_ethnicity", "shoe_size")}, "unknown field"),
])
def test_completeness_by_refuses_unknown_names(engine, small, kwargs, message):
    with pytest.raises(ValueError, match=message):
        quality.completeness_by(engine, small, Filters(), UNRESTRICTED, **kwargs)


def test_hand_fixture_has_no_invalid_codes_or_contradictions(engine, small):
    assert quality.invalid_codes(engine, small, Filters(), UNRESTRICTED).empty
    frame = quality.contradictions(engine, small, Filters(), UNRESTRICTED).set_index("rule")
    assert frame.loc["officer_level_not_injured", "reports"] == 0
    # Rules over fields the file never records (subject injury level, outcomes, CED training)
    # cannot be checked: null, not zero.
    assert frame["reports"].isna().to_dict() == {
        "officer_level_not_injured": False, "officer_level_injury_unknown": False,
        "subject_level_not_injured": True, "subject_level_injury_unknown": True,
        "death_fatality_disagree": True, "ced_used_not_trained": True,
    }


def test_hand_fixture_coverage_has_no_gap_or_thin_month(engine, small):
    frame = quality.coverage(engine, small, Filters(), UNRESTRICTED)
    assert frame["month"].tolist() == [date(2024, m, 1) for m in (1, 2, 3, 4)]
    assert frame["reports"].tolist() == [3, 2, 3, 2]
    assert not frame["gap"].any() and not frame["thin"].any()
    assert frame["first"].min() == datetime(2024, 1, 5, 8, 10)
    assert frame["last"].max() == datetime(2024, 4, 30, 7, 0)
    assert quality.late_recorded(engine, small, Filters(), UNRESTRICTED).empty


def test_hand_fixture_scope_applies(engine, small):
    south = Scope(forces=frozenset({"Southshire Police"}))
    frame = _by_field(quality.completeness(engine, small, Filters(), south))
    assert frame.loc["subject_ethnicity", "answered"] == 5
    assert frame.loc["subject_injured", ["answered", "total"]].tolist() == [4, 5]
    by_force = quality.completeness_by(engine, small, Filters(), south)
    assert by_force["force"].tolist() == ["Southshire Police"]


# --- planted problems ---------------------------------------------------------------------


def test_planted_invalid_codes_are_found_exactly(engine, planted):
    frame = quality.invalid_codes(engine, planted, Filters(), UNRESTRICTED)
    assert list(frame.itertuples(index=False, name=None)) == [
        ("shift", "Twilight", 1),
        ("reasons", "Self defence", 2),
        ("tactic", "Taser wave", 1),
    ]


def test_planted_contradictions_are_found_exactly(engine, planted):
    frame = quality.contradictions(engine, planted, Filters(), UNRESTRICTED).set_index("rule")
    assert frame["reports"].to_dict() == {
        "officer_level_not_injured": 1, "officer_level_injury_unknown": 0,
        "subject_level_not_injured": 0, "subject_level_injury_unknown": 0,
        "death_fatality_disagree": 1, "ced_used_not_trained": 1,
    }
    assert (frame["total"] == 37).all()
    assert frame["explanation"].str.len().gt(20).all()


@pytest.mark.parametrize(("rule", "ids"), [
    ("officer_level_not_injured", ["A01-2"]),
    ("death_fatality_disagree", ["A02-1"]),
    ("ced_used_not_trained", ["A02-2"]),
    ("subject_level_not_injured", []),
])
def test_contradiction_rows_link_to_the_reports_behind_a_count(engine, planted, rule, ids):
    expr = quality.contradiction_rows(engine, planted, Filters(), UNRESTRICTED, rule)
    assert engine.execute(expr.select("report_id"))["report_id"].tolist() == ids


def test_contradiction_rows_refuses_unknown_or_uncheckable_rules(engine, planted):
    with pytest.raises(ValueError, match="unknown rule"):
        quality.contradiction_rows(engine, planted, Filters(), UNRESTRICTED, "no_such_rule")
    reports, tactics = planted_tables()
    no_training = engine.add("No CED training column", reports.drop_columns(["ced_trained"]), tactics,
                             key="quality_no_ced_trained")
    with pytest.raises(ValueError, match="cannot be checked"):
        quality.contradiction_rows(engine, no_training, Filters(), UNRESTRICTED, "ced_used_not_trained")
    frame = quality.contradictions(engine, no_training, Filters(), UNRESTRICTED).set_index("rule")
    assert frame["reports"].isna().sum() == 1 and pd.isna(frame.loc["ced_used_not_trained", "reports"])
    assert frame.loc["officer_level_not_injured", "reports"] == 1


def test_planted_completeness(engine, planted):
    frame = _by_field(quality.completeness(engine, planted, Filters(), UNRESTRICTED))
    assert frame.loc["subject_ethnicity", ["answered", "total"]].tolist() == [34, 37]
    assert frame.loc["officer_injured", ["answered", "total"]].tolist() == [36, 37]
    # Injured officers: A06-1 (no level) and B04-1 (Severe); A01-2's level is a contradiction.
    assert frame.loc["officer_injury_level", ["answered", "total"]].tolist() == [1, 2]
    assert frame.index[0] == "officer_injury_level"  # worst first


def test_planted_coverage_flags_the_gap_and_the_thin_last_month(engine, planted):
    frame = quality.coverage(engine, planted, Filters(), UNRESTRICTED).set_index("month")
    assert frame["reports"].tolist() == [6, 6, 0, 6, 6, 6, 6, 1]
    assert frame.index[frame["gap"]].tolist() == [date(2024, 3, 1)]
    assert frame.index[frame["thin"]].tolist() == [date(2024, 8, 1)]
    assert frame.loc[date(2024, 8, 1), "share_of_median"] == pytest.approx(1 / 6)


def test_planted_late_recorded_is_the_thin_tail_only(engine, planted):
    frame = quality.late_recorded(engine, planted, Filters(), UNRESTRICTED)
    assert frame["month"].tolist() == [date(2024, 8, 1)]
    # A date filter that stops before August leaves a complete tail.
    to_july = Filters(date_to=date(2024, 7, 31))
    assert quality.late_recorded(engine, planted, to_july, UNRESTRICTED).empty


def test_coverage_span_follows_the_date_filter(engine, planted):
    spring = Filters(date_from=date(2024, 2, 1), date_to=date(2024, 4, 30))
    frame = quality.coverage(engine, planted, spring, UNRESTRICTED)
    assert frame["month"].tolist() == [date(2024, 2, 1), date(2024, 3, 1), date(2024, 4, 1)]
    assert frame["gap"].tolist() == [False, True, False]


def test_scope_limited_to_one_force_sees_only_its_rows(engine, planted):
    assert quality.invalid_codes(engine, planted, Filters(), ONLY_BETA).empty
    frame = quality.contradictions(engine, planted, Filters(), ONLY_BETA)
    assert frame["reports"].tolist() == [0] * len(quality.RULES)
    assert (frame["total"] == 12).all()
    assert quality.completeness(engine, planted, Filters(), ONLY_BETA)["share"].min() == 1.0
    assert quality.completeness_by(engine, planted, Filters(), ONLY_BETA)["force"].tolist() == [BETA]
    rows = quality.contradiction_rows(engine, planted, Filters(), ONLY_BETA, "ced_used_not_trained")
    assert engine.execute(rows.count()) == 0
    # Beta recorded nothing in August: a gap for Beta, and its late tail.
    months = quality.coverage(engine, planted, Filters(), ONLY_BETA).set_index("month")
    assert months.index[months["gap"]].tolist() == [date(2024, 3, 1), date(2024, 8, 1)]
    assert quality.late_recorded(engine, planted, Filters(), ONLY_BETA)["month"].tolist() == [
        date(2024, 8, 1)]
    # Alpha alone carries every planted code; a filter to Beta inside Alpha's scope sees none.
    assert len(quality.invalid_codes(engine, planted, Filters(), ONLY_ALPHA)) == 3
    assert quality.invalid_codes(engine, planted, Filters(forces=(BETA,)), ONLY_ALPHA).empty


def test_filters_apply_to_quality_checks(engine, planted):
    cuffs = Filters(tactics=("Taser wave",))
    assert quality.invalid_codes(engine, planted, cuffs, UNRESTRICTED)["field"].tolist() == ["tactic"]
    assert quality.completeness(engine, planted, cuffs, UNRESTRICTED)["total"].max() == 1
