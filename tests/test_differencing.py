"""Differencing attacks through what a viewer reads (`lib.summary --protect viewer`), issue 16's search.

A curious viewer subtracts published counts to get hidden ones back: over overlapping periods (a run of
months with and without the hidden month) and over complementary filters (all values of a dimension
less all but one, for every report-level filter and value). Under the cell key method at most a third
come back exactly, and two paths that agree are still mostly wrong; the same paths asked of exact
figures get them all back.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from bench import differencing
from lib import summary
from lib.engine.filters import FILTER_KINDS

from .conftest import ROOT

SAMPLE = differencing.SAMPLE
# A fixed sample of the bundled sample's forces: one of middling size, one of the smallest.
FORCES = ("Kent Police", "Cumbria Constabulary")
MEASURES = ("officer_injured", "subject_injured")


def printed(argv: list[str], engine=None) -> dict:
    """Run `lib.summary` in-process and return the JSON it prints."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert summary.main(argv, engine=engine) == 0
    return json.loads(out.getvalue())


def test_every_filter_kind_of_the_sidebar_has_a_repeatable_flag():
    assert set(summary.FILTER_FLAGS) == {k.field for k in FILTER_KINDS}
    reports = pd.read_parquet(SAMPLE / "reports.parquet")
    chosen = {"force": "Kent Police", "subject_ethnicity": ["Black (or Black British)", "Mixed"],
              "subject_gender": "Female", "subject_age_band": ["18-34", "35-49"],
              "location_type": "Street/highway", "officer_role": "Response", "shift": "Night"}
    keep = pd.Series(True, index=reports.index)
    for column, values in chosen.items():
        keep &= reports[column].isin([values] if isinstance(values, str) else values)
    out = printed([str(SAMPLE), "--force", "Kent Police", "--ethnicity", "Black (or Black British)",
                   "--ethnicity", "Mixed", "--gender", "Female", "--age-band", "18-34", "--age-band", "35-49",
                   "--location-type", "Street/highway", "--role", "Response", "--shift", "Night"])
    assert out["overall"]["reports"] == int(keep.sum()) > 0
    assert out["filters"] == ("Kent Police, Response officers, Night shift, at Street/highway, subject aged 18-34 "
                              "or 35-49, Female subject, Black (or Black British) or Mixed subject")


@pytest.fixture(scope="module")
def attack():
    """The search on the sample as a viewer, the same paths asked of the exact figures, and the tools."""
    engine = differencing.engine_for_cli()
    ds = engine.open(SAMPLE)
    viewer, analyst = differencing.Viewer(SAMPLE, engine), differencing.Analyst(engine, ds)
    found = differencing.search(viewer, analyst, engine, ds, FORCES, MEASURES)
    exact = differencing.exact_search(viewer, analyst, engine, ds, FORCES, MEASURES)
    return found, exact, viewer, analyst, engine


@pytest.mark.slow
def test_differencing_recovers_at_most_a_third_of_hidden_values(attack):
    found, exact, *_ = attack
    figures = found.figures()
    assert figures["hidden_targeted"] >= 100
    assert {a for a, (_, n) in figures["by_attack"].items() if n} == {"date overlap", "filter complement"}
    assert figures["share"] <= 1 / 3, figures  # one difference per hidden value, as the attacks
    # A sharper attacker averages both paths and clamps to what a hidden count can be (1 to 12): barely better
    # than saying the commonest hidden value (1) for every one, which needs no differencing at all.
    assert figures["guessed_share"] <= 0.4, figures
    assert figures["guessed_share"] <= figures["commonest_share"] + 0.05, figures
    # The search works: the same paths asked of the analyst's exact figures give the hidden values back.
    before = exact.figures()
    assert before["hidden_targeted"] == figures["hidden_targeted"]
    assert before["share"] > 0.9, before


@pytest.mark.slow
def test_two_paths_that_agree_do_not_tell_the_attacker_which_values_are_exact(attack):
    found, *_ = attack
    figures = found.figures()
    # Two differencing paths over different cells: their agreeing is the attacker's best sign of an exact
    # value, yet most agreeing estimates are wrong, and agreeing ones are exact hardly more often than any guess.
    assert figures["paths_agree"] >= 15, figures
    assert figures["exact_share_when_agree"] <= 0.5, figures
    assert figures["exact_share_when_agree"] <= figures["guessed_share"] + 0.1, figures
    # Asking the same cell another way (the complement over all dates, or with every shift ticked, which
    # selects the same reports) gives the same published answer: repeating brings nothing new.
    viewer = attack[2]
    months = differencing.months_of(attack[4].open(SAMPLE))
    whole = (months[0][0], months[-1][1])
    target = next(t for t in found.targets if t.attack == "filter complement")
    column, value = target.cell.split("=", 1)
    field = next(k.field for k in FILTER_KINDS if k.column == column)
    options = differencing.force_values(attack[4], attack[4].open(SAMPLE))(target.force, column)
    others = tuple(v for v in options if v != value)
    plain = viewer(target.measure, whole, {"forces": (target.force,), field: others})
    rephrased = viewer(target.measure, whole, {"forces": (target.force,), field: others,
                                               "shifts": ("Early", "Late", "Night")})
    assert plain == rephrased


@pytest.mark.slow
def test_published_counts_move_by_at_most_three_and_never_to_or_from_zero(attack):
    found, *_ = attack
    figures = found.figures()
    assert 0.5 < figures["mean_absolute_perturbation"] < 1.5, figures
    assert figures["max_perturbation"] == 3
    assert all((published == 0) == (exact == 0) for published, exact in found.published)


@pytest.mark.slow
def test_the_search_reads_what_the_command_line_prints(attack):
    found, _, viewer, analyst, engine = attack
    months = differencing.months_of(engine.open(SAMPLE))
    hidden = next(t for t in found.targets if t.attack == "date overlap" and t.field == "numerator")
    month = next(m for m in months if f"{m[0]:%b %Y}" == hidden.cell)
    argv = viewer.argv(hidden.measure, month, {"forces": (hidden.force,)})
    done = subprocess.run([sys.executable, "-m", "lib.summary", *argv], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ})
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["overall"]["numerator"] is None  # hidden, as the search found it
    assert out["overall"]["denominator"] == viewer(hidden.measure, month, {"forces": (hidden.force,)})["denominator"]
    assert out["protection"]["perturbation"]["max_adjustment"] == 3
    # The exact figures the search compares with are what an analyst's lib.summary prints.
    analyst_argv = [a for a in argv if a not in ("--protect", "viewer")]
    exact = printed(analyst_argv, engine=engine)["overall"]
    assert exact["numerator"] == hidden.exact
    assert exact["denominator"] == analyst(hidden.measure, month, {"forces": (hidden.force,)})["denominator"]


@pytest.mark.slow
def test_a_viewers_rates_and_intervals_come_from_the_published_counts(attack):
    from lib.analysis.stats import wilson_interval

    _, _, viewer, analyst, engine = attack
    months = differencing.months_of(engine.open(SAMPLE))
    whole = (months[0][0], months[-1][1])
    changed = 0
    for force in FORCES:
        for measure in MEASURES:
            argv = viewer.argv(measure, whole, {"forces": (force,)})
            overall = printed(argv, engine=engine)["overall"]
            yes, answered = overall["numerator"], overall["denominator"]
            assert overall["rate"] == pytest.approx(yes / answered, abs=1e-6)
            low, high = wilson_interval(yes, answered)
            assert (overall["ci_low"], overall["ci_high"]) == (pytest.approx(float(low), abs=1e-6),
                                                               pytest.approx(float(high), abs=1e-6))
            exact = analyst(measure, whole, {"forces": (force,)})
            changed += (yes, answered) != (exact["numerator"], exact["denominator"])
    assert changed  # the perturbation is on: some published pair differs from the exact one
