"""What a view is: the filters a user sets, the dimensions a breakdown can use, and the periods.

Every query starts from `scoped_reports`, which applies the user's data scope (the forces and areas
they may see) before anything else, so no page can forget it; `filtered_reports` adds the filters.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from datetime import date, datetime, time, timedelta

import ibis

from lib.engine.store import Dataset, Engine
from lib.model import schema
from lib.model.scope import Scope

NOT_RECORDED = "Not recorded"


@dataclass(frozen=True)
class FilterKind:
    """One kind of categorical filter: where its values live and how a sentence names them."""

    field: str
    column: str
    label: str
    phrase: str
    table: str = "reports"


FILTER_KINDS: tuple[FilterKind, ...] = (
    FilterKind("forces", "force", "Force", "{}"),
    FilterKind("areas", "area", "Area", "{}"),
    FilterKind("roles", "officer_role", "Officer role", "{} officers"),
    FilterKind("shifts", "shift", "Shift", "{} shift"),
    FilterKind("tactic_groups", "tactic_group", "Tactic group", "{} used", table="tactics"),
    FilterKind("tactics", "tactic", "Tactic", "{} used", table="tactics"),
    FilterKind("location_types", "location_type", "Location", "at {}"),
    FilterKind("age_bands", "subject_age_band", "Subject age", "subject aged {}"),
    FilterKind("genders", "subject_gender", "Subject gender", "{} subject"),
    FilterKind("ethnicities", "subject_ethnicity", "Subject ethnicity", "{} subject"),
)


KIND_BY_FIELD: dict[str, FilterKind] = {k.field: k for k in FILTER_KINDS}


@dataclass(frozen=True)
class Filters:
    """The global filter state: a date range (inclusive) and a set of values per filter kind."""

    date_from: date | None = None
    date_to: date | None = None
    forces: tuple[str, ...] = ()
    areas: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    shifts: tuple[str, ...] = ()
    tactic_groups: tuple[str, ...] = ()
    tactics: tuple[str, ...] = ()
    location_types: tuple[str, ...] = ()
    age_bands: tuple[str, ...] = ()
    genders: tuple[str, ...] = ()
    ethnicities: tuple[str, ...] = ()

    def values(self, kind: FilterKind) -> tuple[str, ...]:
        """Return the selected values of one filter kind."""
        return getattr(self, kind.field)

    def with_values(self, kind_field: str, values: tuple[str, ...]) -> Filters:
        """Return a copy with one filter kind set to the given values."""
        return replace(self, **{kind_field: tuple(values)})


def _join_words(values: tuple[str, ...]) -> str:
    if len(values) == 1:
        return values[0]
    return ", ".join(values[:-1]) + " or " + values[-1]


def _format_day(d: date) -> str:
    return f"{d.day} {d:%b %Y}"


def describe(filters: Filters) -> str:
    """Say in one human sentence which reports a filter state selects."""
    parts: list[str] = []
    if filters.date_from and filters.date_to:
        parts.append(f"{_format_day(filters.date_from)} to {_format_day(filters.date_to)}")
    elif filters.date_from:
        parts.append(f"from {_format_day(filters.date_from)}")
    elif filters.date_to:
        parts.append(f"up to {_format_day(filters.date_to)}")
    for kind in FILTER_KINDS:
        values = filters.values(kind)
        if values:
            parts.append(kind.phrase.format(_join_words(tuple(values))))
    if not parts:
        return "All reports"
    sentence = ", ".join(parts)
    return sentence[0].upper() + sentence[1:]


def _start_of(d: date) -> datetime:
    return datetime.combine(d, time.min)


def scoped_reports(engine: Engine, ds: Dataset, scope: Scope) -> ibis.Table:
    """Return the reports a scope may see: every query starts here."""
    r = engine.reports(ds)
    preds = []
    for allowed, column in ((scope.forces, "force"), (scope.areas, "area"), (scope.teams, "team")):
        if allowed is None:
            continue
        # A dataset without the column cannot show that a row is in scope, so it shows none.
        if allowed and column in r.columns:
            preds.append(r[column].cast("string").isin(sorted(allowed)))
        else:
            preds.append(ibis.literal(False))
    return r.filter(*preds) if preds else r


def filtered_reports(engine: Engine, ds: Dataset, filters: Filters, scope: Scope) -> ibis.Table:
    """Compile a filter state into one expression over the reports the scope may see."""
    r = scoped_reports(engine, ds, scope)
    preds = []
    if filters.date_from:
        preds.append(r.occurred_at >= _start_of(filters.date_from))
    if filters.date_to:
        preds.append(r.occurred_at < _start_of(filters.date_to + timedelta(days=1)))
    tactics = None
    for kind in FILTER_KINDS:
        values = list(filters.values(kind))
        if not values:
            continue
        if kind.table == "reports":
            preds.append(r[kind.column].isin(values))
        else:
            tactics = engine.tactics(ds) if tactics is None else tactics
            chosen = tactics.filter(tactics[kind.column].isin(values)).report_id
            preds.append(r.report_id.isin(chosen))
    return r.filter(*preds) if preds else r


# A dimension is a canonical column or a derived expression over the reports.
HOUR_BANDS = ("00:00-03:59", "04:00-07:59", "08:00-11:59", "12:00-15:59", "16:00-19:59", "20:00-23:59")
# Roles grouped: what a demonstration shows in place of single roles, the smaller of which it would hide. The three
# largest keep their names; every other recorded role joins the fourth group.
ROLE_GROUPS = ("Response", "Neighbourhood", "Custody", "Other roles")
# Weekdays together, the weekend's two days apart: what a demonstration shows in place of seven days by the hour.
DAY_GROUPS = ("Monday to Friday", "Saturday", "Sunday")


DIMENSIONS: dict[str, Callable[[ibis.Table], ibis.Expr]] = {
    "month": lambda t: t.occurred_at.truncate("M").cast("date"),
    "force": lambda t: t.force.cast("string"),
    "area": lambda t: t.area.cast("string"),
    "team": lambda t: t.team.cast("string"),
    "officer_role": lambda t: t.officer_role.cast("string"),
    "shift": lambda t: t.shift.cast("string"),
    "location_type": lambda t: t.location_type.cast("string"),
    "subject_age_band": lambda t: t.subject_age_band.cast("string"),
    "subject_gender": lambda t: t.subject_gender.cast("string"),
    "subject_ethnicity": lambda t: t.subject_ethnicity.cast("string"),
    "hour": lambda t: t.occurred_at.hour(),
    # Four-hour bands: what a demonstration shows in place of single hours, most of whose cells it would hide.
    "hours": lambda t: ibis.cases(*((t.occurred_at.hour() < 4 * (i + 1), HOUR_BANDS[i]) for i in range(6))),
    "role_group": lambda t: ibis.cases(*((t.officer_role.cast("string") == g, g) for g in ROLE_GROUPS[:3]),
                                       else_=ibis.ifelse(t.officer_role.isnull(), ibis.null("string"),
                                                         ROLE_GROUPS[3])),
    "weekday": lambda t: t.occurred_at.day_of_week.full_name(),
    "days": lambda t: ibis.cases((t.occurred_at.day_of_week.index() == 5, DAY_GROUPS[1]),
                                 (t.occurred_at.day_of_week.index() == 6, DAY_GROUPS[2]),
                                 (t.occurred_at.notnull(), DAY_GROUPS[0])),
    # Unknown crewing stays unknown (ifelse would put it with "Double crewed").
    "single_crewed": lambda t: ibis.cases((t.single_crewed, "Single crewed"), (~t.single_crewed, "Double crewed")),
}


# Each fine dimension and its grouped form: a view under disclosure control (a demonstration, a viewer) shows the
# grouped one, whose cells are large enough to show, where any other view shows the fine one.
GROUPED: dict[str, str] = {"officer_role": "role_group", "hour": "hours", "weekday": "days"}


def shown_dimension(dimension: str, perturbed: bool) -> str:
    """Return the dimension a view shows in place of `dimension`: its grouped form under disclosure control."""
    return GROUPED.get(dimension, dimension) if perturbed else dimension


DIMENSION_LABELS: dict[str, str] = {
    "month": "Month", "force": "Force", "area": "Area", "team": "Team",
    "officer_role": "Officer role", "role_group": "Officer role (grouped)", "shift": "Shift",
    "location_type": "Location",
    "subject_age_band": "Subject age", "subject_gender": "Subject gender",
    "subject_ethnicity": "Subject ethnicity", "hour": "Hour of day", "hours": "Hours of day", "weekday": "Day of week",
    "days": "Days of week",
    "single_crewed": "Crewing", "tactic_group": "Type of force used",
}


# Vocabulary order for sorting breakdowns, so Early/Late/Night read in time order.
DIMENSION_ORDER: dict[str, tuple[str, ...]] = {
    "officer_role": schema.OFFICER_ROLES, "role_group": ROLE_GROUPS, "shift": schema.SHIFTS,
    "location_type": schema.LOCATION_TYPES, "subject_age_band": schema.AGE_BANDS,
    "subject_gender": schema.GENDERS, "subject_ethnicity": schema.ETHNICITIES,
    "weekday": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "single_crewed": ("Double crewed", "Single crewed"), "hours": HOUR_BANDS, "days": DAY_GROUPS,
}


def default_filters(ds: Dataset, months: int = 12) -> Filters:
    """Return the opening view: the latest twelve months of the dataset, nothing else filtered."""
    if ds.last is None:
        return Filters()
    end = ds.last.date()
    index = end.year * 12 + end.month - months  # the month after `end`, `months` months back
    start = date(index // 12, index % 12 + 1, 1)
    if end.day != _month_end(end).day:  # a part month at the end: take whole days instead
        start = end - timedelta(days=365 * months // 12 - 1)
    if ds.first is not None:
        start = max(start, ds.first.date())
    return Filters(date_from=start, date_to=end)


def _month_end(d: date) -> date:
    following = date(d.year + d.month // 12, d.month % 12 + 1, 1)
    return following - timedelta(days=1)


def month_start(d: date) -> date:
    """Return the first day of a date's calendar month."""
    return d.replace(day=1)


def month_end(d: date) -> date:
    """Return the last day of a date's calendar month."""
    return _month_end(d)


def _bound(d: date | None, edge: date | None, first: date | None, last: date | None) -> date | None:
    d = d if d is not None else edge
    if d is None:
        return None
    if first is not None:
        d = max(d, month_start(first))
    if last is not None:
        d = min(d, month_end(last))
    return d


def snap_to_months(filters: Filters, first: date | None, last: date | None) -> Filters:
    """Widen the date range to whole calendar months, clipped to the months the dataset spans.

    Whatever days were asked for, the start becomes the 1st of its month and the end the last day of
    its month, so two periods can differ only by whole months and never by a few days. An open end
    takes the dataset's first (or last) month. A dataset whose first or last month is partial keeps
    the whole month as the bound (1 April, not the data's 15 April): the rows are the same, since there
    are none outside the data, and every period stays one of the few whole-month periods. A range given
    backwards is read forwards.
    """
    start = _bound(filters.date_from, first, first, last)
    end = _bound(filters.date_to, last, first, last)
    if start is not None and end is not None and end < start:
        start, end = end, start
    return replace(filters, date_from=month_start(start) if start else None,
                   date_to=month_end(end) if end else None)


def default_months(ds: Dataset, months: int = 12) -> Filters:
    """Return the opening view in whole months: the dataset's latest calendar months, its last one even if partial."""
    if ds.last is None:
        return Filters()
    end = month_end(ds.last.date())
    index = end.year * 12 + end.month - months  # the month after `end`, `months` months back
    start = date(index // 12, index % 12 + 1, 1)
    return snap_to_months(Filters(date_from=start, date_to=end), _day_of(ds.first), ds.last.date())


def _day_of(moment: datetime | None) -> date | None:
    return moment.date() if moment is not None else None


def describe_months(filters: Filters, first: date | None = None, last: date | None = None) -> str:
    """Say a whole-month period in words ("April 2023 to March 2024"), and where the data starts or ends inside it."""
    if filters.date_from is None or filters.date_to is None:
        return "All months"
    start, end = f"{filters.date_from:%B %Y}", f"{filters.date_to:%B %Y}"
    words = start if start == end else f"{start} to {end}"
    notes = []
    if first is not None and month_start(first) == filters.date_from and first.day != 1:
        notes.append(f"data from {_format_day(first)}")
    if last is not None and month_start(last) == month_start(filters.date_to) and last != month_end(last):
        notes.append(f"data up to {_format_day(last)}")
    return words + (f" ({', '.join(notes)})" if notes else "")


def previous_period(filters: Filters, ds: Dataset) -> Filters | None:
    """Return the same filters over the period of equal length just before; None if there is none in the data.

    Only days with data are compared: a period running past either end of the data is cut to the data
    first, so days without data never read as a fall. None when there is no period (no data), when whole
    months were chosen round a part month of the data (a part month is not compared with a whole one), or
    when the data do not cover the whole period before: half a period of data against a whole one is no
    comparison.
    """
    first, last = _day_of(ds.first), _day_of(ds.last)
    start, end = filters.date_from or first, filters.date_to or last
    start = max(start, first) if start and first else start
    end = min(end, last) if end and last else end
    if start is None or end is None or end < start:
        return None
    if _whole_months(filters.date_from, filters.date_to) and not _whole_months(start, end):
        # Whole months chosen round a part month of the data: no comparison rather than one over odd days (whole
        # months are what disclosure control lets a viewer pick, so no period of odd days is published either).
        return None
    previous = _period_before(filters, start, end)
    return None if first is not None and previous.date_from < first else previous


def _whole_months(start: date | None, end: date | None) -> bool:
    return start is not None and end is not None and start.day == 1 and (end + timedelta(days=1)).day == 1


def _period_before(filters: Filters, start: date, end: date) -> Filters:
    if start.day == 1 and (end + timedelta(days=1)).day == 1:
        # Whole calendar months compare with the same number of months before, so a
        # financial year compares with the previous financial year whatever the leap days.
        months = (end.year - start.year) * 12 + end.month - start.month + 1
        index = start.year * 12 + start.month - 1 - months
        prev_start = date(index // 12, index % 12 + 1, 1)
        return replace(filters, date_from=prev_start, date_to=start - timedelta(days=1))
    length = (end - start).days + 1
    return replace(filters, date_from=start - timedelta(days=length),
                   date_to=start - timedelta(days=1))


def filters_from_mapping(data: dict[str, object]) -> Filters:
    """Build Filters from a plain mapping (URL parameters, JSON); unknown keys are ignored."""
    kwargs: dict[str, object] = {}
    for f in fields(Filters):
        if f.name not in data or data[f.name] in (None, "", []):
            continue
        value = data[f.name]
        if f.name in ("date_from", "date_to"):
            kwargs[f.name] = value if isinstance(value, date) else date.fromisoformat(str(value))
        else:
            items = [value] if isinstance(value, str) else list(value)  # type: ignore[arg-type]
            kwargs[f.name] = tuple(str(v) for v in items)
    return Filters(**kwargs)
