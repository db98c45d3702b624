"""Dataset store: canonical Parquet loaded into one embedded DuckDB engine, queried through Ibis.

One `Engine` per process serves every session. Each thread gets its own DuckDB cursor (a DuckDB
connection is not safe to share across threads) over the same in-memory database, so sessions
never hold copies of a dataset. Categorical columns become ENUM types, which made filtered
group-bys about four times faster than VARCHAR on this machine class.

The backend is a connection URL in config (`OSE_ENGINE_URL`, see `lib/engine/backends.py`): DuckDB by
default, or a shared PostgreSQL server, or Spark; the queries are the same Ibis expressions.

Officer ids: a dataset folder not written by the ingester (the bundled sample, any Parquet folder opened
directly) may hold raw ids. Given a pseudonymiser (`Engine(pseudonymise=ingest.pseudonymise_ids)`, the same
keyed hash as ingest), the engine replaces every id that is not already a pseudonym in its own loaded tables,
before any query sees them; the user's files are never rewritten.

Record keys: given `record_keys` (`ingest.record_keys`, a keyed hash of the report id), the reports table
gets a `record_key` column (0..255) as it loads, unless the files already carry one; the cell key method
(lib/privacy/cellkey.py) adds them up beside every count it perturbs.
"""
from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
import threading
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import ibis
import ibis.expr.operations as ops
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lib.engine import backends
from lib.model import incidents, schema
from lib.model.kinds import KINDS

SAMPLE_DIR = Path(__file__).resolve().parents[2] / "data" / "sample"
REPORTS_FILE, TACTICS_FILE, OFFICERS_FILE = "reports.parquet", "tactics.parquet", "officers.parquet"
SQL_TYPES = {name: kind.sql for name, kind in KINDS.items() if kind.sql}  # categories: an ENUM each
# A folder dataset was written by us (synth or ingest); these columns must be there.
REQUIRED_IN_FOLDER = ("report_id", "occurred_at", "force")


class DatasetError(Exception):
    """A dataset could not be opened; the message says why in words a user understands."""


@dataclass(frozen=True)
class Dataset:
    """A dataset loaded into the engine; small and hashable, so it can key caches."""

    id: str
    name: str
    source: str
    rows: int
    first: datetime | None
    last: datetime | None
    has_officers: bool
    # Fields recorded once per incident (lib/model/incidents.py): the harm measures on them count incidents.
    incident_level: tuple[str, ...] = ()
    has_incidents: bool = False  # some report has an incident id: "incidents" can be counted
    # Some officer id in the loaded tables is not a pseudonym (an engine given no pseudonymiser opened raw
    # data): a page showing officer ids must then say they are raw, never "pseudonymised".
    raw_officer_ids: bool = False

    @property
    def reports_table(self) -> str:
        return f"ds_{self.id}_reports"

    @property
    def tactics_table(self) -> str:
        return f"ds_{self.id}_tactics"

    @property
    def officers_table(self) -> str:
        return f"ds_{self.id}_officers"


def fingerprint(path: Path) -> str:
    """Return a short id that changes whenever the file or folder contents change."""
    parts = [str(path.resolve())]
    files = sorted(path.glob("*.parquet")) if path.is_dir() else [path]
    for f in files:
        st = f.stat()
        parts.append(f"{f.name}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:12]


class Engine:
    """The process-wide query engine: one DuckDB database, a cursor per thread, Ibis on top.

    `url` (default: `OSE_ENGINE_URL`, else in-memory DuckDB) may name PostgreSQL or Spark instead.
    """

    def __init__(self, url: str | None = None, read_file: FileReader | None = None,
                 pseudonymise: Pseudonymiser | None = None, record_keys: RecordKeyer | None = None) -> None:
        self.url = url or backends.configured_url()
        # How a single file (CSV, Excel, Parquet extract) becomes canonical tables: the ingester's
        # `lib.ingest.read_file`, given by whoever builds the engine. Without it, only dataset folders open.
        self.read_file = read_file
        # How raw officer ids become pseudonyms as a dataset loads: the ingester's keyed hash
        # (`lib.ingest.pseudonymise_ids`). Without it, raw ids stay raw and the Dataset says so.
        self.pseudonymise = pseudonymise
        # How each report gets its record key for the cell key method (`lib.ingest.record_keys`).
        self.record_keys = record_keys
        self.kind = backends.kind_of(self.url)
        self._db = duckdb.connect(backends.duckdb_database(self.url)) if self.kind == "duckdb" else None
        self._remote = None if self._db is not None else backends.open_backend(self.url)
        self._spill: str | None = None  # Spark only: pseudonymised tables written back to Parquet
        if self._db is not None:
            # Loading a dataset needs several times its final size while it runs; without these the
            # allocator keeps that peak (5 GB RSS for 1.3 GB of tables at 5M reports). With them the
            # freed memory goes back to the system within seconds (1.5 GB).
            self._db.execute("SET allocator_background_threads = true")
            self._db.execute("SET allocator_flush_threshold = '16MB'")
        self._local = threading.local()
        self._schemas: dict[str, ibis.Schema] = {}  # per table name; a name is never reused for other data
        self._lock = threading.Lock()
        self._datasets: dict[str, Dataset] = {}
        self._ingest_reports: dict[str, dict] = {}
        self._list_outside: dict[str, dict[str, tuple[str, ...]]] = {}  # per dataset id, found as it loaded

    # -- connections -----------------------------------------------------------------------

    @property
    def backend(self) -> ibis.BaseBackend:
        """Return this thread's Ibis backend over its own cursor of the shared database."""
        be = getattr(self._local, "backend", None)
        if be is None:
            if self._db is not None:
                be = ibis.duckdb.from_connection(self._db.cursor())
            else:
                be = self._remote.connect()
            self._local.backend = be
        return be

    def _table(self, name: str) -> ibis.Table:
        # Ibis reads and parses a table's schema on every .table() call: with ENUM types of thousands of
        # areas and teams that took 2 s at 5M reports, and Streamlit runs every rerun in a new thread. The
        # schema is read once per process; each thread binds it to its own cursor.
        tables = getattr(self._local, "tables", None)
        if tables is None:
            tables = self._local.tables = {}
        if name not in tables:
            if self._db is None:
                tables[name] = self.backend.table(name)
            else:
                schema = self._schemas.get(name)
                if schema is None:
                    schema = self._schemas[name] = _duckdb_schema(self.backend, name)
                tables[name] = ops.DatabaseTable(name, schema=schema, source=self.backend,
                                                 namespace=ops.Namespace()).to_expr()
        return tables[name]

    def reports(self, ds: Dataset) -> ibis.Table:
        """Return the reports table of a dataset as an Ibis expression."""
        return self._table(ds.reports_table)

    def tactics(self, ds: Dataset) -> ibis.Table:
        """Return the tactics table of a dataset as an Ibis expression."""
        return self._table(ds.tactics_table)

    def officers(self, ds: Dataset) -> ibis.Table:
        """Return the officer roster of a dataset (raises if the dataset has none)."""
        if not ds.has_officers:
            raise DatasetError(f"{ds.name} has no officer roster")
        return self._table(ds.officers_table)

    def execute(self, expr: ibis.Expr) -> pd.DataFrame:
        """Run an expression on this thread's cursor and return a (small) DataFrame."""
        return self.backend.execute(expr)

    # -- loading ---------------------------------------------------------------------------

    def open(self, source: str | Path, name: str | None = None) -> Dataset:
        """Load a canonical dataset (folder of Parquet, or one Parquet/CSV file) once; return it."""
        path = Path(source).expanduser()
        if not path.exists():
            raise DatasetError(f"{path} does not exist")
        try:
            ds_id = fingerprint(path)
        except OSError as exc:
            raise DatasetError(f"{path} cannot be read: {exc.strerror or exc}") from exc
        if self.pseudonymise is not None:
            # The same files hashed under another key are other data: a new id, so no cache serves the old.
            ds_id = hashlib.sha1(f"{ds_id}|{_key_tag(self.pseudonymise)}".encode()).hexdigest()[:12]
        with self._lock:
            if ds_id in self._datasets:
                return self._datasets[ds_id]
            (reports, tactics, officers), report = read_source(path, self.read_file)
            ds = self._load(ds_id, name or _default_name(path), str(path), reports, tactics, officers)
            self._datasets[ds_id] = ds
            if report is not None:
                self._ingest_reports[ds_id] = report
            return ds

    def ingest_report(self, ds: Dataset) -> dict | None:
        """Return how a single-file dataset was read (rows in, loaded, set aside), if it was."""
        return self._ingest_reports.get(ds.id)

    def list_items_outside(self, ds: Dataset) -> dict[str, tuple[str, ...]] | None:
        """Return, per list column, the items outside its vocabulary anywhere in the dataset (None: not known here).

        Found once as the dataset loads on DuckDB, so a check of the codes in view need not unnest a list
        column that has none (a category column's ENUM type says the same of it).
        """
        return self._list_outside.get(ds.id)

    def add(self, name: str, reports: pa.Table, tactics: pa.Table,
            officers: pa.Table | None = None, key: str | None = None) -> Dataset:
        """Load in-memory canonical tables as a dataset (tests, uploads); return it."""
        if key is not None and not re.fullmatch(r"[A-Za-z0-9_]+", key):
            # The key names the dataset's tables: Spark refuses a view name with '-', DuckDB would quote it.
            raise ValueError(f"dataset key {key!r} must be letters, digits and '_' (it names tables)")
        ds_id = key or hashlib.sha1(f"{name}:{id(reports)}:{reports.num_rows}".encode()).hexdigest()[:12]
        with self._lock:
            if ds_id in self._datasets:
                return self._datasets[ds_id]
            ds = self._load(ds_id, name, "memory", reports, tactics, officers)
            self._datasets[ds_id] = ds
            return ds

    def drop(self, ds: Dataset) -> None:
        """Remove a dataset's tables and types from the engine."""
        with self._lock:
            if self._db is None:
                for table in (ds.reports_table, ds.tactics_table, ds.officers_table):
                    self._remote.drop(table)
                self._forget(ds)
                return
            cur = self._db.cursor()
            for table in (ds.reports_table, ds.tactics_table, ds.officers_table):
                cur.execute(f'DROP TABLE IF EXISTS "{table}"')
            types = cur.execute(
                "SELECT type_name FROM duckdb_types() WHERE type_name LIKE ?", [f"ds_{ds.id}_%"]
            ).fetchall()
            for (type_name,) in types:
                cur.execute(f'DROP TYPE IF EXISTS "{type_name}"')
            self._forget(ds)

    def _forget(self, ds: Dataset) -> None:
        self._datasets.pop(ds.id, None)
        self._list_outside.pop(ds.id, None)
        # Other threads keep their cached expressions; the ids of dropped datasets are never reused.
        for name in (ds.reports_table, ds.tactics_table, ds.officers_table):
            getattr(self._local, "tables", {}).pop(name, None)
            self._schemas.pop(name, None)

    def _load(self, ds_id: str, name: str, source: str, reports: pa.Table | str,
              tactics: pa.Table | str, officers: pa.Table | str | None) -> Dataset:
        if self._db is None:
            return self._load_remote(ds_id, name, source, reports, tactics, officers)
        cur = self._db.cursor()
        prefix = f"ds_{ds_id}"
        # Tactics first: the reports table carries each report's tactics as a bit mask (see _derived).
        _create_table(cur, f"{prefix}_tactics", tactics, prefix, schema.TACTIC_COLUMNS,
                      {"tactic": schema.TACTICS, "tactic_group": tuple(schema.TACTIC_GROUPS)})
        raw = _create_table(cur, f"{prefix}_reports", reports, prefix, schema.REPORT_COLUMNS,
                            schema.REPORT_VOCABULARIES, tactics_table=f"{prefix}_tactics",
                            pseudonymise=self.pseudonymise, record_keys=self.record_keys)
        if officers is not None:
            raw |= _create_table(cur, f"{prefix}_officers", officers, prefix, schema.OFFICER_COLUMNS,
                                 {"officer_role": schema.OFFICER_ROLES}, pseudonymise=self.pseudonymise)
        columns = {r[0] for r in cur.execute(f'DESCRIBE "{prefix}_reports"').fetchall()}
        self._list_outside[ds_id] = _list_items_outside(cur, f"{prefix}_reports", columns)
        incident_ids = "count(incident_id)" if "incident_id" in columns else "0"
        rows, first, last, with_incident = cur.execute(
            f'SELECT count(*), min(occurred_at), max(occurred_at), {incident_ids} FROM "{prefix}_reports"'
        ).fetchone()
        return Dataset(id=ds_id, name=name, source=source, rows=int(rows), first=first, last=last,
                       has_officers=officers is not None, incident_level=_incident_level(reports),
                       has_incidents=bool(with_incident), raw_officer_ids=raw)


    def _as_read(self, given: pa.Table | str, loaded: pa.Table | str, table: str) -> pa.Table | str:
        """Return what a remote backend should load: for Spark, a Parquet file stays a Parquet file.

        Spark reads a Parquet file itself; a table handed over from Arrow becomes an in-memory relation
        that made every query on it about twice as slow. So a folder's table whose ids were hashed here is
        written to a Parquet file of the engine's own (kept while the engine lives: Spark reads lazily).
        """
        if self.kind != "pyspark" or not isinstance(given, str) or isinstance(loaded, str):
            return loaded
        if self._spill is None:
            self._spill = tempfile.mkdtemp(prefix="ose-spark-")
            weakref.finalize(self, shutil.rmtree, self._spill, True)
        path = str(Path(self._spill) / f"{table}.parquet")
        pq.write_table(loaded, path)
        return path

    def _load_remote(self, ds_id: str, name: str, source: str, reports: pa.Table | str,
                     tactics: pa.Table | str, officers: pa.Table | str | None) -> Dataset:
        """Load a dataset into PostgreSQL or Spark (categories as text, lists as arrays)."""
        prefix = f"ds_{ds_id}"
        incident_level = _incident_level(reports)
        hashed_reports, raw = _pseudonymised_arrow(reports, self.pseudonymise)
        hashed_reports = _keyed_arrow(hashed_reports, self.record_keys)
        self._remote.load(f"{prefix}_reports", self._as_read(reports, hashed_reports, f"{prefix}_reports"),
                          schema.REPORT_COLUMNS)
        self._remote.load(f"{prefix}_tactics", tactics, schema.TACTIC_COLUMNS)
        if officers is not None:
            hashed_officers, raw_roster = _pseudonymised_arrow(officers, self.pseudonymise)
            raw |= raw_roster
            self._remote.load(f"{prefix}_officers", self._as_read(officers, hashed_officers, f"{prefix}_officers"),
                              schema.OFFICER_COLUMNS)
        for table in (f"{prefix}_reports", f"{prefix}_tactics", f"{prefix}_officers"):
            getattr(self._local, "tables", {}).pop(table, None)  # a reload replaces the table
        t = self.backend.table(f"{prefix}_reports")
        incident_ids = t.incident_id.count() if "incident_id" in t.columns else ibis.literal(0)
        row = self.execute(t.aggregate(rows=t.count(), first=t.occurred_at.min(),
                                       last=t.occurred_at.max(), with_incident=incident_ids)).iloc[0]
        return Dataset(id=ds_id, name=name, source=source, rows=int(row["rows"]), first=_datetime(row["first"]),
                       last=_datetime(row["last"]), has_officers=officers is not None,
                       incident_level=incident_level, has_incidents=bool(row["with_incident"]), raw_officer_ids=raw)


# --- officer ids ----------------------------------------------------------------------------

# Replaces raw officer ids by pseudonyms, keeping values that already are pseudonyms and making blanks null.
Pseudonymiser = Callable[[pa.Array | pa.ChunkedArray], pa.Array | pa.ChunkedArray]
# Gives each report id its record key (0..255) for the cell key method.
RecordKeyer = Callable[[pa.Array | pa.ChunkedArray], pa.Array]
RECORD_KEY = "record_key"
_KEY_PROBE = "officer id pseudonymisation key probe"


def _key_tag(pseudonymise: Pseudonymiser) -> str:
    """Return a value that changes exactly when the pseudonymiser's key does (the pseudonym of a fixed text)."""
    return str(pseudonymise(pa.array([_KEY_PROBE], pa.string()))[0].as_py())


def _pseudonymise_staging(cur: duckdb.DuckDBPyConnection, staging: str, kind: str,
                          pseudonymise: Pseudonymiser | None) -> bool:
    """Replace the raw officer ids of a staging table by pseudonyms; return whether raw ids remain.

    Only the distinct values that are not already pseudonyms are hashed (in Python, one per officer); the
    replacement is one join-update inside DuckDB, so a dataset already pseudonymised costs one scan.
    """
    raw = pa.array([r[0] for r in cur.execute(
        f'SELECT DISTINCT CAST(officer_id AS VARCHAR) FROM "{staging}" '
        "WHERE officer_id IS NOT NULL AND NOT regexp_full_match(CAST(officer_id AS VARCHAR), ?)",
        [schema.OFFICER_PSEUDONYM]).fetchall()], pa.string())
    if len(raw) == 0:
        return False
    if pseudonymise is None:
        return True
    mapping = pa.table({"raw": raw, "pseudonym": pseudonymise(raw)})
    if kind != "VARCHAR":  # numeric ids (or an ENUM) must become text to hold a pseudonym
        cur.execute(f'ALTER TABLE "{staging}" ALTER officer_id TYPE VARCHAR')
    cur.register("_pseudonyms", mapping)
    try:
        cur.execute(f'UPDATE "{staging}" SET officer_id = _pseudonyms.pseudonym FROM _pseudonyms '
                    f'WHERE "{staging}".officer_id = _pseudonyms.raw')
    finally:
        cur.unregister("_pseudonyms")
    return False


def _pseudonymised_arrow(data: pa.Table | str, pseudonymise: Pseudonymiser | None
                         ) -> tuple[pa.Table | str, bool]:
    """Return a table with pseudonymised officer ids (a Parquet path stays a path if none is raw); say if raw remain."""
    names = pq.read_schema(data).names if isinstance(data, str) else data.column_names
    if "officer_id" not in names:
        return data, False
    ids = (pq.read_table(data, columns=["officer_id"]) if isinstance(data, str) else data).column("officer_id")
    text = ids.cast(pa.string())
    raw = pc.any(pc.invert(pc.match_substring_regex(text, f"^{schema.OFFICER_PSEUDONYM}$"))).as_py()
    if not raw:
        return data, False
    if pseudonymise is None:
        return data, True
    table = pq.read_table(data) if isinstance(data, str) else data
    at = table.column_names.index("officer_id")
    return table.set_column(at, pa.field("officer_id", pa.string()), pseudonymise(text)), False


def _keyed_arrow(data: pa.Table | str, record_keys: RecordKeyer | None) -> pa.Table | str:
    """Return a reports table with a record key per report (one it already carries is kept)."""
    names = pq.read_schema(data).names if isinstance(data, str) else data.column_names
    if record_keys is None or RECORD_KEY in names or "report_id" not in names:
        return data
    table = pq.read_table(data) if isinstance(data, str) else data
    return table.append_column(pa.field(RECORD_KEY, pa.int16()), record_keys(table.column("report_id")))


def _key_staging(cur: duckdb.DuckDBPyConnection, staging: str, record_keys: RecordKeyer) -> str:
    """Return a staging table with a record key per report: the distinct ids hashed in Python, joined in DuckDB."""
    ids = cur.sql(f'SELECT DISTINCT CAST(report_id AS VARCHAR) AS report_id FROM "{staging}"').to_arrow_table()
    mapping = pa.table({"report_id": ids.column("report_id"), RECORD_KEY: record_keys(ids.column("report_id"))})
    keyed = f"{staging}_keyed"
    cur.register("_record_keys", mapping)
    try:
        cur.execute(f'CREATE TEMP TABLE "{keyed}" AS SELECT s.*, k.{RECORD_KEY} FROM "{staging}" AS s '
                    f'LEFT JOIN _record_keys AS k ON CAST(s.report_id AS VARCHAR) = k.report_id')
    finally:
        cur.unregister("_record_keys")
    cur.execute(f'DROP TABLE "{staging}"')
    return keyed


def _incident_level(reports: pa.Table | str) -> tuple[str, ...]:
    """Return the incident-level fields a reports table (Arrow, or a Parquet path) is marked with."""
    if isinstance(reports, str):
        return incidents.marked(pq.read_schema(reports))
    return incidents.marked(getattr(reports, "schema", None))


def _datetime(value: object) -> datetime | None:
    """Return a plain datetime (as DuckDB gives) from a backend's timestamp, or None when unknown."""
    if value is None or pd.isna(value):
        return None
    return pd.Timestamp(value).to_pydatetime()


def _duckdb_schema(backend: ibis.BaseBackend, name: str) -> ibis.Schema:
    """Return a DuckDB table's Ibis schema, as backend.get_schema(name) does, ENUM columns as strings.

    Ibis parses every column type with SQL's grammar: an ENUM of thousands of areas or teams is a long
    type to parse (0.1 s for the sample's, more at scale), and Ibis reads any ENUM as a string anyway.
    """
    rows = backend.con.execute(f'DESCRIBE "{name}"').fetchall()
    mapper = backend.compiler.type_mapper
    return ibis.schema({col: ibis.dtype("string", nullable=null == "YES") if typ.startswith("ENUM(")
                        else mapper.from_string(typ, nullable=null == "YES")
                        for col, typ, null, *_ in rows})


def _default_name(path: Path) -> str:
    if path.resolve() == SAMPLE_DIR.resolve():
        return "Synthetic sample"
    return path.stem if path.is_file() else path.name


def _create_table(cur: duckdb.DuckDBPyConnection, table: str, data: pa.Table | str, prefix: str,
                  columns: dict[str, str], vocabularies: dict[str, tuple[str, ...]],
                  tactics_table: str | None = None, pseudonymise: Pseudonymiser | None = None,
                  record_keys: RecordKeyer | None = None) -> bool:
    """Create a native table from Parquet or Arrow, with categorical columns as ENUM types.

    Given the dataset's tactics table, the table is the reports table and gets the derived columns
    of `_derived` too. Raw officer ids are pseudonymised on the way; returns whether any raw id remains.
    """
    staging = f"{table}_staging"
    if isinstance(data, str):
        cur.execute(f'CREATE TEMP TABLE "{staging}" AS SELECT * FROM read_parquet(?)', [data])
    else:
        cur.register("_incoming", data)
        cur.execute(f'CREATE TEMP TABLE "{staging}" AS SELECT * FROM _incoming')
        cur.unregister("_incoming")
    described = dict(cur.execute(f'SELECT column_name, column_type FROM (DESCRIBE "{staging}")').fetchall())
    if record_keys is not None and tactics_table is not None and RECORD_KEY not in described \
            and "report_id" in described:
        staging = _key_staging(cur, staging, record_keys)
        described[RECORD_KEY] = "SMALLINT"
    present = list(described)
    raw = "officer_id" in present and _pseudonymise_staging(cur, staging, described["officer_id"], pseudonymise)
    selects = []
    for col in present:
        kind = columns.get(col)
        if kind == "category":
            enum = f"{prefix}_{table.rsplit('_', 1)[-1]}_{col}"
            values = _enum_values(cur, staging, col, vocabularies.get(col, ()))
            if not values:  # an ENUM needs at least one value; an all-null column stays text
                selects.append(f'CAST("{col}" AS VARCHAR) AS "{col}"')
                continue
            cur.execute(f'DROP TYPE IF EXISTS "{enum}"')
            cur.execute(_enum_ddl(enum, values))
            selects.append(f'CAST(CAST("{col}" AS VARCHAR) AS "{enum}") AS "{col}"')
        elif kind in SQL_TYPES:
            # An all-null column arrives typed NULL, which Ibis cannot use: give it its real type.
            selects.append(f'CAST("{col}" AS {SQL_TYPES[kind]}) AS "{col}"')
        else:
            selects.append(f'"{col}"')
    select = f'SELECT {", ".join(selects)} FROM "{staging}"'
    order = [c for c in CLUSTER_BY if c in present] if tactics_table is not None else []
    if order and cur.execute(f'SELECT count(*) FROM "{staging}"').fetchall()[0][0] < CLUSTER_MIN_ROWS:
        order = []  # too few rows to skip any block: sorting them would only slow the load
    if tactics_table is not None:
        select = _derived(cur, select, present, tactics_table)
    if order:
        # Sorting the finished rows costs a quarter of what sorting inside the joins did.
        cur.execute(f'CREATE OR REPLACE TEMP TABLE "{table}_unsorted" AS {select}')
        cur.execute(f'DROP TABLE "{staging}"')
        staging, select = f"{table}_unsorted", f'SELECT * FROM "{table}_unsorted" ORDER BY {", ".join(order)}'
    cur.execute(f'CREATE OR REPLACE TABLE "{table}" AS {select}')
    cur.execute(f'DROP TABLE "{staging}"')
    return raw


# Derived columns of a DuckDB reports table, so one scan can answer a page (lib/engine/query.py, `_page_*`):
# month and week-hour without date arithmetic per row, dense integer keys that count distinct
# officers and incidents exactly with a bitmap, the report's tactics as a bit mask, and (when the
# tactics record it) which of them were answered effective or answered at all, as masks of the same bits.
DERIVED_COLUMNS = ("_month", "_weekhour", "_officer_key", "_incident_key", "_tactics", "_effective_yes",
                   "_effective_answered")
MAX_TACTIC_BITS = 64


def _derived(cur: duckdb.DuckDBPyConnection, select: str, present: list[str], tactics_table: str) -> str:
    """Return a SELECT adding DERIVED_COLUMNS (those the data allows) to the reports SELECT."""
    incident = "coalesce(base.incident_id, base.report_id)" if "incident_id" in present else "base.report_id"
    ctes = [f"base AS ({select})",
            f"incident_keys AS (SELECT k AS _incident, (row_number() OVER () - 1)::UINTEGER AS _incident_key "
            f"FROM (SELECT DISTINCT {incident} AS k FROM base WHERE k IS NOT NULL))"]
    extra = ["date_trunc('month', base.occurred_at)::DATE AS _month",
             "((isodow(base.occurred_at) - 1) * 24 + hour(base.occurred_at))::UTINYINT AS _weekhour",
             "incident_keys._incident_key"]
    joins = [f"LEFT JOIN incident_keys ON incident_keys._incident = {incident}"]
    if "officer_id" in present:
        ctes.append("officer_keys AS (SELECT officer_id, (row_number() OVER () - 1)::UINTEGER AS _officer_key "
                    "FROM (SELECT DISTINCT officer_id FROM base WHERE officer_id IS NOT NULL))")
        extra.append("officer_keys._officer_key")
        joins.append("LEFT JOIN officer_keys ON officer_keys.officer_id = base.officer_id")
    else:
        extra.append("NULL::UINTEGER AS _officer_key")
    bits = tactic_bits(cur, tactics_table)
    if bits is not None:
        effective = "effective" in {r[0] for r in cur.sql(f'DESCRIBE "{tactics_table}"').fetchall()}
        answers = (", bit_or(1::UBIGINT << bits.bit) FILTER (WHERE t.effective) AS yes, "
                   "bit_or(1::UBIGINT << bits.bit) FILTER (WHERE t.effective IS NOT NULL) AS answered, "
                   "count(*) AS uses") if effective else ""
        ctes.append(f"bits AS (SELECT tactic, tactic_group, (row_number() OVER ({TACTIC_BIT_ORDER}) - 1) AS bit "
                    f'FROM (SELECT DISTINCT tactic, tactic_group FROM "{tactics_table}"))')
        ctes.append(f"masks AS (SELECT t.report_id, bit_or(1::UBIGINT << bits.bit) AS mask{answers} "
                    f'FROM "{tactics_table}" t JOIN bits ON t.tactic IS NOT DISTINCT FROM bits.tactic '
                    "AND t.tactic_group IS NOT DISTINCT FROM bits.tactic_group GROUP BY t.report_id)")
        # Stored in the narrowest unsigned type that holds a bit per tactic (UINTEGER for the Home Office's 26):
        # three such columns as UBIGINT took 120 MB at 5,000,000 reports. Queries widen them as they read.
        kind = mask_type(len(bits))
        extra.append(f"coalesce(masks.mask, 0::UBIGINT)::{kind} AS _tactics")
        if effective:
            # Which of the report's tactics were recorded effective, and which answered at all: a use is then
            # one bit. A report recording one tactic twice gets NULL, and its uses are counted from the rows.
            for column, mask in (("_effective_yes", "yes"), ("_effective_answered", "answered")):
                extra.append(f"(CASE WHEN masks.report_id IS NULL THEN 0::UBIGINT WHEN masks.uses = "
                             f"bit_count(masks.mask) THEN coalesce(masks.{mask}, 0::UBIGINT) END)::{kind} AS {column}")
        joins.append("LEFT JOIN masks ON masks.report_id = base.report_id")
    return f"WITH {', '.join(ctes)} SELECT base.*, {', '.join(extra)} FROM base {' '.join(joins)}"


# The rows of a reports table are stored in this order. DuckDB keeps the minimum and maximum of
# each column per block of rows and skips blocks a filter rules out, so a filter on shift and
# officer role (the pages' commonest) reads only its own blocks: 5,000,000 reports, Night shift,
# two roles, one year took about half the time of time order alone. A date filter still skips
# blocks within each (shift, role) run; a filter on force or area reads every block, as before.
CLUSTER_BY = ("shift", "officer_role", "occurred_at")
# DuckDB keeps min/max statistics per row group of 122,880 rows: a table of fewer than two has no
# block a filter could skip (the bundled sample loads in 0.2 s rather than 0.3 s unsorted).
CLUSTER_MIN_ROWS = 2 * 122_880


def mask_type(bits: int) -> str:
    """Return the narrowest DuckDB unsigned integer type with at least `bits` bits (at most 64)."""
    return next(name for width, name in ((8, "UTINYINT"), (16, "USMALLINT"), (32, "UINTEGER"), (64, "UBIGINT"))
                if bits <= width)


TACTIC_BIT_ORDER = "ORDER BY tactic::VARCHAR NULLS LAST, tactic_group::VARCHAR NULLS LAST"


def tactic_bits(cur: duckdb.DuckDBPyConnection, tactics_table: str) -> list[tuple[str | None, str | None]] | None:
    """Return the (tactic, tactic_group) pair of each bit of `_tactics`; None if there are too many for a mask."""
    # The relation API (cur.sql): at query time this is a session's cursor, which an open execute() result blocks.
    cols = {r[0] for r in cur.sql(f'DESCRIBE "{tactics_table}"').fetchall()}
    if not {"report_id", "tactic", "tactic_group"} <= cols:
        return None
    pairs = cur.sql(f'SELECT tactic::VARCHAR, tactic_group::VARCHAR FROM (SELECT DISTINCT tactic, tactic_group '
                        f'FROM "{tactics_table}") {TACTIC_BIT_ORDER}').fetchall()
    return pairs if len(pairs) <= MAX_TACTIC_BITS else None


def _list_items_outside(cur: duckdb.DuckDBPyConnection, table: str, columns: set[str]) -> dict[str, tuple[str, ...]]:
    """Return, per list column of a loaded table, the distinct items outside its vocabulary."""
    found = {}
    for col, vocabulary in schema.LIST_VOCABULARIES.items():
        if col in columns:
            marks = ", ".join("?" * len(vocabulary))
            found[col] = tuple(sorted(r[0] for r in cur.execute(
                f'SELECT DISTINCT CAST(item AS VARCHAR) FROM (SELECT unnest("{col}") AS item FROM "{table}") '
                f"WHERE item IS NOT NULL AND CAST(item AS VARCHAR) NOT IN ({marks})", list(vocabulary)).fetchall()))
    return found


def _enum_values(cur: duckdb.DuckDBPyConnection, staging: str, col: str,
                 vocabulary: Iterable[str]) -> list[str]:
    """Return the vocabulary in its own order, then any other observed values, sorted."""
    seen = [r[0] for r in cur.execute(
        f'SELECT DISTINCT CAST("{col}" AS VARCHAR) FROM "{staging}" WHERE "{col}" IS NOT NULL'
    ).fetchall()]
    vocab = list(vocabulary)
    return vocab + sorted(set(seen) - set(vocab))


def _enum_ddl(enum: str, values: list[str]) -> str:
    # DuckDB takes no bound parameters in CREATE TYPE; values are quoted SQL string literals.
    literals = ", ".join("'" + v.replace("'", "''") + "'" for v in values)
    return f'CREATE TYPE "{enum}" AS ENUM ({literals})'


# --- canonical files ----------------------------------------------------------------------


FileReader = Callable[[Path], tuple[tuple[pa.Table, pa.Table, pa.Table | None], dict]]


def read_source(path: Path, read_file: FileReader | None = None
                ) -> tuple[tuple[pa.Table | str, pa.Table | str, pa.Table | str | None], dict | None]:
    """Return a source's tables and, for a single file, how it was read (rows set aside etc.)."""
    if path.is_dir():
        reports, tactics, officers = (path / REPORTS_FILE, path / TACTICS_FILE, path / OFFICERS_FILE)
        if not reports.exists():
            raise DatasetError(f"{path} has no {REPORTS_FILE}")
        _check_parquet(reports, REQUIRED_IN_FOLDER)
        if not tactics.exists():
            raise DatasetError(f"{path} has no {TACTICS_FILE}")
        _check_parquet(tactics, ("report_id", "tactic"))
        return (str(reports), str(tactics), (str(officers) if officers.exists() else None)), None
    if read_file is None:
        raise DatasetError(f"{path.name} is a single file: this engine opens dataset folders only")
    return read_file(path)


def _check_parquet(path: Path, required: Iterable[str]) -> None:
    try:
        meta = pq.read_schema(path)
    except (pa.ArrowException, OSError) as exc:
        raise DatasetError(f"{path.name} is not a readable Parquet file ({exc})") from exc
    missing = [c for c in required if c not in meta.names]
    if missing:
        raise DatasetError(f"{path.name} lacks required column(s): {', '.join(missing)}")
