"""AppTest: the app shell and the Overview page, run as Streamlit runs them."""
from __future__ import annotations

import json
import re
from datetime import date

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from lib.analysis import training
from lib.engine import query
from lib.engine.query import UNRESTRICTED, Filters
from lib.engine.store import SAMPLE_DIR

from .conftest import FIXTURES, ROOT

METRICS = ["Reports", "Officer injury rate", "Officer assault rate", "Subject injury rate"]


@pytest.fixture(autouse=True)
def _fresh(fresh_caches):
    """Every app run here starts with empty caches (see conftest)."""


def run_app(**query_params) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    for key, value in query_params.items():
        at.query_params[key] = value
    return at.run()


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def reports_in_sample(engine, filters: Filters) -> int:
    return query.summarise(engine, engine.open(SAMPLE_DIR), filters, UNRESTRICTED).reports


def test_overview_shows_the_four_headline_measures(engine):
    at = run_app()
    assert not at.exception
    assert [m.label for m in at.metric] == METRICS
    defaults = query.default_filters(engine.open(SAMPLE_DIR))
    assert metric(at, "Reports") == f"{reports_in_sample(engine, defaults):,}"
    assert all(m.delta for m in at.metric)  # the sample has a previous year to compare with
    assert len(at.get("vega_lite_chart")) == 5
    assert len(at.expander) >= 5  # a table behind every chart
    assert any("1 Apr 2024 to 31 Mar 2025" in c.value for c in at.caption)


def test_change_arrows_are_coloured_only_where_the_change_is_clear(engine):
    from streamlit.proto.Metric_pb2 import Metric

    from lib.present import wording

    at = run_app()
    ds = engine.open(SAMPLE_DIR)
    now = query.summarise(engine, ds, query.default_filters(ds), UNRESTRICTED)
    before = query.summarise(engine, ds, query.previous_period(query.default_filters(ds), ds), UNRESTRICTED)
    for field, rate in now.rates.items():
        shown = next(m for m in at.metric if m.label == rate.label)
        clear, sentence = wording.rate_change_verdict(rate, before.rates[field])
        assert sentence in shown.proto.help  # the interval of the change is in the tooltip
        grey = shown.proto.color == Metric.MetricColor.GRAY
        assert grey is (not clear)
    # The sample's officer injury rate moves +0.1 pp (interval about -0.3 to +0.5): grey, not red.
    injury = next(m for m in at.metric if m.label == "Officer injury rate")
    assert injury.proto.delta.startswith("+") and injury.proto.color == Metric.MetricColor.GRAY
    assert "not a clear change" in injury.proto.help
    # Each headline rate shows its interval and its change's on the page, not only in the tooltip.
    under = [c.value for c in at.caption if c.value.startswith("95% interval")][:3]  # under the cards, in order
    assert under == [wording.headline_interval(now.rates[f], before.rates[f])
                     for f in ("officer_injured", "officer_assaulted", "subject_injured")]
    assert all(text.count("95% interval") == 1 and " pp (" in text for text in under)


def test_changing_the_shift_filter_changes_the_numbers(engine):
    at = run_app()
    before = metric(at, "Reports")
    at.multiselect(key="flt_shifts").set_value(["Night"]).run()
    assert not at.exception
    defaults = query.default_filters(engine.open(SAMPLE_DIR))
    night = reports_in_sample(engine, defaults.with_values("shifts", ("Night",)))
    assert metric(at, "Reports") == f"{night:,}" != before
    assert at.query_params["shifts"] in ("Night", ["Night"])  # a one-value list reads back as a string
    assert any("Night shift" in c.value for c in at.caption)


def test_filters_arrive_from_a_shared_link(engine):
    at = run_app(shifts=["Late"], roles=["Response", "Custody"], **{"from": "2024-01-01", "to": "2024-06-30"})
    assert not at.exception
    assert at.multiselect(key="flt_shifts").value == ["Late"]
    expected = reports_in_sample(engine, Filters(
        date_from=date(2024, 1, 1), date_to=date(2024, 6, 30), shifts=("Late",),
        roles=("Response", "Custody")))
    assert metric(at, "Reports") == f"{expected:,}"


def test_unknown_values_in_a_link_are_ignored():
    at = run_app(shifts=["Teatime"], **{"from": "not-a-date"})
    assert not at.exception
    assert at.multiselect(key="flt_shifts").value == []


def test_missing_ose_dataset_falls_back_to_the_sample_with_a_warning(monkeypatch, tmp_path):
    missing = tmp_path / "nowhere.parquet"
    monkeypatch.setenv("OSE_DATASET", str(missing))
    at = run_app()
    assert not at.exception
    warning = " ".join(w.value for w in at.warning)
    assert str(missing) in warning and "does not exist" in warning and "synthetic sample" in warning
    assert at.selectbox(key="dataset_choice").value.startswith("Synthetic sample")
    assert [m.label for m in at.metric] == METRICS


def test_unreadable_ose_dataset_names_the_file_and_reason(monkeypatch, tmp_path):
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 this is not parquet")
    monkeypatch.setenv("OSE_DATASET", str(broken))
    at = run_app()
    assert not at.exception
    warning = " ".join(w.value for w in at.warning)
    assert "broken.parquet" in warning and "not a readable Parquet file" in warning


def test_ose_dataset_becomes_the_default_and_switching_resets_filters(monkeypatch):
    monkeypatch.setenv("OSE_DATASET", str(FIXTURES / "small_canonical.csv"))
    at = run_app()
    assert not at.exception
    assert metric(at, "Reports") == "10"
    at.multiselect(key="flt_forces").set_value(["Southshire Police"]).run()
    assert metric(at, "Reports") == "5"
    at.selectbox(key="dataset_choice").select_index(1).run()
    assert not at.exception
    # The sample has no "Southshire Police": the filter must not carry over as a stale value.
    assert at.multiselect(key="flt_forces").value == []
    assert "Southshire Police" not in at.multiselect(key="flt_forces").options
    assert metric(at, "Reports") != "5"


def test_filters_matching_nothing_say_so(monkeypatch):
    monkeypatch.setenv("OSE_DATASET", str(FIXTURES / "small_canonical.csv"))
    at = run_app()
    at.multiselect(key="flt_forces").set_value(["Northshire Police"])
    at.multiselect(key="flt_roles").set_value(["Roads policing"]).run()
    assert not at.exception
    assert any("No reports match" in i.value for i in at.info)


def test_reset_filters_restores_the_opening_view():
    at = run_app()
    opening = metric(at, "Reports")
    at.multiselect(key="flt_shifts").set_value(["Early"]).run()
    assert metric(at, "Reports") != opening
    next(b for b in at.button if b.label == "Reset filters").click().run()
    assert metric(at, "Reports") == opening
    assert at.multiselect(key="flt_shifts").value == []


def test_link_with_filters_but_no_dates_opens_on_the_default_dates(monkeypatch):
    monkeypatch.setenv("OSE_DATASET", str(FIXTURES / "small_canonical.csv"))
    at = run_app(forces=["Southshire Police"])
    assert not at.exception
    assert metric(at, "Reports") == "5"
    assert at.date_input(key="flt_dates").value == (date(2024, 1, 5), date(2024, 4, 30))


def test_link_can_name_a_dataset_other_than_the_default(monkeypatch):
    monkeypatch.setenv("OSE_DATASET", str(FIXTURES / "small_canonical.csv"))
    at = run_app(dataset="sample")
    assert not at.exception
    assert at.selectbox(key="dataset_choice").value.startswith("Synthetic sample")
    assert at.query_params["dataset"] in ("sample", ["sample"])


def test_extract_with_only_the_subjects_injury_draws_that_rate_by_group_and_no_empty_officer_panels(
        monkeypatch, tmp_path):
    from lib import synth

    frame = synth.generate(3000, seed=11).reports.to_pandas().drop(columns=["officer_injured", "officer_assaulted"])
    path = tmp_path / "subject_only.csv"
    frame.to_csv(path, index=False)
    monkeypatch.setenv("OSE_DATASET", str(path))
    at = run_app()
    assert not at.exception
    by_group = [json.loads(c.proto.spec) for c in at.get("vega_lite_chart") if '"hconcat"' in c.proto.spec]
    assert len(by_group) == 2  # by role and by shift
    for spec in by_group:  # the reports, and the subject injury rate: no panel of a rate nobody answered
        assert [p.get("title") for p in spec["hconcat"]] == ["Reports", "Subject injury rate"]


def test_extract_without_injury_fields_says_why_rates_are_unavailable(monkeypatch, tmp_path):
    path = tmp_path / "no_injuries.csv"
    path.write_text("report_id,occurred_at,force,officer_id,officer_role\n"
                    "R1,2024-01-05 08:00,Kent Police,O1,Response\nR2,2024-02-05 23:30,Kent Police,O2,Custody\n")
    monkeypatch.setenv("OSE_DATASET", str(path))
    at = run_app()
    assert not at.exception
    assert metric(at, "Reports") == "2"
    assert metric(at, "Officer injury rate") == "Not recorded"
    assert any("Not in this extract" in i.value and "officer injury" in i.value for i in at.info)
    # No chart of empty rates (it drew "0.000000%" axes): one sentence per section instead.
    assert len(at.get("vega_lite_chart")) == 2  # reports per month, and most-used tactics
    assert any("No injury or assault rate by officer role" in c.value for c in at.caption)


def test_data_quality_page_shows_completeness_contradictions_and_the_rows_behind_them(monkeypatch):
    monkeypatch.setenv("OSE_DATASET", str(FIXTURES / "small_canonical.csv"))
    at = run_app().switch_page("app_pages/quality.py").run()
    assert not at.exception
    assert [h.value for h in at.subheader][:2] == ["How complete is each field?",
                                                   "Values outside the national vocabularies"]
    complete = at.dataframe[0].value.set_index("Field")  # fields by their plain names
    assert complete.loc["Officer injured", "Reports answering"] == 9
    assert complete.loc["Subject ethnicity", "Answered (%)"] == 90.0
    by_force = at.dataframe[1].value
    assert by_force.columns[:5].tolist() == ["Force", "Reports", "Age band", "Gender", "Ethnicity"]
    assert not any("_" in str(c) for d in at.dataframe for c in d.value.columns)  # no raw field name anywhere
    # Whole numbers are shown with thousands separators.
    reports = json.loads(by_force_proto(at).proto.columns)["Reports"]
    assert reports["type_config"]["format"] == "localized"


def by_force_proto(at: AppTest):
    return next(d for d in at.dataframe if "Age band" in d.value.columns)


def test_every_page_runs_without_error_on_the_sample():
    at = run_app()
    for page in ("app_pages/overview.py", "app_pages/risk.py", "app_pages/tactics.py", "app_pages/explore.py",
                 "app_pages/data.py", "app_pages/quality.py"):
        at.switch_page(page).run()
        assert not at.exception, page
        assert at.title[0].value in ("Overview", "Officer risk", "Tactics", "Explore", "Data", "Data quality")


def test_cached_query_runs_lib_queries_only():
    from lib.ui import cache

    ds = cache.engine().open(FIXTURES / "small_canonical.csv")
    counts = cache.cached_query(query.tactic_counts, ds, Filters(), UNRESTRICTED)
    assert counts["reports"].sum() == 12
    import os

    with pytest.raises(ValueError, match="lib queries only"):
        cache.cached_query(os.system, ds, Filters(), UNRESTRICTED)


def test_a_prefetched_query_is_computed_once_and_the_page_gets_its_result(monkeypatch):
    import threading
    import time

    from lib.analysis import risk
    from lib.ui import cache

    ds = cache.engine().open(FIXTURES / "small_canonical.csv")
    real, calls, started = risk.officer_exposure, [], threading.Event()

    def slow(*args, **kwargs):  # the same name to the cache: lib.analysis.risk:officer_exposure
        calls.append(threading.current_thread().name)
        started.set()
        time.sleep(0.5)  # the page asks while the prefetch is still computing
        return real(*args, **kwargs)

    slow.__module__, slow.__qualname__ = real.__module__, real.__qualname__
    cache.prefetch(slow, ds, Filters(), UNRESTRICTED, "officer_injured")
    assert started.wait(10)
    got = cache.cached_query(slow, ds, Filters(), UNRESTRICTED, "officer_injured")
    assert calls == ["prefetch officer_exposure"]  # the page's call waited for it, and did not compute again
    expected = real(cache.engine(), ds, Filters(), UNRESTRICTED, "officer_injured")
    assert (got.officers, got.heterogeneity, got.shared_incidents) == (
        expected.officers, expected.heterogeneity, expected.shared_incidents)
    pd.testing.assert_frame_equal(got.table, expected.table)
    import os

    with pytest.raises(ValueError, match="lib queries only"):
        cache.prefetch(os.system, ds, Filters(), UNRESTRICTED)


def test_chart_specs_come_from_lib_builders_only_and_are_cached_by_name(fresh_caches):
    import json

    from lib.present import charts, chartspec
    from lib.ui import render

    built: list[int] = []
    real = chartspec.to_spec
    fresh_caches.setattr(chartspec, "to_spec", lambda chart: built.append(1) or real(chart))
    frame = pd.DataFrame({"month": pd.to_datetime(["2024-01-01", "2024-02-01"]), "reports": [3, 5]})
    first = render.spec(charts.reports_by_month, (frame,), {"title": ""})
    assert render.spec(charts.reports_by_month, (frame,), {"title": ""}) == first
    assert len(built) == 1  # the second came from the cache, keyed on the builder's name and arguments
    assert "vega-lite" in first["$schema"]  # a Vega-Lite spec, ready for the browser
    with pytest.raises(ValueError, match="lib builders only"):
        render.spec(json.dumps, (frame,))


def test_officer_risk_page_flags_groups_against_funnel_limits_not_a_ranking():
    at = run_app().switch_page("app_pages/risk.py").run()
    assert not at.exception
    assert [h.value for h in at.subheader][:4] == ["By role and shift", "Month by month",
                                                   "By hour of day and day of week",
                                                   "Rate ratios, with 95% intervals"]
    assert len(at.get("vega_lite_chart")) == 5
    assert any("not distinguishable from the average" in c.value for c in at.caption)
    assert any("By chance alone, about" in c.value for c in at.caption)
    assert any("drawn but not judged" in c.value and "overdispersion" in c.value.lower() for c in at.caption)
    for level in ("team", "officer"):
        at.radio(key="risk_level").set_value(level).run()
        assert not at.exception
        assert any(f"{level}s, " in c.value and "not distinguishable" in c.value for c in at.caption)
    at.selectbox(key="risk_dimension").set_value("tactic_group").run()
    assert not at.exception


def test_officer_exposure_lists_officers_only_when_they_differ_beyond_chance():
    at = run_app().switch_page("app_pages/risk.py").run()
    assert not at.exception
    # The sample's officers differ in injury (role, shift and resistance differ between them): a list, with the
    # warning that the highest observed rates usually fall next period.
    assert "Officers with most exposure to harm" in [h.value for h in at.subheader]
    assert any(c.value.startswith("Regression to the mean") for c in at.caption)
    assert any("Same incidents" in c.value for c in at.caption)
    # Dog handlers alone (48 officers) do not differ beyond chance: the page says so and lists no one.
    at.multiselect(key="flt_roles").set_value(["Dog handler"]).run()
    assert not at.exception
    said = [i.value for i in at.info]
    assert any(v.startswith("These officers' injury rates do not differ more than chance would make them differ: "
                            "no officer is singled out") for v in said), said
    assert not any(c.value.startswith("Regression to the mean") for c in at.caption)
    assert not any("Officer (pseudonym)" in d.value.columns for d in at.dataframe)


def test_officer_risk_page_shows_ratios_crude_or_adjusted_and_says_which():
    at = run_app().switch_page("app_pages/risk.py").run()
    assert any("Rate ratios crude" in c.value for c in at.caption)
    at.radio(key="risk_basis").set_value("Adjusted for case mix").run()
    assert not at.exception
    chosen = at.multiselect(key="risk_adjust_for_shift")
    assert chosen.value == ["officer_role", "resistance", "single_crewed", "location_type"]  # not shift itself
    assert any("adjusted for role, resistance, crewing and location type" in c.value for c in at.caption)
    at.selectbox(key="risk_dimension").set_value("tactic").run()
    assert not at.exception
    assert "shift" in at.multiselect(key="risk_adjust_for_tactic").value
    assert any("Poisson regression" in c.value for c in at.caption)


def test_training_page_shows_compliance_and_the_effect_with_its_reading():
    at = run_app().switch_page("app_pages/training.py").run()
    assert not at.exception
    assert [h.value for h in at.subheader] == ["Who has had their 12 hours", "Is the training working?",
                                              "Learning the lessons: debriefs"]
    use = next(m for m in at.metric if m.label == "Change in use of force")
    assert use.value.startswith("-")  # the sample plants a 9% fall
    assert any("after training" in m.value for m in at.markdown)
    # The verdict, whether the groups moved alike before training, and what the data could detect.
    labels = tuple(f"**{label}.**" for label in training.VERDICT_LABELS.values())
    assert sum(m.value.startswith(labels) for m in at.markdown) == 1
    assert any("before training" in m.value and "p = " in m.value for m in [*at.markdown, *at.warning])
    assert any(m.value.startswith("The data could detect a change of about ") for m in at.markdown)
    assert any("older two-way fixed-effects model" in c.value for c in at.caption)


def test_training_page_starts_the_effect_early_and_computes_it_once(monkeypatch):
    import threading

    from lib.analysis import training_dense

    real, calls = training_dense.effects_and_profile, []

    def counted(*args, **kwargs):
        calls.append(threading.current_thread().name)
        return real(*args, **kwargs)

    monkeypatch.setattr(training_dense, "effects_and_profile", counted)
    at = run_app().switch_page("app_pages/training.py").run()
    assert not at.exception
    # Started on the prefetch thread as the page began; the page's own call waited for it and used its result.
    assert calls == ["prefetch _saved_training_results"]
    assert next(m for m in at.metric if m.label == "Change in use of force").value.startswith("-")


def test_training_page_explains_what_is_missing_without_a_roster(monkeypatch):
    monkeypatch.setenv("OSE_DATASET", str(FIXTURES / "small_canonical.csv"))
    at = run_app().switch_page("app_pages/training.py").run()
    assert not at.exception
    assert any("no officer roster" in i.value for i in at.info)


def test_training_page_debriefs_show_the_review_list_and_factors():
    at = run_app().switch_page("app_pages/training.py").run()
    next(b for b in at.button if b.label == "Use synthetic demo debriefs").click().run()
    assert not at.exception
    missing = next(m for m in at.metric if m.label == "Officer injured or assaulted, no debrief recorded")
    assert int(missing.value.replace(",", "")) > 0
    assert "Learning the lessons: debriefs" in [h.value for h in at.subheader]


def test_roster_upload_with_odd_headers_goes_through_the_mapping_step(monkeypatch):
    monkeypatch.setenv("OSE_DATASET", str(FIXTURES / "small_canonical.csv"))
    at = run_app().switch_page("app_pages/training.py").run()
    officers = b"Officer ID,Role,Team\nOF1,Response,A\nOF2,Response,A\nOF9,Custody,B\n"
    odd = b"Warrant,When,What,Length\nOF1,05/01/2024,Personal safety training,12\nOF2,,PST,6\n"
    at.file_uploader(key="roster_files").set_value([("officers.csv", officers, "text/csv"),
                                                    ("odd.csv", odd, "text/csv")]).run()
    next(b for b in at.button if b.label == "Read roster files").click().run()
    assert not at.exception
    assert any("officers.csv: officers table, 3 rows read, 3 loaded" in s.value for s in at.success)
    assert any("odd.csv" in w.value and "Map its columns" in w.value for w in at.warning)
    assert at.selectbox(key="roster_kind").value == "training"  # proposed from the values it could read
    assert len(at.dataframe) >= 1  # the mapping table, for editing
    # AppTest cannot edit a data_editor's cells; the mapping itself is tested in tests/test_roster.py.


def _page_text(at: AppTest) -> str:
    """Return the words of a page's text elements and expander labels, to look for an officer id in."""
    texts = [str(e.value) for kind in ("markdown", "caption", "info", "warning", "success", "subheader")
             for e in at.get(kind)]
    return " ".join([*texts, *(e.label for e in at.expander)])


def test_officer_pages_on_a_folder_of_raw_ids_show_pseudonyms_only_and_say_so(monkeypatch, tmp_path):
    import shutil

    from lib.ingest import pseudonym

    folder = tmp_path / "raw"
    shutil.copytree(SAMPLE_DIR, folder)  # Parquet not written by the ingester: raw ids such as OF003351
    raw = set(pd.read_parquet(folder / "reports.parquet", columns=["officer_id"])["officer_id"])
    raw_pattern = re.compile(r"OF\d{6}")
    assert all(raw_pattern.fullmatch(i) for i in raw)
    monkeypatch.setenv("OSE_DATASET", str(folder))
    at = run_app().switch_page("app_pages/risk.py").run()
    at.radio(key="risk_level").set_value("officer").run()
    assert not at.exception
    assert at.selectbox(key="dataset_choice").value.startswith("raw")
    assert any(c.value.startswith("Officer-level detail (pseudonymised ids).") for c in at.caption)
    shown = [d.value for d in at.dataframe]
    exposure = next(f for f in shown if "Officer (pseudonym)" in f.columns)
    funnel = next(f for f in shown if "Officer" in f.columns)
    for ids in (exposure["Officer (pseudonym)"], funnel["Officer"]):  # the heading's claim is true
        assert len(ids) and ids.map(pseudonym.is_pseudonym).all()
    assert not raw & {str(v) for f in shown for v in f.to_numpy().ravel()}
    assert not raw_pattern.search(_page_text(at))
    for chart in at.get("vega_lite_chart"):  # the funnel's points and tooltips
        assert not re.search(rb"OF\d{6}", chart.proto.SerializeToString())
    # The training page's list of overdue officers reads the folder's roster: pseudonymised the same way.
    at = at.switch_page("app_pages/training.py").run()
    assert not at.exception
    overdue = next(d.value for d in at.dataframe if "Officer (pseudonym)" in d.value.columns)
    assert len(overdue) and overdue["Officer (pseudonym)"].map(pseudonym.is_pseudonym).all()
    assert any("pseudonymised ids" in e.label for e in at.expander)
    assert not raw & {str(v) for d in at.dataframe for v in d.value.to_numpy().ravel()}


def test_the_overdue_list_shows_the_furthest_behind_and_says_the_downloads_hold_the_rest():
    # 4,202 officers are short of 12 hours in the sample: a browser table of them all is slow to send and unread.
    at = run_app().switch_page("app_pages/training.py").run()
    assert not at.exception
    label = next(e.label for e in at.expander if e.label.startswith("Officers overdue you may see"))
    overdue = int(re.search(r"\(([\d,]+),", label).group(1).replace(",", ""))
    assert overdue > 1_000
    shown = next(d.value for d in at.dataframe if "Officer (pseudonym)" in d.value.columns)
    assert len(shown) == 1_000
    assert shown["Hours short"].is_monotonic_decreasing  # the furthest behind first
    assert any(c.value == f"The first 1,000 of {overdue:,} rows are shown; the downloads hold all {overdue:,}."
               for c in at.caption)
    assert len(at.get("download_button")) >= 2


def test_the_filters_are_drawn_only_on_pages_they_apply_to_and_survive_a_visit_to_the_others():
    at = run_app()
    at.multiselect(key="flt_shifts").set_value(["Night"]).run()
    night = metric(at, "Reports")
    at.switch_page("app_pages/data.py").run()
    assert not at.exception
    assert not [m for m in at.multiselect if (m.key or "").startswith("flt_")]  # nothing that would do nothing
    assert not any("apply to every page" in m.value for m in at.sidebar.markdown)
    at.switch_page("app_pages/overview.py").run()
    assert at.multiselect(key="flt_shifts").value == ["Night"] and metric(at, "Reports") == night
    at.switch_page("app_pages/quality.py").run()
    assert any("apply to every page" in m.value for m in at.sidebar.markdown)


def test_an_extract_without_time_of_day_says_so_instead_of_putting_every_report_at_midnight(monkeypatch, tmp_path):
    from lib import synth

    data = synth.generate(3000, seed=5).reports
    frame = data.to_pandas() if hasattr(data, "to_pandas") else data
    frame = frame.assign(occurred_at=pd.to_datetime(frame["occurred_at"]).dt.normalize())  # dates only
    path = tmp_path / "dates_only.csv"
    frame.to_csv(path, index=False)
    monkeypatch.setenv("OSE_DATASET", str(path))
    at = run_app().switch_page("app_pages/risk.py").run()
    assert not at.exception
    assert any("records no time of day" in i.value for i in at.info)
    assert not any("Hour of day" in el.proto.spec for el in at.get("vega_lite_chart"))
    # Explore by hour says the same, in place of a line at midnight; by shift it still draws.
    at.switch_page("app_pages/explore.py").run()
    at.multiselect(key="explore_dimensions").set_value(["hour"]).run()
    assert not at.exception
    assert any("records no time of day" in i.value and "hour of day" in i.value for i in at.info)
    assert not at.get("vega_lite_chart")
    at.multiselect(key="explore_dimensions").set_value(["shift"]).run()
    assert not any("records no time of day" in i.value for i in at.info)
    # With times, the same page draws the hour-by-day grid.
    timed = tmp_path / "timed.csv"
    (data.to_pandas() if hasattr(data, "to_pandas") else data).to_csv(timed, index=False)
    monkeypatch.setenv("OSE_DATASET", str(timed))
    at = run_app().switch_page("app_pages/risk.py").run()
    assert any("Hour of day" in el.proto.spec for el in at.get("vega_lite_chart"))
    assert not any("records no time of day" in i.value for i in at.info)


@pytest.mark.parametrize(("named", "said"), [
    ("session", "an upload explored for one session only"),
    ("lib:Kent Q1", "a saved dataset that is not in the library or not open to your account"),
])
def test_a_link_to_a_dataset_not_here_says_so_and_does_not_apply_its_filters_to_another(engine, named, said):
    # The link of an uploaded dataset, opened elsewhere: it used to open the sample on the upload's one-day window.
    at = run_app(dataset=named, **{"from": "2014-06-07", "to": "2014-06-07", "shifts": "Night"})
    assert not at.exception
    warning = next(w.value for w in at.warning if "This link was made on" in w.value)
    assert said in warning and "Synthetic sample (not real data)" in warning
    assert "its filters are not applied" in warning and "Kent Q1" not in warning  # never echoes another's name
    defaults = query.default_filters(engine.open(SAMPLE_DIR))
    assert metric(at, "Reports") == f"{reports_in_sample(engine, defaults):,}"  # the opening view, not one day
    assert at.multiselect(key="flt_shifts").value == []
    at.run()  # said once: the next run does not repeat it
    assert not any("This link was made on" in w.value for w in at.warning)


def open_link(link: dict, page: str) -> AppTest:
    """Open a shared link's query parameters in a new session, on `page`."""
    opened = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    for key, value in link.items():
        opened.query_params[key] = value
    opened.run().switch_page(page).run()
    assert not opened.exception
    return opened


def test_the_tactics_page_choices_travel_in_its_link():
    at = run_app().switch_page("app_pages/tactics.py").run()
    assert not at.exception and not at.warning  # no clash between a control's default and Session State
    assert not any(k.startswith("tactics_") for k in at.query_params)  # the opening choices keep the link short
    at.segmented_control(key="tactics_use_measure").set_value("Share of reports").run()
    at.segmented_control(key="tactics_harm_by").set_value("Type of force").run()
    assert not at.exception
    link = {k: at.query_params[k] for k in at.query_params}
    assert (link["tactics_use_measure"], link["tactics_harm_by"]) == ("Share of reports", "Type of force")
    opened = open_link(link, "app_pages/tactics.py")  # someone else opens the link: the same charts
    assert not opened.warning
    assert opened.segmented_control(key="tactics_use_measure").value == "Share of reports"
    assert opened.segmented_control(key="tactics_harm_by").value == "Type of force"
    assert any("Share of the month's reports using it" in c.proto.spec for c in opened.get("vega_lite_chart"))
    opened.segmented_control(key="tactics_use_measure").set_value("Reports").run()  # back to the opening choice
    assert "tactics_use_measure" not in opened.query_params


def test_the_data_quality_page_choices_travel_in_its_link():
    at = run_app().switch_page("app_pages/quality.py").run()
    assert not at.exception and "quality_level" not in at.query_params
    at.radio(key="quality_level").set_value("area").run()
    assert at.query_params["quality_level"] == "area"
    opened = open_link({k: at.query_params[k] for k in at.query_params}, "app_pages/quality.py")
    assert opened.radio(key="quality_level").value == "area"
    assert any("Area" in d.value.columns for d in opened.dataframe)  # the table by area, not by force


def test_the_officer_risk_page_choices_travel_in_its_link():
    at = run_app().switch_page("app_pages/risk.py").run()
    at.radio(key="risk_measure").set_value("officer_assaulted").run()
    at.radio(key="risk_level").set_value("team").run()
    at.selectbox(key="risk_reference_shift").set_value("Night").run()
    assert not at.exception
    link = {k: at.query_params[k] for k in at.query_params}
    assert (link["risk_measure"], link["risk_level"], link["risk_reference_shift"]) == (
        "officer_assaulted", "team", "Night")
    at.multiselect(key="flt_shifts").set_value(["Night", "Late"]).run()  # a filter rewrites the link: choices stay
    assert at.query_params["risk_measure"] == "officer_assaulted"
    opened = open_link(link, "app_pages/risk.py")  # someone else opens the link: the same choices
    assert opened.radio(key="risk_measure").value == "officer_assaulted"
    assert opened.radio(key="risk_level").value == "team"
    assert opened.selectbox(key="risk_reference_shift").value == "Night"


def test_statistical_headings_explain_their_terms_in_one_plain_sentence_each():
    from lib.present import wording

    at = run_app().switch_page("app_pages/risk.py").run()
    helps = {h.value: h.proto.help for h in at.subheader}
    assert wording.GLOSSARY["rate ratio"] in helps["Rate ratios, with 95% intervals"]
    assert wording.GLOSSARY["funnel plot"] in next(v for k, v in helps.items() if "funnel plot" in k)
    assert wording.GLOSSARY["shrunken rate"] in helps["Officers with most exposure to harm"]
    assert wording.GLOSSARY["rank interval"] in helps["Officers with most exposure to harm"]
    at.switch_page("app_pages/tactics.py").run()
    helps = {h.value: h.proto.help for h in at.subheader}
    assert wording.GLOSSARY["interval"] in helps["How often each tactic was effective"]
    assert wording.GLOSSARY["counting unit"] in helps["Injuries when each tactic was used"]
    assert wording.GLOSSARY["highest use"] in helps["The Taser ladder (highest use per report)"]
    at.switch_page("app_pages/explore.py").run()
    assert wording.GLOSSARY["interval"] in at.selectbox(key="explore_measure").help
    for sentence in wording.GLOSSARY.values():  # one sentence, short enough to read in a tooltip
        assert sentence.count(". ") == 0 and sentence.endswith(".") and len(sentence) < 260


def test_a_part_month_at_the_end_of_the_data_is_flagged_on_the_trends(monkeypatch, tmp_path):
    from lib import synth

    data = synth.generate(3000, seed=5).reports
    frame = data.to_pandas() if hasattr(data, "to_pandas") else data
    when = pd.to_datetime(frame["occurred_at"])
    cut = (when.max() - pd.Timedelta(days=40)).normalize()
    cut = cut.replace(day=4)  # the data stop on the 4th of a month
    path = tmp_path / "part_month.csv"
    frame[when < cut + pd.Timedelta(days=1)].to_csv(path, index=False)
    monkeypatch.setenv("OSE_DATASET", str(path))
    at = run_app()
    assert not at.exception
    # The opening view is the last 365 days: it ends on the 4th and starts part-way through a month too.
    said = f"{cut:%B %Y} holds data up to 4 {cut:%b} only"
    assert any(c.value.startswith("Part months: ") and said in c.value for c in at.caption)
    # The same months are marked on the charts (lighter bar, hollow point, a note in the tooltip) and in the table.
    specs = [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]
    assert any("datum.part_month" in json.dumps(spec) for spec in specs)
    monthly = next(df.value for df in at.dataframe if "Part month" in df.value.columns)
    assert monthly["Part month"].iloc[-1] == f"Data up to 4 {cut:%b} only" and monthly["Part month"].iloc[1] == ""
    # The data begin less than the 365 days in view before it: the period before is not whole in the data, so no
    # change is drawn from part of one.
    first = pd.to_datetime(frame["occurred_at"]).min()
    assert any(f"No change is shown: the data start on {first.day} {first:%b %Y}" in c.value for c in at.caption)
    assert not any(m.delta for m in at.metric)
    at.switch_page("app_pages/risk.py").run()
    assert not at.exception
    assert any(c.value.startswith("Part months: ") and said in c.value for c in at.caption)
    assert any("datum.part_month" in c.proto.spec for c in at.get("vega_lite_chart"))


def test_a_period_chosen_mid_month_names_its_part_months_on_the_explore_line():
    at = open_link({"from": "2024-01-09", "to": "2024-06-04", "explore_dimensions": "month"}, "app_pages/explore.py")
    assert at.multiselect(key="explore_dimensions").value == ["month"]
    assert any(c.value.startswith("Part months: January 2024 holds data from 9 Jan only") and "labelled 'part month'"
               in c.value for c in at.caption)
    spec = next(json.loads(c.proto.spec) for c in at.get("vega_lite_chart"))
    named = [layer for layer in spec["layer"] if layer.get("transform") == [{"filter": "datum.part_month"}]]
    assert len(named) == 1 and named[0]["encoding"]["text"] == {"value": "part month"}


def test_a_period_chosen_mid_month_marks_its_part_months_on_the_tactics_trend():
    at = open_link({"from": "2024-01-09", "to": "2024-06-04"}, "app_pages/tactics.py")
    said = "January 2024 holds data from 9 Jan only; June 2024 holds data up to 4 Jun only"
    assert any(c.value.startswith("Part months: ") and said in c.value for c in at.caption)
    trend = next(json.loads(c.proto.spec) for c in at.get("vega_lite_chart") if "Type of force" in c.proto.spec)
    hollow = trend["layer"][1]
    assert hollow["transform"] == [{"filter": "datum.part_month"}] and hollow["mark"]["fill"] == "white"
    table = next(df.value for df in at.dataframe if "Part month" in df.value.columns)
    assert set(table.loc[table["Month"] == "Jan 2024", "Part month"]) == {"Data from 9 Jan only"}
    assert set(table.loc[table["Month"] == "Mar 2024", "Part month"]) == {""}


def test_the_explore_page_choices_travel_in_its_link():
    at = run_app().switch_page("app_pages/explore.py").run()
    assert not at.exception
    assert not any(k.startswith("explore_") for k in at.query_params)  # the opening question keeps the link short
    at.selectbox(key="explore_measure").set_value("officer_assaulted").run()
    at.multiselect(key="explore_dimensions").set_value(["shift", "officer_role"]).run()
    link = {k: v if isinstance(v, list) else [v] for k, v in at.query_params.items()}  # AppTest: a dict
    assert link["explore_measure"] == ["officer_assaulted"]
    assert link["explore_dimensions"] == ["shift", "officer_role"]
    opened = open_link(link, "app_pages/explore.py")
    assert opened.selectbox(key="explore_measure").value == "officer_assaulted"
    assert opened.multiselect(key="explore_dimensions").value == ["shift", "officer_role"]


def test_an_extract_with_no_incident_id_counts_no_incidents_on_any_page(monkeypatch, tmp_path):
    from lib import synth

    data = synth.generate(20_000, seed=3).reports
    frame = data.to_pandas() if hasattr(data, "to_pandas") else data
    # Plant officers who differ (ten of the busiest injured on most reports), so the officer table is drawn.
    busiest = frame["officer_id"].value_counts().index[:10]
    frame.loc[frame["officer_id"].isin(busiest) & frame["officer_injured"].notna(), "officer_injured"] = True
    path = tmp_path / "no_incidents.csv"
    frame.drop(columns=["incident_id"]).to_csv(path, index=False)
    monkeypatch.setenv("OSE_DATASET", str(path))
    at = run_app()
    assert not at.exception
    assert any(c.value.startswith("Incidents: not recorded in this extract") for c in at.caption)
    at.switch_page("app_pages/risk.py").run()
    assert not at.exception
    assert any(c.value.startswith("This extract records no incident id") for c in at.caption)
    assert not [e for e in at.expander if "same incidents" in e.label]
    columns = [c for d in at.dataframe for c in d.value.columns]
    assert "Compared with peers in the same role" in columns  # the officer table is there...
    assert not [c for c in columns if "incident" in c.lower()]  # ...with no same-incident counts of zero


def test_an_extract_with_no_officer_ids_offers_no_officer_level_and_counts_no_officers(monkeypatch, tmp_path):
    from lib import synth

    frame = synth.generate(3000, seed=3).reports.to_pandas().assign(officer_id="")
    path = tmp_path / "no_officer_ids.csv"
    frame.to_csv(path, index=False)
    monkeypatch.setenv("OSE_DATASET", str(path))
    at = run_app()
    assert not at.exception
    assert any("officers: not recorded in this extract" in c.value for c in at.caption)
    assert not any(re.search(r"\b0 officers", c.value) for c in at.caption)
    at.switch_page("app_pages/risk.py").run()
    assert not at.exception
    assert at.radio(key="risk_level").options == ["Area", "Team"]  # no officer to place on a funnel
    assert any(h.value == "Areas and teams against the average (funnel plot)" for h in at.subheader)
    assert any("No officer identifiers in this view" in i.value for i in at.info)
