"""Loading canonical datasets into the engine, and refusing unreadable ones with a clear reason."""
from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lib import ingest
from lib.engine.store import SAMPLE_DIR, DatasetError, Engine, mask_type, read_source
from lib.ingest import pseudonym
from lib.model import schema

from .conftest import FIXTURES


@pytest.mark.duckdb_only
def test_bundled_sample_loads_with_enum_categories(engine):
    ds = engine.open(SAMPLE_DIR)
    assert ds.name == "Synthetic sample"
    assert ds.rows == 50_000 and ds.has_officers
    types = dict(engine.backend.raw_sql(
        f"SELECT column_name, data_type FROM information_schema.columns "
        f"WHERE table_name = '{ds.reports_table}'").fetchall())
    # ENUM-typed categoricals are what make filtered group-bys fast.
    for col in ("shift", "officer_role", "force", "area", "team", "subject_ethnicity"):
        assert types[col].startswith("ENUM("), (col, types[col])
    assert types["officer_injured"] == "BOOLEAN"
    assert types["reasons"] == "VARCHAR[]"
    # A bit per tactic pair found: the sample's fit 32 bits, so its masks take 4 bytes a report, not 8.
    # fetchall, not fetchone: a result left unfinished blocks the session's shared connection for the next test.
    [(pairs,)] = engine.backend.raw_sql(f'SELECT count(*) FROM (SELECT DISTINCT tactic, tactic_group '
                                        f'FROM "{ds.tactics_table}")').fetchall()
    assert 16 < pairs <= 32
    for col in ("_tactics", "_effective_yes", "_effective_answered"):
        assert types[col] == "UINTEGER", (col, types[col])


@pytest.mark.parametrize(("bits", "kind"), [(1, "UTINYINT"), (8, "UTINYINT"), (9, "USMALLINT"), (26, "UINTEGER"),
                                            (33, "UBIGINT"), (64, "UBIGINT")])
def test_tactic_masks_take_the_narrowest_type_with_a_bit_each(bits, kind):
    assert mask_type(bits) == kind


def test_opening_twice_reuses_the_loaded_tables(engine):
    assert engine.open(SAMPLE_DIR) is engine.open(SAMPLE_DIR)


def test_changed_file_is_a_new_dataset(tmp_path):
    eng = Engine(read_file=ingest.read_file)
    path = tmp_path / "one.csv"
    shutil.copy(FIXTURES / "small_canonical.csv", path)
    first = eng.open(path)
    text = path.read_text().splitlines()
    path.write_text("\n".join(text[:-1]) + "\n")  # drop the last report
    second = eng.open(path)
    assert first.id != second.id
    assert (first.rows, second.rows) == (10, 9)


def test_canonical_csv_splits_tactics_and_applies_ced_rule(engine, small):
    tactics = engine.execute(engine.tactics(small).filter(lambda t: t.report_id == "R01"))
    assert sorted(tactics["tactic"].astype(str)) == ["CED fired", "Compliant handcuffing"]
    reports = engine.execute(engine.reports(small).select("report_id", "shift", "officer_injured"))
    r05 = reports.set_index("report_id").loc["R05"]
    assert r05["shift"] == "Night"            # derived from 02:00
    assert pd.isna(r05["officer_injured"])    # blank stays unknown, never "No"


def test_single_parquet_file_with_tactic_lists(tmp_path, engine):
    frame = pd.read_csv(FIXTURES / "small_canonical.csv", dtype=str)
    frame["tactics"] = frame["tactics"].fillna("").str.split(";")
    path = tmp_path / "export.parquet"
    frame.to_parquet(path)
    ds = engine.open(path)
    assert ds.rows == 10
    n = engine.execute(engine.tactics(ds).count())
    assert n == 12  # 13 listed tactics less R01's CED drawn (highest use only)


def _exists(eng: Engine, table: str) -> bool:
    try:  # ask the backend itself: the engine caches table expressions it has handed out
        eng.backend.table(table)
    except Exception:  # each backend raises its own "no such table"
        return False
    return True


def test_drop_removes_tables(tmp_path):
    # A copy, so a shared database (PostgreSQL) keeps the session's own fixture tables.
    path = tmp_path / "small.csv"
    shutil.copy(FIXTURES / "small_canonical.csv", path)
    eng = Engine(read_file=ingest.read_file)
    ds = eng.open(path)
    assert _exists(eng, ds.reports_table)
    eng.drop(ds)
    assert not _exists(eng, ds.reports_table)
    assert eng.open(path).rows == 10  # and it can load again


@pytest.mark.parametrize(("name", "content", "reason"), [
    ("missing.parquet", None, "does not exist"),
    ("binary.parquet", b"\x00\x01\x02 not parquet", "not a readable Parquet file"),
    ("nocols.csv", b"a,b\n1,2\n", "no known format recognises its header"),
    ("empty.csv", b"", "empty.csv is empty"),
    ("baddates.csv", b"report_id,occurred_at,force,officer_id\nR1,yesterday,X,O1\n",
     "none of the 1 rows in baddates.csv could be loaded (most common reason: occurred_at '…' is not a date)"),
    ("data.xlsx", b"PK\x03\x04", "is not a readable Excel workbook"),
])
def test_unreadable_sources_are_refused_with_a_reason(tmp_path, name, content, reason):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DatasetError) as err:
        Engine(read_file=ingest.read_file).open(path)
    assert reason in str(err.value)


def test_windows_encoded_csv_loads_and_reports_what_it_set_aside(tmp_path, engine):
    path = tmp_path / "latin1.csv"
    path.write_bytes("report_id,occurred_at,force,officer_id\nR1,2024-01-01,Caf\xe9,O1\nR2,never,X,O2\n"
                     .encode("cp1252"))
    ds = engine.open(path)
    assert ds.rows == 1
    assert engine.execute(engine.reports(ds).force.cast("string")).tolist() == ["Café"]
    report = engine.ingest_report(ds)
    assert (report["rows_in"], report["rows_loaded"], report["rows_quarantined"]) == (2, 1, 1)


def test_an_engine_without_a_file_reader_opens_folders_but_not_single_files(tmp_path):
    plain = Engine()  # the engine alone knows no file formats: the ingester is handed to it
    assert plain.open(SAMPLE_DIR).rows > 0
    path = tmp_path / "one.csv"
    shutil.copy(FIXTURES / "small_canonical.csv", path)
    with pytest.raises(DatasetError, match="one.csv is a single file: this engine opens dataset folders only"):
        plain.open(path)
    assert Engine(read_file=ingest.read_file).open(path).rows == 10


def test_folder_without_reports_is_refused(tmp_path):
    with pytest.raises(DatasetError, match="has no reports.parquet"):
        read_source(tmp_path)


@pytest.mark.duckdb_only
def test_vocabulary_order_is_enum_order(engine):
    ds = engine.open(SAMPLE_DIR)
    enum = engine.backend.raw_sql(
        f"SELECT data_type FROM information_schema.columns WHERE table_name = '{ds.reports_table}' "
        "AND column_name = 'shift'").fetchall()[0][0]  # fetch to the end: DuckDB 2 keeps the cursor busy otherwise
    assert enum == "ENUM(" + ", ".join(f"'{s}'" for s in schema.SHIFTS) + ")"


def test_sample_readme_says_synthetic():
    text = (Path(SAMPLE_DIR).parent / "README.md").read_text()
    assert "synthetic" in text.lower() and "not real" in text.lower()


def test_all_null_columns_keep_their_canonical_types(engine, small):
    types = engine.reports(small).schema()
    # The hand fixture has no impact factors, outcomes or CED training at all.
    assert (str(types["impact_factors"]), str(types["outcomes"]), str(types["ced_trained"])) == (
        "array<string>", "array<string>", "boolean")


def test_threads_query_at_once(engine, small):
    """Sessions run on their own threads: each gets its own cursor or connection to the shared engine."""
    from concurrent.futures import ThreadPoolExecutor

    def count(_: int) -> int:
        return int(engine.execute(engine.reports(small).count()))

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(count, range(8))) == [10] * 8


@pytest.mark.duckdb_only
@pytest.mark.parametrize("min_rows", [0, None])
def test_reports_are_stored_clustered_only_when_there_are_blocks_to_skip(min_rows, monkeypatch, tmp_path):
    # Stored in shift, role and time order, a shift or role filter skips whole row groups at scale; a
    # table too small to have two row groups loads as it came (sorting it would only slow the start).
    import lib.engine.store as store

    if min_rows is not None:
        monkeypatch.setattr(store, "CLUSTER_MIN_ROWS", min_rows)
    path = tmp_path / "one.csv"
    shutil.copy(FIXTURES / "small_canonical.csv", path)
    eng = Engine(read_file=ingest.read_file)
    ds = eng.open(path)
    stored = eng._db.execute(
        f'SELECT report_id, shift::VARCHAR, officer_role::VARCHAR, occurred_at FROM "{ds.reports_table}"').fetchall()
    source = ingest.read_file(path)[0][0]["report_id"].to_pylist()
    if min_rows is None:  # ten reports: as in the file
        assert [r[0] for r in stored] == source
    else:  # ENUM order: the vocabulary's (Early, Late, Night; Response, ...), nulls last; then time
        shift_rank = {s: i for i, s in enumerate(schema.SHIFTS)}
        role_rank = {s: i for i, s in enumerate(schema.OFFICER_ROLES)}
        key = [(shift_rank.get(s, 99), role_rank.get(r, 99), t) for _, s, r, t in stored]
        assert key == sorted(key) and [r[0] for r in stored] != source


def test_a_dataset_key_that_cannot_name_a_table_is_refused_on_every_backend(engine, small):
    # Refused before anything is loaded: Spark rejects such a view name, so DuckDB must not accept it either.
    reports = engine.execute(engine.reports(small))
    with pytest.raises(ValueError, match="letters, digits and '_'"):
        engine.add("hyphenated", reports, reports, key="not-a-name")


# --- officer ids pseudonymised as a dataset opens (issue 16, part 6) ----------------------------------


@pytest.fixture(scope="module")
def hooked() -> Engine:
    """An engine built as the app and lib.summary build theirs: the ingester reads files and hashes officer ids."""
    return Engine(read_file=ingest.read_file, pseudonymise=ingest.pseudonymise_ids)


def _distinct_ids(engine: Engine, table) -> set:
    return set(engine.execute(table.select("officer_id").distinct())["officer_id"].dropna())


def _raw_folder(folder: Path, ids: list[object]) -> tuple[Path, list[str]]:
    """Write a dataset folder by hand (not by the ingester): the small fixture's reports with the given officer ids.

    Returns the folder and the report ids in row order (the row each officer id went to).
    """
    reports, tactics = ingest.tables(ingest.ingest([("small.csv", (FIXTURES / "small_canonical.csv").read_bytes())]))
    at = reports.column_names.index("officer_id")
    reports = reports.set_column(at, "officer_id", pa.array(ids))
    folder.mkdir()
    pq.write_table(reports, folder / "reports.parquet")
    pq.write_table(tactics, folder / "tactics.parquet")
    return folder, reports.column("report_id").to_pylist()


def test_bundled_sample_opens_with_pseudonyms_in_every_officer_output(hooked):
    from lib.analysis import risk, training
    from lib.engine.query import UNRESTRICTED, Filters

    raw_ids = set(pq.read_table(SAMPLE_DIR / "reports.parquet", columns=["officer_id"])["officer_id"].to_pylist())
    roster_ids = set(pq.read_table(SAMPLE_DIR / "officers.parquet", columns=["officer_id"])["officer_id"].to_pylist())
    assert all(not pseudonym.is_pseudonym(i) for i in raw_ids)  # lib.synth writes raw ids such as OF003351
    before = (SAMPLE_DIR / "reports.parquet").read_bytes()
    ds = hooked.open(SAMPLE_DIR)
    assert not ds.raw_officer_ids
    assert _distinct_ids(hooked, hooked.reports(ds)) == set(pseudonym.pseudonymise(sorted(raw_ids)))
    assert _distinct_ids(hooked, hooked.officers(ds)) == set(pseudonym.pseudonymise(sorted(roster_ids)))
    assert (SAMPLE_DIR / "reports.parquet").read_bytes() == before  # the user's files are never rewritten
    points, _ = risk.funnel(hooked, ds, Filters(), UNRESTRICTED, "officer_injured", risk.OFFICER_LEVEL)
    exposure = risk.officer_exposure(hooked, ds, Filters(), UNRESTRICTED, "officer_injured")
    months = training.officer_month_counts(hooked, ds, Filters(), UNRESTRICTED)
    for shown in (points["group"], risk.by_officer(hooked, ds, Filters(), UNRESTRICTED)["officer"],
                  exposure.table["officer"], months["officer_id"]):
        assert len(shown) and shown.map(pseudonym.is_pseudonym).all()
        assert not raw_ids & set(shown)
    assert len(exposure.table) > 0  # the sample's officers differ: the list is shown, with pseudonyms


def _ids_by_report(engine: Engine, ds) -> dict:
    got = engine.execute(engine.reports(ds).select("report_id", "officer_id"))
    return {r: (None if pd.isna(i) else i) for r, i in zip(got["report_id"], got["officer_id"], strict=True)}


def test_raw_parquet_folder_gets_the_pseudonyms_ingest_gives(tmp_path, hooked):
    # Text, spaces and case: each hashed as ingest hashes the same cell; a missing id stays missing.
    ids = ["OF1", "OF2", "of3", " OF4 ", "OF5", "OF6", "OF7", "OF8", "OF1", None]
    folder, report_ids = _raw_folder(tmp_path / "raw", ids)
    ds = hooked.open(folder)
    assert not ds.raw_officer_ids
    expected = dict(zip(report_ids, pseudonym.pseudonymise(ids), strict=True))
    assert _ids_by_report(hooked, ds) == expected and expected[report_ids[-1]] is None
    csv = "report_id,occurred_at,force,officer_id\n" + "".join(f"{r},2024-01-01,X,{i or ''}\n"
                                                              for r, i in zip(report_ids, ids, strict=True))
    through_ingest = ingest.ingest([("same.csv", csv.encode())]).reports
    assert dict(zip(through_ingest["report_id"], through_ingest["officer_id"].astype(object).where(
        through_ingest["officer_id"].notna(), None), strict=True)) == expected  # one officer, one pseudonym
    numbers, _ = _raw_folder(tmp_path / "numbers", [1234] * len(ids))  # ids stored as numbers
    assert _distinct_ids(hooked, hooked.reports(hooked.open(numbers))) == set(pseudonym.pseudonymise(["1234"]))


def test_already_pseudonymised_ids_are_left_alone_and_mixed_ones_hash_only_the_raw(tmp_path, hooked):
    done = pseudonym.pseudonymise([f"OF{n}" for n in range(10)])
    folder, report_ids = _raw_folder(tmp_path / "done", done)
    assert _ids_by_report(hooked, hooked.open(folder)) == dict(zip(report_ids, done, strict=True))  # identical
    mixed, report_ids = _raw_folder(tmp_path / "mixed", done[:5] + [f"OF{n}" for n in range(5, 10)])
    assert _ids_by_report(hooked, hooked.open(mixed)) == dict(zip(report_ids, done, strict=True))


def test_an_engine_without_a_pseudonymiser_says_its_ids_are_raw(tmp_path):
    plain = Engine()
    assert plain.open(_raw_folder(tmp_path / "raw", [f"OF{n}" for n in range(10)])[0]).raw_officer_ids
    assert not plain.open(_raw_folder(tmp_path / "done", pseudonym.pseudonymise(["OF1"] * 10))[0]).raw_officer_ids


def test_the_same_folder_under_another_key_is_another_dataset(tmp_path):
    folder, _ = _raw_folder(tmp_path / "raw", [f"OF{n}" for n in range(10)])
    keys = (b"first test key, at least 32 bytes long", b"second test key, at least 32 bytes long")
    opened = [Engine(pseudonymise=lambda v, k=key: pseudonym.pseudonymise(v, k)).open(folder) for key in keys]
    assert opened[0].id != opened[1].id  # caches keyed on the dataset never serve one key's pseudonyms for another
    assert Engine(pseudonymise=lambda v: pseudonym.pseudonymise(v, keys[0])).open(folder).id == opened[0].id


def test_tables_for_a_remote_backend_are_pseudonymised_in_arrow(tmp_path):
    from lib.engine import store

    folder, report_ids = _raw_folder(tmp_path / "raw", [f"OF{n}" for n in range(9)] + [None])
    path = str(folder / "reports.parquet")
    table, raw = store._pseudonymised_arrow(path, ingest.pseudonymise_ids)
    assert not raw and table.column("officer_id").to_pylist() == pseudonym.pseudonymise(
        [f"OF{n}" for n in range(9)] + [None])
    assert store._pseudonymised_arrow(path, None) == (path, True)  # no pseudonymiser: left raw, and said so
    done, _ = _raw_folder(tmp_path / "done", pseudonym.pseudonymise(["OF1"] * 10))
    assert store._pseudonymised_arrow(str(done / "reports.parquet"), ingest.pseudonymise_ids) == (
        str(done / "reports.parquet"), False)  # already pseudonyms: the file is loaded as it is
