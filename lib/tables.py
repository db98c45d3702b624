"""Tables behind charts: aggregate frames renamed and rounded for people to read."""
from __future__ import annotations

import pandas as pd

from lib import schema
from lib.query import DIMENSION_LABELS


def rates_table(frame: pd.DataFrame, by: tuple[str, ...]) -> pd.DataFrame:
    """Return a breakdown with readable headings: counts, rates (%) and their 95% intervals."""
    out = pd.DataFrame()
    for d in by:
        values = frame[d]
        if d == "month":
            values = pd.to_datetime(values).dt.strftime("%b %Y")
        out[DIMENSION_LABELS.get(d, d)] = values
    out["Reports"] = frame["reports"]
    for col, label in schema.HARM_FIELDS.items():
        out[f"{label}: yes"] = frame[f"{col}_yes"]
        out[f"{label}: answered"] = frame[f"{col}_answered"]
        out[f"{label} (%)"] = (frame[f"{col}_rate"] * 100).round(2)
        out[f"{label}: 95% from (%)"] = (frame[f"{col}_low"] * 100).round(2)
        out[f"{label}: 95% to (%)"] = (frame[f"{col}_high"] * 100).round(2)
    return out


def tactics_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Return tactic counts with readable headings."""
    return pd.DataFrame({
        "Tactic": frame["tactic"],
        "Type of force": frame["tactic_group"],
        "Reports using it": frame["reports"],
        "Share of reports (%)": (frame["share"] * 100).round(2),
    })
