"""The Overview shows the same figures and charts as before the capacity work: pinned from a run before it.

`tests/fixtures/overview_figures.json` holds what the Overview showed on the bundled sample, for a few filter
states in local mode (exact counts) and in demonstration mode (perturbed counts, small ones hidden), as drawn
by the code before issue 17's capacity work (`python -m tests.test_overview_figures` wrote it then): every
metric with its change, captions, headings, every chart's Vega-Lite spec with its data decoded from Arrow
(column types and rows), and every table behind a chart. Counts and words must be equal; rates and intervals
equal to 1e-12 relative (the order of floating-point sums). The metrics' tooltips were re-taken once for issue 18,
after checking that nothing else had changed: each gained the change's interval and whether it is clear; and the
widths of the "By ..." charts' panels (220 to 170 pixels, to fit a 1,366-pixel screen).
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from tests import pins

from .conftest import ROOT

PINNED = Path(__file__).parent / "fixtures" / "overview_figures.json"
RELATIVE = 1e-12
# (name, demonstration mode, query parameters): the opening view, a role and a shift, a tactic, a short period,
# a small force on a Night shift (small counts that demonstration mode hides).
VIEWS = (
    ("local/opening", False, {}),
    ("local/roles", False, {"roles": ["Response", "Neighbourhood"]}),
    ("local/night-taser", False, {"shifts": ["Night"], "tactic_groups": ["Less lethal"]}),
    ("local/quarter", False, {"from": "2024-10-01", "to": "2024-12-31", "forces": ["Metropolitan Police"]}),
    ("demo/opening", True, {}),
    ("demo/narrow", True, {"forces": ["Cumbria Constabulary"], "shifts": ["Night"]}),
)


def plain(value: Any) -> Any:
    """Turn a shown value into JSON: NaN as None, timestamps and dates as text, nested containers alike."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalars
        return plain(value.item())
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return str(value)


def chart_picture(el: Any) -> dict[str, Any]:
    """Return a chart's spec with each Arrow dataset replaced by its column types and rows, in order of use."""
    spec = json.loads(el.proto.spec)
    names: dict[str, str] = {}
    data = {}
    for dataset in el.proto.datasets:
        table = pa.ipc.open_stream(dataset.data.data).read_all()
        names[dataset.name] = f"data-{len(names)}"
        data[names[dataset.name]] = {"types": {f.name: str(f.type) for f in table.schema},
                                     "rows": plain(table.to_pylist())}
    text = json.dumps(spec, sort_keys=True)
    for name, placeholder in names.items():  # content-hash names: the content itself is compared below
        text = text.replace(name, placeholder)
    return {"spec": json.loads(text), "data": data,
            "theme": el.proto.theme, "selection_mode": list(el.proto.selection_mode)}


def overview_picture(demo: bool, params: dict[str, list[str]]) -> dict[str, Any]:
    """Run the app on the sample at these filters and return everything the Overview shows."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    for key, values in params.items():
        at.query_params[key] = values
    at.run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Overview"
    return plain({"demo": demo, "metrics": [[m.label, m.value, m.proto.delta, m.proto.help] for m in at.metric],
                  **page_elements(at)})


def page_elements(at: AppTest) -> dict[str, Any]:
    """Return what a page drew that a user reads: captions, headings, text, notices, charts and tables."""
    return {
        "captions": [c.value for c in at.main.caption],
        "headings": [h.value for h in at.subheader],
        "markdown": [m.value for m in at.main.markdown],
        "info": [i.value for i in at.info],
        "charts": [chart_picture(el) for el in at.get("vega_lite_chart")],
        "tables": [{"columns": [str(c) for c in t.value.columns], "rows": t.value.to_dict("split")["data"]}
                   for t in at.dataframe],
    }


@contextlib.contextmanager
def views() -> Iterator[Callable[[bool], None]]:
    """Yield a function that sets up one pinned view (local or demo, empty caches); restore the environment after."""
    import streamlit as st

    saved = {k: os.environ.get(k) for k in ("OSE_DEMO", "OSE_DATASET", "OSE_AUTH_CONFIG")}

    def view(demo: bool) -> None:
        os.environ.pop("OSE_DATASET", None)
        os.environ.pop("OSE_AUTH_CONFIG", None)
        if demo:
            os.environ["OSE_DEMO"] = "1"
        else:
            os.environ.pop("OSE_DEMO", None)
        st.cache_data.clear()
        st.cache_resource.clear()

    try:
        yield view
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        st.cache_data.clear()
        st.cache_resource.clear()


def every_picture() -> dict[str, Any]:
    """Return the Overview's picture for every pinned view (caches cleared between them)."""
    out = {}
    with views() as view:
        for name, demo, params in VIEWS:
            view(demo)
            out[name] = overview_picture(demo, params)
    return out


def differences(got: Any, want: Any, where: str = "") -> list[str]:
    """List where got differs from want: exactly, but for floats to RELATIVE (tests/pins.py)."""
    return pins.differences(got, want, RELATIVE, where)


@pytest.fixture(scope="module")
def pictures(tmp_path_factory) -> dict[str, Any]:
    os.environ.setdefault("OSE_DATA_DIR", str(tmp_path_factory.mktemp("var")))
    return every_picture()


def test_the_pin_holds_charts_tables_and_hidden_counts() -> None:
    pinned = json.loads(PINNED.read_text())
    assert list(pinned) == [name for name, _, _ in VIEWS]
    for name, picture in pinned.items():
        # Five charts (monthly reports and injury rate, role, shift, tactics), with data; four tables behind them.
        assert len(picture["charts"]) == 5 and all(c["data"] for c in picture["charts"]), name
        assert len(picture["tables"]) == 4 and len(picture["metrics"]) == 4, name
    # The narrow demonstration view really hides counts: the pin covers disclosure control's output.
    assert any("hidden" in c for c in pinned["demo/narrow"]["captions"])


@pytest.mark.parametrize("name", [name for name, _, _ in VIEWS])
def test_the_overview_shows_what_it_showed_before(pictures: dict[str, Any], name: str) -> None:
    pinned = json.loads(PINNED.read_text())
    assert differences(pictures[name], pinned[name], name) == []


if __name__ == "__main__":  # write the pin (only from the code the pin is meant to hold)
    import tempfile

    from .conftest import TEST_AUDIT_KEY, TEST_PSEUDONYM_KEY

    # The tests' keys (conftest): the record keys, and so the perturbed counts, follow the pseudonymisation key.
    os.environ.setdefault("OSE_PSEUDONYM_KEY", TEST_PSEUDONYM_KEY)
    os.environ.setdefault("OSE_AUDIT_KEY", TEST_AUDIT_KEY)
    os.environ.setdefault("OSE_DATA_DIR", tempfile.mkdtemp(prefix="ose-pin-"))
    PINNED.write_text(json.dumps(every_picture(), indent=1, sort_keys=False) + "\n")
    print(f"wrote {PINNED}", file=sys.stderr)
