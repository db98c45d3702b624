"""Altair chart to Vega-Lite spec, with the chart's data as Arrow rather than JSON rows.

Altair's default turns every frame into a list of JSON-ready dicts (sanitising each column) and
Streamlit then turns those dicts back into a frame and into Arrow to send them. Here each frame
goes to Arrow once, under a name that hashes its bytes, the way Streamlit's own `st.altair_chart`
sends data; `st.vega_lite_chart` passes named Arrow datasets straight to the browser. On the
Overview this halved the time to turn a new result into charts.

Altair's data transformer is process-wide state, so conversions take a lock: sessions run in
threads, and one must not collect another's datasets.
"""
from __future__ import annotations

import hashlib
import threading
from typing import Any

import altair as alt
import pandas as pd
import pyarrow as pa

_LOCK = threading.Lock()
_NAME = "ose_arrow"


def store_arrow(data: Any, datasets: dict[str, bytes]) -> dict[str, str]:
    """Store a chart's frame in `datasets` as Arrow IPC bytes under a content-hash name; return the reference."""
    if not isinstance(data, pd.DataFrame):
        data = pd.DataFrame(data)
    table = pa.Table.from_pandas(data, preserve_index=False)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    payload = sink.getvalue().to_pybytes()
    name = "data-" + hashlib.sha1(payload).hexdigest()[:16]
    datasets[name] = payload
    return {"name": name}


alt.data_transformers.register(_NAME, store_arrow)


def to_spec(chart: alt.TopLevelMixin) -> dict:
    """Return the chart's Vega-Lite spec, its datasets as Arrow bytes (unvalidated: tests validate)."""
    datasets: dict[str, bytes] = {}
    with _LOCK, alt.data_transformers.enable(_NAME, datasets=datasets):
        spec = chart.to_dict(validate=False)
    if datasets:
        spec["datasets"] = {**spec.get("datasets", {}), **datasets}
    return spec
