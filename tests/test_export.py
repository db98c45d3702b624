"""Downloads never carry a live spreadsheet formula."""
from __future__ import annotations

import csv
import io

import pandas as pd
import pytest

from lib.export import to_csv_bytes


@pytest.mark.parametrize("cell", ["=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"])
def test_formula_cells_are_neutralised(cell):
    data = to_csv_bytes(pd.DataFrame({"reason": [cell], "n": [3]}))
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert rows[1] == ["'" + cell, "3"]


def test_ordinary_cells_and_negative_numbers_stay_as_they_are():
    data = to_csv_bytes(pd.DataFrame({"a": ["Café", "R01"], "b": [-1.5, 2]}))
    back = pd.read_csv(io.BytesIO(data), encoding="utf-8-sig")
    assert back["a"].tolist() == ["Café", "R01"] and back["b"].tolist() == [-1.5, 2]
