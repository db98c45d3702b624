"""The training models fitted by design cells give the row-by-row fit's figures, and fall back where cells do not apply.

`training.CELL_FIT` switches between the two real implementations (lib/analysis/grouped_poisson.py and
`training._conditional_fit`); each test runs both on the same panel and compares what the Training page shows:
estimates, intervals, pre-trend p-values, observed and expected events and the event profile.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from lib import synth
from lib.analysis import grouped_poisson, training

RELATIVE = 1e-8
FIGURES = ("estimate", "ci_low", "ci_high", "pre_trend_p", "observed_events", "expected_events",
           "minimum_detectable_effect", "officers_trained", "officers_comparison", "events")


def panel_of(data: synth.Synthetic) -> pd.DataFrame:
    reports = data.reports.select(["officer_id", "occurred_at", "officer_injured", "officer_assaulted"]).to_pandas()
    return training.officer_months(reports, data.exposure.to_pandas(), data.officers.to_pandas())


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    return panel_of(synth.generate(40_000, seed=7))


def both(monkeypatch: pytest.MonkeyPatch, panel: pd.DataFrame) -> tuple[dict, dict]:
    """Return the effects and profile fitted by cells and row by row."""
    monkeypatch.setattr(training, "CELL_FIT", True)
    cells = training.effects_and_profile(panel)
    monkeypatch.setattr(training, "CELL_FIT", False)
    rows = training.effects_and_profile(panel)
    return cells, rows


def close(a: object, b: object, tolerance: float = RELATIVE) -> bool:
    if a is None or b is None:
        return a is None and b is None
    a, b = float(a), float(b)
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=tolerance, abs_tol=1e-12)


def assert_same(cells: tuple[dict, pd.DataFrame], rows: tuple[dict, pd.DataFrame],
                profile_tolerance: float = RELATIVE) -> None:
    (found_cells, profile_cells), (found_rows, profile_rows) = cells, rows
    for measure in training.MEASURES:
        for key in FIGURES:
            assert close(found_cells[measure][key], found_rows[measure][key]), (measure, key)
        for key in ("estimate", "ci_low", "ci_high"):
            assert close(found_cells[measure]["twfe"][key], found_rows[measure]["twfe"][key]), (measure, "twfe", key)
        assert found_cells[measure]["verdict"] == found_rows[measure]["verdict"]
    assert list(profile_cells.columns) == list(profile_rows.columns)
    for column in profile_cells.columns:
        for a, b in zip(profile_cells[column], profile_rows[column], strict=True):
            assert close(a, b, profile_tolerance), column


def test_cells_give_the_row_by_row_figures(monkeypatch: pytest.MonkeyPatch, panel: pd.DataFrame) -> None:
    cells, rows = both(monkeypatch, panel)
    assert cells[0]["reports"]["estimate"] is not None  # a real fit, not two empty results
    assert_same(cells, rows)


def test_a_month_missing_from_the_panel_gives_the_same_figures(monkeypatch: pytest.MonkeyPatch,
                                                               panel: pd.DataFrame) -> None:
    # A calendar month no officer worked: cohorts then span the gap, the case the cohort blocks guard against. The
    # information matrix is then inverted whole, and the interval of the profile's thinnest month (a handful of
    # events) moves in the 7th digit with the order of the sums: the profile is compared to 1e-5 here.
    months = np.sort(panel["month"].unique())
    gapped = panel[panel["month"] != months[len(months) // 2]].reset_index(drop=True)
    assert_same(*both(monkeypatch, gapped), profile_tolerance=1e-5)


def test_the_cell_fit_is_used_on_a_real_panel(panel: pd.DataFrame) -> None:
    design = training._saturated(training._judged(panel, "reports"), "reports")
    assert design["fit"].get("score_gram") is not None  # fitted by cells: no row-wise score matrix was built


def test_rows_that_do_not_suit_cells_are_fitted_row_by_row(monkeypatch: pytest.MonkeyPatch,
                                                           panel: pd.DataFrame) -> None:
    # One officer-month listed twice: the cell form needs one row per officer and month, so the fit falls back.
    doubled = pd.concat([panel, panel.iloc[[0]]], ignore_index=True)
    rows = training._judged(doubled, "reports")
    officer = pd.factorize(rows["officer_id"])[0]
    month = pd.factorize(rows["month"], sort=True)[0]
    assert not grouped_poisson.applies(officer, month, np.zeros(officer.size, dtype=np.int64), int(month.max()) + 1)
    design = training._saturated(rows, "reports")
    assert design["fit"].get("score_gram") is None and design["fit"]["scores"] is not None
    assert_same(*both(monkeypatch, doubled))


@pytest.mark.parametrize("direct", [0, 10_000], ids=["by blocks", "whole"])
def test_the_information_matrix_is_solved_alike_whole_or_by_blocks(monkeypatch, direct: int) -> None:
    # Months shared by every cohort (label -1) and each cohort's own cells, which meet only through them.
    rng = np.random.default_rng(3)
    labels = np.array([-1] * 5 + [0] * 6 + [1] * 6 + [2] * 6)
    a = rng.normal(size=(labels.size, 40))
    matrix = a @ a.T + 40 * np.eye(labels.size)
    apart = (labels[:, None] >= 0) & (labels[None, :] >= 0) & (labels[:, None] != labels[None, :])
    matrix[apart] = 0.0
    monkeypatch.setattr(training, "DIRECT_FACTOR", direct)
    solve = training._block_factor(matrix, labels)
    rhs = rng.normal(size=(labels.size, 3))
    np.testing.assert_allclose(solve(rhs), np.linalg.solve(matrix, rhs), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(solve(rhs[:, 0]), np.linalg.solve(matrix, rhs[:, 0]), rtol=1e-10, atol=1e-12)
    not_definite = matrix.copy()
    not_definite[0, 0] = -1.0
    assert training._block_factor(not_definite, labels) is None  # the caller solves the whole matrix instead
