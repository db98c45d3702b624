"""Plain-language wording of numbers: percentages, rates with their counts, period changes."""
from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date, timedelta

from lib.engine.query import Filters, Rate, Summary
from lib.privacy.disclosure import DEFAULT_THRESHOLD

# One sentence each, for a supervisor with no statistics training: the tooltip of every heading that uses the term.
GLOSSARY: dict[str, str] = {
    "interval": "A 95% interval is the range the true figure very likely lies in, given how many reports there "
                "are: wide when there are few, narrow when there are many.",
    "rate ratio": "A rate ratio compares two groups' rates: 2 means twice as often as the reference group, 0.5 "
                  "half as often, and an interval that includes 1 means the data cannot tell them apart.",
    "funnel plot": "A funnel plot puts each group at its size: small groups swing more by chance, so the limits "
                   "widen for them, and only a group outside the limits is higher or lower than expected.",
    "shrunken rate": "A shrunken rate is an officer's rate pulled towards the average in proportion to how little "
                     "is known about them, so a handful of reports cannot put someone at the top by luck.",
    "rank interval": "A rank interval is the range of places an officer could hold once chance is allowed for: "
                     "'1st to 1,100th' means the data cannot say they are near the top.",
    "difference in differences": "Trained officers are compared with officers not yet trained over the same "
                                 "months, so a change that hit everyone (a new policy, the season) is not "
                                 "credited to training.",
    "counting unit": "The counting unit is what one count stands for: a report is one officer's use of force on one "
                     "subject, so an incident with three officers gives three reports.",
    "highest use": "A Taser (CED) use counts once per report at its highest level, so a Taser drawn, aimed and then "
                   "fired counts as fired only, as the national statistics count it.",
    "case mix": "Adjusted for case mix means compared as if the groups had faced the same kinds of incident (role, "
                "shift, resistance, crewing, place), so a group is not blamed for harder work.",
}


def glossary(*terms: str) -> str:
    """Return the glossary sentences of these terms, for a heading's tooltip."""
    return " ".join(GLOSSARY[t] for t in terms)


def hidden(threshold: int = DEFAULT_THRESHOLD) -> str:
    """Say that disclosure control hides a value ('suppressed (<10)')."""
    return f"suppressed (<{threshold})"


def count(value: int | None, threshold: int = DEFAULT_THRESHOLD) -> str:
    """Format a count ('1,234'), or say it is suppressed when disclosure control hid it (None)."""
    return hidden(threshold) if value is None else f"{value:,}"


def rate_value(rate: Rate, threshold: int = DEFAULT_THRESHOLD) -> str:
    """Format a rate as a percentage, or say it is suppressed when a count behind it is hidden."""
    return hidden(threshold) if rate.hidden else percent(rate.rate)


def percent(value: float, digits: int = 1) -> str:
    """Format a proportion as a percentage ('5.1%'); a dash when it cannot be computed."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value * 100:.{digits}f}%"


def rate_detail(rate: Rate, threshold: int = DEFAULT_THRESHOLD) -> str:
    """Say a rate with its numerator, denominator, interval and unanswered share, in its counting unit."""
    unit = rate.unit
    if rate.denominator is None:
        return f"{rate.label}: {hidden(threshold)}: fewer than {threshold} {unit} answered, so no rate is shown"
    if rate.numerator is None:
        return (f"{rate.label}: {hidden(threshold)}: fewer than {threshold} of {rate.denominator:,} {unit} "
                "answering said yes, so no rate is shown")
    if not rate.denominator:
        return f"{rate.label}: no report answered this question"
    low, high = rate.interval
    text = (f"{rate.label}: {rate.numerator:,} of {rate.denominator:,} {unit} answering "
            f"(95% interval {percent(low)} to {percent(high)})")
    if unit == "incidents":
        text += "; recorded once per incident, so an incident counts once however many officers' reports repeat it"
    if rate.unanswered:  # None (hidden) or 0: nothing to add
        text += f"; {rate.unanswered:,} ({percent(rate.unanswered_share)}) not answered"
    return text


def count_change(current: int | None, previous: int | None) -> str | None:
    """Describe the change in a count against the previous period, or None if there is none (or it is hidden)."""
    if current is None or previous is None or previous == 0:
        return None
    diff = current - previous
    return f"{diff:+,} ({diff / previous:+.1%})"


def rate_change(current: Rate, previous: Rate | None) -> str | None:
    """Describe the change in a rate in percentage points, or None if it cannot be computed."""
    if previous is None or not previous.denominator or not current.denominator:
        return None
    if previous.hidden or current.hidden:
        return None
    return f"{(current.rate - previous.rate) * 100:+.1f} pp"


def rate_change_verdict(current: Rate, previous: Rate | None) -> tuple[bool, str] | None:
    """Return whether a rate's change against the previous period is clear, and a sentence saying so with its
    interval; None where no change can be computed (no earlier period, nothing answered, a count hidden).

    Clear means the 95% interval of the difference (Newcombe's hybrid score interval for two proportions)
    excludes no change: on two periods with the same underlying rate, about one change in twenty is called
    clear by chance (tests/test_wording.py checks the rate on simulated periods).
    """
    d = _difference(current, previous)
    if d is None:
        return None
    clear, reading = _reading(d)
    if not clear:
        reading += ": a difference this size could be chance"
    return clear, (f"Change against the previous period: {d.difference * 100:+.1f} pp (95% interval "
                   f"{_pp(d.low)} to {_pp(d.high)} pp), {reading}.")


def _difference(current: Rate, previous: Rate | None):
    if rate_change(current, previous) is None or previous is None:
        return None
    from lib.analysis import stats

    return stats.rate_difference(current.numerator, current.denominator, previous.numerator, previous.denominator)


def _reading(d) -> tuple[bool, str]:
    """Read a difference: clear when its interval excludes no change ('a clear rise'), else 'not a clear change'."""
    clear = bool(d.low > 0 or d.high < 0)
    return clear, ("a clear rise" if d.difference > 0 else "a clear fall") if clear else "not a clear change"


ROLE_GROUPING = ("Roles grouped: Response, Neighbourhood and Custody as recorded, every other role (roads policing, "
                 "public order, armed response, investigation, dog handler, other) in 'Other roles', "
                 "so that no group is too small to show.")


def headline_interval(current: Rate, previous: Rate | None) -> str:
    """Say, under a headline rate, its 95% interval and its change's ('' when the rate is hidden or not recorded):
    an estimate shown alone reads as more certain than it is."""
    if current.hidden or not current.denominator:
        return ""
    low, high = current.interval
    text = f"95% interval {percent(low)} to {percent(high)}"
    d = _difference(current, previous)
    if d is None:
        return text + "."
    return f"{text}. Change {_pp(d.difference)} pp ({_pp(d.low)} to {_pp(d.high)}): {_reading(d)[1]}."


def _pp(value: float) -> str:
    """Format a difference of proportions in percentage points, with a second decimal where one would read 0.0."""
    text = f"{value * 100:+.1f}"
    return f"{value * 100:+.2f}" if text in ("+0.0", "-0.0") and value != 0 else text


def part_month_marks(filters: Filters, first: date | None, last: date | None) -> dict[date, str]:
    """Return the months at either end of a view that hold only part of a month's data, by their first day,
    each with its note ("Data from 16 Jun only"): the trends draw them apart and the caption names them."""
    if first is None or last is None:
        return {}
    start = max(filters.date_from or first, first)
    end = min(filters.date_to or last, last)
    if end < start:
        return {}
    marks: dict[date, str] = {}
    following = date(end.year + end.month // 12, end.month % 12 + 1, 1)
    ends_early = (following - end).days != 1
    if start.day != 1:
        marks[start.replace(day=1)] = (f"Data from {start.day} {start:%b} to {end.day} {end:%b} only"
                                       if ends_early and start.replace(day=1) == end.replace(day=1)
                                       else f"Data from {start.day} {start:%b} only")
    if ends_early and end.replace(day=1) not in marks:
        marks[end.replace(day=1)] = f"Data up to {end.day} {end:%b} only"
    return marks


def part_months_note(filters: Filters, first: date | None, last: date | None,
                     drawn: tuple[str, str] = ("a lighter bar or a hollow point", "lighter bars or hollow points"),
                     ) -> str:
    """Say which months at either end of a trend hold only part of a month's data ('' when none), so a short bar or
    a rate on few reports at the edge is not read as a change. `drawn`: how the charts mark one, and several."""
    marks = part_month_marks(filters, first, last)
    if not marks:
        return ""
    parts = [f"{month:%B %Y} holds {note[0].lower()}{note[1:]}" for month, note in marks.items()]
    if len(parts) == 1:
        return (f"Part month: {parts[0]} ({drawn[0]} on the charts). Its count is short and its rate rests on fewer "
                "reports: read it as incomplete, not as a change.")
    return (f"Part months: {'; '.join(parts)} ({drawn[1]} on the charts). Their counts are short and their rates "
            "rest on fewer reports: read them as incomplete, not as changes.")


def period_phrase(previous: Filters | None, previous_summary: Summary | None, current: Filters | None = None,
                  first: date | None = None, last: date | None = None) -> str:
    """Say which period the changes compare against, and whether it holds any data.

    current, first, last: this period and the data's first and last days. With them, a missing comparison
    says why (the data start inside the period before), and a period cut to the last day of data says so.
    """
    if previous is None or previous.date_from is None or previous.date_to is None:
        part = _part_month_reason(current, first, last)
        if part:
            return part
        if first is not None:
            return (f"No change is shown: the data start on {_day(first)}, so they do not hold the whole period "
                    "of the same length before this one.")
        return "No earlier period to compare with."
    span = f"{_day(previous.date_from)} to {_day(previous.date_to)}"
    if previous_summary is None or previous_summary.reports is None:
        return f"Too few reports in the previous period to compare ({span}), so no change is shown."
    if previous_summary.reports == 0:
        return f"No reports in the previous period of the same length ({span}), so no change is shown."
    cut = (current is not None and current.date_to is not None and last is not None and current.date_to > last)
    if cut:
        return (f"Changes compare the days with data (to {_day(last)}) with as many days just before: {span}, so "
                "days without data are not read as a fall.")
    return f"Changes compare with the previous period of the same length: {span}."


def _part_month_reason(current: Filters | None, first: date | None, last: date | None) -> str:
    """Say why whole months chosen round a part month of the data get no change ('' if that is not why)."""
    if current is None or current.date_from is None or current.date_to is None:
        return ""
    if last is not None and current.date_to > last and (last + timedelta(days=1)).day != 1:
        month_before = last.replace(day=1) - timedelta(days=1)
        return (f"No change is shown: {last:%B %Y} holds data up to {last.day} {last:%b} only, and a part month is "
                f"not compared with a whole one. End the period in {month_before:%B %Y} to compare whole months.")
    if first is not None and current.date_from < first and first.day != 1:
        month_after = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
        return (f"No change is shown: {first:%B %Y} holds data from {first.day} {first:%b} only, and a part month is "
                f"not compared with a whole one. Start the period in {month_after:%B %Y} to compare whole months.")
    return ""


def _day(d: date) -> str:
    return f"{d.day} {d:%b %Y}"


def unavailable(summary: Summary) -> list[str]:
    """Return the harm rates this data cannot give because no report answers the field."""
    if not summary.reports:  # none, or hidden
        return []
    return [rate.label for rate in summary.rates.values() if rate.denominator == 0]


def unavailable_message(labels: list[str]) -> str:
    """Explain why some rates are missing, instead of showing an empty chart."""
    fields = ", ".join(label.replace(" rate", "").lower() for label in labels)
    return (f"Not in this extract: {fields}. No report answers these fields, so the "
            f"{', '.join(labels)} cannot be computed. Unknown answers are never counted as 'No'.")


INCIDENTS_NOT_RECORDED = "Incidents: not recorded in this extract"


def incidents_phrase(summary: Summary, count_text: Callable[[int | None], str]) -> str:
    """Say how many incidents a view holds ('1,879 incidents'), or that the extract records no incident id."""
    if not summary.incidents_recorded:
        return INCIDENTS_NOT_RECORDED
    return f"{count_text(summary.incidents)} incidents"


OFFICERS_NOT_RECORDED = "officers: not recorded in this extract"


def officers_phrase(summary: Summary, count_text: Callable[[int | None], str]) -> str:
    """Say how many officers a view holds, or that its reports carry no officer id (never '0 officers')."""
    if summary.officers == 0 and summary.reports > 0:
        return OFFICERS_NOT_RECORDED
    return f"{count_text(summary.officers)} officers"


def unit_note(rate: Rate) -> str:
    """Say what a rate counts ('Officer injury rate counts incidents: ...'), for a caption beside it."""
    if rate.unit != "incidents":
        return f"{rate.label} counts reports (one officer's use of force on one subject)."
    return (f"{rate.label} counts incidents: the extract records it once per incident, so an incident counts "
            "once however many officers' reports repeat it.")


def counting_unit(summary: Summary) -> str:
    """Name the counting unit of a view's harm measures for a caption ('Counting unit: reports.')."""
    rates = list(summary.rates.values())
    per_incident = [r.label for r in rates if r.unit == "incidents"]
    if not per_incident:
        return "Counting unit: reports."
    if len(per_incident) == len(rates):
        return ("Counting unit: incidents for the rates (recorded once per incident, so an incident counts once "
                "however many officers' reports repeat it); reports for the report counts.")
    names = [label.lower() for label in per_incident]
    named = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    verb = "counts" if len(names) == 1 else "count"
    return (f"Counting unit: reports; the {named} {verb} incidents (recorded once per incident, so an "
            "incident counts once however many officers' reports repeat it).")
