"""Journeys in a real browser: Debian chromium driven by playwright against the running app."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from lib.engine import query
from lib.engine.query import UNRESTRICTED
from lib.engine.store import SAMPLE_DIR, Engine

from .browser import browser_page, choose, metric_value, running_app, settle
from .conftest import FIXTURES

pytestmark = pytest.mark.browser


def test_changing_the_shift_filter_changes_the_overview_numbers():
    engine = Engine()
    ds = engine.open(SAMPLE_DIR)
    opening = query.default_filters(ds)
    expected_all = query.summarise(engine, ds, opening, UNRESTRICTED).reports
    expected_night = query.summarise(engine, ds, opening.with_values("shifts", ("Night",)),
                                     UNRESTRICTED).reports
    with running_app() as url, browser_page() as page:
        page.goto(url)
        settle(page)
        page.get_by_text("Overview").first.wait_for()
        assert metric_value(page, "Reports") == f"{expected_all:,}"
        injury_before = metric_value(page, "Officer injury rate")
        choose(page, "Shift", "Night")
        settle(page)
        page.wait_for_function(
            "v => [...document.querySelectorAll('[data-testid=stMetricValue]')]"
            ".some(e => e.innerText.trim() === v)", arg=f"{expected_night:,}", timeout=20000)
        assert metric_value(page, "Reports") == f"{expected_night:,}"
        assert metric_value(page, "Officer injury rate") != injury_before  # night is riskier
        assert "shifts=Night" in page.url  # the view can be shared as a link
        assert page.locator('[data-testid="stException"]').count() == 0


def test_shared_link_opens_with_its_filters_and_switching_dataset_clears_stale_chips():
    with running_app({"OSE_DATASET": str(FIXTURES / "small_canonical.csv")}) as url, \
            browser_page() as page:
        page.goto(url + "/?forces=Southshire+Police")
        settle(page)
        assert metric_value(page, "Reports") == "5"
        forces = page.locator('[data-testid="stMultiSelect"]').filter(has_text="Force").first
        assert "Southshire Police" in forces.inner_text()
        page.locator('[data-testid="stSelectbox"]').filter(has_text="Dataset").first.click()
        page.locator('[role="option"]').filter(has_text="Synthetic sample").first.click()
        settle(page)
        forces = page.locator('[data-testid="stMultiSelect"]').filter(has_text="Force").first
        # The first switch loads the sample into the engine, which can outlast the settle's first look.
        expect(forces).not_to_contain_text("Southshire Police", timeout=60_000)
        settle(page)
        assert re.fullmatch(r"[\d,]+", metric_value(page, "Reports"))
        assert metric_value(page, "Reports") != "5"
        assert "forces=" not in page.url
        assert "dataset=sample" in page.url  # not the default here, so the link names it


def test_upload_a_real_file_confirm_the_mapping_and_see_the_overview(tmp_path, realdata):
    dallas = realdata / "dallas_uof_2016_cpe_37-00049.csv"
    with running_app({"OSE_DATA_DIR": str(tmp_path / "var")}) as url, browser_page() as page:
        page.goto(url)
        settle(page)
        page.locator('[data-testid="stSidebarNav"] a').filter(has_text="Data").first.click()
        settle(page)
        page.locator('[data-testid="stFileUploaderDropzoneInput"]').first.set_input_files(str(dallas))
        settle(page)
        page.locator('[data-testid="stSelectbox"]').filter(has_text="Format").first.click()
        page.locator('[role="option"]').filter(has_text="Map the columns myself").first.click()
        settle(page)
        page.get_by_role("button", name="Read files").click()
        settle(page)
        page.get_by_text("Map the columns").first.wait_for(timeout=30000)
        # The proposal is shown for checking: the date and officer injury columns were found.
        editor = page.locator('[data-testid="stDataFrame"]').first
        editor.wait_for()
        force = page.get_by_label("Force these records belong to")
        force.fill("Dallas Police Department")
        force.press("Enter")
        settle(page)
        page.get_by_role("button", name="Save profile and read the files").click()
        settle(page)
        page.get_by_text("What was read").first.wait_for(timeout=60000)
        assert metric_value(page, "Rows read") == "2,383"
        assert metric_value(page, "Loaded") == "2,383"
        assert metric_value(page, "Set aside") == "0"
        page.get_by_role("button", name="Explore now").click()
        settle(page)
        page.get_by_text("Overview").first.wait_for()
        page.wait_for_function(
            "() => [...document.querySelectorAll('[data-testid=stMetricValue]')].length >= 4", timeout=30000)
        settle(page)
        # The Overview opens on the latest twelve months of the upload (2016): every report.
        assert metric_value(page, "Reports") == "2,383"
        assert metric_value(page, "Officer injury rate") == "9.8%"  # 234 of 2,383
        assert page.locator('[data-testid="stException"]').count() == 0


def test_a_us_export_with_a_misspelt_date_header_loads_right_in_six_clicks(tmp_path):
    from . import us_export

    path = tmp_path / "us_export.csv"
    truth = us_export.write(path)
    clicks = 0

    def click(locator) -> None:
        nonlocal clicks
        clicks += 1
        locator.click()

    with running_app({"OSE_DATA_DIR": str(tmp_path / "var")}) as url, browser_page() as page:
        page.goto(url)
        settle(page)
        click(page.locator('[data-testid="stSidebarNav"] a').filter(has_text="Data").first)  # 1
        settle(page)
        clicks += 1  # 2: choosing the file in the upload dialog
        page.locator('[data-testid="stFileUploaderDropzoneInput"]').first.set_input_files(str(path))
        settle(page)
        click(page.get_by_role("button", name="Read files"))  # 3: detect automatically: no format knows it
        settle(page)
        page.get_by_text("Map the columns").first.wait_for(timeout=30000)
        # The proposal is right as it stands: the misspelt date column, month first, no false report id.
        date = page.locator('[data-testid="stSelectbox"]').filter(has_text="Date (or date and time)").first
        assert date.locator("input").first.input_value() == "Occured_date_time"
        report_id = page.locator('[data-testid="stSelectbox"]').filter(has_text="Report id").first
        assert report_id.locator("input").first.input_value() == "(not in this extract)"
        expect(page.get_by_text("read only month first").first).to_be_visible()
        checked = page.locator('[data-testid="stRadio"]').filter(
            has_text="Order of day and month").locator("input:checked").first
        assert checked.evaluate("e => e.closest('label').innerText").startswith("Month first")
        force = page.get_by_label("Force these records belong to")
        click(force)  # 4
        force.fill("Springfield PD")
        force.press("Enter")
        settle(page)
        click(page.get_by_role("button", name="Save profile and read the files"))  # 5
        settle(page)
        page.get_by_text("What was read").first.wait_for(timeout=60000)
        assert metric_value(page, "Rows read") == f"{len(truth):,}"
        assert metric_value(page, "Loaded") == f"{len(truth):,}"
        assert metric_value(page, "Set aside") == "0"
        click(page.get_by_role("button", name="Explore now"))  # 6
        settle(page)
        page.wait_for_function(
            "() => [...document.querySelectorAll('[data-testid=stMetricValue]')].length >= 4", timeout=30000)
        settle(page)
        assert clicks <= 6
        # Every report on its true date: the Overview's year (the file's latest twelve months) holds them all,
        # and no month runs past the file's end.
        assert metric_value(page, "Reports") == f"{len(truth):,}"
        expect(page.get_by_text("1 Jan 2014 to 31 Dec 2014").first).to_be_visible()
        assert page.locator('[data-testid="stException"]').count() == 0


def test_every_asset_comes_from_the_app_itself_nothing_from_the_internet():
    # A force network blocks (and should not be asked for) font servers and CDNs: the page icon was fetched
    # from Google's font server on every load.
    from urllib.parse import urlsplit

    with running_app() as url, browser_page() as page:
        asked: list[str] = []
        page.on("request", lambda request: asked.append(request.url))
        page.goto(url)
        settle(page)
        page.wait_for_function(
            "() => [...document.querySelectorAll('[data-testid=stMetricValue]')].length >= 4", timeout=30000)
        page.locator('[data-testid="stSidebarNav"] a').filter(has_text="Officer risk").first.click()
        settle(page)
        here = urlsplit(url).netloc
        elsewhere = [u for u in asked if urlsplit(u).scheme in ("http", "https", "ws", "wss")
                     and urlsplit(u).netloc != here]
        assert asked and not elsewhere
        icon = page.evaluate("() => document.querySelector('link[rel*=icon]')?.href || ''")
        assert icon and (icon.startswith("data:") or urlsplit(icon).netloc == here)


def test_a_deep_link_as_the_first_request_gets_the_app_navigation():
    """A fresh server's first run must not fall back to Streamlit's folder navigation."""
    with running_app() as url, browser_page() as page:
        page.goto(url + "/quality")
        settle(page)
        page.get_by_text("How complete is each field?").first.wait_for(timeout=30000)
        links = page.locator('[data-testid="stSidebarNav"] a').all_inner_texts()
        assert [t.strip() for t in links] == ["Overview", "Officer risk", "Tactics", "Explore", "Training",
                                                  "Data", "Data quality", "Administration"]
        assert page.get_by_text("Filters").count() >= 1  # the router's sidebar ran too


def test_a_choice_in_the_rate_ratio_section_redraws_that_section_and_keeps_the_page():
    # The section is a fragment: choosing what to compare reruns it alone; the charts above stay drawn.
    from lib.model import schema

    with running_app() as url, browser_page() as page:
        page.goto(url + "/risk")
        settle(page)
        page.get_by_text("Rate ratios, with 95% intervals").first.wait_for()
        charts = page.locator('[data-testid="stVegaLiteChart"]')
        drawn = _charts_drawn(page)
        assert drawn >= 4  # the role x shift and hour heatmaps, the monthly trend, the ratios (and the funnel)
        reference = page.locator('[data-testid="stSelectbox"]').filter(has_text="Against the reference group").first
        chosen = reference.locator("input").first  # the combobox shows its value in its input
        assert chosen.input_value() in schema.SHIFTS  # shifts are compared first
        compared = page.locator('[data-testid="stSelectbox"]').filter(has_text="Compare groups of").first
        field = compared.locator("input").first
        field.click()
        field.fill("Officer role")  # typing narrows the list, so the option is found even on a slow machine
        page.locator('[role="option"]').filter(has_text="Officer role").first.click(timeout=60_000)
        settle(page)
        expect(chosen).to_have_value(re.compile("|".join(schema.OFFICER_ROLES)), timeout=30_000)
        assert _charts_drawn(page) == drawn  # the heatmaps, trend and funnel above and below are still there
        assert charts.count() == drawn
        assert page.locator('[data-testid="stException"]').count() == 0


def _charts_drawn(page, steady_s: float = 1.5, timeout_s: float = 60) -> int:
    """Return how many charts the page shows once their number has stopped changing (charts draw one by one)."""
    import time

    count, since, end = -1, time.time(), time.time() + timeout_s
    while time.time() < end:
        now = page.locator('[data-testid="stVegaLiteChart"]').count()
        if now != count:
            count, since = now, time.time()
        elif count > 0 and time.time() - since >= steady_s:
            return count
        page.wait_for_timeout(200)
    return count
