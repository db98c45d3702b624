"""AppTest: the Data page loads uploads, shows what was set aside, and keeps datasets."""
from __future__ import annotations

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from .conftest import FIXTURES, ROOT

SMALL = (FIXTURES / "small_canonical.csv").read_bytes()


@pytest.fixture(autouse=True)
def fresh(monkeypatch, tmp_path):
    monkeypatch.delenv("OSE_DATASET", raising=False)
    monkeypatch.setenv("OSE_DATA_DIR", str(tmp_path / "var"))
    st.cache_data.clear()
    st.cache_resource.clear()


def data_page() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    return at.switch_page("app_pages/data.py").run()


def upload(at: AppTest, *files: tuple[str, bytes]) -> AppTest:
    at.file_uploader(key="upload_files").set_value([(n, b, "text/csv") for n, b in files]).run()
    next(b for b in at.button if b.label == "Read files").click().run()
    return at


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_upload_shows_counts_that_reconcile_and_can_be_saved():
    at = upload(data_page(), ("small.csv", SMALL + b"R11,I11,never,Kent Police,North,OF9" + b"," * 13 + b"\n"))
    assert not at.exception
    assert (metric(at, "Rows read"), metric(at, "Loaded"), metric(at, "Set aside")) == ("11", "10", "1")
    assert any("11 rows read = 10 loaded + 1 set aside" in c.value for c in at.caption)
    reasons = at.dataframe[0].value
    assert reasons["Reason"].tolist() == ["occurred_at '…' is not a date"]
    labels = [b.label for b in at.get("download_button")]
    assert "Download CSV" in labels and "Download XLSX" in labels  # ours: formula-safe and audited
    at.text_input(key="save_name").set_value("Kent Q1").run()
    next(b for b in at.button if b.label == "Save to library").click().run()
    assert not at.exception
    assert at.selectbox(key="dataset_choice").value == "Kent Q1 (saved)"
    from lib.security import audit  # the save is in the audit log: who, what, how many rows, never the values
    saved = audit.read().iloc[-1]
    assert (saved["event"], saved["user"], saved["dataset"], saved["rows"]) == ("save", "local", "Kent Q1", 10)
    assert "set_aside: 1" in saved["detail"] and audit.verify().ok


@pytest.mark.parametrize(("name", "content", "message"), [
    ("empty.csv", b"", "empty.csv is empty"),
    ("photo.csv", b"\x89PNG\r\n\x1a\n\x00\x00" + bytes(range(256)), "not a text file"),
])
def test_bad_uploads_get_a_clear_message_and_no_traceback(name, content, message):
    at = upload(data_page(), (name, content))
    assert not at.exception
    assert any(message in e.value for e in at.error)


def test_an_upload_with_a_few_cp1252_lines_warns_how_many_were_read_as_cp1252():
    header, rest = SMALL.split(b"\n", 1)
    rows = rest.replace(b"Northshire Police", "Northshire Café".encode()).split(b"\n")
    rows[1] = rows[1].replace("Northshire Café".encode(), "Northshire Café".encode("cp1252"))
    at = upload(data_page(), ("mixed.csv", b"\n".join([header, *rows])))
    assert not at.exception
    assert metric(at, "Loaded") == "10"
    warned = [w.value for w in at.warning if "cp1252" in w.value]
    assert warned and warned[0].startswith("1 line(s) of mixed.csv were not UTF-8 and were read as cp1252")


def test_explore_now_keeps_the_upload_for_this_session_only():
    at = upload(data_page(), ("small.csv", SMALL))
    next(b for b in at.button if b.label == "Explore now").click().run()
    assert not at.exception
    assert at.selectbox(key="dataset_choice").value == "small (this session only)"
    assert next(m.value for m in at.metric if m.label == "Reports") == "10"


@pytest.mark.slow
def test_importing_national_figures_puts_them_beside_the_overview(realdata):
    ods = (realdata / "homeoffice_uof_apr2019-mar2020_hosb3720_tables.ods").read_bytes()
    at = data_page()
    at.file_uploader(key="national_upload").set_value(("tables.ods", ods, "application/octet-stream")).run()
    next(b for b in at.button if b.label == "Import national figures").click().run()
    assert not at.exception
    assert any("2019/20" in s.value for s in at.success)
    at.switch_page("app_pages/overview.py").run()
    assert not at.exception
    assert any(h.value == "Beside the national figures (Home Office, 2019/20)" for h in at.subheader)


def test_a_broken_workbook_gets_a_message():
    at = data_page()
    at.file_uploader(key="national_upload").set_value(("tables.ods", b"PK\x03\x04 nope", "application/zip")).run()
    next(b for b in at.button if b.label == "Import national figures").click().run()
    assert not at.exception
    assert any("is not the Home Office" in e.value for e in at.error)


def test_a_file_listing_officers_in_cells_is_mapped_and_counted_at_both_levels():
    from lib import synth
    from lib.synth.joined import list_joined_incidents

    joined = list_joined_incidents(synth.generate(400, seed=3))
    at = data_page()
    at.selectbox(key="upload_format").set_value("map").run()
    at = upload(at, ("incidents.csv", joined.to_csv(index=False).encode()))
    assert not at.exception
    assert "Officer Injured" in at.multiselect(key="mapping_lists").value  # proposed, and the user can edit it
    assert at.text_input(key="mapping_separator").value == " | "
    at.text_input(key="mapping_force").set_value("Synthetic forces").run()
    next(b for b in at.button if b.label == "Save profile and read the files").click().run()
    assert not at.exception
    n = len(joined)
    assert (metric(at, "Incidents (rows) read"), metric(at, "Set aside"), metric(at, "Reports")) == (
        f"{n:,}", "0", "400")
    captions = [c.value for c in at.caption]
    assert any(f"{n:,} incidents (rows) read = {n:,} loaded + 0 set aside" in c for c in captions)
    assert any("Their cells list 400 officers = 400 loaded as reports + 0 set aside." in c for c in captions)


def _mixed() -> bytes:
    header, rest = SMALL.split(b"\n", 1)
    rows = rest.replace(b"Northshire Police", "Northshire Café".encode()).split(b"\n")
    rows[1] = rows[1].replace("Northshire Café".encode(), "Northshire Café".encode("cp1252"))
    return b"\n".join([header, *rows])


def test_a_saved_dataset_says_how_many_lines_were_read_as_cp1252_on_the_data_and_quality_pages():
    at = upload(data_page(), ("mixed.csv", _mixed()))
    at.text_input(key="save_name").set_value("Mixed").run()
    next(b for b in at.button if b.label == "Save to library").click().run()
    assert not at.exception and at.selectbox(key="dataset_choice").value == "Mixed (saved)"
    loads = next(d.value for d in at.dataframe if "Lines read as cp1252" in d.value.columns)
    assert loads["Lines read as cp1252"].tolist() == [1]
    at.switch_page("app_pages/quality.py").run()
    assert not at.exception
    assert any(w.value.startswith("1 line(s) of this dataset's files were not UTF-8 and were read as cp1252")
               for w in at.warning)
    at.selectbox(key="dataset_choice").set_value("Synthetic sample (not real data)").run()
    assert not any("cp1252" in w.value for w in at.warning)  # only for a dataset whose files had such lines


def test_versions_are_listed_and_an_admin_rolls_back_audited():
    from lib import ingest
    from lib.ingest import library
    from lib.security import audit

    header, *rows = SMALL.decode().strip().split("\n")
    library.save("Kent", ingest.ingest([("q1.csv", "\n".join([header, *rows[:4]]).encode())]))
    library.append("Kent", ingest.ingest([("q2.csv", "\n".join([header, *rows[4:]]).encode())]))
    at = data_page()
    versions = next(d.value for d in at.dataframe if "Version" in d.value.columns)
    assert versions[["Version", "Current", "Action", "Reports"]].values.tolist() == [
        [1, "", "create", 4], [2, "yes", "append", 10]]
    assert at.selectbox(key="rollback_to_Kent").options == ["1"]
    next(b for b in at.button if b.label == "Roll back Kent").click().run()
    assert not at.exception
    assert [(v.number, v.action, v.reports, v.current) for v in library.versions("Kent")][-1] == (
        3, "rollback to v1", 4, True)
    event = audit.read().iloc[-1]
    assert (event["event"], event["dataset"]) == ("rollback", "Kent") and "to_version: 1" in event["detail"]
    assert at.selectbox(key="dataset_choice").value == "Kent (saved)"


def test_a_damaged_dataset_is_shown_with_what_to_do_and_every_page_still_opens():
    from lib import ingest
    from lib.ingest import library

    header, *rows = SMALL.decode().strip().split("\n")
    library.save("Fine", ingest.ingest([("f.csv", "\n".join([header, *rows[:3]]).encode())]))
    library.save("Broken", ingest.ingest([("b1.csv", "\n".join([header, *rows[:3]]).encode())]))
    library.append("Broken", ingest.ingest([("b2.csv", "\n".join([header, *rows[3:]]).encode())]))
    current = library.path_of("Broken") / "reports.parquet"
    current.write_bytes(current.read_bytes()[:64])  # a truncated Parquet file in the current version
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not at.exception
    assert at.selectbox(key="dataset_choice").options == ["Synthetic sample (not real data)", "Fine (saved)"]
    for page in ("overview", "risk", "tactics", "explore", "training", "quality", "data"):
        at.switch_page(f"app_pages/{page}.py").run()
        assert not at.exception, page
    [error] = [e.value for e in at.error if "Broken" in e.value or "cannot be read" in e.value]
    assert "cannot be read: its Parquet file cannot be read" in error and "v1" in error and "roll back" in error
    assert any(e.label.startswith("Broken: DAMAGED") for e in at.expander)
    upload(at, ("more.csv", SMALL))
    assert at.selectbox(key="append_target").options == ["Fine"]  # only readable datasets take an append


def test_an_upload_of_several_batches_is_read_in_batches_and_saved_as_read_whole(monkeypatch):
    import pyarrow.parquet as pq

    from lib import ingest
    from lib.ingest import library, staging
    from lib.ingest.batches import BATCH_ROWS_VARIABLE
    from lib.ui import uploads

    monkeypatch.setenv(BATCH_ROWS_VARIABLE, "1000")
    header, *rows = SMALL.decode().splitlines()
    lines = [header]
    for i in range(3500):  # every 97th row has a date that is none: set aside in several batches
        cells = rows[i % len(rows)].split(",")
        cells[0], cells[2] = f"R{i:05d}", "never" if i % 97 == 0 else cells[2]
        lines.append(",".join(cells))
    data = ("\n".join(lines) + "\n").encode()
    whole = ingest.ingest([("big.csv", data)])
    at = upload(data_page(), ("big.csv", data))
    assert not at.exception
    shown = (metric(at, "Rows read"), metric(at, "Loaded"), metric(at, "Set aside"), metric(at, "Reports"))
    assert shown == ("3,500", "3,463", "37", "3,463")
    assert shown == tuple(f"{whole.report[k]:,}" for k in ("rows_in", "rows_loaded", "rows_quarantined",
                                                           "reports_loaded"))
    staged = at.session_state[uploads.UPLOAD_KEY]
    assert pq.ParquetFile(staged.folder / library.REPORTS).num_row_groups >= 3  # the batch writer's row groups
    assert [p.name for p in staging.uploads_dir().iterdir()] == [staged.folder.name]  # the spooled file is gone
    at.text_input(key="save_name").set_value("Big").run()
    next(b for b in at.button if b.label == "Save to library").click().run()
    assert not at.exception and at.selectbox(key="dataset_choice").value == "Big (saved)"

    def held(path):
        loads = [{k: v for k, v in load.items() if k != "loaded_at"} for load in library.provenance_at(path)]
        return (pq.read_table(path / library.REPORTS).to_pylist(), pq.read_table(path / library.TACTICS).to_pylist(),
                (path / library.QUARANTINE).read_text(), loads)
    assert held(library.path_of("Big")) == held(library.save("Read whole", whole, user="local"))


def test_a_us_export_loads_through_the_mapping_step_with_every_date_right(tmp_path):
    from lib.ingest import mapping

    from . import us_export

    path = tmp_path / "us.csv"
    truth = us_export.write(path)
    at = upload(data_page(), ("us.csv", path.read_bytes()))  # detect automatically: no format knows it
    assert not at.exception
    assert any("Map its columns below" in w.value for w in at.warning)
    token = next(s.key for s in at.selectbox if s.key and s.key.endswith("_date")).split("_")[1]
    assert at.selectbox(key=f"map_{token}_date").value == "Occured_date_time"
    assert at.selectbox(key=f"map_{token}_report_id").value == mapping.NONE
    assert at.selectbox(key=f"map_{token}_incident_id").value == "Incident_Num"
    order = at.radio(key=f"map_{token}_order_Occured_date_time")
    assert order.value.startswith("Month first")
    assert any("read only month first" in c.value and "from 1 Jan 2014 to 31 Dec 2014" in c.value
               for c in at.caption)
    # Every field is listed, by its plain name, and the examples follow a changed choice.
    labels = {s.label for s in at.selectbox if s.key and s.key.startswith(f"map_{token}_")}
    assert {"Date (or date and time)", "Type of place", "Officer role", "Subject ethnicity"} <= labels
    at.selectbox(key=f"map_{token}_area").set_value("Force_Type").run()
    assert any(c.value.startswith(("Taser", "Handcuffing", "Takedown", "Baton", "OC Spray", "Verbal"))
               for c in at.caption)
    at.selectbox(key=f"map_{token}_area").set_value("District").run()
    preview = next(d.value for d in at.dataframe if "Line in file" in d.value.columns)
    assert preview["Line in file"].tolist()[:3] == [2, 3, 4]
    assert str(preview["Date and time"].iloc[0]).startswith(truth[0].strftime("%Y-%m-%d %H:%M"))
    # A wrong order, chosen by hand, is previewed as set aside with the value quoted, not read the other way.
    order.set_value(order.options[0]).run()
    aside = next(d.value for d in at.dataframe if "Why it is set aside" in d.value.columns)
    assert aside["Why it is set aside"].str.contains("is not a date day first").all()
    at.radio(key=f"map_{token}_order_Occured_date_time").set_value(order.options[1]).run()
    next(b for b in at.button if b.label == "Save profile and read the files").click().run()
    assert any(e.value.startswith("Force: name the force") for e in at.error)  # the error names the field
    at.text_input(key="mapping_force").set_value("Springfield PD").run()
    next(b for b in at.button if b.label == "Save profile and read the files").click().run()
    assert not at.exception
    assert (metric(at, "Rows read"), metric(at, "Loaded"), metric(at, "Set aside")) == (
        f"{len(truth):,}", f"{len(truth):,}", "0")
    import pandas as pd

    from lib.ui import uploads

    result = at.session_state[uploads.UPLOAD_KEY]
    assert pd.read_parquet(result.folder / "reports.parquet")["occurred_at"].tolist() == truth


def test_a_national_table_of_counts_is_recognised_and_sent_to_the_national_import(realdata):
    name = "homeoffice_uof_by_age_force_apr2019-mar2020.csv"
    at = upload(data_page(), (name, (realdata / name).read_bytes()))
    assert not at.exception
    assert any("table of counts" in w.value and "National figures tab" in w.value for w in at.warning)
    assert not [s for s in at.selectbox if s.key and s.key.startswith("map_")]  # nothing offered to map


def test_the_set_aside_download_numbers_rows_by_their_line_in_the_file():
    from lib.present import tables

    at = upload(data_page(), ("small.csv", SMALL + b"R11,I11,never,Kent Police,North,OF9" + b"," * 13 + b"\n"))
    from lib.ui import uploads

    result = at.session_state[uploads.UPLOAD_KEY]
    rows = tables.set_aside_download(result.quarantine, result.report)
    assert rows.columns[:3].tolist() == ["File", "Line in file", "Rows"]
    assert rows["Line in file"].tolist() == [12]  # the header is line 1; the eleventh data row is line 12
    assert rows["Why it was set aside"].tolist() == ["occurred_at 'never' is not a date"]
    # On the page, reasons are counted by kind, and each kind quotes the values it set aside.
    reasons = next(d.value for d in at.dataframe if "Reason" in d.value.columns)
    assert reasons.to_dict("records") == [{"Reason": "occurred_at '…' is not a date", "Rows": 1,
                                           "For example": "'never' (line 12)"}]


def test_a_date_column_that_reads_both_ways_asks_which_and_shows_what_each_reading_gives(tmp_path):
    import calendar

    from . import us_export

    path = tmp_path / "ambiguous.csv"
    truth = us_export.write(path, n_incidents=60, early=60)  # every date on days 1 to 12: both orders read
    at = upload(data_page(), ("ambiguous.csv", path.read_bytes()))
    assert not at.exception
    assert any("no date settles whether the day or the month comes first" in w.value for w in at.warning)
    readings = next(d.value for d in at.dataframe if "Reading" in d.value.columns)
    first = truth[0]
    example = first.strftime("%m/%d/%Y")
    day_first = f"{first.month} {calendar.month_abbr[first.day]} 2014"  # 06/03/2014: 6 Mar 2014
    month_first = f"{first.day} {calendar.month_abbr[first.month]} 2014"  # and 3 Jun 2014
    assert readings[f"{example} reads as"].tolist() == [day_first, month_first]
    token = next(s.key for s in at.selectbox if s.key and s.key.endswith("_date")).split("_")[1]
    order = at.radio(key=f"map_{token}_order_Occured_date_time")
    assert order.value.startswith("Day first")  # assumed, and said to be assumed: the user picks
    order.set_value(order.options[1]).run()
    at.text_input(key="mapping_force").set_value("Springfield PD").run()
    next(b for b in at.button if b.label == "Save profile and read the files").click().run()
    import pandas as pd

    from lib.ui import uploads

    result = at.session_state[uploads.UPLOAD_KEY]
    assert pd.read_parquet(result.folder / "reports.parquet")["occurred_at"].tolist() == truth
