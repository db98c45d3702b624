"""The Officer risk page shows the same figures as before its speed work: pinned from a run before it.

`tests/fixtures/risk_figures.json` holds, on the bundled sample, what the Officer risk page showed (headings,
captions, markdown, notes, every chart's spec with its data, every table) for several filter states, measures and
section choices in local mode (the officer section shown) and in demonstration mode (perturbed counts, no officer
views), and what `risk.officer_exposure` and the same-incident queries return for several filter states and
measures, as computed by the code before issue 17's Officer risk speed work (`python -m tests.test_risk_figures`
wrote it then). The rank intervals are Monte Carlo with the seed the page uses, so they are pinned exactly too.
Counts and words must be equal; rates and intervals equal to 1e-12 relative (the order of floating-point sums).
The page pictures were re-taken once for issue 18 after checking that every chart's data and every table were
unchanged: the heatmaps gained white numbers on dark cells and level labels, the funnel's volume axis spaced labels,
the officer list and the funnel's flagged groups short tables (rates with intervals, ranks in words) above the
full ones; the demonstration views show hours in four-hour bands (7 of 42 cells hidden at the opening view,
where single hours hid 119 of 168).
"""
from __future__ import annotations

import json
import os
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from lib import synth
from lib.analysis import risk
from lib.engine import fastpath
from lib.engine.query import UNRESTRICTED, Filters
from lib.engine.store import SAMPLE_DIR, Engine
from tests import pins
from tests.test_overview_figures import page_elements, plain, views

from .conftest import ROOT

PINNED = Path(__file__).parent / "fixtures" / "risk_figures.json"
RELATIVE = 1e-12
# (name, demonstration mode, query parameters, widget choices made on the page in order: (kind, key, value)).
VIEWS: tuple[tuple[str, bool, dict[str, list[str]], tuple[tuple[str, str, Any], ...]], ...] = (
    ("local/opening", False, {}, ()),
    ("local/roles", False, {"roles": ["Response", "Neighbourhood"]}, ()),
    ("local/roles-night", False, {"roles": ["Response", "Neighbourhood"], "shifts": ["Night"]}, ()),
    ("local/assaulted-officer-funnel", False, {}, (("radio", "risk_measure", "officer_assaulted"),
                                                   ("radio", "risk_level", "officer"))),
    ("local/subject-adjusted", False, {"from": "2024-01-01"}, (
        ("radio", "risk_measure", "subject_injured"), ("radio", "risk_basis", "Adjusted for case mix"),
        ("radio", "risk_funnel_basis", "Observed against expected for the case mix"))),
    ("local/dog-handlers", False, {"roles": ["Dog handler"]}, ()),
    ("demo/opening", True, {}, ()),
    ("demo/narrow", True, {"forces": ["Cumbria Constabulary"], "shifts": ["Night"]}, ()),
)
# Views whose rows are compared as sets: the funnel sorts its points by rate with an unstable sort over the engine's
# row order, which is not fixed, so officers with equal rates come in either order (before the speed work too).
UNORDERED = {"local/assaulted-officer-funnel"}
# Filter states and measures of the officer-level functions, pinned frame by frame.
YEAR = {"date_from": date(2024, 4, 1), "date_to": date(2025, 3, 31)}
FILTERS = {
    "all": Filters(),
    "roles": Filters(roles=("Response", "Neighbourhood")),
    "roles-night": Filters(roles=("Response", "Neighbourhood"), shifts=("Night",)),
    "year-taser": Filters(**YEAR, tactic_groups=("Less lethal weapons",)),
    "dog-handlers": Filters(roles=("Dog handler",)),
}
MEASURES = ("officer_injured", "officer_assaulted", "subject_injured")


def unordered(picture: dict[str, Any]) -> dict[str, Any]:
    """Return a page's picture with the rows of every chart dataset and table in a fixed order."""
    def rows(items: list) -> list:
        return sorted(items, key=lambda r: json.dumps(r, sort_keys=True))
    charts = [{**c, "data": {k: {**d, "rows": rows(d["rows"])} for k, d in c["data"].items()}}
              for c in picture["charts"]]
    tables = [{**t, "rows": rows(t["rows"])} for t in picture["tables"]]
    return {**picture, "charts": charts, "tables": tables}


def page_picture(demo: bool, params: dict[str, list[str]], choices: tuple[tuple[str, str, Any], ...]) -> dict:
    """Run the app on the sample at these filters, open Officer risk, make the choices; return what it shows."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    for key, values in params.items():
        at.query_params[key] = values
    at.run()
    at.switch_page("app_pages/risk.py").run()
    for kind, key, value in choices:
        getattr(at, kind)(key=key).set_value(value).run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Officer risk"
    return plain({"demo": demo, **page_elements(at)})


def every_page_picture() -> dict[str, Any]:
    """Return the page's picture for every pinned view (caches cleared between them)."""
    out = {}
    with views() as view:
        for name, demo, params, choices in VIEWS:
            view(demo)
            picture = page_picture(demo, params, choices)
            out[name] = unordered(picture) if name in UNORDERED else picture
    return out


def frame_picture(frame: pd.DataFrame) -> dict[str, Any]:
    """Return a frame's columns, dtypes and rows, JSON-ready."""
    return plain({"columns": [str(c) for c in frame.columns], "dtypes": [str(t) for t in frame.dtypes],
                  "rows": frame.astype(object).where(frame.notna(), None).to_numpy().tolist()})


def exposure_picture(engine: Engine) -> dict[str, Any]:
    """Return officer_exposure, the same-incident comparison and the shared count for every filter and measure."""
    ds = engine.open(SAMPLE_DIR)
    out = {}
    for name, filters in FILTERS.items():
        for measure in MEASURES:
            exposure = risk.officer_exposure(engine, ds, filters, UNRESTRICTED, measure)
            test = exposure.heterogeneity
            prior = exposure.prior
            out[f"{name}/{measure}"] = plain({
                "officers": exposure.officers, "shared_incidents": exposure.shared_incidents,
                "differ": exposure.differ, "heterogeneity": [test.statistic, test.p_value, test.groups, test.draws],
                "prior": None if prior is None else [prior.a, prior.b, prior.mean, prior.precision, prior.method,
                                                    prior.pooled, prior.spread],
                "verdict": risk.exposure_verdict(exposure), "regression": risk.regression_note(exposure),
                "same_note": risk.same_incident_note(exposure),
                "drivers": [risk.drivers(row) for _, row in exposure.table.iterrows()],
                "table": frame_picture(exposure.table),
                "shared_count": risk.shared_incident_count(engine, ds, filters, UNRESTRICTED, measure),
            })
        same = risk.same_incident_comparison(engine, ds, filters, UNRESTRICTED, "officer_injured")
        out[f"{name}/same-incident-all"] = frame_picture(same.head(200))
    return out


def differences(got: Any, want: Any, where: str = "") -> list[str]:
    """List where got differs from want: exactly, but for floats to RELATIVE (tests/pins.py)."""
    return pins.differences(got, want, RELATIVE, where)


@pytest.fixture(scope="module")
def pictures(tmp_path_factory) -> dict[str, Any]:
    os.environ.setdefault("OSE_DATA_DIR", str(tmp_path_factory.mktemp("var")))
    return every_page_picture()


def test_the_pin_holds_the_officer_list_and_hidden_counts() -> None:
    pinned = json.loads(PINNED.read_text())
    assert list(pinned["pages"]) == [name for name, *_ in VIEWS]
    # The officer list is pinned where officers differ, and the officer funnel where it was chosen.
    assert "Officers with most exposure to harm" in pinned["pages"]["local/roles"]["headings"]
    assert any(c.startswith("Regression to the mean") for c in pinned["pages"]["local/roles"]["captions"])
    assert any(e["differ"] and len(e["table"]["rows"]) == 15 for e in pinned["exposure"].values() if "differ" in e)
    assert any(not e["differ"] for e in pinned["exposure"].values() if "differ" in e)
    # Demonstration mode hides officer views and publishes perturbed counts.
    assert any("not shown under disclosure control" in i for i in pinned["pages"]["demo/opening"]["info"])


@pytest.mark.parametrize("name", [name for name, *_ in VIEWS])
def test_the_risk_page_shows_what_it_showed_before(pictures: dict[str, Any], name: str) -> None:
    pinned = json.loads(PINNED.read_text())["pages"]
    assert differences(pictures[name], pinned[name], name) == []


@pytest.mark.parametrize("portable", [False, True], ids=["engine", "portable"])
def test_officer_exposure_returns_what_it_returned_before(engine: Engine, monkeypatch, portable: bool) -> None:
    pinned = json.loads(PINNED.read_text())["exposure"]
    if portable:  # no officer keys or tactic masks: the Ibis queries PostgreSQL and Spark run
        monkeypatch.setattr(fastpath, "_page_columns", lambda engine, ds: None)
    elif engine.backend.name == "duckdb":  # the pin would pass on the Ibis queries alone: check the keys answered
        assert fastpath.officer_counts(engine, engine.open(SAMPLE_DIR), Filters(), UNRESTRICTED) is not None
    assert differences(exposure_picture(engine), pinned, "exposure") == []


if __name__ == "__main__":  # write the pin (only from the code the pin is meant to hold)
    import tempfile

    from lib import ingest

    from .conftest import TEST_AUDIT_KEY, TEST_PSEUDONYM_KEY

    # The tests' keys (conftest): the record keys, and so the perturbed counts, follow the pseudonymisation key.
    os.environ.setdefault("OSE_PSEUDONYM_KEY", TEST_PSEUDONYM_KEY)
    os.environ.setdefault("OSE_AUDIT_KEY", TEST_AUDIT_KEY)
    os.environ.setdefault("OSE_DATA_DIR", tempfile.mkdtemp(prefix="ose-pin-"))
    picture = {"pages": every_page_picture(), "exposure": exposure_picture(Engine(read_file=ingest.read_file))}
    PINNED.write_text(json.dumps(picture, separators=(",", ":")) + "\n")
    print(f"wrote {PINNED}", file=sys.stderr)


def messy_officers(reports: pa.Table) -> pa.Table:
    """Return reports whose officer ids sort differently by case, accent and space, some missing, some incidents too."""
    ids = reports.column("officer_id").to_pylist()
    forms = (lambda i: i.lower(), lambda i: f"é{i}", lambda i: f" {i}", lambda i: f"Z{i[::-1]}", lambda i: i)
    distinct = {i: forms[k % len(forms)](i) for k, i in enumerate(sorted(set(ids)))}
    messy = [None if k % 97 == 0 else distinct[i] for k, i in enumerate(ids)]
    incidents = [None if k % 89 == 0 else i for k, i in enumerate(reports.column("incident_id").to_pylist())]
    return (reports.set_column(reports.schema.get_field_index("officer_id"), "officer_id", pa.array(messy))
            .set_column(reports.schema.get_field_index("incident_id"), "incident_id", pa.array(incidents)))


def test_officer_keys_give_what_the_ibis_queries_give_on_messy_ids(engine: Engine, monkeypatch) -> None:
    if engine.backend.name != "duckdb":
        pytest.skip("the officer keys are the embedded engine's")
    data = synth.generate(60_000, seed=17)
    ds = engine.add("messy officers", messy_officers(data.reports), data.tactics, key="risk_messy_officers")
    views = (Filters(), Filters(roles=("Response", "Neighbourhood"), shifts=("Night",)))

    def picture() -> list[Any]:
        out = []
        for filters in views:
            exposure = risk.officer_exposure(engine, ds, filters, UNRESTRICTED, "officer_injured")
            officers = risk.by_officer(engine, ds, filters, UNRESTRICTED).sort_values("officer", kind="stable")
            listed = tuple(exposure.table["officer"]) if len(exposure.table) else tuple(officers["officer"][:15])
            same = risk.same_incident_comparison(engine, ds, filters, UNRESTRICTED, "officer_assaulted", listed)
            out.append({"differ": exposure.differ, "officers": exposure.officers, "shared": exposure.shared_incidents,
                        "table": frame_picture(exposure.table), "by_officer": frame_picture(officers.reset_index(
                            drop=True)), "same": frame_picture(same),
                        "shared_assaulted": risk.shared_incident_count(engine, ds, filters, UNRESTRICTED,
                                                                       "officer_assaulted")})
        return out

    fast = picture()
    assert fastpath.officer_counts(engine, ds, Filters(), UNRESTRICTED) is not None
    assert fast[0]["differ"] and len(fast[0]["table"]["rows"]) == 15  # the listed officers are compared too
    with monkeypatch.context() as m:
        m.setattr(fastpath, "_page_columns", lambda engine, ds: None)
        portable = picture()
    assert differences(plain(fast), plain(portable)) == []
