"""Home Office national tables read from the real published files, checked against their own figures."""
from __future__ import annotations

import sys

import pandas as pd
import pytest

from lib.analysis import reference
from lib.model import schema
from lib.model.forces import FORCES

TACTICS_CSV = "homeoffice_uof_by_age_force_apr2019-mar2020.csv"
CED_CSV = "homeoffice_ced_by_type_force_apr2019-mar2020.csv"
TABLES_ODS = "homeoffice_uof_apr2019-mar2020_hosb3720_tables.ods"
COUNT = "times_reported"


@pytest.fixture(scope="module")
def tactics(realdata) -> pd.DataFrame:
    return reference.read_tactics_by_force(realdata / TACTICS_CSV)


@pytest.fixture(scope="module")
def ced(realdata) -> pd.DataFrame:
    return reference.read_ced_by_force(realdata / CED_CSV)


@pytest.fixture(scope="module")
def tables(realdata) -> dict[str, pd.DataFrame]:
    return reference.read_ods_tables(realdata / TABLES_ODS)


@pytest.fixture(scope="module")
def benchmarks(tables) -> dict[str, object]:
    return reference.national_benchmarks(tables)


def _national(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["level"] == reference.NATIONAL]


# --- Table 14 (CSV) -------------------------------------------------------------------------------


def test_table14_national_total_tactics(tactics):
    total = _national(tactics).query("row_kind == 'total'")
    assert total[COUNT].tolist() == [715_276]
    assert total["age_0_10"].tolist() == [998]  # '998.0' in the file
    assert tactics["force"][tactics["level"] == "force"].nunique() == 43


def test_table14_leaves_add_up_to_each_force_total_without_subtotals(tactics):
    # Leaves counted in the Home Office total (not 'Not reported', not tactical communication)
    # add up exactly to each force's '*Total Tactics' row; ':' (not available) cells are null.
    leaves = tactics[(tactics["row_kind"] == "leaf") & tactics["in_total"]]
    summed = leaves.groupby("force")[COUNT].sum()
    totals = tactics[tactics["row_kind"] == "total"].set_index("force")[COUNT]
    assert len(totals) == 44
    pd.testing.assert_series_equal(summed.sort_index(), totals.sort_index(), check_names=False)
    # Summing every row would count each use two or three times over.
    assert tactics[tactics["in_total"]].groupby("force")[COUNT].sum().gt(totals).all()


def test_table14_subtotals_equal_their_parts(tactics):
    groups = tactics[tactics["row_kind"] == "group"].set_index(["force", "type_of_force"])[COUNT]
    leaves = tactics[tactics["row_kind"] == "leaf"].groupby(["force", "type_of_force"])[COUNT].sum()
    assert (groups == leaves.reindex(groups.index)).all()
    parents = tactics[tactics["row_kind"] == "parent"].set_index(["force", "tactic"])[COUNT]
    children = tactics[tactics["parent"].notna()].groupby(["force", "parent"])[COUNT].sum()
    assert (parents == children.reindex(parents.index)).all()
    assert set(tactics.loc[tactics["row_kind"] == "parent", "tactic"]) == {
        "Handcuffing, of which", "Baton, of which", "Irritant spray, of which", "CED of which",
        "AEP, of which", "Dog use, of which"}


def test_table14_forces_add_up_to_england_and_wales(tactics):
    nat = _national(tactics).set_index(["type_of_force", "tactic"])[COUNT]
    forces = tactics[tactics["level"] == "force"].groupby(["type_of_force", "tactic"])[COUNT].sum()
    assert (nat == forces.reindex(nat.index)).all()


def test_table14_not_available_is_null_not_zero(tactics):
    row = tactics[(tactics["force"] == "Avon & Somerset") & (tactics["tactic"] == "Compliant handcuffing")]
    assert row[COUNT].isna().all()
    assert tactics[COUNT].isna().sum() == 32


@pytest.mark.parametrize(("label", "canonical"), [
    ("Compliant handcuffing", "Compliant handcuffing"),
    ("Limb / Body restraints", "Limb/body restraints"),
    ("Irritant spray - used", "Irritant spray used"),
    ("Other / improvised", "Other/improvised"),
    ("Unarmed skills", "Unarmed skills"),  # '*Total Unarmed skills', a group with no parts
    ("Tactical communication", "Tactical communication"),
    ("CED non-discharge", None),
    ("CED discharge", None),
    ("Handcuffing not stated", None),
    ("Firearms", None),
])
def test_table14_tactics_map_to_canonical_where_one_matches(tactics, label, canonical):
    values = _national(tactics).set_index("tactic").loc[label, "canonical_tactic"]
    assert (None if pd.isna(values) else values) == canonical


@pytest.mark.parametrize(("label", "canonical"), [
    ("CED Angle-drive stun", "CED angle drive-stun"),
    ("CED Red-dot", "CED red-dot"),
    ("Tactical communication (with other tactic)", "Tactical communication"),
    ("Dog use, of which", None),
])
def test_canonical_tactic_of_home_office_labels(label, canonical):
    assert reference.canonical_tactic(label) == canonical


def test_table14_canonical_tactics_are_in_the_vocabulary(tactics):
    assert set(tactics["canonical_tactic"].dropna()) <= set(schema.TACTICS)
    # Only leaves map: a subtotal never stands for one tactic.
    assert tactics.loc[tactics["is_subtotal"], "canonical_tactic"].isna().all()


# --- CED (CSV) ------------------------------------------------------------------------------------


def test_ced_national_row(ced):
    row = _national(ced).iloc[0]
    assert (row["total"], row["fired"], row["not_stated"]) == (32_058, 3_275, 1_267)
    assert (row["drawn"], row["red_dot"]) == (7_141, 16_809)


def test_ced_levels_flag_region_and_national_rows(ced):
    assert ced["level"].value_counts().to_dict() == {"force": 43, "region": 10, "national": 1}
    forces = ced[ced["level"] == "force"]
    regions = ced[ced["level"] == "region"].set_index("region")["total"]
    assert (forces.groupby("region")["total"].sum().reindex(regions.index) == regions).all()
    assert forces["total"].sum() == 32_058


def test_ced_types_add_up_to_totals(ced):
    assert (ced["total"] == ced["total_non_discharge"] + ced["total_discharge"] + ced["not_stated"]).all()
    assert (ced["total_non_discharge"] == ced[["drawn", "aimed", "red_dot", "arced"]].sum(axis=1)).all()
    assert (ced["total_discharge"] == ced[["drive_stun", "fired", "angled_drive_stun"]].sum(axis=1)).all()


# --- data tables (.ods) ---------------------------------------------------------------------------


def test_ods_tables_are_read_without_odfpy(realdata, monkeypatch, tables):
    # python-calamine reads them; odfpy is no longer a dependency (None in sys.modules: no import).
    monkeypatch.setitem(sys.modules, "odf", None)
    again = reference.read_ods_tables(realdata / TABLES_ODS)
    assert again.keys() == tables.keys()
    for key, frame in tables.items():
        pd.testing.assert_frame_equal(again[key], frame)


def test_ods_table10_officer_injuries(tables):
    # Read off the sheet by eye: injured x intentional assault -> total, Minor, Severe, not reported.
    frame = tables["officer_injuries"]
    got = {(r.officer_injured, r.intentional_assault): (r.incidents, r.minor, r.severe, r.level_not_reported)
           for r in frame.itertuples()}
    assert got == {
        ("Yes", "Yes"): (10_711, 10_284, 256, 171),
        ("Yes", "No"): (8_976, 8_831, 113, 32),
        ("Yes", "Not reported"): (3_556, 2_736, 54, 766),
        ("No", "Yes"): (638, 52, 1, 585),
        ("No", "No"): (39_717, 68, 0, 39_649),
        ("No", "Not reported"): (426_466, 19, 0, 426_447),
        ("Not reported", "Yes"): (0, 0, 0, 0),
        ("Not reported", "No"): (8, 0, 0, 8),
        ("Not reported", "Not reported"): (1_912, 0, 0, 1_912),
    }
    # The published 'Total incidents' row is checked against these and left out.
    assert frame[["incidents", "minor", "severe", "level_not_reported"]].sum().tolist() == [
        491_984, 21_990, 424, 469_570]
    assert set(frame["year"]) == {"2019/20"}


def test_ods_table12_incidents_by_force(tables):
    frame = tables["incidents_by_force"]
    assert _national(frame)["incidents"].tolist() == [491_984]
    forces = frame[frame["level"] == "force"]
    assert len(forces) == 43 and forces["incidents"].sum() == 491_984
    assert forces.set_index("force").loc["Metropolitan", "incidents"] == 157_705
    assert forces.set_index("force").loc["Avon & Somerset", "incidents"] == 11_331
    assert (frame["level"] == "region").sum() == 10


def test_ods_tables_agree_with_each_other(tables):
    total = 491_984
    assert tables["subject_injuries"]["incidents"].sum() == total
    t1 = tables["tactics"]
    assert t1.loc[t1["row_kind"] == "total", ["times_reported", "incidents"]].values.tolist() == [
        [715_276, total]]
    # Table 1 itself is off by one: its CED levels add up to 32,058 uses (as Table 13 says),
    # while its Total Tactics (and Table 14's 'CED of which') carry 32,057.
    leaves = t1[(t1["row_kind"] == "leaf") & t1["in_total"]]
    assert leaves["times_reported"].sum() == 715_277
    ced = t1[t1["parent"] == "CED, of which"]
    assert ced["times_reported"].sum() == 32_058
    assert t1.set_index("tactic").loc["CED, of which", "times_reported"] == 32_058


def test_ods_table13_covers_three_years_and_matches_the_csv(tables, ced):
    frame = tables["ced_by_force"]
    assert sorted(frame["year"].unique()) == ["2017/18", "2018/19", "2019/20"]
    this_year = frame[frame["year"] == "2019/20"].drop(columns="year").reset_index(drop=True)
    # 'Hampshire (R)' (revised) in the sheet is plain 'Hampshire'.
    assert "Hampshire" in set(frame["force"])
    pd.testing.assert_frame_equal(this_year, ced, check_dtype=False)


def test_ods_table14_matches_the_flattened_csv(tables, tactics):
    frame = tables["tactics_by_force"].drop(columns="year")
    pd.testing.assert_frame_equal(frame, tactics, check_dtype=False)


@pytest.mark.parametrize("title_rows", [0, 1, 3])
def test_table_below_header_finds_the_header_by_content(title_rows):
    titles = [["Table 99. A title", None, None], ["Contents", None, None], [None, None, None]]
    sheet = pd.DataFrame([
        *titles[:title_rows],
        ["Region", "Police\nforce", "Total"],
        ["North", "Durham", 5],
        ["North", "Cleveland ", 7],
        [None, None, None],
        ["Notes", None, None],
        ["A note that is not data", None, None],
    ])
    table = reference.table_below_header(sheet, ("police force", "total"))
    assert list(table.columns) == ["Region", "Police force", "Total"]
    assert table["Total"].tolist() == [5, 7]


def test_missing_header_is_an_error():
    with pytest.raises(ValueError, match="no header row"):
        reference.table_below_header(pd.DataFrame([["Title"], ["x"]]), ("police force",))


@pytest.mark.parametrize(("title", "year"), [
    ("Table 10. Injuries to officers, year ending March 2020", "2019/20"),
    ("Table 12. Incidents by police force, year ending March 2000", "1999/00"),
    ("Cover sheet", None),
])
def test_financial_year_from_title(title, year):
    assert reference.financial_year(title) == year


# --- benchmarks and force names -------------------------------------------------------------------


def test_national_benchmarks(benchmarks):
    b = benchmarks
    assert (b["year"], b["incidents"], b["tactics_reported"]) == ("2019/20", 491_984, 715_276)
    assert (b["officer_injured"], b["officer_injured_not_reported"]) == (23_243, 1_920)
    assert b["officer_injured_share"] == pytest.approx(23_243 / 491_984)
    assert b["officer_injured_share_of_answered"] == pytest.approx(23_243 / (491_984 - 1_920))
    assert b["intentional_assault"] == 11_349
    assert b["intentional_assault_share"] == pytest.approx(11_349 / 491_984)
    assert b["injured_and_assaulted_share"] == pytest.approx(10_711 / 491_984)
    assert b["severe_share_of_injured"] == pytest.approx(423 / (21_851 + 423))
    assert b["ced_uses"] == 32_058
    assert b["ced_fired_share"] == pytest.approx(3_275 / 32_058)


def test_benchmark_tactic_mix_uses_incidents_as_denominator(benchmarks):
    mix = benchmarks["tactic_mix"].set_index("canonical_tactic")
    assert set(mix.index) <= set(schema.TACTICS)
    assert mix.loc["Compliant handcuffing", "incidents"] == 197_091
    assert mix.loc["Compliant handcuffing", "incident_share"] == pytest.approx(197_091 / 491_984)
    assert mix.loc["Unarmed skills", "times_share"] == pytest.approx(163_875 / 715_276)
    # CED by level, counted once per incident at its highest use (Table 1).
    assert mix.loc["CED fired", "incidents"] == 3_192
    assert pd.isna(mix.loc["Tactical communication", "times_share"])
    groups = benchmarks["type_of_force_mix"].set_index("type_of_force")
    assert groups.loc["Restraint", "incidents"] == 384_588
    assert groups.loc["Firearms", "incidents"] == 4_786


def test_benchmark_ced_by_type(benchmarks):
    frame = benchmarks["ced_by_type"].set_index("canonical_tactic")
    assert list(frame.index) == list(schema.CED_LADDER)
    assert frame["uses"].sum() == 32_058 - 1_267  # every use whose level is stated
    assert frame["share_of_stated"].sum() == pytest.approx(1.0)
    assert frame.loc["CED fired", "share"] == pytest.approx(3_275 / 32_058)


def test_benchmarks_accept_the_csv_frames_in_place_of_sheets(tables, ced, benchmarks):
    swapped = reference.national_benchmarks({**tables, "ced_by_force": ced})
    pd.testing.assert_frame_equal(swapped["ced_by_type"], benchmarks["ced_by_type"])


def test_every_force_maps_to_a_synthetic_force(tables, tactics, ced, benchmarks):
    names = benchmarks["force_names"]
    synth = {f[0] for f in FORCES}
    assert len(names) == 43 and set(names.values()) == synth
    for frame in (tables["incidents_by_force"], tactics, ced):
        forces = set(frame.loc[frame["level"] == "force", "force"])
        assert forces == set(names)
    assert names["Avon & Somerset"] == "Avon and Somerset Police"
    assert names["Metropolitan"] == "Metropolitan Police"
    assert names["Devon & Cornwall"] == "Devon and Cornwall Police"
    assert names["Hampshire"] == "Hampshire and Isle of Wight Constabulary"


@pytest.mark.parametrize(("name", "key"), [
    ("Avon and Somerset Constabulary", "avon somerset"),
    ("Avon & Somerset", "avon somerset"),
    ("Dyfed-Powys Police", "dyfed powys"),
    ("City of London Police", "city of london"),
    ("Metropolitan Police Service", "metropolitan"),
])
def test_force_key_ignores_the_words_that_differ(name, key):
    assert reference.force_key(name) == key


@pytest.mark.slow
def test_imported_national_figures_sit_beside_a_dataset(tmp_path, engine, realdata):
    from lib.analysis import reference
    from lib.engine import query
    from lib.engine.store import SAMPLE_DIR

    bench = reference.national_benchmarks(reference.read_ods_tables(realdata / TABLES_ODS))
    reference.save_benchmarks(bench, tmp_path)
    kept = reference.load_benchmarks(tmp_path)
    assert kept["year"] == "2019/20" and kept["incidents"] == 491_984
    ds = engine.open(SAMPLE_DIR)
    s = query.summarise(engine, ds, query.Filters(), query.UNRESTRICTED)
    shares = query.tactic_counts(engine, ds, query.Filters(), query.UNRESTRICTED).set_index("tactic")["share"]
    table = reference.comparison({k: r.rate for k, r in s.rates.items()}, shares.to_dict(), kept)
    row = table.set_index("Measure").loc["Officer injured (share of reports answering)"]
    assert row["England and Wales (%)"] == 4.7
    assert 4.0 <= row["This data (%)"] <= 6.0  # the sample is calibrated to the national figure
    hand = table.set_index("Measure").loc["Reports using Compliant handcuffing"]
    assert hand["England and Wales (%)"] == 40.1
