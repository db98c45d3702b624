"""Numbers said in words: rates with their counts, changes between periods."""
from __future__ import annotations

from datetime import date

from lib.engine.query import Filters, Rate, Summary
from lib.present import wording


def test_percent_and_missing_values():
    assert wording.percent(0.0512) == "5.1%"
    assert wording.percent(float("nan")) == "–"


def test_rate_detail_names_counts_interval_and_unanswered():
    text = wording.rate_detail(Rate("Officer injury rate", 3, 9, 1))
    assert text.startswith("Officer injury rate: 3 of 9 reports answering (95% interval 12.1% to 64.6%)")
    assert text.endswith("1 (10.0%) not answered")
    assert "no report answered" in wording.rate_detail(Rate("Officer injury rate", 0, 0, 5))


def test_changes_against_previous_period():
    assert wording.count_change(1100, 1000) == "+100 (+10.0%)"
    assert wording.count_change(5, 0) is None
    now, before = Rate("x", 6, 100, 0), Rate("x", 5, 100, 0)
    assert wording.rate_change(now, before) == "+1.0 pp"
    assert wording.rate_change(now, Rate("x", 0, 0, 3)) is None


def test_period_phrase_says_when_there_is_nothing_to_compare():
    prev = Filters(date_from=date(2023, 4, 1), date_to=date(2024, 3, 31))
    assert "1 Apr 2023 to 31 Mar 2024" in wording.period_phrase(prev, Summary(10, 9, 8))
    assert "no change is shown" in wording.period_phrase(prev, Summary(0, 0, 0))
    assert wording.period_phrase(None, None) == "No earlier period to compare with."
