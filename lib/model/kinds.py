"""Column kinds: the one table of what each logical type of a canonical column is, everywhere it is stored.

`lib/model/schema.py` gives every canonical column a kind ("string", "category", "bool", "float",
"list", "timestamp", "date"). This module says, once, what each kind means to every part of the app:
how text cells are parsed into it, what its null column is, and its pandas, Arrow, DuckDB,
PostgreSQL and Spark types. The readers (lib/ingest), the ingester's output, the synthetic
generator and the engine's backends all take their types from `KINDS`, so a kind cannot drift
between them.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from lib.model import values

LIST_SEPARATOR = ";"  # items of a list cell in the canonical layout ("Protect self;Effect arrest")


@dataclass(frozen=True)
class Kind:
    """One logical column type and what it is in each place a column of it lives.

    `parse` turns text cells into values, null where a cell is empty or unreadable (never a guess).
    `null(n)` is a column of n nulls as the adapters build it (fast: Arrow-backed text, one shared
    empty list). `pandas` is the dtype of an empty or all-null column built with pandas. `arrow`
    is the Arrow type of a canonical table's column; `sql` the DuckDB type (None for categories,
    which become one ENUM per column), `postgres` and `spark` the types on those backends.
    `coerce` gives a column an adapter built (of any dtype) this kind's type, as the ingester does
    before output. `noun` says what a readable value is, for the reason a bad required cell is set aside.
    """

    name: str
    parse: Callable[..., pd.Series]
    null: Callable[[int], object]
    coerce: Callable[[pd.Series], pd.Series]
    pandas: object
    arrow: pa.DataType
    sql: str | None
    postgres: str
    spark: str
    noun: str = "a value"

    def nulls(self, index: pd.Index) -> pd.Series:
        """Return a column of nulls of this kind for a frame's index."""
        return pd.Series(self.null(len(index)), index=index)

    def empty(self) -> pd.Series:
        """Return an empty column of this kind."""
        return pd.Series(dtype=self.pandas)


def _null_text(n: int) -> object:
    return pd.array([pd.NA] * n, dtype="string") if n < 1 else pd.arrays.ArrowStringArray(
        pa.nulls(n, pa.large_string()))


def _null_category(n: int) -> object:
    return pd.Categorical.from_codes(np.full(n, -1, dtype=np.int8), categories=[])


def _null_bool(n: int) -> object:
    return pd.arrays.BooleanArray(np.zeros(n, bool), np.ones(n, bool))


def _null_float(n: int) -> object:
    return np.full(n, np.nan)


def _null_list(n: int) -> object:
    """n empty lists, one object shared by every row (a list column holds few distinct objects)."""
    lists = np.empty(n, dtype=object)
    if n:
        shared: list[str] = []
        lists[:] = [shared] * n
    return lists


def _null_time(n: int) -> object:
    return np.full(n, np.datetime64("NaT"), dtype="datetime64[us]")


def as_string(column: pd.Series) -> pd.Series:
    """Return column.astype("string"); a categorical of text is taken through Arrow, not Python objects."""
    if isinstance(column.dtype, pd.CategoricalDtype) and column.cat.categories.inferred_type in ("string", "empty"):
        codes = column.cat.codes.to_numpy()
        labels = pa.array(column.cat.categories.tolist(), type=pa.large_string())
        text = pc.take(labels, pa.array(codes, mask=codes < 0))
        return pd.Series(pd.arrays.ArrowStringArray(text), index=column.index, name=column.name)
    return column.astype("string")


def _as_is(column: pd.Series) -> pd.Series:
    return column


def _as_timestamp(column: pd.Series) -> pd.Series:
    return pd.to_datetime(column, errors="coerce")


def _as_bool(column: pd.Series) -> pd.Series:
    return column.astype("boolean")


def _as_number(column: pd.Series) -> pd.Series:
    return pd.to_numeric(column, errors="coerce")


def _split(cells: pd.Series, separator: str = LIST_SEPARATOR) -> pd.Series:
    return values.split_list(cells, separator)


def _to_date(cells: pd.Series) -> pd.Series:
    return values.to_datetime(cells).dt.normalize()


KINDS: dict[str, Kind] = {k.name: k for k in (
    # name, parse (text -> values), null (n nulls), coerce, pandas dtype, Arrow type,
    # DuckDB type, PostgreSQL type, Spark type, noun (what a readable value is)
    Kind("string", values.blank_to_null, _null_text, as_string, "string", pa.string(),
         "VARCHAR", "text", "string"),
    Kind("category", values.blank_to_null, _null_category, as_string, "string", pa.string(),
         None, "text", "string"),
    Kind("bool", values.to_bool, _null_bool, _as_bool, "boolean", pa.bool_(),
         "BOOLEAN", "boolean", "boolean", "yes or no"),
    Kind("float", values.to_number, _null_float, _as_number, "Float64", pa.float64(),
         "DOUBLE", "double precision", "double", "a number"),
    Kind("list", _split, _null_list, _as_is, object, pa.list_(pa.string()),
         "VARCHAR[]", "text[]", "array<string>"),
    Kind("timestamp", values.to_datetime, _null_time, _as_timestamp, "datetime64[us]", pa.timestamp("us"),
         "TIMESTAMP", "timestamp", "timestamp_ntz", "a date"),
    Kind("date", _to_date, _null_time, _as_timestamp, "datetime64[us]", pa.date32(),
         "DATE", "date", "date", "a date"),
)}


def kind(name: str) -> Kind:
    """Return a kind by name; a name that is no kind is a bug, said plainly."""
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"no column kind {name!r}; kinds are {', '.join(KINDS)}") from None


def empty_frame(columns: dict[str, str]) -> pd.DataFrame:
    """Return an empty table with a column -> kind table's columns (lib/model/schema.py), each of its type."""
    return pd.DataFrame({col: KINDS[k].empty() for col, k in columns.items()})
