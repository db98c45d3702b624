"""Synthetic national-form extracts: canonical tables written as the UK national use-of-force
recording form (lib/ingest/formats/uk_national.py reads it), optionally with older years'
spellings and stray values, for tests and benchmarks. Nothing in the product imports it.

    python -m lib.synth.uk_national --reports 1000000 --seed 1 --out /tmp/uof.csv --drift
"""
from __future__ import annotations

import argparse
import codecs
import io
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from lib.ingest.formats.uk_national import (
    CED_LEVEL_HEADERS,
    FORM_COLUMNS,
    IMPACT_HEADERS,
    LOCATION_HEADERS,
    MAX_TACTICS,
    OUTCOME_HEADERS,
    REASON_HEADERS,
    ROLE_EXPORT_NAMES,
    TACTIC_EXPORT_NAMES,
    _arrow_text,
    _code,
    _strings,
    _tactic_headers,
)
from lib.model import schema
from lib.model.files import write_whole
from lib.synth.generator import generate

# --- export: canonical tables -> a national-form extract ---------------------------------------


def export(reports: pd.DataFrame, tactics: pd.DataFrame) -> pd.DataFrame:
    """Write canonical reports and tactics as a national-form extract (FY20-21 headers, Yes/No)."""
    n = len(reports)
    out: dict[str, pa.Array] = {}
    when = pd.to_datetime(reports["occurred_at"]).to_numpy(dtype="datetime64[us]")
    day = when.astype("datetime64[D]")
    days, day_code = np.unique(day, return_inverse=True)
    day_code = np.where(np.isnat(day), -1, day_code.reshape(-1))
    day_labels = [None if pd.isna(d) else d.strftime("%d/%m/%Y") for d in pd.DatetimeIndex(days)]
    out["IncidentDate"] = _strings(day_code, day_labels)
    minute = ((when - day.astype("datetime64[us]")) // np.timedelta64(1, "m")).astype(np.int64)
    time_known = ~np.isnat(when)
    if "shift" in reports.columns:  # a null shift marks an unknown time of day
        time_known &= reports["shift"].notna().to_numpy()
    out["IncidentTime"] = _strings(np.where(time_known, minute, -1),
                                   [f"{m // 60:02d}:{m % 60:02d}" for m in range(1440)])

    location, location_labels = _factorised(reports.get("location_type"), n)
    for header, item in LOCATION_HEADERS.items():
        # Police vehicles are written as the caged kind; the other vehicle column says No.
        uncaged = header.endswith("without prisoner handling cage")
        hit = np.array([item == label and not uncaged for label in location_labels] + [False])
        out[header] = _strings(np.where(location < 0, -1, np.where(hit[location], 0, 1)), ["Yes", "No"])
    out["Borough"] = _text(reports.get("area"))
    out["PrimaryConduct"] = _text(reports.get("resistance"))
    out["AssaultedBySubject"] = _yes_no(reports.get("officer_assaulted"), n)
    for headers, column, vocabulary in ((IMPACT_HEADERS, "impact_factors", schema.IMPACT_FACTORS),
                                        (REASON_HEADERS, "reasons", schema.REASONS),
                                        (OUTCOME_HEADERS, "outcomes", schema.OUTCOMES)):
        ticked, answered = _membership(reports.get(column), vocabulary, n)
        for header, item in headers.items():
            hit = ticked[:, vocabulary.index(item)]
            out[header] = _strings(np.where(answered, np.where(hit, 0, 1), -1), ["Yes", "No"])
    out["MainDuty"] = _text(reports.get("officer_role"), ROLE_EXPORT_NAMES)
    out["SingleCrewed"] = _yes_no(reports.get("single_crewed"), n)
    out["TrainedCED"] = _yes_no(reports.get("ced_trained"), n)
    out.update(_tactic_columns(reports["report_id"], tactics))
    out["SubjectAge"] = _text(reports.get("subject_age_band"))
    out["SubjectGender"] = _text(reports.get("subject_gender"))
    out["SubjectEthnicity"] = _text(reports.get("subject_ethnicity"))
    out["PhysicalDisability"] = _yes_no(reports.get("subject_physical_disability"), n)
    out["MentalDisability"] = _yes_no(reports.get("subject_mental_disability"), n)
    out["StaffInjured"] = _yes_no(reports.get("officer_injured"), n)
    injured = _bool_codes(reports.get("officer_injured"), n)
    assaulted = _bool_codes(reports.get("officer_assaulted"), n)
    out["StaffInjuryIntentional"] = _strings(
        np.where((injured == 1) & (assaulted >= 0), np.where(assaulted == 1, 0, 1), -1), ["Yes", "No"])
    out["StaffInjuryLevel"] = _text(reports.get("officer_injury_level"))
    out["SubjectInjured"] = _yes_no(reports.get("subject_injured"), n)
    out["SubjectNatureOfInjury"] = _text(reports.get("subject_injury_level"))

    blank = pa.nulls(n, pa.large_string())
    table = pa.table({c: blank if out.get(c) is None else out[c] for c in FORM_COLUMNS})
    return table.to_pandas()


def _factorised(values: pd.Series | None, n: int = 0) -> tuple[np.ndarray, list[str]]:
    if values is None:
        return np.full(n, -1, dtype=np.int64), []
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    return codes, [str(u) for u in uniques]


def _text(values: pd.Series | None, names: dict[str, str] | None = None) -> pa.Array | None:
    if values is None:
        return None  # the column stays blank
    codes, labels = _factorised(values)
    return _strings(codes, [names.get(v, v) for v in labels] if names else labels)


def _bool_codes(values: pd.Series | None, n: int) -> np.ndarray:
    if values is None:
        return np.full(n, -1, dtype=np.int8)
    b = values.astype("boolean")
    return np.where(b.isna().to_numpy(), -1, b.fillna(False).to_numpy(dtype=bool)).astype(np.int8)


def _yes_no(values: pd.Series | None, n: int) -> pa.Array:
    codes = _bool_codes(values, n)
    return _strings(np.where(codes < 0, -1, 1 - codes), ["Yes", "No"])


def _membership(values: pd.Series | None, vocabulary: Sequence[str], n: int,
                ) -> tuple[np.ndarray, np.ndarray]:
    """An n x k matrix of which items each list cell holds, and whether the cell is non-null."""
    ticked = np.zeros((n, len(vocabulary)), dtype=bool)
    if values is None:
        return ticked, np.zeros(n, dtype=bool)
    arr = pa.array(values, type=pa.list_(pa.string()), from_pandas=True) \
        if not isinstance(values.dtype, pd.ArrowDtype) else pa.array(values)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    answered = arr.is_valid().to_numpy(zero_copy_only=False)
    flat = pc.list_flatten(arr).cast(pa.string())
    parent = pc.list_parent_indices(arr).to_numpy()
    item = pc.fill_null(pc.index_in(flat, value_set=pa.array(list(vocabulary))), -1).to_numpy()
    ok = item >= 0
    ticked[parent[ok], item[ok]] = True
    return ticked, answered


def _tactic_columns(report_ids: pd.Series, tactics: pd.DataFrame) -> dict[str, pa.Array]:
    """Lay tactics out as Tactic n / Effective n and the CED block and firearms flags."""
    n = len(report_ids)
    position = pd.Index(report_ids.astype(str)).get_indexer(tactics["report_id"].astype(str))
    known = position >= 0
    position = position[known]
    codes, names = _factorised(tactics["tactic"][known])
    effective = _bool_codes(tactics["effective"][known] if "effective" in tactics else None,
                            int(known.sum()))
    order = np.argsort(position, kind="stable")
    position, codes, effective = position[order], codes[order], effective[order]
    starts = np.flatnonzero(np.r_[True, np.diff(position) != 0]) if position.size else np.zeros(0, int)
    rank = np.arange(position.size) - np.repeat(starts, np.diff(np.r_[starts, position.size]))
    labels = [TACTIC_EXPORT_NAMES.get(t, t) for t in names]

    out: dict[str, pa.Array] = {}
    for k in range(1, MAX_TACTICS + 1):
        tactic_header, effective_header = _tactic_headers(k)
        at = rank == k - 1
        slot = np.full(n, -1, dtype=np.int64)
        slot[position[at]] = codes[at]
        out[tactic_header] = _strings(slot, labels)
        eff = np.full(n, -1, dtype=np.int64)
        eff[position[at]] = np.where(effective[at] < 0, -1, 1 - effective[at])
        out[effective_header] = _strings(eff, ["Yes", "No"])

    has = {t: np.zeros(n, dtype=bool) for t in (*schema.CED_LADDER, "Firearm aimed", "Firearm fired")}
    for i, name in enumerate(names):
        if name in has:
            has[name][position[codes == i]] = True
    any_ced = np.logical_or.reduce([has[t] for t in schema.CED_LADDER])
    out["CED Used"] = _strings(np.where(any_ced, 0, -1), ["Yes"])
    for flag, tactic in CED_LEVEL_HEADERS.items():
        out[f"CED {flag}"] = _strings(np.where(any_ced, np.where(has[tactic], 0, 1), -1), ["Yes", "No"])
    out["Firearms Aimed"] = _strings(np.where(has["Firearm aimed"], 0, 1), ["Yes", "No"])
    out["Firearms Fired"] = _strings(np.where(has["Firearm fired"], 0, 1), ["Yes", "No"])
    return out


# --- older years' spellings, for test files -------------------------------------------------

DRIFT_HEADERS: dict[str, str] = {  # FY20-21 header -> a spelling seen (or plausible) in other years
    "Incident Location: Street/Highway": "Incident Location: Street/highway",
    "Incident Location: Open ground (e.g. park, car park, field)":
        "Incident Location: Open ground (e.g. park, car park, field etc.)",
    "Incident Location: Hospital/A&E (non-mental-health setting)":
        "Incident Location: Hospital/A&E (non mental health setting)",
    "Impact Factor: Possesion of a weapon": "Impact Factor: Possession of a weapon",
    "Impact Factor: Size/Gender/Build": "Impact factor: Size/gender/build",
    "Reason for Force: Protect Public": "Reason for force: Protect public",
    "Reason for Force: Remove Handcuffs": "Reason for Force: Remove handcuffs",
    "Outcome: Made off/escaped": "Outcome: Made Off/Escaped",
    "Outcome: Detained - Mental Health Act": "Outcome: Detained (Mental Health Act)",
    "MainDuty": "Main Duty",
    "SubjectAge": "Subject Age",
    "StaffInjured": "Staff Injured",
    "Tactic Effective 20": "Effective 20",
    "CED Red-Dotted": "CED Red Dotted",
}
DRIFT_DROPPED: tuple[str, ...] = ("CarryingCED", "CED Device Serial No")
DRIFT_TACTICS: dict[str, str] = {  # FY20-21 tactic value -> an older year's spelling
    "Non-Compliant Handcuffing": "Non-compliant handcuffing",
    "Compliant Handcuffing": "Compliant handcuffing",
    "Unarmed Skills (including pressure points, strikes, restraints and take-downs)":
        "Unarmed skills (including pressure points, strikes, restraints and take downs)",
    "Limb/Body Restraints": "Limb/body restraints",
    "Ground Restraint": "Ground restraint",
    "Irritant Spray - PAVA Drawn": "Irritant Spray - CS Drawn",
    "Irritant Spray - PAVA Used": "Irritant spray - CS used",
    "CED (Taser) Red-Dotted": "CED (Taser) Red-dotted",
    "Spit Guard": "Spit guard",
    "Tactical Communications": "Tactical communications",
    "Other/Improvised": "Other/improvised",
}
GARBAGE_DATES: tuple[str, ...] = ("31/02/2021", "TBC", "2021-13-45", "00/00/0000", "n/k")


def add_drift(frame: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Give an export older years' spellings, stray values, bad dates and empty rows."""
    rng = np.random.default_rng(seed)
    n = len(frame)
    out = frame.copy()
    tactic_rows = rng.random(n) < 0.3
    for k in range(1, MAX_TACTICS + 1):
        header = _tactic_headers(k)[0]
        out[header] = _replaced(out[header], DRIFT_TACTICS, tactic_rows)
    out["SubjectAge"] = _replaced(out["SubjectAge"], {"18-34": "18 - 34", "65 and over": "65+"},
                                  rng.random(n) < 0.5)
    for header in ("SingleCrewed", "StaffInjured"):
        out[header] = _replaced(out[header], {"Yes": "yes", "No": "NO"}, rng.random(n) < 0.02)
    times = out["IncidentTime"]
    with_seconds = rng.random(n) < 0.02
    out["IncidentTime"] = _set_cells(times.where(~with_seconds, times + ":00"), rng.random(n) < 0.01, None)
    excel = np.flatnonzero(rng.random(n) < 0.01)  # Excel date-times
    iso = pd.to_datetime(out["IncidentDate"].iloc[excel], format="%d/%m/%Y")
    out["IncidentDate"] = _set_cells(out["IncidentDate"], excel, iso.dt.strftime("%Y-%m-%d 00:00:00"))

    picked = rng.permutation(n)
    k = max(1, n // 2000)
    blank_dates, garbage = picked[:k], picked[k:2 * k]
    out["IncidentDate"] = _set_cells(out["IncidentDate"], blank_dates, None)
    out["IncidentDate"] = _set_cells(out["IncidentDate"], garbage,
                                     [GARBAGE_DATES[i % len(GARBAGE_DATES)] for i in range(garbage.size)])
    notes = np.full(n, None, dtype=object)
    notes[rng.random(n) < 0.005] = "Café on the high street; £20 note recovered"
    out["Free Text Notes"] = pd.array(notes, dtype="str")
    out["Extract Date"] = pd.array(np.full(n, "05/06/2021", dtype=object), dtype="str")
    out = out.drop(columns=list(DRIFT_DROPPED)).rename(columns=DRIFT_HEADERS)
    # Spreadsheet exports often end in blank lines (",,,,"): add some after the data.
    empty = pd.DataFrame({c: pd.array([None] * max(1, k // 5), dtype="str") for c in out.columns})
    return pd.concat([out, empty], ignore_index=True)


def _replaced(values: pd.Series, mapping: dict[str, str], rows: np.ndarray) -> pd.Series:
    """Replace values by a mapping in the selected rows, on distinct values only."""
    coded = _code(values)
    renamed = _strings(coded.codes, [mapping.get(v, v) for v in coded.values])
    original = _arrow_text(values).combine_chunks().cast(pa.large_string())
    swapped = pc.if_else(pa.array(rows), renamed, original)
    return pd.Series(pd.array(swapped, dtype="str"), index=values.index, name=values.name)


def _set_cells(values: pd.Series, rows: np.ndarray, new: object) -> pd.Series:
    out = values.copy()
    out.iloc[np.flatnonzero(rows) if rows.dtype == bool else rows] = (
        new.to_numpy() if isinstance(new, pd.Series) else new)
    return out


def write_csv(frame: pd.DataFrame, path: str | Path, encoding: str = "cp1252") -> None:
    """Write a text frame as CSV (empty for null) in an encoding, as an Excel export would be."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    text = (pa.types.is_string, pa.types.is_large_string)
    table = table.cast(pa.schema([f if any(is_text(f.type) for is_text in text)
                                  else pa.field(f.name, pa.large_string()) for f in table.schema]))
    sink = io.BytesIO()
    pcsv.write_csv(table, sink)
    data = sink.getbuffer()
    decoder = codecs.getincrementaldecoder("utf-8")()
    chunk = 1 << 26
    with write_whole(path) as tmp, open(tmp, "wb") as f:
        for start in range(0, len(data), chunk):
            f.write(decoder.decode(data[start:start + chunk]).encode(encoding))
        f.write(decoder.decode(b"", final=True).encode(encoding))


def main(argv: Sequence[str] | None = None) -> int:
    """Write synthetic reports as a national-form CSV (cp1252), optionally with drift."""
    parser = argparse.ArgumentParser(prog="python -m lib.synth.uk_national",
                                     description=main.__doc__)
    parser.add_argument("--reports", type=int, required=True, help="number of reports")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--out", type=Path, required=True, help="CSV file to write")
    parser.add_argument("--drift", action="store_true",
                        help="older-year spellings, stray values, bad dates and empty rows")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    synthetic = generate(args.reports, args.seed)
    reports = synthetic.reports.to_pandas(types_mapper=_arrow_lists)
    tactics = synthetic.tactics.to_pandas()
    generated = time.perf_counter()
    frame = export(reports, tactics)
    if args.drift:
        frame = add_drift(frame, args.seed)
    exported = time.perf_counter()
    write_csv(frame, args.out)
    done = time.perf_counter()
    print(f"wrote {len(frame):,} rows x {frame.shape[1]} columns to {args.out}: generate "
          f"{generated - began:.1f} s, export {exported - generated:.1f} s, "
          f"write {done - exported:.1f} s")
    return 0


def _arrow_lists(arrow_type: pa.DataType) -> pd.ArrowDtype | None:
    return pd.ArrowDtype(arrow_type) if pa.types.is_list(arrow_type) else None



if __name__ == "__main__":
    raise SystemExit(main())
