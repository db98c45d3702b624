"""Downloads never carry a live spreadsheet formula, in CSV or XLSX."""
from __future__ import annotations

import csv
import datetime as dt
import io

import numpy as np
import pandas as pd
import pytest
from openpyxl import load_workbook

from lib.present.export import FORMATS, FORMULA_STARTS, XLSX_TYPE, neutralise, sheet_name, to_csv_bytes, to_xlsx_bytes

PAYLOADS = ["=HYPERLINK(\"http://x\",\"y\")", "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1", "=cmd|' /C calc'!A0"]


@pytest.mark.parametrize("cell", ["=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"])
def test_formula_cells_are_neutralised(cell):
    data = to_csv_bytes(pd.DataFrame({"reason": [cell], "n": [3]}))
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert rows[1] == ["'" + cell, "3"]


def test_ordinary_cells_and_negative_numbers_stay_as_they_are():
    data = to_csv_bytes(pd.DataFrame({"a": ["Café", "R01"], "b": [-1.5, 2]}))
    back = pd.read_csv(io.BytesIO(data), encoding="utf-8-sig")
    assert back["a"].tolist() == ["Café", "R01"] and back["b"].tolist() == [-1.5, 2]


def hostile(payload: str) -> pd.DataFrame:
    """A frame carrying the payload in a text cell, a column name and a category column."""
    return pd.DataFrame({
        "reason": [payload, "ordinary"],
        payload: ["x", "y"],
        "team": pd.Categorical([payload, "Response"]),
        "n": [-3, 4],
    })


def read_cells(fmt: str, data: bytes) -> list[list[object]]:
    """Read a download back as rows of cell values, the way a spreadsheet would see them."""
    if fmt == "csv":
        return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    sheet = load_workbook(io.BytesIO(data)).active
    assert all(c.data_type != "f" for row in sheet.iter_rows() for c in row)
    return [[c.value for c in row] for row in sheet.iter_rows()]


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
@pytest.mark.parametrize("payload", PAYLOADS)
def test_no_format_carries_a_live_formula(fmt, payload):
    writer, _, _ = FORMATS[fmt]
    cells = read_cells(fmt, writer(hostile(payload)))
    # A CSV cell is text either way; one that is a plain number (like -3) is read as that number.
    texts = [v for row in cells for v in row if isinstance(v, str) and not is_number(v)]
    assert not [t for t in texts if t.startswith(FORMULA_STARTS)]
    # XLSX is XML, where a CR is read back as LF.
    shown = "'" + (payload.replace("\r", "\n") if fmt == "xlsx" else payload)
    assert cells[0] == ["reason", shown, "team", "n"]
    assert cells[1][0] == shown and cells[1][2] == shown
    assert cells[1][3] == (-3 if fmt == "xlsx" else "-3")
    assert cells[2][2] == "Response"


def test_xlsx_stores_every_text_cell_as_a_string():
    sheet = load_workbook(io.BytesIO(to_xlsx_bytes(hostile("=1+1")))).active
    for row in sheet.iter_rows():
        for cell in row:
            assert cell.data_type == ("n" if isinstance(cell.value, int) else "s")


def test_xlsx_numbers_stay_numbers_and_dates_stay_dates():
    frame = pd.DataFrame({
        "count": [-3, 0, 7],
        "rate": [-1.5, np.nan, 2.25],
        "flag": [True, False, None],
        "when": pd.to_datetime(["2024-01-02 03:04:05", None, "2024-12-31 23:59:00"]),
        "day": [dt.date(2024, 1, 2), dt.date(2024, 2, 3), None],
        "nullable": pd.array([1, None, -2], dtype="Int64"),
    })
    sheet = load_workbook(io.BytesIO(to_xlsx_bytes(frame, sheet="Rates"))).active
    assert sheet.title == "Rates"
    rows = [[c for c in row] for row in sheet.iter_rows(min_row=2)]
    assert [r[0].value for r in rows] == [-3, 0, 7] and {r[0].data_type for r in rows} == {"n"}
    assert [r[1].value for r in rows] == [-1.5, None, 2.25] and rows[0][1].data_type == "n"
    assert [r[2].value for r in rows] == [True, False, None] and rows[0][2].data_type == "b"
    assert rows[0][3].value == dt.datetime(2024, 1, 2, 3, 4, 5) and rows[0][3].is_date
    assert rows[1][3].value is None
    assert rows[1][4].value == dt.datetime(2024, 2, 3) and rows[1][4].is_date
    assert [r[5].value for r in rows] == [1, None, -2]


def test_xlsx_time_zones_lists_and_control_characters_do_not_break_the_export():
    frame = pd.DataFrame({
        "when": pd.to_datetime(["2024-06-01 12:00"]).tz_localize("Europe/London"),
        "reasons": [["Protect self", "=evil"]],
        "note": ["bell\x07 here"],
        "big": [float("-inf")],
    })
    row = [c.value for c in next(load_workbook(io.BytesIO(to_xlsx_bytes(frame))).active.iter_rows(min_row=2))]
    assert row == [dt.datetime(2024, 6, 1, 12, 0), "Protect self; =evil", "bell here", "'-inf"]


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_unicode_and_embedded_newlines_round_trip(fmt):
    texts = ["Café – Ōsaka ✓", "line one\nline two", "carriage\r\nreturn", "emoji 🚓", "quote \"inside\", comma"]
    frame = pd.DataFrame({"Équipe": texts, "n": range(len(texts))})
    writer, _, _ = FORMATS[fmt]
    cells = read_cells(fmt, writer(frame))
    assert cells[0] == ["Équipe", "n"]
    # XLSX is XML, where CR LF is read back as LF.
    assert [row[0] for row in cells[1:]] == [t.replace("\r\n", "\n") if fmt == "xlsx" else t for t in texts]
    assert [str(row[1]) for row in cells[1:]] == [str(i) for i in range(len(texts))]


def test_formats_name_their_writer_type_and_extension():
    assert FORMATS["csv"] == (to_csv_bytes, "text/csv", ".csv")
    assert FORMATS["xlsx"] == (to_xlsx_bytes, XLSX_TYPE, ".xlsx")
    assert XLSX_TYPE == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert to_xlsx_bytes(pd.DataFrame({"a": []}))[:2] == b"PK"


@pytest.mark.parametrize(("name", "expected"), [
    ("Data", "Data"), ("Rates by role/shift", "Rates by role_shift"), ("x" * 40, "x" * 31), ("", "Data"),
    ("[a]:*?\\", "_a_____"),
])
def test_sheet_names_are_ones_excel_accepts(name, expected):
    assert sheet_name(name) == expected


# What a spreadsheet may skip before reading a formula (issue 16): LF, NUL, other C0 and C1 control characters,
# BOM, the no-break space and other Unicode spaces, invisible format characters, and runs of them.
LEADERS = {"LF": "\n", "NUL": "\x00", "SOH": "\x01", "US": "\x1f", "DEL": "\x7f", "C1 NEL": "\x85", "C1 CSI": "\x9b",
           "BOM": "\ufeff", "NBSP": "\u00a0", "figure space": "\u2007", "ideographic space": "\u3000",
           "zero-width space": "\u200b", "right-to-left override": "\u202e", "space": " ",
           "mixed": " \ufeff\u00a0\x00\n\t"}


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
@pytest.mark.parametrize("start", ["=", "+", "-", "@"])
@pytest.mark.parametrize("leader", list(LEADERS.values()), ids=list(LEADERS))
def test_a_formula_behind_whitespace_control_characters_bom_or_nbsp_is_neutralised(fmt, start, leader):
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    cell = leader + start + "HYPERLINK(\"http://x\",\"y\")"
    writer, _, _ = FORMATS[fmt]
    cells = read_cells(fmt, writer(pd.DataFrame({"reason": [cell, "ordinary"], "n": [-3, 4]})))
    # XLSX cannot hold some control characters (dropped) and reads a CR back as LF.
    kept = ILLEGAL_CHARACTERS_RE.sub("", cell).replace("\r", "\n") if fmt == "xlsx" else cell
    assert cells[1][0] == "'" + kept
    assert cells[1][1] == (-3 if fmt == "xlsx" else "-3") and cells[2][0] == "ordinary"


@pytest.mark.parametrize(("value", "expected"), [
    ("  Response team", "  Response team"),  # leading spaces before text: left alone
    ("\u00a0Night", "\u00a0Night"),
    (" 12", " 12"),
    ("\ufeff", "\ufeff"),  # nothing visible at all
    ("a=b", "a=b"),
    (-3, -3), (-1.5, -1.5),  # numbers stay numbers
    ("\u00a0\u00a0=1", "'\u00a0\u00a0=1"),
    ("\x00@SUM(A1)", "'\x00@SUM(A1)"),
])
def test_only_cells_whose_first_visible_character_starts_a_formula_change(value, expected):
    assert neutralise(value) == expected
