"""Column kinds (lib/model/kinds.py) and the one table adapter (lib/ingest/tables.py)."""
from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest

from lib import ingest
from lib.engine import backends
from lib.engine.store import SQL_TYPES, Engine
from lib.ingest import debriefs, roster
from lib.ingest.formats import FILE, ROW
from lib.ingest.tables import Column, TableSpec, read_table
from lib.model import schema
from lib.model.kinds import KINDS, kind

from .conftest import FIXTURES


def _text(*cells: str | None) -> pd.Series:
    return pd.Series(list(cells), dtype="string")


def test_every_column_of_the_canonical_tables_has_a_known_kind():
    for columns in (schema.REPORT_COLUMNS, schema.TACTIC_COLUMNS, schema.OFFICER_COLUMNS):
        assert set(columns.values()) <= set(KINDS)
    with pytest.raises(ValueError, match="no column kind 'int'"):
        kind("int")


@pytest.mark.parametrize(("name", "cells", "expected"), [
    ("string", (" R01 ", "", "NULL", None), ["R01", None, None, None]),
    ("category", ("Response", "n/a", " Custody"), ["Response", None, "Custody"]),
    ("bool", ("Yes", "no", "TRUE", "0", "maybe", ""), [True, False, True, False, None, None]),
    ("float", ("3.5", "1,200", "12", "three", ""), [3.5, 1200.0, 12.0, None, None]),
    ("list", ("Protect self; Effect arrest", "", "Other;;unknown"), [["Protect self", "Effect arrest"], [], ["Other"]]),
    ("timestamp", ("2024-01-05 08:10", "05/01/2024", "31/02/2024", "soon"),
     [pd.Timestamp("2024-01-05 08:10"), pd.Timestamp("2024-01-05"), None, None]),
    ("date", ("2024-01-05 08:10", "12/07/2024", "never"),
     [pd.Timestamp("2024-01-05"), pd.Timestamp("2024-07-12"), None]),
])
def test_each_kind_parses_typical_text_and_nulls_what_it_cannot_read(name, cells, expected):
    parsed = KINDS[name].parse(_text(*cells))
    got = [None if not isinstance(v, list) and pd.isna(v) else v for v in parsed.tolist()]
    assert got == expected


def test_a_list_kind_takes_another_separator():
    assert KINDS["list"].parse(_text("Taser, Hands"), ",").tolist() == [["Taser", "Hands"]]


@pytest.mark.parametrize("name", list(KINDS))
def test_each_kind_has_a_null_column_that_converts_to_its_arrow_type(name):
    k = KINDS[name]
    nulls = k.nulls(pd.RangeIndex(3))
    assert len(nulls) == 3
    if name == "list":
        assert nulls.tolist() == [[], [], []]
    else:
        assert nulls.isna().all()
    array = pa.array(k.coerce(nulls), from_pandas=True)
    if pa.types.is_dictionary(array.type):
        array = array.cast(array.type.value_type)
    assert array.cast(k.arrow).type == k.arrow
    assert len(k.empty()) == 0 and k.empty().dtype == pd.Series(dtype=k.pandas).dtype


def test_the_engines_types_come_from_the_kinds_table():
    assert backends.ARROW_TYPES == {n: k.arrow for n, k in KINDS.items()}
    assert SQL_TYPES == {n: k.sql for n, k in KINDS.items() if n != "category"}
    assert KINDS["category"].sql is None  # a DuckDB ENUM is made for each categorical column
    assert backends._spark_type("list", "string") == "array<string>"
    assert backends._spark_type("not a kind", "bigint") == "bigint"


EXTRA = ",shift,length_of_service_years,ced_trained,outcomes"


def _canonical_with_every_kind() -> bytes:
    lines = (FIXTURES / "small_canonical.csv").read_text().splitlines()
    rows = [",Late,3.5,Yes,Arrested;Other", ",,12,no,", ",Night,,,Other"]
    return ("\n".join([lines[0] + EXTRA] + [line + rows[i % 3] for i, line in enumerate(lines[1:])]) + "\n").encode()


def test_a_canonical_reports_table_keeps_its_kinds_from_ingest_to_the_engine(engine: Engine):
    result = ingest.ingest([("every-kind.csv", _canonical_with_every_kind())], fmt="canonical")
    reports, tactics = ingest.tables(result)
    canonical = backends.canonical_arrow(reports, schema.REPORT_COLUMNS)
    assert {f.name: f.type for f in canonical.schema} == {c: KINDS[k].arrow for c, k in schema.REPORT_COLUMNS.items()}
    ds = engine.add("every kind", reports, tactics, key="kinds0000001")
    loaded = engine.reports(ds).schema()
    expected = {"string": "is_string", "category": "is_string", "bool": "is_boolean", "float": "is_floating",
                "list": "is_array", "timestamp": "is_timestamp"}
    for col, k in schema.REPORT_COLUMNS.items():
        assert getattr(loaded[col], expected[k])(), (col, k, loaded[col])
    frame = engine.execute(engine.reports(ds).order_by("report_id").select(
        "report_id", "length_of_service_years", "ced_trained", "outcomes", "occurred_at", "shift"))
    first = frame.iloc[0]
    assert (first["length_of_service_years"], bool(first["ced_trained"])) == (3.5, True)
    assert list(first["outcomes"]) == ["Arrested", "Other"]
    assert first["occurred_at"] == pd.Timestamp("2024-01-05 08:10") and first["shift"] == "Late"


# --- the table adapter ----------------------------------------------------------------------


def _raw(header: list[str], *rows: list[str | None]) -> pd.DataFrame:
    frame = pd.DataFrame([list(r) for r in rows], columns=header, dtype="string")
    frame.insert(0, ROW, range(1, len(rows) + 1))
    frame.insert(0, FILE, "t.csv")
    return frame


SPEC = TableSpec("things", (
    Column("thing_id", "string", ("thing id", "id"), required=True, missing="no thing id"),
    Column("seen_on", "date", ("seen on", "date"), required=True, only_if_present=True),
    Column("weight", "float", ("weight", "kg"), required=True),
    Column("tags", "list", ("tags",), separator=","),
    Column("alive", "bool", ("alive",)),
), checks=((lambda r: r["weight"] < 0, "negative weight"),), shown_chars=5)


def test_the_adapter_matches_aliases_parses_kinds_and_sets_aside_with_reasons():
    raw = _raw(["ID", "Date", "KG", "Tags", "Alive"],
               ["T1", "05/01/2024", "2.5", "a, b", "yes"],
               [None, "05/01/2024", "1", "", "no"],
               ["T3", "tomorrow morning", "1", "", ""],
               ["T4", "", "1", "", ""],
               ["T5", "05/01/2024", "heavy", "", ""],
               ["T6", "05/01/2024", "-1", "", ""])
    table = read_table(SPEC, raw)
    assert table.mapping == {"thing_id": "ID", "seen_on": "Date", "weight": "KG", "tags": "Tags", "alive": "Alive"}
    assert table.quarantine["reason"].tolist() == [
        "no thing id", "Date 'tomor' is not a date", "Date is empty", "KG 'heavy' is not a number", "negative weight"]
    assert table.quarantine[ROW].tolist() == [2, 3, 4, 5, 6]
    one = table.records.iloc[0]
    assert (one["thing_id"], one["seen_on"], one["weight"], one["tags"], one["alive"]) == (
        "T1", pd.Timestamp("2024-01-05"), 2.5, ["a", "b"], True)
    assert len(table.parsed) == 6 and table.set_aside.tolist() == [False, True, True, True, True, True]


def test_a_column_required_only_if_present_may_be_missing_but_others_may_not():
    table = read_table(SPEC, _raw(["ID", "Alive"], ["T1", "yes"]))
    assert table.quarantine["reason"].tolist() == ["weight is empty"]
    assert table.parsed["seen_on"].isna().all() and table.parsed["tags"].tolist() == [[]]
    left_out = TableSpec("things", SPEC.columns[:1], absent_as_null=False)
    assert list(read_table(left_out, _raw(["ID", "Alive"], ["T1", "yes"])).records.columns) == [FILE, ROW, "thing_id"]


def test_a_required_list_needs_an_item():
    spec = TableSpec("tagged", (Column("tags", "list", ("tags",), required=True),))
    table = read_table(spec, _raw(["Tags"], ["a;b"], [""], ["n/a"]))
    assert table.quarantine["reason"].tolist() == ["Tags is empty", "Tags is empty"]
    assert table.records["tags"].tolist() == [["a", "b"]]


def test_one_of_a_group_of_columns_must_have_a_value():
    spec = TableSpec("pair", (Column("a", "string", ("a",)), Column("b", "string", ("b",))),
                     one_of=((("a", "b"), "neither a nor b"),))
    table = read_table(spec, _raw(["a", "b"], ["x", None], [None, "y"], [None, " "]))
    assert table.quarantine["reason"].tolist() == ["neither a nor b"] and table.quarantine[ROW].tolist() == [3]


def test_canonical_roster_and_debrief_reading_set_aside_bad_required_values_the_same_way():
    canonical = (b"report_id,occurred_at,force,officer_id\n"
                 b"R1,2024-01-05 08:10,Northshire Police,OF1\nR2,next week,Northshire Police,OF1\n"
                 b"R3,,Northshire Police,OF1\n")
    result = ingest.ingest([("c.csv", canonical)], fmt="canonical")
    assert result.quarantine["reason"].tolist() == ["occurred_at 'next week' is not a date", "occurred_at is empty"]
    training = b"Officer,Training date,Course\nOF1,05/01/2024,PST\nOF1,next week,PST\nOF1,,PST\n,05/01/2024,PST\n"
    table = roster.read("t.csv", training)
    assert table.quarantine["reason"].tolist() == ["Training date 'next week' is not a date", "Training date is empty",
                                                   "no officer id"]
    read = debriefs.read("d.csv", b"Report ID,Debrief date\nR1,next week\n,05/01/2024\n")
    assert read.quarantine["reason"].tolist() == ["no report or incident id"]
    assert len(read.records) == 1 and pd.isna(read.records.loc[0, "debrief_date"])  # not required: kept, unknown
    for spec in (roster.TABLES["training"], debriefs.DEBRIEFS):
        assert all(c.kind in KINDS for c in spec.columns)
