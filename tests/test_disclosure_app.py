"""Disclosure control in the running app: demo mode and viewers never see a small count, on any page."""
from __future__ import annotations

import json

import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from lib.present import wording
from lib.privacy import disclosure

from .conftest import ROOT

COUNT_COLUMNS = {c.name for spec in disclosure.SPECS.values() for c in spec.counts}
PAGES = ["overview", "risk", "tactics", "explore", "training"]
# A narrow view of the sample: one small force, Night shift, so many cells hold fewer than 10 reports.
NARROW = {"forces": "Cumbria Constabulary", "shifts": "Night"}


@pytest.fixture(autouse=True)
def _demo(fresh_caches, tmp_path):
    fresh_caches.setenv("OSE_DEMO", "1")
    fresh_caches.delenv("OSE_AUTH_CONFIG", raising=False)
    fresh_caches.setenv("OSE_DATA_DIR", str(tmp_path / "var"))


def chart_rows(at: AppTest) -> list[dict]:
    rows: list[dict] = []
    for el in at.get("vega_lite_chart"):
        for dataset in el.proto.datasets:
            table = pa.ipc.open_stream(dataset.data.data).read_all()
            rows += table.to_pylist()
        spec = json.loads(el.proto.spec)
        if isinstance(spec.get("data"), dict):
            rows += spec["data"].get("values", [])
    return rows


def small_counts(rows: list[dict], threshold: int = disclosure.DEFAULT_THRESHOLD) -> list[tuple[str, object]]:
    return [(k, v) for r in rows for k, v in r.items()
            if k in COUNT_COLUMNS and isinstance(v, (int, float)) and 0 < v < threshold]


def open_page(page: str, **params) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    if page != "overview":
        at.switch_page(f"app_pages/{page}.py").run()
    return at


def test_the_narrow_view_really_has_small_counts_to_hide(engine):
    from lib.engine import query
    from lib.engine.store import SAMPLE_DIR

    ds = engine.open(SAMPLE_DIR)
    filters = query.filters_from_mapping({"forces": [NARROW["forces"]], "shifts": [NARROW["shifts"]]})
    frame = query.breakdown(engine, ds, filters, query.UNRESTRICTED, ("officer_role",))
    assert ((frame["reports"] > 0) & (frame["reports"] < 10)).any()


@pytest.mark.parametrize("page", PAGES)
def test_demo_mode_shows_no_small_count_on_any_page(page):
    at = open_page(page, **NARROW)
    assert not at.exception
    assert any("Demonstration" in w.value for w in at.warning)  # the banner, on every page
    rows = chart_rows(at)
    assert small_counts(rows) == []
    assert not at.sidebar.toggle  # disclosure control cannot be switched off in a demo


def test_demo_mode_hides_something_and_says_so():
    at = open_page("overview", **NARROW)
    assert any("hidden" in c.value for c in at.caption)
    plain = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    for key, value in NARROW.items():
        plain.query_params[key] = value
    import os
    del os.environ["OSE_DEMO"]
    plain.run()
    assert small_counts(chart_rows(plain))  # without disclosure control the same view shows small counts


def test_demo_mode_offers_synthetic_data_only(tmp_path, monkeypatch, realdata):
    monkeypatch.setenv("OSE_DATASET", str(next(realdata.rglob("*.csv"))))
    at = open_page("overview")
    assert at.selectbox(key="dataset_choice").options == ["Synthetic sample (not real data)"]
    pages = {p.split("/")[-1].removesuffix(".py") for p in
             (str(i.get("script_path")) for i in at._registered_pages.values())}
    assert "data" not in pages and "admin" not in pages  # a local demo has no data or accounts to manage


def test_a_bad_threshold_setting_stops_the_app_with_a_message(monkeypatch):
    monkeypatch.setenv("OSE_DISCLOSURE_THRESHOLD", "ten")
    at = open_page("overview")
    assert not at.exception
    assert any("will not start" in e.value and "OSE_DISCLOSURE_THRESHOLD" in e.value for e in at.error)
    assert not at.metric and not at.get("vega_lite_chart")


def test_a_demonstration_shows_hours_in_bands_not_a_wall_of_hidden_cells_and_says_it_is_one():
    at = open_page("risk")
    assert not at.exception
    heatmaps = [json.loads(el.proto.spec) for el in at.get("vega_lite_chart")]
    by_hours = next(el for el, spec in zip(at.get("vega_lite_chart"), heatmaps, strict=True)
                    if "Hours of day" in json.dumps(spec))
    rows = [r for d in by_hours.proto.datasets for r in pa.ipc.open_stream(d.data.data).read_all().to_pylist()]
    assert {r["hours"] for r in rows} >= {"00:00-03:59", "20:00-23:59"} and "hour" not in rows[0]
    hidden = sum(r["label"] == "hidden" for r in rows)
    # Single hours of seven days hid 119 of 168 cells (71%) of this view; four-hour bands of seven days 7 of 42;
    # four-hour bands of Monday to Friday, Saturday and Sunday none.
    assert len(rows) == 18 and hidden == 0
    assert {r["days"] for r in rows} == {"Monday to Friday", "Saturday", "Sunday"}
    assert not any("Hour of day" in json.dumps(spec) for spec in heatmaps)
    assert any("Demonstration" in c.value for c in at.sidebar.caption)
    assert not any("single-user" in c.value for c in at.sidebar.caption)
    assert not [d for d in at.dataframe if any("Officer" in str(c) and "pseudonym" in str(c) for c in d.value.columns)]
    assert not any("officers against the average" in h.value for h in at.subheader)


def _rows(element) -> list[dict]:
    return [r for d in element.proto.datasets for r in pa.ipc.open_stream(d.data.data).read_all().to_pylist()]


def test_a_demonstration_groups_roles_rather_than_hiding_the_small_ones():
    """Single roles hid 12 of 27 role-by-shift cells of the demonstration's Officer risk page, and two roles on the
    Overview and in Explore: grouped, every cell is shown, and the pages say how they are grouped."""
    groups = ["Response", "Neighbourhood", "Custody", "Other roles"]
    at = open_page("risk")
    assert not at.exception
    grid = next(el for el in at.get("vega_lite_chart") if "Officer role (grouped)" in el.proto.spec)
    cells = _rows(grid)
    assert len(cells) == 12 and {r["role_group"] for r in cells} == set(groups)
    assert not [r for r in cells if r["label"] == "hidden"]
    assert any(wording.ROLE_GROUPING in c.value for c in at.caption)
    assert not any('"officer_role"' in el.proto.spec for el in at.get("vega_lite_chart"))
    assert at.selectbox(key="risk_dimension").options[1] == "Officer role (grouped)"

    at.switch_page("app_pages/overview.py").run()
    assert [h.value for h in at.subheader if h.value.startswith("By ")] == ["By officer role (grouped)", "By shift"]
    table = next(d.value for d in at.dataframe if "Officer role (grouped)" in d.value.columns)
    assert table["Officer role (grouped)"].tolist() == groups and table.notna().all().all()

    at.switch_page("app_pages/explore.py").run()
    assert not at.exception
    assert at.multiselect(key="explore_dimensions").value == ["role_group"]
    assert "Officer role" not in at.multiselect(key="explore_dimensions").options
    assert "Hour of day" not in at.multiselect(key="explore_dimensions").options
    assert any(wording.ROLE_GROUPING in c.value for c in at.caption)
