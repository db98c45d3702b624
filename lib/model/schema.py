"""Canonical data model: column names, types, vocabularies and the rules that tie them together.

Every other module takes column names and vocabularies from here, so a name typed anywhere else
is a bug. Unknown is always null, never a silent "No".
"""
from __future__ import annotations

from datetime import time

import numpy as np
import pandas as pd

# Shift boundaries are a setting (OSE_SHIFT_STARTS), checked in settings.py without pandas; named here too.
from lib.model.settings import DEFAULT_SHIFTS as DEFAULT_SHIFTS
from lib.model.settings import ShiftBoundaries, settings
from lib.model.settings import parse_shift_boundaries as parse_shift_boundaries

# --- vocabularies -------------------------------------------------------------------------

OFFICER_ROLES: tuple[str, ...] = (
    "Response", "Neighbourhood", "Custody", "Roads policing", "Public order",
    "Armed response", "Investigation", "Dog handler", "Other",
)
SHIFTS: tuple[str, ...] = ("Early", "Late", "Night")
LOCATION_TYPES: tuple[str, ...] = (
    "Street/highway", "Open ground", "Retail premises", "Licensed premises", "Public transport",
    "Sports or event stadia", "Police vehicle", "Police station (excluding custody block)",
    "Custody block", "Hospital/A&E (non mental health setting)", "Mental health setting",
    "Ambulance", "Dwelling", "Other",
)
RESISTANCE_LEVELS: tuple[str, ...] = (
    "Compliant", "Passive resistance", "Verbal resistance/gestures", "Active resistance",
    "Aggressive resistance", "Serious or aggravated resistance",
)
REASONS: tuple[str, ...] = (
    "Protect self", "Protect public", "Protect subject", "Protect other officers",
    "Prevent offence", "Secure evidence", "Effect search", "Effect arrest", "Method of entry",
    "Remove handcuffs", "Prevent harm", "Prevent escape", "Other",
)
IMPACT_FACTORS: tuple[str, ...] = (
    "Possession of a weapon", "Alcohol", "Drugs", "Mental health", "Prior knowledge",
    "Size/gender/build", "Acute behavioural disorder", "Crowd", "Other",
)
OUTCOMES: tuple[str, ...] = (
    "Made off/escaped", "Arrested", "Hospitalised", "Detained (Mental Health Act)", "Fatality",
    "Other",
)
OFFICER_INJURY_LEVELS: tuple[str, ...] = ("Minor", "Severe")
SUBJECT_INJURY_LEVELS: tuple[str, ...] = ("Minor", "Severe", "Death")
AGE_BANDS: tuple[str, ...] = ("0-10", "11-17", "18-34", "35-49", "50-64", "65 and over")
GENDERS: tuple[str, ...] = ("Male", "Female", "Other")
ETHNICITIES: tuple[str, ...] = (
    "White", "Black (or Black British)", "Asian (or Asian British)", "Mixed", "Other",
)

# Home Office tactic vocabulary (YE Mar 2020 tables), grouped by "Type of force".
TACTIC_GROUPS: dict[str, tuple[str, ...]] = {
    "Restraint": ("Compliant handcuffing", "Non-compliant handcuffing", "Limb/body restraints",
                  "Ground restraint"),
    "Unarmed skills": ("Unarmed skills",),
    "Other equipment": ("Baton drawn", "Baton used", "Irritant spray drawn",
                        "Irritant spray used", "Spit and bite guard", "Shield"),
    "Less lethal weapons": ("CED drawn", "CED aimed", "CED red-dot", "CED arced",
                            "CED drive-stun", "CED fired", "CED angle drive-stun",
                            "AEP drawn", "AEP used"),
    "Firearms": ("Firearm aimed", "Firearm fired"),
    "Other": ("Dog deployed", "Dog bite", "Other/improvised"),
    # Recorded on the form but excluded from Home Office tactic totals.
    "Tactical communication": ("Tactical communication",),
}
TACTICS: tuple[str, ...] = tuple(t for ts in TACTIC_GROUPS.values() for t in ts)
TACTIC_GROUP_OF: dict[str, str] = {t: g for g, ts in TACTIC_GROUPS.items() for t in ts}

# CED (Taser) uses in increasing severity; only the highest per report counts (national rule).
CED_LADDER: tuple[str, ...] = (
    "CED drawn", "CED aimed", "CED red-dot", "CED arced", "CED drive-stun", "CED fired",
    "CED angle drive-stun",
)
CED_RANK: dict[str, int] = {t: i for i, t in enumerate(CED_LADDER)}

# --- canonical tables ---------------------------------------------------------------------

# Categorical report columns with a fixed vocabulary. Force, area and team are categorical too,
# but their values come from the data.
REPORT_VOCABULARIES: dict[str, tuple[str, ...]] = {
    "shift": SHIFTS,
    "officer_role": OFFICER_ROLES,
    "location_type": LOCATION_TYPES,
    "resistance": RESISTANCE_LEVELS,
    "officer_injury_level": OFFICER_INJURY_LEVELS,
    "subject_injury_level": SUBJECT_INJURY_LEVELS,
    "subject_age_band": AGE_BANDS,
    "subject_gender": GENDERS,
    "subject_ethnicity": ETHNICITIES,
}
LIST_VOCABULARIES: dict[str, tuple[str, ...]] = {
    "reasons": REASONS,
    "impact_factors": IMPACT_FACTORS,
    "outcomes": OUTCOMES,
}
OPEN_CATEGORIES: tuple[str, ...] = ("force", "area", "team")
BOOL_COLUMNS: tuple[str, ...] = (
    "single_crewed", "ced_trained", "subject_physical_disability", "subject_mental_disability",
    "officer_injured", "officer_assaulted", "subject_injured",
)

# column -> kind (its parser, null and storage types: lib/model/kinds.py), in export order
REPORT_COLUMNS: dict[str, str] = {
    "report_id": "string",
    "incident_id": "string",
    "occurred_at": "timestamp",
    "shift": "category",
    "force": "category",
    "area": "category",
    "location_type": "category",
    "officer_id": "string",
    "officer_role": "category",
    "team": "category",
    "single_crewed": "bool",
    "ced_trained": "bool",
    "length_of_service_years": "float",
    "subject_age_band": "category",
    "subject_gender": "category",
    "subject_ethnicity": "category",
    "subject_physical_disability": "bool",
    "subject_mental_disability": "bool",
    "resistance": "category",
    "reasons": "list",
    "impact_factors": "list",
    "officer_injured": "bool",
    "officer_injury_level": "category",
    "officer_assaulted": "bool",
    "subject_injured": "bool",
    "subject_injury_level": "category",
    "outcomes": "list",
}
REQUIRED_REPORT_COLUMNS: tuple[str, ...] = ("report_id", "occurred_at", "force", "officer_id")
# Plain names of the canonical fields, for every place a user reads one (mapping step, data quality, reports).
FIELD_LABELS: dict[str, str] = {
    "report_id": "Report id", "incident_id": "Incident id", "occurred_at": "Date and time", "shift": "Shift",
    "force": "Force", "area": "Area", "location_type": "Type of place", "officer_id": "Officer id",
    "officer_role": "Officer role", "team": "Team", "single_crewed": "Officer single-crewed",
    "ced_trained": "Officer Taser (CED) trained", "length_of_service_years": "Officer length of service (years)",
    "subject_age_band": "Subject age band", "subject_gender": "Subject gender",
    "subject_ethnicity": "Subject ethnicity", "subject_physical_disability": "Subject physical disability",
    "subject_mental_disability": "Subject mental disability", "resistance": "Subject resistance",
    "reasons": "Reasons for force", "impact_factors": "Impact factors (alcohol, drugs, mental health)",
    "officer_injured": "Officer injured", "officer_injury_level": "Officer injury level",
    "officer_assaulted": "Officer assaulted", "subject_injured": "Subject injured",
    "subject_injury_level": "Subject injury level", "outcomes": "Outcomes (arrest and others)",
}
# A pseudonymised officer id (lib/ingest/pseudonym.py): "P-" and 16 hex digits of a keyed hash. The engine
# tells a dataset's raw ids from pseudonyms by it, so only raw ones are hashed as a dataset opens.
OFFICER_PSEUDONYM = r"P-[0-9a-f]{16}"
TACTIC_COLUMNS: dict[str, str] = {
    "report_id": "string",
    "tactic": "category",
    "tactic_group": "category",
    "effective": "bool",
}
OFFICER_COLUMNS: dict[str, str] = {
    "officer_id": "string",
    "force": "category",
    "area": "category",
    "team": "category",
    "officer_role": "category",
    "length_of_service_years": "float",
    "pst_trained_on": "date",
}

# Harm measures: each is a yes/no field whose rate is taken over the reports that answered it.
HARM_FIELDS: dict[str, str] = {
    "officer_injured": "Officer injury rate",
    "officer_assaulted": "Officer assault rate",
    "subject_injured": "Subject injury rate",
}

# --- shifts -------------------------------------------------------------------------------


def _minutes(t: time) -> int:
    return t.hour * 60 + t.minute


def configured_shifts() -> ShiftBoundaries:
    """Return the shift start times set in OSE_SHIFT_STARTS, else the defaults (07:00, 15:00, 23:00)."""
    return settings().shift_starts


def derive_shift(occurred_at: pd.Series, bounds: ShiftBoundaries | None = None) -> pd.Series:
    """Return the shift (Early/Late/Night) for each timestamp; null where the time is unknown."""
    bounds = bounds or configured_shifts()
    ts = pd.to_datetime(occurred_at, errors="coerce")
    minute = (ts.dt.hour * 60 + ts.dt.minute).to_numpy(dtype="float64", na_value=np.nan)
    starts = np.array([_minutes(bounds.early), _minutes(bounds.late), _minutes(bounds.night)])
    # Minutes since the Early start, wrapped, tell which shift's window a time falls in.
    since = (minute - starts[0]) % 1440
    late_at = (starts[1] - starts[0]) % 1440
    night_at = (starts[2] - starts[0]) % 1440
    codes = np.where(since < late_at, 0, np.where(since < night_at, 1, 2))
    out = pd.Categorical.from_codes(np.where(np.isnan(minute), -1, codes), categories=list(SHIFTS))
    return pd.Series(out, index=occurred_at.index, name="shift")


def fill_shift(reports: pd.DataFrame, bounds: ShiftBoundaries | None = None) -> pd.DataFrame:
    """Keep the shift the data gives; derive it from the time of day where it is missing."""
    derived = derive_shift(reports["occurred_at"], bounds)
    if "shift" not in reports.columns:
        return reports.assign(shift=derived)
    given = reports["shift"].astype("string")
    return reports.assign(shift=given.fillna(derived.astype("string")).astype("category"))


# --- tactics ------------------------------------------------------------------------------


def apply_ced_highest_use(tactics: pd.DataFrame) -> pd.DataFrame:
    """Keep only the highest CED use per report, as the national counting rule requires."""
    rank = tactics["tactic"].map(CED_RANK)
    if isinstance(rank.dtype, pd.CategoricalDtype):  # a categorical whose every tactic is a CED level maps 1:1
        rank = rank.astype("float64")
    is_ced = rank.notna()
    if not is_ced.any():
        return tactics
    ced = tactics[is_ced].assign(_rank=rank[is_ced])
    top = ced.loc[ced.groupby("report_id", observed=True)["_rank"].idxmax()].drop(columns="_rank")
    return pd.concat([tactics[~is_ced], top]).sort_index()


def tactic_group(tactics: pd.Series) -> pd.Series:
    """Return the Home Office type of force for each tactic; null for unknown tactics."""
    return tactics.map(TACTIC_GROUP_OF).astype("category")
