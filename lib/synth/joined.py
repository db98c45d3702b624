"""Synthetic list-joined extracts: one row per incident, the officers' values joined in step in cells.

Real extracts often keep one row per incident and list the officers' values inside cells,
item 1 of every list being officer 1 (`Officer Injured = "No | Yes"`). `list_joined_incidents`
writes generated reports that way, so tests can check that reading it back gives one report per
officer with the same counts; `joined_profile` is the mapping profile that reads it. Nothing in
the product imports this module.

    python -m lib.synth.joined --reports 5000 --seed 1 --out /tmp/joined.csv
"""
from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from lib.ingest.formats.profile import Profile
from lib.model.files import write_whole
from lib.synth.generator import Synthetic, generate

INCIDENT_ID, DATE, TIME = "Incident Ref", "Incident Date", "Incident Time"
# Recorded once per incident (the same for every officer there): source column -> canonical field.
INCIDENT_COLUMNS: dict[str, str] = {
    "Area": "area", "Location Type": "location_type", "Subject Age Band": "subject_age_band",
    "Subject Gender": "subject_gender", "Subject Ethnicity": "subject_ethnicity",
    "Subject Physical Disability": "subject_physical_disability",
    "Subject Mental Disability": "subject_mental_disability", "Resistance": "resistance",
}
# One item per officer, joined in step: source column -> canonical field.
OFFICER_COLUMNS: dict[str, str] = {
    "Officer Number": "officer_id", "Officer Role": "officer_role", "Team": "team",
    "Single Crewed": "single_crewed", "CED Trained": "ced_trained",
    "Years Service": "length_of_service_years", "Reasons": "reasons", "Impact Factors": "impact_factors",
    "Officer Injured": "officer_injured", "Officer Injury Level": "officer_injury_level",
    "Officer Assaulted": "officer_assaulted", "Subject Injured": "subject_injured",
    "Subject Injury Level": "subject_injury_level", "Outcomes": "outcomes",
}
TACTICS = "Force Used"  # one item per officer, itself a comma list of tactics


def _as_text(values: pd.Series) -> pd.Series:
    """Write one canonical column as cell text: Yes/No, comma lists, numbers; empty when unknown."""
    if values.dtype == object and values.map(lambda v: isinstance(v, list | tuple)).any():
        return values.map(lambda v: ", ".join(v) if isinstance(v, list | tuple) else "")
    if str(values.dtype) in ("bool", "boolean"):
        return values.astype("boolean").map({True: "Yes", False: "No"}).astype(object).fillna("")
    return values.astype("string").fillna("").astype(object)


def list_joined_incidents(synthetic: Synthetic, separator: str = " | ") -> pd.DataFrame:
    """Return one row per incident with its officers' values joined by a separator, in step.

    Incident-level columns are taken from the incident's first report (the generator gives each
    officer a time of their own: the incident's date and time are its first report's).
    """
    reports = synthetic.reports.to_pandas()
    reports["officer_id"] = reports["officer_id"].astype("string")
    reports["reasons"] = reports["reasons"].map(list)
    reports["impact_factors"] = reports["impact_factors"].map(list)
    reports["outcomes"] = reports["outcomes"].map(list)
    tactics = synthetic.tactics.to_pandas()
    used = tactics.groupby("report_id", sort=False, observed=True)["tactic"].agg(lambda t: ", ".join(map(str, t)))
    incident = reports["incident_id"].astype("string").fillna(reports["report_id"].astype("string"))
    officers = pd.DataFrame({col: _as_text(reports[fld]) for col, fld in OFFICER_COLUMNS.items()})
    officers[TACTICS] = reports["report_id"].map(used).fillna("").astype(object)
    joined = officers.groupby(incident.to_numpy(), sort=False).agg(separator.join)
    opens = ~incident.duplicated().to_numpy()
    first = reports[opens].set_index(incident[opens].to_numpy())
    when = pd.to_datetime(first["occurred_at"]).reindex(joined.index)
    out = pd.DataFrame({INCIDENT_ID: joined.index, DATE: when.dt.strftime("%d/%m/%Y").to_numpy(),
                        TIME: when.dt.strftime("%H:%M").to_numpy(),
                        "Force": first["force"].astype("string").reindex(joined.index).to_numpy()})
    for col, fld in INCIDENT_COLUMNS.items():
        out[col] = _as_text(first[fld]).reindex(joined.index).to_numpy()
    for col in joined.columns:
        out[col] = joined[col].to_numpy()
    return out


def joined_profile(separator: str = " | ", force: str = "Synthetic forces") -> Profile:
    """Return the mapping profile that reads `list_joined_incidents` output, one report per officer.

    A profile writes one force name on every report (the Force column is shown, not read).
    """
    columns = {fld: ([col] if fld in ("reasons", "impact_factors", "outcomes") else col)
               for col, fld in {**INCIDENT_COLUMNS, **OFFICER_COLUMNS}.items()
               if fld not in ("area", "team", "officer_id")}
    return Profile(
        name="synthetic-joined", label="Synthetic incidents, officers joined in cells", force=force,
        signature=[INCIDENT_ID, DATE, "Officer Number", "Officer Injured", TACTICS],
        date_column=DATE, time_column=TIME, report_id_column=INCIDENT_ID, incident_id_column=INCIDENT_ID,
        officer_id_column="Officer Number", area_column="Area", team_column="Team", columns=columns,
        tactic_columns=[TACTICS], list_columns=[*OFFICER_COLUMNS, TACTICS], list_separator=separator,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Write a synthetic list-joined extract (CSV) from the command line."""
    parser = argparse.ArgumentParser(prog="python -m lib.synth.joined", description=__doc__.split("\n")[0])
    parser.add_argument("--reports", type=int, required=True, help="number of reports (officers' uses of force)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--out", type=Path, required=True, help="output CSV file")
    parser.add_argument("--separator", default=" | ", help="between the officers' items (default ' | ')")
    args = parser.parse_args(argv)
    frame = list_joined_incidents(generate(args.reports, args.seed), args.separator)
    with write_whole(args.out) as tmp:
        frame.to_csv(tmp, index=False)
    print(f"wrote {len(frame):,} incidents ({args.reports:,} reports) to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
