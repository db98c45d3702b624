"""The Overview's specs written as dicts are the Altair builders' specs, to the byte: key order and Arrow data."""
from __future__ import annotations

import json

import pytest

from lib.engine import query
from lib.engine.query import UNRESTRICTED, Filters, Scope
from lib.engine.store import SAMPLE_DIR
from lib.present import charts, chartspec, vegalite
from lib.privacy import disclosure

# (name, filters): the whole sample, a narrow view with small counts, a view with no tactics at all.
VIEWS = (
    ("all", {}),
    ("narrow", {"forces": ["Cumbria Constabulary"], "shifts": ["Night"]}),
    ("firearms", {"tactic_groups": ["Firearms"], "shifts": ["Night"]}),
)


def frames(engine, ds, filters: Filters, scope: Scope, threshold: int | None) -> dict:
    """Return the Overview's frames for a view, protected as the page reads them when a threshold is set."""
    def shown(kind, result):
        return disclosure.protect(kind, result, threshold) if threshold is not None else result

    return {"month": shown(query.breakdown, query.breakdown(engine, ds, filters, scope, ("month",))),
            **{d: shown(query.breakdown, query.breakdown(engine, ds, filters, scope, (d,)))
               for d in ("officer_role", "shift")},
            "tactics": shown(query.tactic_counts, query.tactic_counts(engine, ds, filters, scope))}


def calls(found: dict) -> list[tuple[str, tuple, dict]]:
    """Every builder call the Overview makes, and the options it does not use (titles, units, per incident)."""
    return [("reports_by_month", (found["month"],), {"title": ""}),
            ("reports_by_month", (found["month"],), {}),
            ("reports_by_month", (found["month"],), {"title": "Reports"}),
            ("rate_by_month", (found["month"], "officer_injured"), {"title": "", "unit": "reports"}),
            ("rate_by_month", (found["month"], "subject_injured"), {"unit": "incidents"}),
            *[("harm_rates_by_group", (found[d], d, query.DIMENSION_LABELS[d]), {}) for d in ("officer_role", "shift")],
            ("harm_rates_by_group", (found["shift"], "shift", "Shift"),
             {"per_incident": ("officer_injured",), "title": "By shift"}),
            ("harm_rates_by_group", (found["officer_role"], "officer_role", "Role"),
             {"measures": ("subject_injured",)}),
            ("most_used_tactics", (found["tactics"],), {}),
            ("most_used_tactics", (found["tactics"],), {"top": 3, "title": "Top three"})]


def test_part_months_are_drawn_apart_in_both_builders(engine):
    """A view ending on the 4th of a month: that month's bar lighter and its rate a hollow point, the note in the
    tooltip, the same spec from the dict writer as from Altair; a view of whole months draws none of it."""
    from datetime import date

    from lib.present import wording

    ds = engine.open(SAMPLE_DIR)
    last = ds.last.date()
    filters = Filters(date_from=date(last.year - 1, 1, 9), date_to=date(last.year - 1, 6, 4))
    marks = wording.part_month_marks(filters, ds.first.date(), last)
    assert marks == {date(last.year - 1, 1, 1): "Data from 9 Jan only",
                     date(last.year - 1, 6, 1): "Data up to 4 Jun only"}
    monthly = charts.mark_part_months(query.breakdown(engine, ds, filters, UNRESTRICTED, ("month",)), marks)
    assert monthly["part_month"].tolist() == ["Data from 9 Jan only", "", "", "", "", "Data up to 4 Jun only"]
    for builder, args in (("reports_by_month", (monthly,)), ("rate_by_month", (monthly, "officer_injured"))):
        got = getattr(vegalite, builder)(*args)
        assert json.dumps(got, default=repr) == json.dumps(chartspec.to_spec(getattr(charts, builder)(*args)),
                                                           default=repr)
        text = json.dumps(got, default=repr)
        assert '"title": "Part month"' in text and "datum.part_month" in text
    bars = vegalite.reports_by_month(monthly)["encoding"]["color"]
    assert bars == {"condition": {"test": "datum.part_month", "value": charts.PART}, "value": charts.MAIN}
    months = Filters(date_from=date(last.year - 1, 1, 1), date_to=date(last.year - 1, 6, 30))
    whole = query.breakdown(engine, ds, months, UNRESTRICTED, ("month",))
    assert wording.part_month_marks(months, ds.first.date(), last) == {}
    assert "part_month" not in json.dumps(vegalite.rate_by_month(charts.mark_part_months(whole, {})), default=repr)


@pytest.mark.parametrize("threshold", [None, 10])
@pytest.mark.parametrize("name,mapping", VIEWS)
def test_each_spec_is_the_altair_builders_spec(engine, name, mapping, threshold):
    ds = engine.open(SAMPLE_DIR)
    filters = query.filters_from_mapping(mapping) if mapping else query.default_filters(ds)
    found = frames(engine, ds, filters, UNRESTRICTED, threshold)
    for builder, args, kwargs in calls(found):
        want = chartspec.to_spec(getattr(charts, builder)(*args, **kwargs))
        got = getattr(vegalite, builder)(*args, **kwargs)
        # Bytes compare by their repr: the same Arrow data under the same content-hash names, keys in the same order.
        assert json.dumps(got, default=repr) == json.dumps(want, default=repr), (builder, kwargs)


def test_the_comparison_covers_hidden_months_and_thin_groups(engine):
    ds = engine.open(SAMPLE_DIR)
    found = frames(engine, ds, query.filters_from_mapping(dict(VIEWS[1][1])), UNRESTRICTED, 10)
    spec = vegalite.reports_by_month(found["month"])
    assert len(spec["layer"]) == 2 and len(spec["datasets"]) == 2  # the bars, and the marks of hidden months
    assert found["officer_role"]["suppressed"].any()


def test_the_hand_fixture_gives_the_same_specs(engine, small):
    found = frames(engine, small, Filters(), UNRESTRICTED, None)
    for builder, args, kwargs in calls(found):
        assert (json.dumps(getattr(vegalite, builder)(*args, **kwargs), default=repr)
                == json.dumps(chartspec.to_spec(getattr(charts, builder)(*args, **kwargs)), default=repr))
