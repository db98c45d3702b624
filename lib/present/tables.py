"""Tables behind charts: aggregate frames renamed and rounded for people to read."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from lib.engine.query import DIMENSION_LABELS
from lib.ingest.pipeline import reason_kinds
from lib.model import schema


def counts(values: pd.Series) -> pd.Series:
    """Return counts as whole numbers, a hidden (missing) count left blank rather than 0."""
    if pd.api.types.is_bool_dtype(values.dtype) or not pd.api.types.is_numeric_dtype(values.dtype):
        return values
    # In numpy, as Series.round().astype("Int64") gives: a table behind a chart is drawn on every rerun.
    data = values.to_numpy(dtype="float64", na_value=np.nan)
    missing = np.isnan(data)
    whole = np.round(np.where(missing, 0.0, data)).astype(np.int64)
    return pd.Series(pd.arrays.IntegerArray(whole, missing), index=values.index, name=values.name)


def _percent(values: pd.Series) -> np.ndarray:
    """Return a share as a percentage rounded to 2 places (as (values * 100).round(2) does)."""
    return np.round(values.to_numpy(dtype="float64", na_value=np.nan) * 100, 2)


def rates_table(frame: pd.DataFrame, by: tuple[str, ...], per_incident: tuple[str, ...] = ()) -> pd.DataFrame:
    """Return a breakdown with readable headings: counts, rates (%) and their 95% intervals.

    The measures in `per_incident` count incidents, and their headings say so.
    """
    out: dict[str, pd.Series | np.ndarray] = {}  # one constructor call: inserting column by column cost 30 ms a table
    for d in by:
        values = frame[d]
        if d == "month":
            values = pd.to_datetime(values).dt.strftime("%b %Y")
        out[DIMENSION_LABELS.get(d, d)] = values
    if "part_month" in frame.columns:  # charts.mark_part_months: say which months hold part of their data
        out["Part month"] = frame["part_month"]
    out["Reports"] = counts(frame["reports"])
    for col, label in schema.HARM_FIELDS.items():
        unit = " incidents" if col in per_incident else ""
        out[f"{label}:{unit} yes"] = counts(frame[f"{col}_yes"])
        out[f"{label}:{unit} answered"] = counts(frame[f"{col}_answered"])
        out[f"{label} (%)"] = _percent(frame[f"{col}_rate"])
        out[f"{label}: 95% from (%)"] = _percent(frame[f"{col}_low"])
        out[f"{label}: 95% to (%)"] = _percent(frame[f"{col}_high"])
    return pd.DataFrame(out, index=frame.index)


def tactics_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Return tactic counts with readable headings."""
    return pd.DataFrame({
        "Tactic": frame["tactic"],
        "Type of force": frame["tactic_group"],
        "Reports using it": counts(frame["reports"]),
        "Share of reports (%)": (frame["share"] * 100).round(2),
    })


def quarantine_reasons_table(report: dict, quarantine: pd.DataFrame | None = None) -> pd.DataFrame:
    """Return why rows were set aside, most common first; with the set-aside rows, each kind of reason quotes up to
    three of the values it set aside and their lines in the file ("For example")."""
    reasons = report.get("quarantine_reasons", {})
    frame = pd.DataFrame({"Reason": list(reasons), "Rows": list(reasons.values())})
    if quarantine is None or not len(quarantine) or "reason" not in quarantine:
        return frame
    lines = set_aside_download(quarantine[[c for c in ("_file", "_row", "reason") if c in quarantine]], report)
    text = lines["Why it was set aside"].astype(str)
    kinds = reason_kinds(text)  # as the report counts them
    examples = {}
    for kind, group in lines.assign(_kind=kinds.to_numpy(), _text=text.to_numpy()).groupby("_kind", sort=False):
        quoted = []
        for reason, line in zip(group["_text"], group.get("Line in file", pd.Series(dtype="Int64")), strict=False):
            value = re.search(r"'[^']*'", reason)
            quoted.append(f"{value.group(0) if value else reason}" + (f" (line {line})" if pd.notna(line) else ""))
            if len(quoted) == 3:
                break
        examples[kind] = ", ".join(quoted)
    return frame.assign(**{"For example": frame["Reason"].map(examples).fillna("")})


def unmapped_table(report: dict) -> pd.DataFrame:
    """Return values kept as they were because no vocabulary entry matched them."""
    rows = [(field, value, n) for field, counts in report.get("unmapped", {}).items()
            for value, n in counts.items()]
    return pd.DataFrame(rows, columns=["Field", "Value kept as given", "Rows"])


def completeness_table(report: dict) -> pd.DataFrame:
    """Return the share of loaded reports answering each canonical field, least complete first."""
    shares = report.get("completeness", {})
    mapping = report.get("mapping", {})
    frame = pd.DataFrame({"Field": list(shares), "Answered (%)": [round(v * 100, 1) for v in shares.values()],
                          "Taken from": [mapping.get(f, "not in this extract") for f in shares]})
    return frame.sort_values("Answered (%)", kind="stable").reset_index(drop=True)


def set_aside_download(frame: pd.DataFrame, report: dict | None = None) -> pd.DataFrame:
    """Return set-aside rows as a user downloads them: file, line in the file (as a spreadsheet numbers it, the
    header being line 1), rows, reason, then the row's own cells.

    `report` (the load's report) says how many header lines each file had; one where it does not say.
    """
    header = {f["name"]: int(f.get("header_lines", 1)) for f in (report or {}).get("files", [])}
    out = frame.copy()
    if "_row" in out:
        files = out["_file"].astype(str) if "_file" in out else pd.Series("", index=out.index)
        out["_row"] = pd.to_numeric(out["_row"], errors="coerce").astype("Int64") + files.map(
            lambda f: header.get(f, 1)).astype("Int64")
    names = {"_file": "File", "_row": "Line in file", "_rows": "Rows", "_items": "Officers in the row",
             "reason": "Why it was set aside"}
    first = [c for c in names if c in out]
    return out[[*first, *(c for c in out.columns if c not in names)]].rename(columns=names)


def reconciliation_sentence(report: dict) -> str:
    """Say how the rows in an upload were accounted for (incidents, where cells list several officers)."""
    r = report
    text = (f"{r['rows_in']:,} rows read = {r['rows_loaded']:,} loaded + {r['rows_quarantined']:,} set aside. "
            f"They make {r['reports_loaded']:,} reports.")
    if "items_in" in r:  # cells listed several officers: a row is an incident, each officer a report
        text = (f"{r['rows_in']:,} incidents (rows) read = {r['rows_loaded']:,} loaded + "
                f"{r['rows_quarantined']:,} set aside.")
    dup = r.get("duplicates", {})
    if dup.get("repeated_report_ids"):
        text += (f" {dup['repeated_report_ids']:,} rows repeat a report id "
                 f"({dup['identical_rows']:,} of them identical in every field).")
    return text


def encoding_sentence(report: dict) -> str:
    """Say how many lines of mostly UTF-8 files were read as cp1252 ('' when none)."""
    lines = report.get("lines_read_as_cp1252", 0)  # reports of earlier loads lack the count
    if not lines:
        return ""
    files = [f["name"] for f in report["files"] if f.get("lines_read_as_cp1252")]
    return (f"{lines:,} line(s) of {', '.join(files)} were not UTF-8 and were read as cp1252 (Windows): "
            "their rows are loaded, but check their accented letters. Every other line was read as UTF-8.")


def dataset_encoding_sentence(lines: int) -> str:
    """Say how many lines of a saved dataset's files were read as cp1252 ('' when none)."""
    if not lines:
        return ""
    return (f"{lines:,} line(s) of this dataset's files were not UTF-8 and were read as cp1252 (Windows): "
            "their rows are loaded, but check their accented letters. The Data page's list of loads says which files.")


def provenance_table(loads: list[dict]) -> pd.DataFrame:
    """Return a saved dataset's loads, oldest first, as a table."""
    return pd.DataFrame([{"When (UTC)": p.get("loaded_at", ""), "By": p.get("by", ""),
                          "Action": (f"rollback to v{p.get('to_version')}" if p.get("action") == "rollback"
                                     else p.get("action", "")),
                          "Files": ", ".join(p.get("files", [])), "Format": p.get("format", ""),
                          "Rows read": p.get("rows_in"), "Loaded": p.get("rows_loaded"),
                          "Set aside": p.get("rows_quarantined"),
                          # Loads saved before the count was kept show it as unknown, not as 0.
                          "Lines read as cp1252": p.get("lines_read_as_cp1252")} for p in loads])


def versions_table(versions: list) -> pd.DataFrame:
    """Return a saved dataset's kept versions (lib.ingest.library.Version), oldest first, as a table."""
    return pd.DataFrame([{"Version": v.number, "Current": "yes" if v.current else "", "Created (UTC)": v.created,
                          "By": v.by, "Action": v.action, "Reports": v.reports,
                          "Readable": "no: " + v.damaged if v.damaged else "yes"} for v in versions])


def damaged_advice(damaged: str, readable_versions: list[int]) -> str:
    """Say what is wrong with a saved dataset that cannot be read, and what to do about it."""
    text = f"This dataset cannot be read: {damaged}. It is left out of the dataset picker until it is repaired."
    if readable_versions:
        listed = ", ".join(f"v{n}" for n in readable_versions)
        return text + (f" Earlier versions that can still be read: {listed}. An admin can roll back to one below; "
                       "or delete the dataset and load its files again.")
    return text + " No kept version can be read: delete it and load its files again."


def items_sentence(report: dict) -> str:
    """Say how the officers listed in the rows' cells were accounted for ('' when no cell listed several)."""
    r = report
    if "items_in" not in r:
        return ""
    text = (f"Their cells list {r['items_in']:,} officers = {r['items_loaded']:,} loaded as reports + "
            f"{r['items_quarantined']:,} set aside.")
    if r.get("rows_lists_disagree"):
        text += (f" {r['rows_lists_disagree']:,} incident(s) set aside because their lists disagree in length "
                 "are not split, so their officers are not counted.")
    if r["items_loaded"] != r["reports_loaded"]:
        text += f" The loaded officers make {r['reports_loaded']:,} reports."
    return text


def field_label(field: str) -> str:
    """Return a canonical field's plain name ("Subject ethnicity" for subject_ethnicity)."""
    return schema.FIELD_LABELS.get(field, field.replace("_", " ").capitalize())


# Short headings for a table with one column per field (a page 1,366 pixels wide holds them all).
SHORT_LABELS = {"subject_age_band": "Age band", "subject_gender": "Gender", "subject_ethnicity": "Ethnicity",
                "subject_physical_disability": "Physical disability", "subject_mental_disability": "Mental disability",
                "location_type": "Type of place", "reasons": "Reasons"}


def completeness_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Return per-field completeness with readable headings."""
    return pd.DataFrame({"Field": frame["field"].map(field_label), "Reports answering": counts(frame["answered"]),
                         "Reports it applies to": counts(frame["total"]),
                         "Answered (%)": (frame["share"] * 100).round(1)})


def completeness_by_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Return completeness per force or area: reports, then the share (%) recording each field, short headings."""
    keep = ("force", "area", "reports")
    out = frame.drop(columns=["suppressed"], errors="ignore")
    for col in out.columns:
        if col not in keep:
            out[col] = (out[col].astype("float64") * 100).round(1)
    out["reports"] = counts(out["reports"])
    names = {"force": "Force", "area": "Area", "reports": "Reports"}
    return out.rename(columns=lambda c: names.get(c) or SHORT_LABELS.get(c) or field_label(c))


def invalid_codes_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Return off-vocabulary values with readable headings."""
    return pd.DataFrame({"Field": frame["field"].map(field_label), "Value": frame["value"],
                         "Reports": counts(frame["reports"])})


def coverage_table(months: pd.DataFrame) -> pd.DataFrame:
    """Return reports per month with readable headings."""
    return pd.DataFrame({"Month": pd.to_datetime(months["month"]).dt.strftime("%b %Y"),
                         "Reports": counts(months["reports"]),
                         "First report": pd.to_datetime(months["first"]).dt.strftime("%-d %b %Y"),
                         "Last report": pd.to_datetime(months["last"]).dt.strftime("%-d %b %Y"),
                         "Against the median month (%)": (months["share_of_median"].astype("float64") * 100).round(0),
                         "No reports": months["gap"].map({True: "yes", False: ""}),
                         "Far fewer than usual": months["thin"].map({True: "yes", False: ""})})


def contradictions_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Return each consistency rule with how many reports break it."""
    return pd.DataFrame({"Check": frame["explanation"],
                         "Reports breaking it": counts(frame["reports"].astype("Float64")),
                         "Of reports checked": counts(frame["total"].astype("Float64")),
                         "Share (%)": (frame["share"] * 100).round(2)})


ROW_COLUMNS = ("report_id", "occurred_at", "force", "area", "officer_role")


def report_rows(frame: pd.DataFrame, extra: tuple[str, ...]) -> pd.DataFrame:
    """Return the identifying columns of reports plus the fields a check read."""
    cols = [c for c in (*ROW_COLUMNS, *extra) if c in frame.columns]
    return frame[list(dict.fromkeys(cols))]


def coverage_sentence(months: pd.DataFrame, late: pd.DataFrame, period: tuple | None = None) -> str:
    """Say the date span (unless it is the period in view, `period` = (from, to), said beside it already), the
    months with no reports and the months that look incomplete."""
    first, last = pd.to_datetime(months["first"]).min(), pd.to_datetime(months["last"]).max()
    # Under disclosure control a thin month's first and last dates are hidden: the span is the shown months'.
    text = (f"Reports from {first:%-d %b %Y} to {last:%-d %b %Y}." if pd.notna(first) and pd.notna(last)
            else "The dates of the reports are hidden: too few to show.")
    if period is not None and pd.notna(first) and pd.notna(last) and (first.date(), last.date()) == tuple(period):
        text = ""
    gaps = months.loc[months["gap"].fillna(False).astype(bool), "month"]
    if len(gaps):
        text += " No reports in " + ", ".join(f"{pd.Timestamp(m):%b %Y}" for m in gaps) + "."
    thin = months.loc[months["thin"].fillna(False).astype(bool), "month"]
    if len(thin):
        text += " Far fewer than usual in " + ", ".join(f"{pd.Timestamp(m):%b %Y}" for m in thin) + "."
    if len(late):
        text += (" The last " + (f"{len(late)} months look" if len(late) > 1 else "month looks")
                 + " incomplete: forms may still be coming in.")
    return text.strip()


def grid_table(frame: pd.DataFrame, rows: str, cols: str) -> pd.DataFrame:
    """Return a rate grid with readable headings."""
    return pd.DataFrame({
        DIMENSION_LABELS.get(rows, rows): frame[rows], DIMENSION_LABELS.get(cols, cols): frame[cols],
        "Reports": counts(frame["reports"]), "Yes": counts(frame["yes"]), "Answered": counts(frame["answered"]),
        "Per 100": frame["per_100"].round(2), "95% from": frame["low_100"].round(2),
        "95% to": frame["high_100"].round(2), "Enough to read": frame["enough"]})


def ratios_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Return rate ratios with their counts and intervals, and why a group is not compared."""
    from lib.analysis import adjust

    status = adjust.ratio_status(frame)
    # No estimate is shown for a group that is not compared; the reference is 1 by definition.
    compared = status == adjust.COMPARED
    ratio = frame["ratio"].where(compared, other=1.0).where(compared | (status == adjust.REFERENCE))
    return pd.DataFrame({
        "Group": frame["group"], "Reference": frame["reference"], "Rate ratio": ratio.round(3),
        "95% from": frame["ci_low"].where(compared).round(3), "95% to": frame["ci_high"].where(compared).round(3),
        "Yes": counts(frame["yes"]), "Answered": counts(frame["answered"]),
        "Reference yes": counts(frame["reference_yes"]), "Reference answered": counts(frame["reference_answered"]),
        "Compared": status, "Basis": adjust.basis_of(frame)})


def funnel_table(frame: pd.DataFrame, level: str) -> pd.DataFrame:
    """Return funnel points with their verdicts, p- and q-values, not a league table."""
    out = {
        level.capitalize(): frame["group"], "Yes": counts(frame["yes"]), "Answered": counts(frame["answered"]),
        "Rate (%)": (frame["rate"] * 100).round(2)}
    expected = "model_expected" in frame.columns
    if expected:
        out |= {"Expected (case-mix model)": frame["model_expected"].round(1),
                "Observed / expected": frame["ratio"].round(3)}
    if "target" in frame.columns and not expected:
        out["Target: the other groups (%)"] = (frame["target"] * 100).round(2)
    out["Expected at the target"] = frame["expected"].round(1)
    scale, unit = (1, "") if expected else (100, " (%)")
    out |= {f"99.8% limit from{unit}": (frame["low"] * scale).round(3 if expected else 2),
            f"99.8% limit to{unit}": (frame["high"] * scale).round(3 if expected else 2)}
    if "p_value" in frame.columns:
        out |= {"One-sided mid-p": frame["p_value"].map(_p_value), "q (false discovery rate)":
                frame["q_value"].map(_p_value)}
    out["Verdict"] = frame["flag"]
    return pd.DataFrame(out)


def _p_value(value: float) -> str | None:
    if value is None or pd.isna(value):
        return None
    return "< 0.0001" if value < 0.0001 else f"{value:.4f}"


def officer_id_heading(raw: bool) -> str:
    """Return the heading of a column of officer ids: a pseudonym, unless the dataset's ids are raw."""
    return "Officer (raw id, not pseudonymised)" if raw else "Officer (pseudonym)"


def exposure_table(frame: pd.DataFrame, measure: str, *, raw_ids: bool = False,
                   incidents: bool = True) -> pd.DataFrame:
    """Return officers' shrunken rates with rank intervals, drivers and the same-incident comparison, in words.

    incidents: whether the extract records an incident id; without one there are no same-incident columns (they
    would be rows of zeros, counts that cannot be made).
    """
    from lib.analysis.risk import drivers, peer_verdict

    if frame.empty:
        return pd.DataFrame()
    out = {
        officer_id_heading(raw_ids): frame["officer"], "Role": frame["role"],
        "Yes": counts(frame[f"{measure}_yes"]), "Answered": counts(frame[f"{measure}_answered"]),
        "Raw rate (%)": (frame[f"{measure}_rate"] * 100).round(1),
        "Shrunken rate (%)": (frame["shrunken"] * 100).round(2),
        "95% from (%)": (frame["low"] * 100).round(2), "95% to (%)": (frame["high"] * 100).round(2),
        "Rank": [f"between {int(lo):,} and {int(hi):,} of {int(n):,}" if pd.notna(lo) and pd.notna(hi) and pd.notna(n)
                 else None
                 for lo, hi, n in zip(frame["rank_low"], frame["rank_high"], frame["officers"], strict=True)],
        "Compared with peers in the same role": [None if pd.isna(row.get("reports")) else drivers(row)
                                                 for _, row in frame.iterrows()],
    }
    if incidents and "shared_incidents" in frame:
        out |= {
            "Shared incidents": counts(frame["shared_incidents"]),
            "Same incidents: yes": counts(frame["shared_yes"]),
            "Same incidents: expected": frame["shared_expected"].round(1),
            "Observed / expected": frame["shared_ratio"].round(2),
            "O/E 95% from": frame["shared_low"].round(2), "O/E 95% to": frame["shared_high"].round(2),
            "Against the other officers at the same incidents": [peer_verdict(row) for _, row in frame.iterrows()],
        }
    return pd.DataFrame(out)


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n:,}{suffix}"


def rank_places(low: float, high: float, officers: float) -> str | None:
    """Return a rank interval as places ("1st to 1,100th of 5,304")."""
    if pd.isna(low) or pd.isna(high) or pd.isna(officers) or not officers:
        return None
    return f"{_ordinal(int(low))} to {_ordinal(int(high))} of {int(officers):,}"


def rank_reading(low: float, high: float, officers: float) -> str | None:
    """Say in a few plain words what a rank interval ("11th to 3,998th of 5,304") tells a supervisor."""
    if pd.isna(low) or pd.isna(high) or pd.isna(officers) or not officers:
        return None
    share = int(high) / int(officers)
    if share <= 0.01:
        return "clearly in the highest 1%"
    if share <= 0.05:
        return "clearly in the highest 5%"
    if share <= 0.25:
        return "highest quarter; place uncertain"
    if share <= 0.5:
        return "higher half; place very uncertain"
    return "too uncertain to place"


def exposure_summary(frame: pd.DataFrame, measure: str, *, raw_ids: bool = False) -> pd.DataFrame:
    """Return the officers' table as a supervisor reads it on the page: a few columns, each rate with its interval
    and the rank in words (`exposure_table` has every column, for the download)."""
    if frame.empty:
        return pd.DataFrame()
    yes, answered = frame[f"{measure}_yes"], frame[f"{measure}_answered"]
    ranks = list(zip(frame["rank_low"], frame["rank_high"], frame["officers"], strict=True))
    return pd.DataFrame({
        officer_id_heading(raw_ids): frame["officer"], "Role": frame["role"],
        "Yes of answered": [None if pd.isna(y) or pd.isna(a) else f"{int(y):,} of {int(a):,}"
                            for y, a in zip(yes, answered, strict=True)],
        "Likely rate (95% interval)": [None if pd.isna(r) else f"{r:.1%} ({lo:.1%} to {hi:.1%})"
                                       for r, lo, hi in zip(frame["shrunken"], frame["low"], frame["high"],
                                                            strict=True)],
        "Could rank": [rank_places(*r) for r in ranks],
        "What the rank says": [rank_reading(*r) for r in ranks],
    })


def funnel_flagged_table(frame: pd.DataFrame, level: str) -> pd.DataFrame:
    """Return the groups a funnel flags in the few columns that say why (the full table is behind the chart)."""
    expected = "model_expected" in frame.columns
    out = {level.capitalize(): frame["group"],
           "Yes of answered": [None if pd.isna(y) or pd.isna(a) else f"{int(y):,} of {int(a):,}"
                               for y, a in zip(frame["yes"], frame["answered"], strict=True)],
           "Rate (%)": (frame["rate"] * 100).round(2)}
    if expected:
        out |= {"Observed / expected": frame["ratio"].round(2), "99.8% limit to": frame["high"].round(2)}
    else:
        out |= {"Expected rate (%)": (frame["target"] * 100).round(2) if "target" in frame else None,
                "99.8% limit to (%)": (frame["high"] * 100).round(2)}
    if "q_value" in frame.columns:
        out["q (false discovery rate)"] = frame["q_value"].map(_p_value)
    return pd.DataFrame(out)


def compliance_table(frame: pd.DataFrame, group: str) -> pd.DataFrame:
    """Return compliance with the hours standard per group."""
    return pd.DataFrame({
        DIMENSION_LABELS.get(group, group.capitalize()): frame[group], "Officers": counts(frame["officers"]),
        "Meeting 12 hours": counts(frame["compliant"]), "Share (%)": (frame["share_compliant"] * 100).round(1),
        "95% from (%)": (frame["low"] * 100).round(1), "95% to (%)": (frame["high"] * 100).round(1),
        "Mean hours": frame["mean_hours"].round(1)})


def overdue_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Return officers short of the hours standard, furthest first (as `training.overdue` lists them)."""
    return pd.DataFrame({"Officer (pseudonym)": frame["officer_id"], "Role": frame.get("officer_role"),
                         "Team": frame.get("team"), "Hours in 12 months": frame["hours"],
                         "Hours short": frame["shortfall"], "Last trained": frame["last_trained_on"]})


def event_study_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Return the event-study estimates with readable headings, as the chart reads them: month 0 (the training
    month) is left out and says so; months after the last officer observed are not listed."""
    since = frame["months_since_training"]
    observed = pd.to_numeric(frame["officers"], errors="coerce").fillna(1) > 0  # hidden counts stay listed
    frame = frame[observed | (since == 0)]
    since = frame["months_since_training"]
    note = np.where(since == 0, "The training month: left out (officers are part-trained in it)",
                    np.where(since < 0, "Before training: the pre-trend test", "After training"))
    return pd.DataFrame({"Months since training": since,
                         "Change (%)": (frame["estimate"] * 100).round(1),
                         "95% from (%)": (frame["ci_low"] * 100).round(1),
                         "95% to (%)": (frame["ci_high"] * 100).round(1),
                         "Officers": counts(frame["officers"]).where(since.to_numpy() != 0),
                         "Events": counts(frame["events"]).where(since.to_numpy() != 0),
                         "Reading": note}).reset_index(drop=True)


def factors_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Return contributing factors with the injury rate with and without them."""
    return pd.DataFrame({
        "Contributing factor": frame["factor"], "Debriefs naming it": counts(frame["debriefs"]),
        "Officer injured (with it)": counts(frame["yes"]), "Answered (with it)": counts(frame["answered"]),
        "Officer injured (without it)": counts(frame["reference_yes"]),
        "Answered (without it)": counts(frame["reference_answered"]),
        "Rate ratio": frame["ratio"].round(2), "95% from": frame["ci_low"].round(2),
        "95% to": frame["ci_high"].round(2)})
