"""The plain-words journeys of issue 18 in a real browser: links that keep their promise, a demonstration that
groups small cells instead of hiding them, and honest empty states on an extract that lacks fields."""
from __future__ import annotations

import pandas as pd
import pytest
from playwright.sync_api import expect

from lib import synth
from lib.present import wording

from .browser import browser_page, metric_value, running_app, settle

pytestmark = pytest.mark.browser


def _visible_text(page) -> str:
    return page.locator('[data-testid="stMain"]').inner_text()


def test_a_shared_link_reopens_the_page_choices_and_a_link_to_a_missing_dataset_says_so():
    with running_app() as url, browser_page() as page:
        # Someone shares the Officer risk page on assaults, teams compared, night shift only.
        page.goto(url + "/risk?shifts=Night&risk_measure=officer_assaulted&risk_level=team")
        settle(page)
        page.get_by_text("Rate ratios, with 95% intervals").first.wait_for(timeout=60_000)
        expect(page.get_by_role("radio", name="Officer assault rate")).to_be_checked()
        expect(page.get_by_role("radio", name="Team")).to_be_checked()
        night = page.locator('[data-testid="stMultiSelect"]').filter(has_text="Shift").first
        expect(night).to_contain_text("Night")
        assert "risk_measure=officer_assaulted" in page.url and "risk_level=team" in page.url

        # A link made on an upload of another browser session: said so, and its filters not put on the sample.
        page.goto(url + "/?dataset=session&shifts=Night")
        settle(page)
        expect(page.get_by_text("This link was made on an upload explored for one session only").first
               ).to_be_visible(timeout=60_000)
        assert "the datasets open to you are: Synthetic sample" in _visible_text(page)
        shifts = page.locator('[data-testid="stMultiSelect"]').filter(has_text="Shift").first
        expect(shifts).not_to_contain_text("Night")
        assert page.locator('[data-testid="stException"]').count() == 0


def test_a_demonstration_groups_small_cells_and_shows_no_officer_level_table():
    with running_app({"OSE_DEMO": "1"}) as url, browser_page() as page:
        page.goto(url + "/risk")
        settle(page)
        # The last section, drawn once the page has run to its end.
        expect(page.get_by_text("Officer-level views are not shown under disclosure control").first
               ).to_be_visible(timeout=60_000)
        sidebar = page.locator('[data-testid="stSidebar"]').inner_text()
        assert "Demonstration" in sidebar and "single-user" not in sidebar
        text = _visible_text(page)
        assert wording.ROLE_GROUPING in text  # roles grouped, and the page says how
        assert "Four-hour bands, Monday to Friday together" in text
        # Rate ratios compare grouped roles: single roles are not offered.
        compared = page.locator('[data-testid="stSelectbox"]').filter(has_text="Compare groups of").first
        field = compared.locator("input").first
        field.click()
        field.fill("Officer role")  # typing narrows the list to the roles
        options = page.locator('[role="option"]')
        expect(options.first).to_be_visible(timeout=30_000)
        assert [o.strip() for o in options.all_inner_texts()] == ["Officer role (grouped)"]
        page.keyboard.press("Escape")
        assert page.locator('[data-testid="stException"]').count() == 0


def test_an_extract_without_officer_harm_or_times_gets_sentences_not_empty_charts(tmp_path):
    frame = synth.generate(4000, seed=11).reports.to_pandas()
    frame = frame.drop(columns=["officer_injured", "officer_assaulted"])
    frame["occurred_at"] = pd.to_datetime(frame["occurred_at"]).dt.normalize()  # dates only: no time of day
    path = tmp_path / "no_officer_harm.csv"
    frame.to_csv(path, index=False)
    with running_app({"OSE_DATASET": str(path)}) as url, browser_page() as page:
        page.goto(url)
        settle(page)
        page.get_by_text("Monthly trend").first.wait_for(timeout=60_000)
        assert metric_value(page, "Officer injury rate") == "Not recorded"
        assert metric_value(page, "Officer assault rate") == "Not recorded"
        text = _visible_text(page)
        assert "Not in this extract: officer injury, officer assault" in text
        assert "0.000000%" not in text

        page.goto(url + "/risk")  # the page's opening measure is not recorded: a sentence, not empty charts
        settle(page)
        expect(page.get_by_text("Not in this extract: officer injury").first).to_be_visible(timeout=60_000)
        assert page.locator('[data-testid="stVegaLiteChart"]').count() == 0

        page.goto(url + "/risk?risk_measure=subject_injured")  # a measure it records: no hours, said so
        settle(page)
        expect(page.get_by_text("This extract records no time of day").first).to_be_visible(timeout=60_000)
        assert page.locator('[data-testid="stException"]').count() == 0
