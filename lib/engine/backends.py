"""Engine backends past one machine: the engine is a connection URL in config (`OSE_ENGINE_URL`).

`duckdb://` (the default, in memory) keeps the embedded engine in `lib/engine/store.py`. Two more kinds
serve the same Ibis expressions:

- `postgres://user:password@host:5432/dbname`: a force's shared PostgreSQL server. Each dataset
  table is (re)created and filled with COPY in one transaction; categorical columns stay text there
  (ENUM is a DuckDB optimisation) and list columns become `text[]`. Every thread has its own
  connection, as every DuckDB thread has its own cursor.
- `pyspark://local[2]` (or `pyspark://spark://host:7077`): Apache Spark through Ibis's PySpark
  backend, for national multi-year data. Parquet folders are read by Spark itself; in-memory tables
  are handed over as Arrow. Tables are temporary views of the process's one SparkSession.
"""
from __future__ import annotations

import threading
from pathlib import Path

import ibis
import pyarrow as pa
import pyarrow.parquet as pq

from lib.model.kinds import KINDS as COLUMN_KINDS
from lib.model.settings import DEFAULT_ENGINE_URL, ENGINE_SCHEMES, ENGINE_URL, redact_url, settings

URL_VARIABLE = ENGINE_URL
DEFAULT_URL = DEFAULT_ENGINE_URL
KINDS = ("duckdb", "postgres", "pyspark")
_SCHEMES = ENGINE_SCHEMES
# Canonical column kinds (lib/model/kinds.py) as Arrow types; categories are plain text off DuckDB.
ARROW_TYPES = {name: kind.arrow for name, kind in COLUMN_KINDS.items()}


class EngineUrlError(ValueError):
    """The engine URL names no backend this app can use."""


def configured_url() -> str:
    """Return the engine URL from the environment (`OSE_ENGINE_URL`), else in-memory DuckDB."""
    return settings().engine_url


def kind_of(url: str) -> str:
    """Return which backend a URL names: duckdb, postgres or pyspark."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme not in _SCHEMES:
        raise EngineUrlError(f"{URL_VARIABLE}={redact(url)!r}: use duckdb://, postgres://user:pass@host/db "
                             "or pyspark://local[2]")
    return _SCHEMES[scheme]


def duckdb_database(url: str) -> str:
    """Return the DuckDB database a duckdb:// URL names (none: in memory)."""
    path = url.split("://", 1)[1]
    return path or ":memory:"


def redact(url: str) -> str:
    """Return a URL fit for a log: the password replaced by ***."""
    return redact_url(url)


def canonical_arrow(data: pa.Table | str, columns: dict[str, str]) -> pa.Table:
    """Return a table with canonical Arrow types: categories as text, no null-typed columns."""
    table = pq.read_table(data) if isinstance(data, str) else data
    fields, arrays = [], []
    for field, array in zip(table.schema, table.columns, strict=True):
        kind = columns.get(field.name)
        target = ARROW_TYPES.get(kind) if kind else None
        if target is None:
            target = field.type
            if pa.types.is_dictionary(target):
                target = target.value_type
            elif pa.types.is_null(target):
                target = pa.string()
        if pa.types.is_dictionary(array.type) and not pa.types.is_dictionary(target):
            array = array.cast(array.type.value_type)
        if array.type != target:
            array = array.cast(target)
        fields.append(pa.field(field.name, target))
        arrays.append(array)
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


class Postgres:
    """A PostgreSQL database shared by every thread (a connection each) and every app replica."""

    kind = "postgres"

    def __init__(self, url: str) -> None:
        self.url = "postgresql://" + url.split("://", 1)[1]  # libpq spells the scheme in full
        self._load_lock = threading.Lock()

    def connect(self) -> ibis.BaseBackend:
        """Return a new Ibis backend on its own connection (one per thread)."""
        return ibis.connect(self.url)

    def load(self, table: str, data: pa.Table | str, columns: dict[str, str]) -> None:
        """Create (or replace) a table and fill it with COPY, in one transaction."""
        import psycopg
        from psycopg import sql

        arrow = canonical_arrow(data, columns)
        types = [COLUMN_KINDS[columns[f.name]].postgres if columns.get(f.name) in COLUMN_KINDS
                 else _postgres_type(f.type) for f in arrow.schema]
        names = [sql.Identifier(f.name) for f in arrow.schema]
        ddl = sql.SQL("CREATE TABLE {} ({})").format(sql.Identifier(table), sql.SQL(", ").join(
            sql.SQL("{} {}").format(n, sql.SQL(t)) for n, t in zip(names, types, strict=True)))
        copy_sql = sql.SQL("COPY {} ({}) FROM STDIN").format(sql.Identifier(table), sql.SQL(", ").join(names))
        with self._load_lock, psycopg.connect(self.url) as con:
            with con.transaction(), con.cursor() as cur:
                # Readers in other sessions or replicas see the old table or the new one, never half.
                cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table)))
                cur.execute(ddl)
                with cur.copy(copy_sql) as copy:
                    copy.set_types(types)
                    for batch in arrow.to_batches(max_chunksize=10_000):
                        for row in zip(*(c.to_pylist() for c in batch.columns), strict=True):
                            copy.write_row(row)
            con.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table)))

    def drop(self, table: str) -> None:
        """Drop a table if it is there."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url, autocommit=True) as con:
            con.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table)))


def _postgres_type(t: pa.DataType) -> str:
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return _postgres_type(t.value_type) + "[]"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "text"
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_floating(t):
        return "double precision"
    if pa.types.is_integer(t):
        return "bigint"
    if pa.types.is_timestamp(t):
        return "timestamptz" if t.tz else "timestamp"
    if pa.types.is_date(t):
        return "date"
    raise TypeError(f"no PostgreSQL type for Arrow {t}")


class Spark:
    """Apache Spark through Ibis's PySpark backend: one SparkSession per process, tables as views."""

    kind = "pyspark"
    _session_lock = threading.Lock()

    def __init__(self, url: str) -> None:
        self.master = url.split("://", 1)[1] or "local[2]"
        self._session = None

    @property
    def session(self):  # -> pyspark.sql.SparkSession, imported only when Spark is configured
        with self._session_lock:
            if self._session is None:
                self._session = spark_session(self.master)
            return self._session

    def connect(self) -> ibis.BaseBackend:
        """Return an Ibis backend over the process's SparkSession (cheap; one per thread)."""
        return ibis.pyspark.connect(self.session)

    def load(self, table: str, data: pa.Table | str, columns: dict[str, str]) -> None:
        """Register a dataset table as a temporary view: Parquet read by Spark, Arrow handed over."""
        from pyspark.sql import functions as F

        if isinstance(data, str):
            # Spark reads the Parquet itself (so a national dataset never passes through Python);
            # canonical columns get canonical types, timestamps stay local wall-clock time.
            frame = self.session.read.parquet(str(Path(data).resolve()))
            present = {f.name: f.dataType.simpleString() for f in frame.schema.fields}
            frame = frame.select(*[
                F.col(f"`{c}`").cast(_spark_type(columns[c], present[c])).alias(c) if c in columns
                else F.col(f"`{c}`") for c in frame.columns])
        else:
            arrow = canonical_arrow(data, columns)
            frame = self.session.createDataFrame(arrow)
            frame = frame.select(*[
                F.col(f"`{f.name}`").cast("timestamp_ntz").alias(f.name) if pa.types.is_timestamp(f.type)
                else F.col(f"`{f.name}`") for f in arrow.schema])
        frame.createOrReplaceTempView(table)

    def drop(self, table: str) -> None:
        """Drop a table's view if it is there."""
        self.session.catalog.dropTempView(table)


def _spark_type(kind: str, present: str) -> str:
    return COLUMN_KINDS[kind].spark if kind in COLUMN_KINDS else present


def spark_session(master: str):
    """Start (or reuse) a SparkSession; in local mode sized for one machine (few partitions, no UI)."""
    from pyspark.sql import SparkSession

    builder = (SparkSession.builder.master(master).appName("officer-safety-explorer")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.session.timeZone", "UTC")  # timestamps are local wall-clock time, kept as is
               .config("spark.sql.execution.arrow.pyspark.enabled", "true"))
    if master.startswith("local"):
        # The default 200 shuffle partitions make every small group-by hundreds of tasks.
        builder = (builder.config("spark.sql.shuffle.partitions", str(settings().spark_shuffle_partitions))
                   .config("spark.ui.enabled", "false")
                   .config("spark.driver.bindAddress", "127.0.0.1")
                   .config("spark.driver.host", "127.0.0.1"))
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


def open_backend(url: str) -> Postgres | Spark:
    """Return the backend a non-DuckDB engine URL names."""
    kind = kind_of(url)
    if kind == "postgres":
        return Postgres(url)
    if kind == "pyspark":
        return Spark(url)
    raise EngineUrlError(f"{kind} is served by lib/engine/store.py itself")
