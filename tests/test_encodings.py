"""Encodings per line: a mostly UTF-8 file keeps its UTF-8 rows byte for byte; its other lines are read
as cp1252 and counted."""
from __future__ import annotations

import csv
import io

import pytest

from lib import ingest
from lib.ingest import reading
from lib.present import tables

HEADER = ["report_id", "occurred_at", "force", "officer_id", "area"]
UTF8_AREAS = ["Café North", "Zoë's beat", "Smørrebrød – 北京", "naïve “quoted”", "Łódź 🚓", "plain ASCII"]
CP1252_AREAS = ["Café South", "£5 – Crème brûlée", "“Señor” Zoë"]
CP1252_AT = {2, 5, 9}  # data rows written in cp1252; every other row is UTF-8


def line(cells: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(cells)
    return out.getvalue()


def mixed_file(rows: int = 12) -> tuple[bytes, dict[int, str], dict[int, str]]:
    """Return a CSV of mostly UTF-8 rows with a few cp1252 ones, and the area of each UTF-8 and cp1252 row."""
    data = line(HEADER).encode("utf-8")
    utf8, cp1252 = {}, {}
    for n in range(1, rows + 1):
        if n in CP1252_AT:
            area = CP1252_AREAS[len(cp1252)]
            cp1252[n] = area
            data += line([f"R{n}", "2024-02-01 10:00", "Café Police", f"OF{n}", area]).encode("cp1252")
        else:
            area = UTF8_AREAS[len(utf8) % len(UTF8_AREAS)]
            utf8[n] = area
            data += line([f"R{n}", "2024-02-01 10:00", "Café Police", f"OF{n}", area]).encode("utf-8")
    return data, utf8, cp1252


def test_mixed_file_keeps_utf8_rows_byte_exact_and_reads_the_others_as_cp1252():
    data, utf8, cp1252 = mixed_file()
    assert b"Caf\xe9 South" in data  # the cp1252 lines really are cp1252
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    raw = reading.read_extract("mixed.csv", data)
    by_row = raw.frame.set_index("_row")
    source = data.split(b"\n")
    for n, area in utf8.items():  # each UTF-8 row, cell for cell, is the bytes of its source line
        cells = next(csv.reader([source[n].decode("utf-8")]))
        assert [by_row.loc[n, c].encode("utf-8") for c in HEADER] == [c.encode("utf-8") for c in cells]
        assert by_row.loc[n, "area"] == area
    for n, area in cp1252.items():
        assert by_row.loc[n, "area"] == area and by_row.loc[n, "force"] == "Café Police"
    assert raw.encoding == "utf-8"
    assert raw.cp1252_lines == [n + 1 for n in sorted(CP1252_AT)]  # file lines: the header is line 1
    assert not any("Ã" in v for c in HEADER for v in raw.frame[c])  # no mojibake anywhere
    assert raw.notes == [reading.cp1252_note("mixed.csv", [3, 6, 10])]
    assert "3 line(s) were not UTF-8 and were read as cp1252 (line 3, 6, 10" in raw.notes[0]


def test_mixed_file_is_loaded_whole_and_counted_in_the_report():
    data, utf8, cp1252 = mixed_file()
    result = ingest.ingest([("mixed.csv", data)])
    r = result.report
    assert (r["rows_in"], r["rows_loaded"], r["rows_quarantined"]) == (12, 12, 0)
    assert r["lines_read_as_cp1252"] == 3 and r["files"][0]["lines_read_as_cp1252"] == 3
    assert r["files"][0]["encoding"] == "utf-8"
    areas = dict(zip(result.reports["report_id"], result.reports["area"], strict=True))
    assert areas == {f"R{n}": area for n, area in {**utf8, **cp1252}.items()}
    assert set(result.reports["force"]) == {"Café Police"}
    sentence = tables.encoding_sentence(r)  # what the Data page warns
    assert sentence.startswith("3 line(s) of mixed.csv were not UTF-8 and were read as cp1252")


def test_a_quoted_cell_spanning_lines_stays_whole_whichever_way_each_line_is_read():
    data = (line(HEADER).encode("utf-8")
            + line(["R1", "2024-02-01 10:00", "Café Police", "OF1", "Zoë first line\nsecond Café"]).encode("utf-8")
            + b'R2,2024-02-01 10:00,Caf\xc3\xa9 Police,OF2,"Zo\xc3\xab\nCaf\xe9 split\nend"\n'
            + line(["R3", "2024-02-01 10:00", "Café Police", "OF3", "Naïve"]).encode("utf-8"))
    raw = reading.read_extract("quoted.csv", data)
    assert raw.frame["area"].tolist() == ["Zoë first line\nsecond Café", "Zoë\nCafé split\nend", "Naïve"]
    assert raw.frame["_row"].tolist() == [1, 2, 3]
    assert raw.cp1252_lines == [5]  # only the line holding the cp1252 byte


def test_lines_read_as_cp1252_are_found_past_the_first_megabyte_and_in_long_lines():
    rows = [line(HEADER)]
    for n in range(1, 30_001):  # about 2 MB: the decoder works a megabyte at a time
        # One line of 1.8 MB (two cells under the cell limit), longer than the decoder's megabyte.
        area = "Café South" if n % 7_000 == 0 else "Zoë " + "x" * (900_000 if n == 20_000 else 40)
        rows.append(line([f"R{n}", "2024-02-01 10:00", area if n == 20_000 else "Café Police", f"OF{n}", area]))
    data = b"".join(r.encode("cp1252" if "Café South" in r else "utf-8") for r in rows)
    raw = reading.read_extract("big.csv", data)
    assert raw.cp1252_lines == [7_001, 14_001, 21_001, 28_001]
    assert raw.frame["area"].str.encode("utf-8").tolist() == [r.split(",")[-1].rstrip("\n").encode("utf-8")
                                                              for r in rows[1:]]


# A cp1252 file whose non-ASCII bytes look like UTF-8 when put side by side (\xf1 then \x94) is
# still read whole as cp1252: only a line that is UTF-8 beyond ASCII makes a file mostly UTF-8.
@pytest.mark.parametrize(("encoding", "extra"), [("cp1252", "“Señor” – £5"), ("latin-1", "Señor \x81")])
def test_a_whole_windows_file_is_read_whole_as_before(encoding, extra):
    text = line(HEADER) + "".join(line([f"R{n}", "2024-02-01 10:00", "Café Police", f"OF{n}", extra])
                                  for n in range(1, 6))
    raw = reading.read_extract("windows.csv", text.encode(encoding))
    assert raw.encoding == encoding and raw.cp1252_lines == []
    assert raw.notes == [f"windows.csv: read as {encoding}"]
    assert raw.frame["area"].tolist() == [extra] * 5
    result = ingest.ingest([("windows.csv", text.encode(encoding))])
    assert result.report["lines_read_as_cp1252"] == 0 and tables.encoding_sentence(result.report) == ""


def test_a_utf8_file_is_read_as_utf8_with_nothing_flagged():
    text = line(HEADER) + "".join(line([f"R{n}", "2024-02-01 10:00", "Café Police", f"OF{n}", area])
                                  for n, area in enumerate(UTF8_AREAS, start=1))
    raw = reading.read_extract("utf8.csv", text.encode("utf-8"))
    assert raw.encoding == "utf-8" and raw.cp1252_lines == [] and raw.notes == []
    assert raw.frame["area"].tolist() == UTF8_AREAS
    result = ingest.ingest([("utf8.csv", text.encode("utf-8"))])
    assert result.report["lines_read_as_cp1252"] == 0 and tables.encoding_sentence(result.report) == ""


# --- the real files --------------------------------------------------------------------------------

DALLAS_FILE = "dallas_uof_2016_cpe_37-00049.csv"
NOPD_FILE = "nopd_uof_incidents_2016-2019.csv"
# The counts these files gave before lines were decoded one by one: rows in, loaded, set aside, reports, tactics.
REAL_COUNTS = {DALLAS_FILE: (2383, 2383, 0, 2383, 4532), NOPD_FILE: (4907, 4907, 0, 4330, 4533)}


def counts(report: dict) -> tuple[int, ...]:
    return tuple(report[k] for k in ("rows_in", "rows_loaded", "rows_quarantined", "reports_loaded",
                                     "tactics_loaded"))


@pytest.mark.parametrize("name", [DALLAS_FILE, NOPD_FILE])
def test_real_files_load_as_before(realdata, name):
    report = ingest.ingest([(name, (realdata / name).read_bytes())]).report
    assert counts(report) == REAL_COUNTS[name]
    assert report["files"][0]["encoding"] == "utf-8" and report["lines_read_as_cp1252"] == 0


def test_real_file_with_a_few_cp1252_lines_keeps_its_counts_and_its_utf8_text(realdata):
    original = (realdata / DALLAS_FILE).read_bytes()
    rows = list(csv.reader(io.StringIO(original.decode("utf-8"))))
    in_central = sum(row[rows[0].index("DIVISION")] == "CENTRAL" for row in rows[2:])  # after 2 header rows
    lines = original.split(b"\n")
    central = [i for i, text in enumerate(lines) if b",CENTRAL," in text]
    windows = set(central[:4])
    for i in central:  # CENTRAL renamed (a division, or a street): four lines in cp1252, the rest in UTF-8
        lines[i] = lines[i].replace(b",CENTRAL,", ",Centré Café,".encode("cp1252" if i in windows else "utf-8"))
    result = ingest.ingest([(DALLAS_FILE, b"\n".join(lines))])
    r = result.report
    assert counts(r) == REAL_COUNTS[DALLAS_FILE]
    assert r["lines_read_as_cp1252"] == 4
    assert (result.reports["area"].str.casefold() == "centré café").sum() == in_central
    assert not result.reports["area"].str.contains("Ã", regex=False).any()
