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
