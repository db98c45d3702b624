"""The training models on officers x months matrices give the row panel's figures, and the matrices are kept on disk.

The page's figures are pinned in tests/test_training_figures.py (both paths). Here: panels built to have the
awkward parts a real roster has (months without shifts, officers trained in the first month or never, reports by
officers not in the roster, a month missing from the roster, perturbed counts), compared path against path.
"""
from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from lib.analysis import training, training_dense
from lib.privacy import cellkey
from tests import pins

RELATIVE = 1e-9


def roster(seed: int, officers: int = 240, months: int = 14, gap: bool = False) -> tuple[pd.DataFrame, ...]:
    """Return (officers, exposure, counts) with a planted fall after training and the awkward cases."""
    rng = np.random.default_rng(seed)
    ids = [f"OF{i:05d}" for i in range(officers)]
    calendar = pd.date_range("2023-01-01", periods=months, freq="MS")
    if gap:  # no officer worked (or was recorded) in one month
        calendar = calendar.delete(5)
    trained_at = rng.integers(-1, len(calendar), officers)  # -1: never trained
    trained_on = [None if t < 0 else (calendar[t] + pd.Timedelta(days=int(rng.integers(0, 27)))).date()
                  for t in trained_at]
    table = pd.DataFrame({"officer_id": ids, "officer_role": rng.choice(["Response", "Custody"], officers),
                          "team": rng.choice(["T1", "T2", "T3"], officers), "pst_trained_on": trained_on})
    rows = []
    counted = []
    for i, officer in enumerate(ids):
        for t, month in enumerate(calendar):
            if rng.random() < 0.12:  # a month with no shifts recorded
                continue
            shifts = int(rng.integers(0, 20))  # zero shifts: not judged
            rows.append((officer, month.date(), shifts))
            if rng.random() < 0.05:  # the same officer-month recorded twice: the shifts add up
                rows.append((officer, month.date(), int(rng.integers(1, 4))))
            rate = 0.08 * (0.7 if 0 <= trained_at[i] < t else 1.0)
            reports = int(rng.poisson(rate * max(shifts, 1)))
            if reports:
                injured = int(rng.binomial(reports, 0.3))
                counted.append((officer, month, reports, injured, int(rng.binomial(reports, 0.2))))
    for t, month in enumerate(calendar[:4]):  # reports by officers the roster does not list
        counted.append((f"ZZ{t}", month, 2, 1, 0))
    exposure = pd.DataFrame(rows, columns=["officer_id", "month", "shifts"])
    counts = pd.DataFrame(counted, columns=["officer_id", "month", "reports", "officer_injured", "officer_assaulted"])
    return table, exposure, counts


def with_keys(counts: pd.DataFrame, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return counts.assign(**{cellkey.key_column(m): rng.integers(0, 256, len(counts)) * counts[m]
                            for m in training.MEASURES})


def officer_key(ids: np.ndarray) -> np.ndarray:
    return np.array([sum(map(ord, str(i))) % 256 for i in ids], dtype=np.int64)


def both(officers: pd.DataFrame, exposure: pd.DataFrame, counts: pd.DataFrame, perturbed: bool) -> tuple:
    panel = training.panel_from_counts(counts, exposure, officers)
    if perturbed:
        panel[training.OFFICER_KEY] = officer_key(panel["officer_id"].to_numpy())
    rows = training.effects_and_profile(panel, perturbed=perturbed)
    dense = training_dense.DenseRoster(training.roster_months(exposure, officers))
    keys = officer_key(dense.ids.take(dense.officers).to_numpy()) if perturbed else None
    return rows, training_dense.effects_or_rows(training_dense.DensePanel(dense, counts, keys), perturbed=perturbed)


def plain(result: tuple) -> object:
    found, profile = result
    return {"found": found, "profile": profile.to_dict("records")}


@pytest.mark.parametrize("perturbed", [False, True], ids=["exact", "perturbed"])
@pytest.mark.parametrize("seed,gap", [(1, False), (2, True), (3, False)])
def test_the_matrices_give_the_row_panel_figures(seed: int, gap: bool, perturbed: bool) -> None:
    officers, exposure, counts = roster(seed, gap=gap)
    if perturbed:
        counts = with_keys(counts, seed)
    rows, dense = both(officers, exposure, counts, perturbed)
    assert rows[0]["reports"]["estimate"] is not None  # the comparison proves little without an estimate
    assert pins.differences(pins_ready(plain(dense)), pins_ready(plain(rows)), RELATIVE) == []


@pytest.mark.parametrize("perturbed", [False, True], ids=["exact", "perturbed"])
def test_a_date_window_that_leaves_months_without_reports_gives_the_row_panel_figures(perturbed: bool) -> None:
    # The page's default window is 12 months of a roster's 24: the months outside it have shifts and no report.
    # Their month effects run to minus infinity in the row-wise two-way fit; the matrices leave them out.
    officers, exposure, counts = roster(5, months=18)
    counts = counts[pd.to_datetime(counts["month"]) < pd.Timestamp("2024-01-01")]
    if perturbed:
        counts = with_keys(counts, 5)
    rows, dense = both(officers, exposure, counts, perturbed)
    assert rows[0]["reports"]["twfe"]["estimate"] is not None
    assert pins.differences(pins_ready(plain(dense)), pins_ready(plain(rows)), RELATIVE) == []


def test_a_window_that_leaves_out_the_rosters_first_month_converges_to_the_row_panel_figures() -> None:
    # The month indicators are every month but the roster's first. With that month outside the filter window
    # they cover every officer-month between them: collinear with the officers' levels, the fit wandered along
    # them until its 50th step. The first month in the window is the reference then.
    officers, exposure, counts = roster(6, months=18)
    counts = counts[pd.to_datetime(counts["month"]) >= pd.Timestamp("2023-04-01")]
    dense = training_dense.DenseRoster(training.roster_months(exposure, officers))
    view = training_dense.DensePanel(dense, counts).of("reports")
    for lead_months in (0, training.PRE_TREND_MONTHS):
        fit = training_dense._saturated(view, "reports", lead_months)["fit"]
        assert fit["iterations"] <= 8
        assert fit["used"][:2].tolist() == [False, False]  # February and March: no report, no estimate
        assert not fit["used"][2]  # April: the reference
    rows, matrices = both(officers, exposure, counts, perturbed=False)
    assert rows[0]["reports"]["pre_trend_p"] is not None
    assert pins.differences(pins_ready(plain(matrices)), pins_ready(plain(rows)), RELATIVE) == []


def pins_ready(value: object) -> object:
    """Turn frames, numpy scalars and NaN into what the pin comparison reads."""
    from tests.test_training_figures import plain as as_json

    return as_json(value)


def test_a_filter_that_counts_no_report_gives_no_estimate_and_the_same_counts() -> None:
    officers, exposure, counts = roster(4)
    rows, dense = both(officers, exposure, counts.iloc[:0], perturbed=False)
    assert dense[0]["reports"]["estimate"] is None
    assert pins.differences(pins_ready(plain(dense)), pins_ready(plain(rows)), RELATIVE) == []


def test_timestamps_with_a_time_zone_land_in_their_local_month() -> None:
    officers, exposure, counts = roster(5)
    zoned = counts.assign(month=pd.to_datetime(counts["month"]).dt.tz_localize("Europe/London"))
    dense = training_dense.DenseRoster(training.roster_months(exposure, officers))
    plain_panel = training_dense.DensePanel(dense, counts)
    zoned_panel = training_dense.DensePanel(dense, zoned)
    assert np.array_equal(plain_panel.view.values("reports"), zoned_panel.view.values("reports"))
    assert plain_panel.view.values("reports").sum() > 0


def test_the_matrices_kept_on_disk_give_the_same_figures(tmp_path) -> None:
    officers, exposure, counts = roster(6)
    dense = training_dense.DenseRoster(training.roster_months(exposure, officers))
    path = tmp_path / "cache" / "training" / "roster.pickle"
    training_dense.save(dense, path)
    again = training_dense.load(path)
    assert again is not None
    first = training_dense.effects_or_rows(training_dense.DensePanel(dense, counts))
    second = training_dense.effects_or_rows(training_dense.DensePanel(again, counts))
    assert pins.differences(pins_ready(plain(second)), pins_ready(plain(first)), 0.0) == []
    assert not list(path.parent.glob(".*partial"))  # written whole, then renamed


def test_a_damaged_or_foreign_file_is_rebuilt_not_trusted(tmp_path) -> None:
    path = tmp_path / "roster.pickle"
    path.write_bytes(b"\x80\x05not a pickle at all")
    assert training_dense.load(path) is None
    import pickle

    path.write_bytes(pickle.dumps((training_dense.FORMAT + 1, "an older layout")))
    assert training_dense.load(path) is None
    assert training_dense.load(tmp_path / "missing.pickle") is None


def test_officers_with_no_report_still_count_in_the_event_profile() -> None:
    # Officers the filter counts no report of have no row in the matrices: the profile counts them by pattern.
    officers, exposure, counts = roster(7)
    some = counts[counts["officer_id"].isin(counts["officer_id"].drop_duplicates().sample(frac=0.3, random_state=1))]
    rows, dense = both(officers, exposure, some, perturbed=False)
    assert dense[1]["officers"].sum() > training_dense.DensePanel(
        training_dense.DenseRoster(training.roster_months(exposure, officers)), some).view.shape[0]
    assert dense[1]["officers"].tolist() == rows[1]["officers"].tolist()


def test_a_roster_of_one_never_trained_officer_gives_no_estimate() -> None:
    officers = pd.DataFrame({"officer_id": ["A"], "officer_role": ["Response"], "team": ["T"],
                             "pst_trained_on": [None]})
    exposure = pd.DataFrame({"officer_id": ["A", "A"], "month": [date(2024, 1, 1), date(2024, 2, 1)],
                             "shifts": [10, 12]})
    counts = pd.DataFrame({"officer_id": ["A"], "month": pd.to_datetime(["2024-01-01"]), "reports": [3],
                           "officer_injured": [1], "officer_assaulted": [0]})
    rows, dense = both(officers, exposure, counts, perturbed=False)
    assert dense[0]["reports"]["estimate"] is None
    assert pins.differences(pins_ready(plain(dense)), pins_ready(plain(rows)), RELATIVE) == []


def test_the_page_keeps_its_matrices_and_compliance_on_disk_and_reads_them_back(fresh_caches, tmp_path) -> None:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from tests.conftest import ROOT

    fresh_caches.setenv("OSE_CACHE_DIR", str(tmp_path))
    import os
    import time

    (tmp_path / "training").mkdir()
    stale, recent = tmp_path / "training" / "old-version.pickle", tmp_path / "training" / "other-scope.pickle"
    for path, days in ((stale, 40), (recent, 3)):
        path.write_bytes(b"x")
        os.utime(path, (time.time() - days * 86_400,) * 2)

    def shown() -> tuple[list, list]:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
        at.switch_page("app_pages/training.py").run()
        assert not at.exception
        return [(m.label, m.value) for m in at.metric], [c.value for c in at.caption]

    first = shown()
    assert not stale.exists() and recent.exists()  # a dataset version unread for 40 days is removed, not one of 3
    recent.unlink()
    kept = sorted(tmp_path.rglob("*.*"))
    assert {p.parent.name for p in kept} == {"training", "compliance", "overdue"}
    assert {p.suffix for p in kept} == {".pickle", ".npy", ".parquet"}  # the matrices, key rows and frames
    files = {p: p.stat().st_ino for p in kept}
    st.cache_data.clear()
    st.cache_resource.clear()  # a restarted server: nothing in memory, the files on disk
    assert shown() == first
    assert {p: p.stat().st_ino for p in sorted(tmp_path.rglob("*.*"))} == files  # read, not written again
    assert any(value.startswith("-") for label, value in first[0] if label == "Change in use of force")


def test_a_cache_folder_that_cannot_be_written_costs_time_not_the_page(fresh_caches, tmp_path) -> None:
    from streamlit.testing.v1 import AppTest

    from tests.conftest import ROOT

    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    fresh_caches.setenv("OSE_CACHE_DIR", str(blocked / "cache"))  # no folder can be made under a file
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    at.switch_page("app_pages/training.py").run()
    assert not at.exception
    assert any(m.label == "Change in use of force" and m.value.startswith("-") for m in at.metric)


def test_the_row_panel_made_from_the_matrices_gives_their_figures() -> None:
    # The path for a panel the cell fit refuses: the same officer-months, as rows, through `training`.
    officers, exposure, counts = roster(8)
    dense = training_dense.DenseRoster(training.roster_months(exposure, officers))
    panel = training_dense.DensePanel(dense, counts)
    rows = training.effects_and_profile(training_dense.row_panel(panel))
    assert pins.differences(pins_ready(plain(training_dense.effects_and_profile(panel))), pins_ready(plain(rows)),
                            RELATIVE) == []


def test_reports_counted_one_by_one_give_the_matrices_and_row_panel_of_counts_per_officer_month() -> None:
    # The page's path counts each report into the matrices (injuries and assaults into matrices of the officers
    # with one); a panel the cell fit refuses goes to the row path from those.
    officers, exposure, counts = roster(9)
    counts = with_keys(counts, 9)
    dense = training_dense.DenseRoster(training.roster_months(exposure, officers))
    reports = counts.loc[counts.index.repeat(counts["reports"])].copy()
    nth = reports.groupby(level=0).cumcount().to_numpy()
    key = reports[cellkey.key_column("reports")].to_numpy() // reports["reports"].to_numpy()
    ordinal = training._month_ordinal(pd.to_datetime(reports["month"]).to_numpy())
    keys = officer_key(dense.ids.take(dense.officers).to_numpy())
    for perturbed in (False, True):
        by_report = training_dense.DensePanel.from_reports(
            dense, dense.rows(reports["officer_id"]), ordinal, (nth < reports["officer_injured"]).to_numpy(),
            (nth < reports["officer_assaulted"]).to_numpy(), key if perturbed else None, keys)
        by_month = training_dense.DensePanel(dense, counts.assign(**{
            cellkey.key_column(m): key_sum(reports, nth, key, m) for m in training.MEASURES}), keys)
        assert by_report.of("officer_injured").shape[0] < by_report.of("reports").shape[0]
        assert pins.differences(pins_ready(plain(training_dense.effects_and_profile(by_report, perturbed))),
                                pins_ready(plain(training_dense.effects_and_profile(by_month, perturbed))),
                                RELATIVE) == []
        rows = training_dense.row_panel(by_report)
        expected = training_dense.row_panel(by_month)
        columns = sorted(rows.columns) if perturbed else sorted(c for c in rows.columns if "key" not in c)
        pd.testing.assert_frame_equal(rows[columns], expected[columns])


def key_sum(reports: pd.DataFrame, nth: np.ndarray, key: np.ndarray, measure: str) -> np.ndarray:
    """Each officer-month's sum of its reports' keys that count towards measure (as the engine adds them)."""
    counted = np.ones(len(reports), dtype=bool) if measure == "reports" else nth < reports[measure].to_numpy()
    return pd.Series(np.where(counted, key, 0)).groupby(reports.index.to_numpy()).sum().to_numpy()
