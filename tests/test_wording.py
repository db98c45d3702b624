"""Numbers said in words: rates with their counts, changes between periods."""
from __future__ import annotations

from datetime import date

import numpy as np
import pytest

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
    # Why there is none: the data start inside the period before.
    assert "the data start on 5 Jan 2024" in wording.period_phrase(None, None, first=date(2024, 1, 5))
    # A period of days running past the data's last day: the comparison is of the days with data, and says so.
    days = Filters(date_from=date(2023, 7, 10), date_to=date(2024, 6, 30))
    cut = wording.period_phrase(Filters(date_from=date(2022, 7, 26), date_to=date(2023, 7, 9)), Summary(10, 9, 8),
                                current=days, last=date(2024, 6, 15))
    assert "days with data (to 15 Jun 2024)" in cut and "26 Jul 2022 to 9 Jul 2023" in cut
    # Whole months chosen round a part month (a viewer picks whole months): no change, and how to get one.
    months = Filters(date_from=date(2023, 7, 1), date_to=date(2024, 6, 30))
    assert wording.period_phrase(None, None, months, date(2020, 1, 1), date(2024, 6, 15)) == (
        "No change is shown: June 2024 holds data up to 15 Jun only, and a part month is not compared with a whole "
        "one. End the period in May 2024 to compare whole months.")
    assert "Start the period in August 2023" in wording.period_phrase(None, None, months, date(2023, 7, 20),
                                                                      date(2024, 6, 30))


def test_a_change_is_clear_only_when_its_interval_excludes_no_change():
    # Newcombe (1998), example (a): 56/70 against 48/80, difference 0.2000, 95% interval 0.0524 to 0.3339.
    clear, text = wording.rate_change_verdict(Rate("x", 56, 70, 0), Rate("x", 48, 80, 0))
    assert clear and text == ("Change against the previous period: +20.0 pp (95% interval +5.2 to +33.4 pp), "
                              "a clear rise.")
    # +0.1 pp on a few thousand reports, and -0.3 pp: neither is clear, whatever the sign.
    assert wording.rate_change_verdict(Rate("x", 101, 1000, 0), Rate("x", 100, 1000, 0))[0] is False
    assert wording.rate_change_verdict(Rate("x", 97, 1000, 0), Rate("x", 100, 1000, 0))[0] is False
    assert wording.rate_change_verdict(Rate("x", 6, 100, 0), Rate("x", 0, 0, 3)) is None
    assert wording.rate_change_verdict(Rate("x", None, 100, 0), Rate("x", 5, 100, 0)) is None  # hidden


def test_a_headline_rate_shows_its_interval_and_its_changes_under_it():
    # Newcombe (1998), example (a) again; the Wilson interval of 56/70 is 0.6920 to 0.8769 (his table I).
    assert wording.headline_interval(Rate("x", 56, 70, 0), Rate("x", 48, 80, 0)) == (
        "95% interval 69.2% to 87.7%. Change +20.0 pp (+5.2 to +33.4): a clear rise.")
    assert wording.headline_interval(Rate("x", 97, 1000, 0), Rate("x", 100, 1000, 0)).endswith(": not a clear change.")
    assert wording.headline_interval(Rate("x", 56, 70, 0), None) == "95% interval 69.2% to 87.7%."
    assert wording.headline_interval(Rate("x", None, 100, 0), None) == ""  # hidden: no interval of a hidden rate
    assert wording.headline_interval(Rate("x", 0, 0, 5), None) == ""  # nothing answered


def test_change_verdicts_fire_at_their_nominal_rate_on_periods_with_nothing_planted_and_find_a_planted_change():
    rng = np.random.default_rng(17)
    trials, calls = 4000, 0
    for _ in range(trials):
        n1, n0 = rng.integers(300, 3000, size=2)
        a1, a0 = rng.binomial(n1, 0.09), rng.binomial(n0, 0.09)  # the same rate in both periods
        calls += wording.rate_change_verdict(Rate("x", int(a1), int(n1), 0), Rate("x", int(a0), int(n0), 0))[0]
    assert 0.035 <= calls / trials <= 0.065  # about one in twenty, as a 95% interval promises
    found = sum(wording.rate_change_verdict(Rate("x", int(rng.binomial(4000, 0.12)), 4000, 0),
                                            Rate("x", int(rng.binomial(4000, 0.09)), 4000, 0))[0]
                for _ in range(500))
    assert found / 500 >= 0.95  # 9% to 12% on 4,000 reports a period: found nearly always


@pytest.mark.parametrize(("low", "high", "n", "places", "reading"), [
    (11, 3998, 5304, "11th to 3,998th of 5,304", "too uncertain to place"),
    (1, 40, 5304, "1st to 40th of 5,304", "clearly in the highest 1%"),
    (2, 250, 5304, "2nd to 250th of 5,304", "clearly in the highest 5%"),
    (3, 1100, 5304, "3rd to 1,100th of 5,304", "highest quarter; place uncertain"),
    (12, 2500, 5304, "12th to 2,500th of 5,304", "higher half; place very uncertain"),
    (111, 113, 5304, "111th to 113th of 5,304", "clearly in the highest 5%"),
])
def test_a_rank_interval_gets_a_plain_reading(low, high, n, places, reading):
    from lib.present import tables

    assert (tables.rank_places(low, high, n), tables.rank_reading(low, high, n)) == (places, reading)
