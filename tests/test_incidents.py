"""Fields recorded once per incident count incidents; "incidents" is shown only where an incident id exists."""
from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from lib import ingest
from lib.engine import fastpath, query
from lib.engine.query import UNRESTRICTED, Filters, Rate, Summary
from lib.ingest import library
from lib.ingest.formats.profile import Profile, ProfileFormat
from lib.model import incidents
from lib.present import tables, wording
from lib.privacy import disclosure

from .conftest import FIXTURES, ROOT

NOPD_FILE = "nopd_uof_incidents_2016-2019.csv"
DALLAS_FILE = "dallas_uof_2016_cpe_37-00049.csv"


def _separately(monkeypatch, fn):
    """Run a query on the Ibis path (the one-scan path switched off)."""
    with monkeypatch.context() as m:
        m.setattr(fastpath, "_page_columns", lambda engine, ds: None)
        return fn()


# --- the profile field ------------------------------------------------------------------------


def test_a_profile_marks_incident_level_fields_and_keeps_them_through_json():
    p = Profile(name="t", report_id_column="File", incident_id_column="File",
                incident_level=["subject_injured", "officer_injured"])
    again = Profile.from_json(p.to_json())
    assert again.incident_level == ["subject_injured", "officer_injured"]


@pytest.mark.parametrize(("kwargs", "problem"), [
    ({"incident_level": ["officer_injured"]}, "needs an incident_id_column"),
    ({"incident_id_column": "File", "incident_level": ["officer_hurt"]}, "cannot be recorded per incident"),
    ({"incident_id_column": "File", "incident_level": ["officer_id"]}, "cannot be recorded per incident"),
    ({"incident_id_column": "File", "incident_level": "officer_injured"}, "must be a JSON list"),
])
def test_a_wrong_incident_level_is_refused_with_the_reason(kwargs, problem):
    with pytest.raises(ValueError, match=problem):
        Profile(name="t", report_id_column="File", **kwargs)


# --- a hand-counted extract, saved and appended -----------------------------------------------

# Three incidents (PIB-like files), an officer's injury written on every officer's row of the file:
# per report 4 of 6 say injured, per incident 2 of 3.
TOY_PROFILE = Profile(name="toy", force="Toy Police", date_column="Date", report_id_column="File",
                      incident_id_column="File", group_by=["Officer"],
                      columns={"officer_injured": "Officer hurt", "subject_injured": "Subject hurt"},
                      incident_level=["officer_injured"], signature=["File", "Date", "Officer", "Officer hurt"])
TOY = ("File,Date,Officer,Officer hurt,Subject hurt\n"
       "A,2024-01-05,a1,Yes,Yes\nA,2024-01-05,a2,Yes,No\nA,2024-01-05,a3,Yes,No\n"
       "B,2024-02-05,b1,No,No\nB,2024-02-05,b2,No,Yes\n"
       "C,2024-03-05,c1,Yes,No\n")
TOY_MORE = "File,Date,Officer,Officer hurt,Subject hurt\nD,2024-04-05,d1,No,No\nD,2024-04-05,d2,No,No\n"


def _toy(text: str, name: str) -> ingest.IngestResult:
    return ingest.ingest([(name, text.encode())], formats=[ProfileFormat(TOY_PROFILE)])


def test_the_marking_travels_from_the_profile_to_the_saved_dataset_and_counts_incidents(engine, tmp_path,
                                                                                         monkeypatch):
    monkeypatch.setenv("OSE_DATA_DIR", str(tmp_path / "var"))
    result = _toy(TOY, "toy.csv")
    assert result.report["incident_level"] == ["officer_injured"]
    assert "Recorded once per incident, so counted in incidents rather than reports: officer injured." in \
        result.report["notes"]
    assert int(result.reports["officer_injured"].sum()) == 4  # copied to every officer's report
    ds = engine.open(library.save("Toy", result))
    assert ds.incident_level == ("officer_injured",) and ds.has_incidents
    assert library.provenance("Toy")[0]["incident_level"] == ["officer_injured"]
    s = query.summarise(engine, ds, Filters(), UNRESTRICTED)
    assert (s.reports, s.incidents) == (6, 3)
    hurt, subject = s.rates["officer_injured"], s.rates["subject_injured"]
    assert (hurt.numerator, hurt.denominator, hurt.unanswered, hurt.unit) == (2, 3, 0, "incidents")
    assert (subject.numerator, subject.denominator, subject.unit) == (2, 6, "reports")  # not marked: per report
    by_month = query.breakdown(engine, ds, Filters(), UNRESTRICTED, ("month",))
    assert by_month["officer_injured_yes"].tolist() == [1, 0, 1]
    assert by_month["officer_injured_answered"].tolist() == [1, 1, 1]
    assert by_month["reports"].tolist() == [3, 2, 1]

    library.append("Toy", _toy(TOY_MORE, "toy2.csv"))
    ds = engine.open(library.path_of("Toy"))
    assert ds.incident_level == ("officer_injured",)
    hurt = query.summarise(engine, ds, Filters(), UNRESTRICTED).rates["officer_injured"]
    assert (hurt.numerator, hurt.denominator) == (2, 4)


def test_an_unmarked_table_and_a_damaged_marking_count_reports():
    table = pa.table({"report_id": ["R1"]})
    assert incidents.marked(table.schema) == ()
    damaged = table.replace_schema_metadata({incidents.METADATA_KEY: b"not json"})
    assert incidents.marked(damaged.schema) == ()
    marked = incidents.with_marking(table, ["subject_injured", "officer_injured", "officer_injured"])
    assert incidents.marked(marked.schema) == ("officer_injured", "subject_injured")
    assert incidents.marked(incidents.with_marking(marked, []).schema) == ()


# --- the real files ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nopd(engine, realdata):
    return engine.open(realdata / NOPD_FILE)


def test_nopd_officer_injured_counts_pib_files_with_an_injured_officer(engine, nopd, realdata, monkeypatch):
    raw = pd.read_csv(realdata / NOPD_FILE, dtype=str, keep_default_na=False)
    pib = raw["PIB File Number"].str.strip()
    injured_files = pib[raw["Officer Injured"].str.strip().eq("Yes")].nunique()
    answered_files = pib[raw["Officer Injured"].str.strip().isin(["Yes", "No"])].nunique()
    subject_files = pib[raw["Subject Injured"].str.strip().eq("Yes")].nunique()
    assert (injured_files, answered_files, pib.nunique()) == (180, 1879, 1879)

    assert {"officer_injured", "subject_injured"} <= set(nopd.incident_level)
    query.forget_page_results(engine)
    s = query.summarise(engine, nopd, Filters(), UNRESTRICTED)
    rate = s.rates["officer_injured"]
    assert (rate.numerator, rate.denominator, rate.unit) == (injured_files, answered_files, "incidents")
    assert rate.rate == pytest.approx(0.0958, abs=5e-4)  # 9.6% of incidents, not 11.9% (516 of 4,330 reports)
    assert s.rates["subject_injured"].numerator == subject_files
    assert (s.reports, s.incidents) == (4330, 1879)
    assert s == _separately(monkeypatch, lambda: query.summarise(engine, nopd, Filters(), UNRESTRICTED))
    assert "of 1,879 incidents answering" in wording.rate_detail(rate)
    # No officer id in the file: the Overview says so rather than "0 officers".
    assert s.officers == 0
    assert wording.officers_phrase(s, lambda n: f"{n:,}") == "officers: not recorded in this extract"


def test_nopd_breakdown_counts_distinct_incidents_per_group(engine, nopd, realdata):
    raw = pd.read_csv(realdata / NOPD_FILE, dtype=str, keep_default_na=False)
    raw["year"] = pd.to_datetime(raw["Date Occurred"].str.strip(), format="mixed").dt.year
    yes = raw[raw["Officer Injured"].str.strip().eq("Yes")]
    expected = yes.groupby("year")["PIB File Number"].nunique()
    frame = query.breakdown(engine, nopd, Filters(), UNRESTRICTED, ("month",))
    got = frame.groupby(pd.to_datetime(frame["month"]).dt.year)["officer_injured_yes"].sum()
    # A PIB file has one date, so its incidents fall in one month: the months add up to the year.
    assert got.to_dict() == expected.to_dict()


def test_dallas_counts_one_incident_per_uof_number(engine, realdata):
    ds = engine.open(realdata / DALLAS_FILE)
    s = query.summarise(engine, ds, Filters(), UNRESTRICTED)
    assert (s.reports, s.incidents) == (2383, 2328)
    assert s.incidents_recorded
    ids = query.filtered_reports(engine, ds, Filters(), UNRESTRICTED).report_id
    assert engine.execute(ids.nunique()) == 2383  # report ids stay unique


# --- no incident id: not recorded, never the report count -------------------------------------


@pytest.fixture(scope="module")
def no_incidents(engine, tmp_path_factory):
    """The hand-counted small fixture with its incident_id column left out."""
    path = tmp_path_factory.mktemp("no_incidents") / "small_without_incidents.csv"
    pd.read_csv(FIXTURES / "small_canonical.csv", dtype=str).drop(columns="incident_id").to_csv(path, index=False)
    return engine.open(path)


def test_without_an_incident_id_incidents_are_not_recorded_on_either_path(engine, no_incidents, monkeypatch):
    assert not no_incidents.has_incidents
    query.forget_page_results(engine)
    s = query.summarise(engine, no_incidents, Filters(), UNRESTRICTED)
    assert (s.reports, s.incidents, s.officers, s.incidents_recorded) == (10, None, 8, False)
    assert s == _separately(monkeypatch, lambda: query.summarise(engine, no_incidents, Filters(), UNRESTRICTED))
    assert wording.incidents_phrase(s, str) == "Incidents: not recorded in this extract"
    protected = disclosure.protect_summary(s, 3)
    assert (protected.incidents, protected.incidents_recorded) == (None, False)


def test_incidents_phrase_tells_not_recorded_from_hidden():
    recorded = Summary(12, 9, 4)
    hidden = disclosure.protect_summary(Summary(12, 2, 4), 5)
    assert wording.incidents_phrase(recorded, lambda n: f"{n:,}") == "9 incidents"
    assert wording.incidents_phrase(hidden, lambda n: "fewer than 5" if n is None else f"{n:,}") == \
        "fewer than 5 incidents"


def test_the_overview_says_incidents_are_not_recorded(monkeypatch, tmp_path, fresh_caches):
    path = tmp_path / "no_incidents.csv"
    path.write_text("report_id,occurred_at,force,officer_id,officer_injured\n"
                    "R1,2024-01-05 08:00,Kent Police,O1,Yes\nR2,2024-02-05 23:30,Kent Police,O2,No\n")
    monkeypatch.setenv("OSE_DATASET", str(path))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not at.exception
    captions = [c.value for c in at.caption]
    assert any(c.startswith("Incidents: not recorded in this extract, ") for c in captions)
    assert not any(" incidents, " in c for c in captions)


# --- the one-scan path agrees with the Ibis path ----------------------------------------------


@pytest.fixture(scope="module")
def marked_world(engine):
    from lib import synth

    data = synth.generate(3000, seed=11)
    reports = incidents.with_marking(data.reports, ["officer_injured", "subject_injured"])
    return engine.add("incident-level world", reports, data.tactics, data.officers, key="incidentlvl11")


@pytest.mark.duckdb_only
@pytest.mark.parametrize("filters", [
    Filters(),
    Filters(shifts=("Night",), roles=("Response", "Neighbourhood")),
    Filters(tactic_groups=("Less lethal weapons",)),
], ids=["all", "night-response", "taser"])
def test_incident_level_measures_agree_on_both_paths_and_with_pandas(engine, marked_world, monkeypatch, filters):
    ds = marked_world
    query.forget_page_results(engine)
    assert fastpath._page_columns(engine, ds) is not None  # the one-scan path answers the summary
    s = query.summarise(engine, ds, filters, UNRESTRICTED)
    assert s == _separately(monkeypatch, lambda: query.summarise(engine, ds, filters, UNRESTRICTED))
    for by in (("shift",), ("month",), ("officer_role", "shift")):
        pd.testing.assert_frame_equal(query.breakdown(engine, ds, filters, UNRESTRICTED, by), _separately(
            monkeypatch, lambda by=by: query.breakdown(engine, ds, filters, UNRESTRICTED, by)))
    if filters == Filters():  # counted independently: distinct incidents, from the generated table
        frame = marked_world_frame(engine, ds)
        incident = frame["incident_id"].fillna(frame["report_id"])
        for measure in ("officer_injured", "subject_injured"):
            rate = s.rates[measure]
            assert rate.unit == "incidents"
            assert rate.numerator == incident[frame[measure].eq(True)].nunique()
            assert rate.denominator == incident[frame[measure].notna()].nunique()
            assert rate.numerator < int(frame[measure].eq(True).sum())  # several officers at one incident
        assert s.rates["officer_assaulted"].unit == "reports"
        by_shift = query.breakdown(engine, ds, filters, UNRESTRICTED, ("shift",)).set_index("shift")
        expected = frame[frame["officer_injured"].eq(True)].assign(incident=incident).groupby("shift")[
            "incident"].nunique()
        assert by_shift.loc[expected.index, "officer_injured_yes"].tolist() == expected.tolist()


def marked_world_frame(engine, ds) -> pd.DataFrame:
    t = engine.reports(ds)
    return engine.execute(t.select("report_id", "incident_id", "shift", "officer_injured", "subject_injured"))


def test_tables_and_charts_name_incidents_for_incident_level_measures():
    from lib.present import charts

    frame = pd.DataFrame({"shift": ["Early", "Late"], "reports": [30, 40],
                          **{f"{c}_{k}": [3, 4] if k == "yes" else [20, 25]
                             for c in ("officer_injured", "officer_assaulted", "subject_injured")
                             for k in ("yes", "answered")}})
    frame = query.add_rates(frame)
    table = tables.rates_table(frame, ("shift",), ("officer_injured",))
    assert {"Officer injury rate: incidents yes", "Officer injury rate: incidents answered",
            "Officer assault rate: yes"} <= set(table.columns)
    spec = charts.harm_rates_by_group(frame, "shift", "Shift", per_incident=("officer_injured",)).to_dict()
    text = str(spec)
    assert "Incidents answering" in text and "Officer injury rate (per incident)" in text
    assert "% of answering incidents" in str(charts.rate_by_month(
        frame.assign(month=pd.to_datetime(["2024-01-01", "2024-02-01"])), unit="incidents").to_dict())
    summary = Summary(70, 50, 9, {"officer_injured": Rate("Officer injury rate", 3, 20, 30, "incidents"),
                                  "officer_assaulted": Rate("Officer assault rate", 4, 25, 45)})
    assert summary.per_incident == ("officer_injured",)
    assert wording.unit_note(summary.rates["officer_injured"]).startswith("Officer injury rate counts incidents")
    assert wording.counting_unit(summary).startswith("Counting unit: reports; the officer injury rate counts incidents")


def test_explore_names_incidents_for_an_incident_level_measure(engine, nopd):
    from lib.analysis import explore
    from lib.present import explore_charts

    frame = explore.explore_frame(engine, nopd, Filters(), UNRESTRICTED, "officer_injured", ("shift",))
    by_shift = query.breakdown(engine, nopd, Filters(), UNRESTRICTED, ("shift",))
    assert frame["answered"].sum() == by_shift["officer_injured_answered"].sum()  # distinct incidents per shift
    table = explore_charts.table(frame, "officer_injured", ("shift",), unit="incidents")
    assert "Incidents answering" in table.columns
    text = explore_charts.caption(Filters(), "officer_injured", frame, ("shift",), unit="incidents")
    assert "counts incidents" in text and "over the incidents that answered" in text
    spec = str(explore_charts.explore_chart(frame, "officer_injured", ("shift",), unit="incidents").to_dict())
    assert "% of answering incidents" in spec and "Incidents answering" in spec


def test_the_headless_summary_gives_the_unit_and_null_incidents_when_not_recorded(engine, no_incidents, nopd):
    import json

    from lib import summary

    out = json.loads(json.dumps(summary.summarise(engine, no_incidents, Filters(), UNRESTRICTED,
                                                  "officer_injured", "area")))
    assert (out["overall"]["reports"], out["overall"]["incidents"], out["overall"]["unit"]) == (10, None, "reports")
    out = summary.summarise(engine, nopd, Filters(), UNRESTRICTED, "officer_injured", "area")
    assert (out["overall"]["numerator"], out["overall"]["denominator"], out["overall"]["unit"]) == \
        (180, 1879, "incidents")
    assert out["overall"]["incidents"] == 1879
