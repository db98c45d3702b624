"""Ingestion: safe reading, format detection, quarantine with reasons, and counts that reconcile."""
from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import zipfile
from datetime import date, datetime, time, timedelta

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lib import ingest
from lib.ingest import Limits, RejectedFile, reading

from .conftest import FIXTURES, ROOT
from .killing import kill_when, temporaries, temporary_holds

SMALL = (FIXTURES / "small_canonical.csv").read_bytes()
HEADER = SMALL.split(b"\n", 1)[0]
WIDTH = HEADER.count(b",") + 1


def pad(row: bytes) -> bytes:
    """Complete a short canonical row with empty cells up to the header's width."""
    return row + b"," * (WIDTH - 1 - row.count(b",")) + b"\n"


def reconciles(result: ingest.IngestResult) -> bool:
    r = result.report
    return r["rows_in"] == r["rows_loaded"] + r["rows_quarantined"] == (
        int(result.reports["_rows"].sum()) + int(result.quarantine["_rows"].sum()))


def test_canonical_csv_loads_every_row():
    result = ingest.ingest([("small.csv", SMALL)])
    r = result.report
    assert (r["rows_in"], r["rows_loaded"], r["rows_quarantined"]) == (10, 10, 0)
    assert r["detected_format"] == "canonical"
    assert r["completeness"]["officer_injured"] == 0.9
    assert len(result.tactics) == 12  # R01's CED drawn gives way to CED fired
    assert reconciles(result)


def test_multiple_files_append_and_duplicates_are_set_aside_with_the_first_seen_place():
    second = (HEADER + b"\n" + SMALL.split(b"\n")[1] + b"\n"
              + pad(b"R20,I20,2024-05-01 10:00,Southshire Police,East,OF9"))
    result = ingest.ingest([("q1.csv", SMALL), ("q2.csv", second)])
    r = result.report
    assert (r["rows_in"], r["rows_loaded"], r["rows_quarantined"]) == (12, 11, 1)
    assert r["duplicates"]["repeated_report_ids"] == 1 and r["duplicates"]["identical_rows"] == 1
    reason = result.quarantine["reason"].iloc[0]
    assert reason == "duplicate of report 'R01' first seen in q1.csv row 1"
    assert reconciles(result)


def test_keeping_all_duplicates_renames_the_copies():
    result = ingest.ingest([("q1.csv", SMALL), ("q2.csv", SMALL)], duplicates="keep-all")
    assert result.report["rows_loaded"] == 20
    assert result.reports["report_id"].is_unique
    assert "R01-copy2" in set(result.reports["report_id"])


def test_broken_rows_are_set_aside_with_reasons_and_good_rows_load():
    broken = (SMALL + b"R11,I11,yesterday,Southshire Police,West,OF9\n"
              + b"R12,I12,2024-05-02 09:00\n"
              + pad(b"R13,I13,2024-05-03 09:00,,West,OF9"))
    result = ingest.ingest([("broken.csv", broken)])
    q = result.quarantine.set_index("_row")["reason"].to_dict()
    assert q[11].startswith("has 6 fields where the header has")
    assert q[12] == "has 3 fields where the header has 19"
    assert q[13].startswith("no force")
    assert result.report["rows_loaded"] == 10
    assert reconciles(result)
    # The download shows the original cells next to the reason.
    assert "occurred_at" in result.quarantine.columns


def test_unreadable_date_is_named_in_the_reason():
    text = (HEADER + b"\n" + pad(b"R1,I1,13/45/2024,Kent Police,North,OF1")
            + pad(b"R2,I2,2024-02-01 10:00,Kent Police,North,OF2"))
    result = ingest.ingest([("dates.csv", text)])
    assert result.quarantine["reason"].tolist() == ["occurred_at '13/45/2024' is not a date"]
    assert result.report["rows_loaded"] == 1 and reconciles(result)


def test_force_can_be_supplied_for_extracts_without_one():
    text = b"report_id,occurred_at,force,officer_id\nR1,2024-02-01 10:00,,OF1\n"
    assert ingest.ingest([("a.csv", text)]).report["rows_quarantined"] == 1
    assert ingest.ingest([("a.csv", text)], force="Kent Police").reports["force"].tolist() == ["Kent Police"]


def _parquet_with_rows(n: int) -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.table({"x": pa.nulls(n, pa.int8())}), buf, compression="zstd")
    return buf.getvalue()


def _wide_csv(columns: int) -> bytes:
    return ",".join(f"c{i}" for i in range(columns)).encode() + b"\n" + b"1," * (columns - 1) + b"1\n"


@pytest.mark.parametrize(("name", "make", "limits", "message"), [
    ("empty.csv", lambda: b"", Limits(), "empty.csv is empty"),
    ("blank.csv", lambda: b"\n\n  \n", Limits(), "blank.csv is empty"),
    ("photo.csv", lambda: b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 40, Limits(),
     "not a text file"),
    ("wide.csv", lambda: _wide_csv(100_000), Limits(), "has 100,000 columns; the limit is 2,000"),
    ("huge.parquet", lambda: _parquet_with_rows(100_000_000), Limits(),
     "says it holds 100,000,000 rows; the limit is 20,000,000"),
    ("big.csv", lambda: SMALL * 3, Limits(max_bytes=1_000), "the limit is 1,000 bytes"),
    ("fake.parquet", lambda: b"not parquet at all", Limits(), "is not a readable Parquet file"),
    ("fake.xlsx", lambda: b"PK\x03\x04 broken zip", Limits(), "is not a readable Excel workbook"),
    ("nothing.csv", lambda: b"colour,flavour\nred,sweet\n", Limits(), "no known format recognises its header"),
])
def test_bad_files_are_rejected_with_a_clear_message(name, make, limits, message):
    with pytest.raises(RejectedFile) as err:
        ingest.ingest([(name, make())], limits=limits)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_a_fifty_megabyte_field_sets_its_row_aside_and_keeps_the_rest():
    big = b"x" * (50 * 1024 * 1024)
    data = SMALL + b"R11,I11,2024-05-01 10:00,Kent Police,North,OF9,Response,T,No,Other,Male,18-34,White,No,,No,No," \
        + big + b",\n"
    result = ingest.ingest([("bigcell.csv", data)])
    reason = result.quarantine.set_index("_row").loc[11, "reason"]
    assert reason == "cell in column 'reasons' is 52,428,800 characters long; the limit is 1,000,000"
    assert result.report["rows_loaded"] == 10 and reconciles(result)


@pytest.mark.parametrize(("encoding", "bom"), [("cp1252", b""), ("utf-16", b""), ("utf-8", b"\xef\xbb\xbf")])
def test_encodings_are_detected(encoding, bom):
    text = "report_id,occurred_at,force,officer_id,area\nR1,2024-02-01 10:00,Café Police,OF1,Señor £\n"
    result = ingest.ingest([("enc.csv", bom + text.encode(encoding))])
    assert result.reports["force"].tolist() == ["Café Police"]
    assert result.reports["area"].tolist() == ["Señor £"]


def test_excel_and_parquet_uploads(tmp_path):
    frame = pd.read_csv(FIXTURES / "small_canonical.csv", dtype=str)
    xlsx = tmp_path / "small.xlsx"
    frame.to_excel(xlsx, index=False)
    from_excel = ingest.ingest([("small.xlsx", xlsx.read_bytes())])
    assert from_excel.report["rows_loaded"] == 10
    assert from_excel.reports.set_index("report_id").loc["R04", "shift"] == "Night"
    typed = frame.assign(occurred_at=pd.to_datetime(frame["occurred_at"]),
                         tactics=frame["tactics"].fillna("").str.split(";"))
    buf = io.BytesIO()
    typed.to_parquet(buf)
    from_parquet = ingest.ingest([("small.parquet", buf.getvalue())])
    assert from_parquet.report["rows_loaded"] == 10
    assert len(from_parquet.tactics) == 12


def test_a_parquet_date_column_is_read_as_text():
    table = pa.table({"officer_id": ["OF1", "OF2"],
                      "trained_on": pa.array([pd.Timestamp("2024-01-05").date(), None], pa.date32())})
    buf = io.BytesIO()
    pq.write_table(table, buf)
    raw = ingest.read_extract("roster.parquet", buf.getvalue())
    assert raw.frame["trained_on"].tolist() == ["2024-01-05 00:00:00", pd.NA]


def test_written_dataset_opens_in_the_engine(tmp_path, engine):
    result = ingest.ingest([("small.csv", SMALL)])
    ingest.write(result, tmp_path / "ds")
    ds = engine.open(tmp_path / "ds")
    assert ds.rows == 10
    report = json.loads((tmp_path / "ds" / "report.json").read_text())
    assert {"rows_in", "rows_loaded", "rows_quarantined", "detected_format", "mapping",
            "completeness"} <= set(report)


def test_command_line_exit_codes(tmp_path):
    ok = subprocess.run([sys.executable, "-m", "lib.ingest", str(FIXTURES / "small_canonical.csv"),
                         "--out", str(tmp_path / "out")], cwd=ROOT, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "10 rows in, 10 loaded, 0 set aside (canonical)" in ok.stdout
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    bad = subprocess.run([sys.executable, "-m", "lib.ingest", str(empty), "--out", str(tmp_path / "x")],
                         cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stderr.strip() == "rejected: empty.csv is empty"
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(("name", "fmt", "rows_in", "reports", "officer_injured"), [
    ("dallas_uof_2016_cpe_37-00049.csv", "profile:dallas", 2383, 2383, 234),
    ("nopd_uof_incidents_2016-2019.csv", "profile:nopd", 4907, 4330, 516),
])
def test_real_files_are_detected_and_load_whole(name, fmt, rows_in, reports, officer_injured, realdata):
    result = ingest.ingest([(name, (realdata / name).read_bytes())])
    r = result.report
    assert r["detected_format"] == fmt
    assert (r["rows_in"], r["rows_loaded"], r["rows_quarantined"]) == (rows_in, rows_in, 0)
    assert r["reports_loaded"] == reports
    assert int(result.reports["officer_injured"].sum()) == officer_injured
    assert reconciles(result)
    assert r["unmapped"]["subject_ethnicity"]["Hispanic"] > 0  # kept and shown, not dropped


def test_national_form_with_drift_is_detected_and_quarantines_bad_dates(tmp_path):
    out = tmp_path / "met.csv"
    done = subprocess.run([sys.executable, "-m", "lib.synth.uk_national", "--reports", "20000", "--seed", "3",
                           "--out", str(out), "--drift"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    result = ingest.ingest([("met.csv", out.read_bytes())], force="Metropolitan Police")
    r = result.report
    assert r["detected_format"] == "uk-national"
    assert r["files"][0]["encoding"] == "cp1252"
    assert r["rows_quarantined"] > 0 and reconciles(result)
    kinds = set(r["quarantine_reasons"])
    assert any("IncidentDate" in k for k in kinds)
    assert r["completeness"]["officer_injured"] > 0.9
    assert result.reports["force"].eq("Metropolitan Police").all()
    # CED counts once per report, at its highest use.
    ced = result.tactics[result.tactics["tactic"].str.startswith("CED")]
    assert ced["report_id"].is_unique


def test_a_broken_saved_profile_does_not_block_uploads(tmp_path, monkeypatch):
    monkeypatch.setenv("OSE_DATA_DIR", str(tmp_path))
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "broken.json").write_text("{not json")
    assert ingest.ingest([("small.csv", SMALL)]).report["rows_loaded"] == 10


def national_form_csv(rows: list[dict[str, str]]) -> tuple[list[str], bytes]:
    """A national-form CSV with two columns the format does not read, one naming officer ids."""
    import csv

    from lib.ingest.formats.uk_national import FORM_COLUMNS

    header = [*FORM_COLUMNS, "Free Text Notes", "Collar Number"]
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([[row.get(c, "") for c in header] for row in rows])
    return header, text.getvalue().encode("cp1252")


NATIONAL_ROWS = [
    {"IncidentDate": "01/04/2020", "IncidentTime": "10:00", "Tactic 1": "Ground Restraint",
     "Collar Number": "PC 123"},
    {"Free Text Notes": "date to follow", "Collar Number": "PC 456"},  # no date, but not empty
    {},  # blank in every column
    {"IncidentDate": "02/04/2020", "IncidentTime": "23:30", "Free Text Notes": "Café"},
]


def test_a_wide_extract_is_read_only_as_far_as_its_format_needs():
    from lib.ingest.formats.uk_national import UkNationalForm

    header, data = national_form_csv(NATIONAL_ROWS)
    form = UkNationalForm()
    raw = ingest.read_extract("met.csv", data, columns=form.columns_read)
    assert not raw.every_column_read and raw.columns == header
    assert "Free Text Notes" not in raw.frame.columns and "IncidentDate" in raw.frame.columns
    cells = raw.cells([2, 4])
    assert list(cells.columns) == ["_file", "_row", *header]
    assert cells["Free Text Notes"].tolist() == ["date to follow", "Café"]
    # Read whole or in part, the format adapts the extract the same way.
    whole = ingest.read_extract("met.csv", data)
    assert whole.every_column_read
    partial, full = form.adapt(raw.frame, source=raw), form.adapt(whole.frame)
    assert partial.reports.equals(full.reports) and partial.tactics.equals(full.tactics)
    assert partial.quarantine.equals(full.quarantine)
    assert partial.notes == full.notes and partial.mapping == full.mapping


def test_set_aside_rows_of_a_partly_read_extract_keep_every_cell_pseudonymised():
    from lib.ingest import pseudonym

    _, data = national_form_csv(NATIONAL_ROWS)
    result = ingest.ingest([("met.csv", data)], force="Metropolitan Police")
    assert reconciles(result)
    q = result.quarantine.set_index("_row")
    # Row 2 has a note in a column the format does not read, so it is not an empty row.
    assert q.loc[2, "reason"] == "IncidentDate is missing" and q.loc[3, "reason"] == "empty row"
    assert q.loc[2, "Free Text Notes"] == "date to follow"
    assert pseudonym.is_pseudonym(q.loc[2, "Collar Number"])
    assert "PC 456" not in result.quarantine.astype(str).to_numpy()
    assert any("Free Text Notes" in note for note in result.report["notes"])


@pytest.mark.parametrize("limit", [0, 1, 3, 4, 5, 9, 10, 100])
def test_long_line_check_matches_the_longest_line(limit):
    for data in (b"", b"abc", b"abc\n", b"\n\n", b"ab\nabcd\nabc", b"abcdefghij\nab\n", b"a\r\nbcde\r\n"):
        longest = max(len(line) for line in data.split(b"\n"))
        assert reading._has_line_longer_than(data, limit) == (longest > limit), (data, limit)


# --- Excel uploads (read with python-calamine) --------------------------------------------


def _xlsx(rows, formats=(), write_only=False) -> bytes:
    from openpyxl import Workbook

    book = Workbook(write_only=write_only)
    sheet = book.create_sheet("Data") if write_only else book.active
    for row in rows:
        sheet.append(row)
    for cell, number_format in formats:
        sheet[cell].number_format = number_format
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


# Each value as openpyxl writes it, and the text the openpyxl reader gave it (before calamine).
EXCEL_CELLS = {
    "int": (5, "5"), "negative": (-3, "-3"), "zero": (0, "0"), "float": (2.5, "2.5"),
    "whole float": (5.0, "5"), "big int": (3_000_000_000_000_000, "3000000000000000"),
    "huge": (1e20, "1e+20"), "tiny": (1.5e-7, "1.5e-07"), "imprecise": (12345678901234567, "1.234567890123457e+16"),
    "true": (True, "True"), "false": (False, "False"), "blank": (None, ""), "text": (" 007 ", " 007 "),
    "midnight": (datetime(2023, 4, 1), "2023-04-01 00:00:00"),
    "datetime": (datetime(2023, 4, 1, 13, 5, 7), "2023-04-01 13:05:07"),
    "micro": (datetime(2023, 4, 1, 13, 5, 7, 500000), "2023-04-01 13:05:07"),
    "date": (date(2023, 4, 1), "2023-04-01 00:00:00"), "time": (time(13, 5), "13:05:00"),
    "time micro": (time(13, 5, 7, 250000), "13:05:07.250000"),
    "duration": (timedelta(hours=30, minutes=5), "1 day, 6:05:00"),
    "serial as date": (44000, "2020-06-18 00:00:00"),  # formatted dd/mm/yyyy below
    "percent": (0.5, "0.5"),  # formatted 0% below
    "formula": ("=1+1", ""),  # no cached value in a file openpyxl wrote
    "half day as date": (0.5, "12:00:00"),  # formatted as a date-time below
}


def test_excel_cells_read_as_the_same_text_as_before():
    values = [v for v, _ in EXCEL_CELLS.values()]
    header = [*EXCEL_CELLS, 2019, datetime(2020, 1, 1), None, 7.0]
    data = _xlsx([header, values, [None, None, None, "x"]],
                 [("U2", "dd/mm/yyyy"), ("V2", "0%"), ("X2", "dd/mm/yyyy hh:mm")])
    raw = reading.read_extract("types.xlsx", data)
    assert raw.kind == "Excel"
    assert raw.columns == [*EXCEL_CELLS, "2019", "2020-01-01 00:00:00", "column", "7"]
    first = raw.frame.iloc[0]
    assert {k: first[k] for k in EXCEL_CELLS} == {k: text for k, (_, text) in EXCEL_CELLS.items()}
    assert raw.frame.iloc[1]["float"] == "x" and len(raw.frame) == 2
    assert raw.frame["int"].dtype == "string"


def test_an_excel_error_cell_reads_as_blank():
    # openpyxl gave '#N/A'; calamine gives no text for an error, so it reads as an empty cell.
    raw = reading.read_extract("errors.xlsx", _xlsx([["a", "b"], ["#N/A", "ok"]]))
    assert raw.frame.iloc[0][["a", "b"]].tolist() == ["", "ok"]


def test_a_workbook_without_dimensions_is_read():
    # openpyxl's write-only mode leaves out <dimension>; the openpyxl reader saw no sheet with data.
    raw = reading.read_extract("stream.xlsx", _xlsx([["a", "b"], [1, "x"], [2, None]], write_only=True))
    assert raw.frame[["a", "b"]].to_dict("list") == {"a": ["1", "2"], "b": ["x", ""]}


def test_the_first_sheet_with_data_is_read_and_said():
    from openpyxl import Workbook

    book = Workbook()
    book.active.title = "Cover"
    book.create_sheet("Data").append(["a"])
    book["Data"].append(["1"])
    buf = io.BytesIO()
    book.save(buf)
    raw = reading.read_extract("two.xlsx", buf.getvalue())
    assert raw.frame["a"].tolist() == ["1"]
    assert raw.notes == ["two.xlsx: read the first sheet with data ('Data')"]


@pytest.mark.parametrize(("cells", "message"), [
    ({"A1": "a", "XFD1048576": "far"}, "has 16,384 columns; the limit is 2,000"),
    ({"A1": "a", "CV1": "b", "A1048576": "far"}, "spans 1,048,576 rows x 100 columns; the limit is 50,000,000 cells"),
])
def test_a_tiny_workbook_naming_a_far_cell_is_refused_before_it_is_read(cells, message):
    # Calamine would allocate the whole grid up to the far cell (550 GB for XFD1048576) and abort.
    from openpyxl import Workbook

    book = Workbook()
    for ref, value in cells.items():
        book.active[ref] = value
    buf = io.BytesIO()
    book.save(buf)
    assert len(buf.getvalue()) < 10_000
    with pytest.raises(RejectedFile, match=message):
        reading.read_extract("far.xlsx", buf.getvalue())


def test_the_limits_apply_to_excel_rows_and_columns():
    data = _xlsx([["a", "b", "c"], *([1, 2, 3] for _ in range(5))])
    with pytest.raises(RejectedFile, match="has 3 columns; the limit is 2"):
        reading.read_extract("w.xlsx", data, Limits(max_columns=2))
    with pytest.raises(RejectedFile, match="holds more than 5 rows; the limit is 5"):
        reading.read_extract("t.xlsx", data, Limits(max_rows=5))


@pytest.mark.parametrize(("xml", "extent"), [
    (b'<row r="2"><c r="B2"><v>1</v></c><c r="AA9"/></row>', (9, 27, 0, 0)),
    (b'<row><c><v>1</v></c><c><v>2</v></c></row><row r="4"><c r="C4"/></row>', (4, 3, 1, 2)),
    (b'<x:row r="3"><x:c r="D3"/><x:c s="1"/></x:row>', (3, 4, 0, 1)),  # calamine ignores prefixes
    (b"<row spans='1:2' r='7'><c t=\"s\" r='$B$7'/></row>", (7, 2, 0, 0)),
])
def test_the_extent_of_sheet_xml_is_never_under_counted(xml, extent):
    assert reading._xml_extent(xml) == extent


def test_an_ods_or_xlsb_upload_is_not_read_as_excel():
    for name, part in (("t.ods", "content.xml"), ("t.xlsb", "xl/workbook.bin")):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr(part, b"<x/>")
        with pytest.raises(RejectedFile, match="is not a readable Excel workbook"):
            reading.read_extract(name, buf.getvalue())


def _ingested_whole(out) -> bool:
    """Return True if an ingest output folder holds every file, each readable to its end."""
    try:
        pq.read_metadata(out / "reports.parquet")
        pq.read_metadata(out / "tactics.parquet")
        pd.read_csv(out / "quarantine.csv")
        json.loads((out / "report.json").read_text())
    except (OSError, ValueError):
        return False
    return True


@pytest.mark.slow
def test_killed_extract_writer_and_ingest_leave_nothing_or_whole_files(tmp_path):
    csv = tmp_path / "met.csv"
    make_csv = ["lib.synth.uk_national", "--reports", "100000", "--seed", "3", "--out", str(csv)]
    assert kill_when(make_csv, lambda: bool(temporaries(csv))) == "killed"
    assert not csv.exists()  # killed while writing: no CSV cut short under its name
    assert kill_when(make_csv, lambda: False) == "finished"
    assert temporaries(csv) == []  # the dead run's temporary was removed by the next one
    out = tmp_path / "ds"
    run = ["lib.ingest", str(csv), "--out", str(out), "--force", "Metropolitan Police"]
    points = {"temporary folder made": lambda: bool(temporaries(out))}
    for name in ("reports.parquet", "tactics.parquet", "quarantine.csv", "report.json"):
        points[f"{name} begun"] = temporary_holds(out, name)
    points["folder in place"] = out.exists
    outcomes = {}
    for point, ready in points.items():
        how = kill_when(run, ready)
        assert not out.exists() or _ingested_whole(out), (point, sorted(p.name for p in out.iterdir()))
        outcomes[point] = (how, "whole" if out.exists() else "absent")
        if out.exists():
            assert pq.read_metadata(out / "reports.parquet").num_rows == 100_000
            shutil.rmtree(out)
    print("kill -9 of python -m lib.ingest:", outcomes)
    assert outcomes["reports.parquet begun"] == ("killed", "absent"), outcomes
    assert outcomes["folder in place"][1] == "whole", outcomes  # killed, or (rarely) done just before
    # Over an earlier dataset, a killed run leaves the earlier files as they were.
    ingest.write(ingest.ingest([("small.csv", SMALL)]), out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert kill_when(run, temporary_holds(out, "tactics.parquet")) == "killed"
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
