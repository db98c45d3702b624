"""The UK national use-of-force recording form, as the Metropolitan Police export it.

One row is one officer's use of force on one subject (the national recording unit), about 271
columns wide: Yes/No flags for the multi-select questions (`Incident Location: ...`,
`Impact Factor: ...`, `Reason for Force: ...`, `Outcome: ...`), `Tactic 1..20` with
`Effective 1..20` (the last spelled `Tactic Effective 20`), four CED (Taser) detail blocks and the
officer and subject fields. Columns are matched by a folded name (case, spacing, punctuation and
the `Possesion` misspelling do not matter), never by position; unknown columns are listed in the
notes and otherwise ignored.

How the form maps to the canonical tables (each decision is also in `Adapted.mapping`):
- `report_id` is `<file stem>-<row>` (the form has no id) unless a `Report ID`-like column exists;
  `incident_id` and `officer_id` are null unless such columns exist (the Met extract has neither).
- `occurred_at` is `IncidentDate` (day first; Excel date-times and serial numbers also read) plus
  `IncidentTime`. A missing or unreadable time leaves the date at midnight and the shift null, so
  that unknown times are not counted as Night. A missing or unreadable date quarantines the row.
- `location_type` is the first ticked `Incident Location` in LOCATION_PRIORITY (most specific
  setting first); both police-vehicle columns map to `Police vehicle`.
- `officer_role` comes from `MainDuty` through ROLE_RULES; other duties are kept and counted.
- `officer_assaulted` is `AssaultedBySubject`. `StaffInjuryIntentional` only says whether an
  injury was caused on purpose and is asked of injured officers alone, so it is not used.
- `subject_injury_level` is read from `SubjectNatureOfInjury` only when that free text is a level
  (Minor / Severe / Death).
- `reasons`, `impact_factors` and `outcomes` are Python lists of the items whose flag is Yes
  (empty when none is, including when the questions were left blank).
- Tactics come from `Tactic n` / `Effective n`, the CED blocks' level flags and
  `Firearms Aimed/Fired`; duplicates per report collapse to one (effective if any entry says so)
  and only the highest CED use per report is kept. `AEP Aimed` counts as `AEP drawn`.
- Ethnicity follows the 2011 census groups, so `Chinese` counts as Asian.

Writing the form (synthetic extracts for tests and benchmarks) is lib/synth/uk_national.py.
"""
from __future__ import annotations

import functools
import os
import re
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from lib.ingest.formats import (
    FILE,
    ROW,
    ROWS,
    Adapted,
    CountedNote,
    Source,
    empty_quarantine,
    merge_notes,
    quarantine_rows,
)
from lib.model import schema
from lib.model.kinds import KINDS
from lib.model.values import NULL_MARKERS, combine_date_time, normalise_name, to_bool, to_datetime, to_time_minutes

# --- the form's columns (FY20-21 spelling, in export order) --------------------------------

LOCATION_HEADERS: dict[str, str] = {
    "Incident Location: Street/Highway": "Street/highway",
    "Incident Location: Public Transport": "Public transport",
    "Incident Location: Retail Premises": "Retail premises",
    "Incident Location: Open ground (e.g. park, car park, field)": "Open ground",
    "Incident Location: Licensed Premises": "Licensed premises",
    "Incident Location: Sports or Event Stadia": "Sports or event stadia",
    "Incident Location: Hospital/A&E (non-mental-health setting)":
        "Hospital/A&E (non mental health setting)",
    "Incident Location: Mental Health Setting": "Mental health setting",
    "Incident Location: Police vehicle with prisoner handling cage": "Police vehicle",
    "Incident Location: Police vehicle without prisoner handling cage": "Police vehicle",
    "Incident Location: Dwelling": "Dwelling",
    "Incident Location: Police station (excluding custody block)":
        "Police station (excluding custody block)",
    "Incident Location: Custody Block": "Custody block",
    "Incident Location: Ambulance": "Ambulance",
    "Incident Location: Other": "Other",
}
IMPACT_HEADERS: dict[str, str] = {
    "Impact Factor: Possesion of a weapon": "Possession of a weapon",
    "Impact Factor: Alcohol": "Alcohol",
    "Impact Factor: Drugs": "Drugs",
    "Impact Factor: Mental Health": "Mental health",
    "Impact Factor: Prior Knowledge": "Prior knowledge",
    "Impact Factor: Size/Gender/Build": "Size/gender/build",
    "Impact Factor: Acute Behavioural Disorder": "Acute behavioural disorder",
    "Impact Factor: Crowd": "Crowd",
    "Impact Factor: Other": "Other",
}
REASON_HEADERS: dict[str, str] = {
    "Reason for Force: Protect self": "Protect self",
    "Reason for Force: Protect Public": "Protect public",
    "Reason for Force: Protect Subject": "Protect subject",
    "Reason for Force: Protect Other Officers": "Protect other officers",
    "Reason for Force: Prevent Offence": "Prevent offence",
    "Reason for Force: Secure Evidence": "Secure evidence",
    "Reason for Force: Effect Search": "Effect search",
    "Reason for Force: Effect Arrest": "Effect arrest",
    "Reason for Force: Method of Entry": "Method of entry",
    "Reason for Force: Remove Handcuffs": "Remove handcuffs",
    "Reason for Force: Prevent Harm": "Prevent harm",
    "Reason for Force: Prevent Escape": "Prevent escape",
    "Reason for Force: Other": "Other",
}
OUTCOME_HEADERS: dict[str, str] = {
    "Outcome: Made off/escaped": "Made off/escaped",
    "Outcome: Arrested": "Arrested",
    "Outcome: Hospitalised": "Hospitalised",
    "Outcome: Detained - Mental Health Act": "Detained (Mental Health Act)",
    "Outcome: Fatality": "Fatality",
    "Outcome: Other": "Other",
}
MAX_TACTICS = 20
CED_LEVEL_HEADERS: dict[str, str] = {  # CED block flag -> canonical tactic
    "Drawn": "CED drawn", "Aimed": "CED aimed", "Arced": "CED arced", "Red-Dotted": "CED red-dot",
    "Drive Stun": "CED drive-stun", "Angle Drive Stun": "CED angle drive-stun", "Fired": "CED fired",
}
_CED_DETAIL: tuple[str, ...] = (
    "Drawn", "Aimed", "Arced", "Red-Dotted", "Drive Stun", "Drive Stun Repeat Application",
    "Angle Drive Stun", "Fired", "Fired Cartridge Number", "Fired 5 Secs Cycle Interrupted",
    "Fired Repeat Cycle Same Cartridge", "Fired Total Number Of Cycles",
    "Fired Cycle Extended Beyond 5 Secs", "Fired Miss With One Probe", "Fired Miss With Both Probes",
    *(f"Front {i}" for i in range(1, 16)), *(f"Back {c}" for c in "ABCDEFGHJK"),
)


def _tactic_headers(k: int) -> tuple[str, str]:
    return f"Tactic {k}", ("Tactic Effective 20" if k == 20 else f"Effective {k}")


def _ced_block(n: int) -> tuple[str, ...]:
    if n == 1:
        return ("CED Used", "CED Device Serial No", *(f"CED {d}" for d in _CED_DETAIL))
    # The published export spells the second to fourth blocks' arced flag "CED2 ArCED2" etc.
    return tuple(f"CED{n} ArCED{n}" if d == "Arced" else f"CED{n} {d}" for d in _CED_DETAIL)


FORM_COLUMNS: tuple[str, ...] = (
    "IncidentDate", "IncidentTime", *LOCATION_HEADERS, "Borough", "PrimaryConduct",
    "AssaultedBySubject", "ThreatenedWithWeapon", "AssaultedWithWeapon", *IMPACT_HEADERS,
    *REASON_HEADERS, "MainDuty", "SingleCrewed", "TrainedCED", "CarryingCED",
    *(h for k in range(1, MAX_TACTICS + 1) for h in _tactic_headers(k)),
    *(h for n in range(1, 5) for h in _ced_block(n)),
    "Firearms Aimed", "Firearms Fired",
    "SubjectAge", "SubjectGender", "SubjectEthnicity", "PhysicalDisability", "MentalDisability",
    "StaffInjured", "StaffInjuryIntentional", "StaffInjuryLevel", "StaffMedProvided",
    "SubjectInjured", "SubjectNatureOfInjury", "SubjectMedOffered", "SubjectMedProvided",
    *OUTCOME_HEADERS,
)

# --- value vocabularies ---------------------------------------------------------------------

# Canonical tactic -> the FY20-21 spelling written by `export`.
TACTIC_EXPORT_NAMES: dict[str, str] = {
    "Compliant handcuffing": "Compliant Handcuffing",
    "Non-compliant handcuffing": "Non-Compliant Handcuffing",
    "Limb/body restraints": "Limb/Body Restraints",
    "Ground restraint": "Ground Restraint",
    "Unarmed skills":
        "Unarmed Skills (including pressure points, strikes, restraints and take-downs)",
    "Baton drawn": "Baton Drawn",
    "Baton used": "Baton Used",
    "Irritant spray drawn": "Irritant Spray - PAVA Drawn",
    "Irritant spray used": "Irritant Spray - PAVA Used",
    "Spit and bite guard": "Spit Guard",
    "Shield": "Shield",
    "CED drawn": "CED (Taser) Drawn",
    "CED aimed": "CED (Taser) Aimed",
    "CED red-dot": "CED (Taser) Red-Dotted",
    "CED arced": "CED (Taser) Arced",
    "CED drive-stun": "CED (Taser) Drive Stun",
    "CED fired": "CED (Taser) Fired",
    "CED angle drive-stun": "CED (Taser) Angle Drive Stun",
    "AEP drawn": "AEP Aimed",
    "AEP used": "AEP Used",  # not seen in published Met files, which list only "AEP Aimed"
    "Firearm aimed": "Firearm Aimed",
    "Firearm fired": "Firearm Fired",
    "Dog deployed": "Dog Deployed",
    "Dog bite": "Dog Bite",
    "Other/improvised": "Other/Improvised",
    "Tactical communication": "Tactical Communications",
}
_TACTIC_ALIASES: dict[str, tuple[str, ...]] = {
    "Tactical communication": ("Tactical communication (with other tactic)", "Tactical comms"),
    "Compliant handcuffing": ("Handcuffing - compliant", "Compliant handcuffs"),
    "Non-compliant handcuffing": ("Handcuffing - non-compliant", "Non-compliant handcuffs"),
    "Limb/body restraints": ("Limb/Body Restraint", "Limb restraints", "Body restraints"),
    "Ground restraint": ("Ground restraints",),
    "Irritant spray drawn": ("Irritant Spray - CS Drawn", "CS Drawn", "PAVA Drawn", "CS spray drawn",
                             "PAVA spray drawn", "Irritant spray - drawn"),
    "Irritant spray used": ("Irritant Spray - CS Used", "CS Used", "PAVA Used", "CS spray used",
                            "PAVA spray used", "Irritant spray - used"),
    "Spit and bite guard": ("Spit and bite guard", "Spit hood", "Spit/bite guard", "Spit guard used"),
    "AEP drawn": ("AEP Drawn",),
    "AEP used": ("AEP Fired", "AEP Discharged"),
    "Firearm aimed": ("Firearms Aimed",),
    "Firearm fired": ("Firearms Fired",),
    "Other/improvised": ("Other / improvised", "Improvised", "Other improvised"),
}
_CED_LEVEL_WORDS: dict[str, tuple[str, ...]] = {
    "CED drawn": ("drawn",), "CED aimed": ("aimed",), "CED red-dot": ("reddotted", "reddot"),
    "CED arced": ("arced",), "CED drive-stun": ("drivestun",),
    "CED angle drive-stun": ("angledrivestun", "angleddrivestun"), "CED fired": ("fired", "discharged"),
}

LOCATION_PRIORITY: tuple[str, ...] = (
    "Custody block", "Police station (excluding custody block)", "Police vehicle",
    "Mental health setting", "Hospital/A&E (non mental health setting)", "Ambulance",
    "Public transport", "Licensed premises", "Retail premises", "Sports or event stadia",
    "Dwelling", "Open ground", "Street/highway", "Other",
)

# (pattern on the folded MainDuty, canonical role); the first match wins.
ROLE_RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(p), role) for p, role in (
    (r"\b(ctsfo|sfo|arv|afo|armed|firearms?|trojan)\b", "Armed response"),
    (r"\bdogs?\b", "Dog handler"),
    (r"\b(custody|detention|gaoler)\b", "Custody"),
    (r"\b(tsg|territorial support|public order)\b", "Public order"),
    (r"\b(roads?|traffic|rtpc|motorway|transport policing)\b", "Roads policing"),
    (r"\b(neighbourhoods?|neighborhoods?|snt|ward|community|pcso|town centre)\b", "Neighbourhood"),
    (r"\b(cid|investigat\w*|detectives?)\b", "Investigation"),
    (r"\b(response|patrol|erpt|emergency|irv|reactive)\b", "Response"),
    (r"^other\b", "Other"),
))
ROLE_EXPORT_NAMES: dict[str, str] = {
    "Response": "Emergency Response and Patrol", "Neighbourhood": "Safer Neighbourhoods",
    "Custody": "Custody", "Roads policing": "Roads and Transport Policing",
    "Public order": "Territorial Support Group", "Armed response": "ARV",
    "Investigation": "CID", "Dog handler": "Dog handler duty", "Other": "Other",
}
LONDON_AREAS: tuple[str, ...] = (
    "Barking and Dagenham", "Barnet", "Bexley", "Brent", "Bromley", "Camden", "Croydon", "Ealing",
    "Enfield", "Greenwich", "Hackney", "Hammersmith and Fulham", "Haringey", "Harrow", "Havering",
    "Hillingdon", "Hounslow", "Islington", "Kensington and Chelsea", "Kingston upon Thames",
    "Lambeth", "Lewisham", "Merton", "Newham", "Redbridge", "Richmond upon Thames", "Southwark",
    "Sutton", "Tower Hamlets", "Waltham Forest", "Wandsworth", "Westminster", "Heathrow",
    "Out of force",
)


@functools.lru_cache(maxsize=1 << 16)  # a file's batches meet the same values: each is folded once
def _key(name: object) -> str:
    """Fold a header or value to letters and digits only, for matching across spelling drift."""
    return normalise_name(str(name)).replace(" ", "")


def _area_key(name: str) -> str:
    return re.sub(r"^(londonborough|royalborough|cityof)(of)?", "", _key(name)).replace("and", "")


_AREA_LOOKUP: dict[str, str] = {_area_key(a): a for a in LONDON_AREAS}


def _build_tactic_lookup() -> dict[str, str]:
    lookup: dict[str, str] = {}
    for tactic in schema.TACTICS:
        lookup[_key(tactic)] = tactic
    for tactic, name in TACTIC_EXPORT_NAMES.items():
        lookup[_key(name)] = tactic
    for tactic, names in _TACTIC_ALIASES.items():
        for name in names:
            lookup[_key(name)] = tactic
    for tactic, words in _CED_LEVEL_WORDS.items():
        for prefix in ("ced", "cedtaser", "taser"):
            for word in words:
                lookup[prefix + word] = tactic
    return lookup


_TACTIC_LOOKUP = _build_tactic_lookup()
_AGE_LOOKUP: dict[str, str] = {
    **{_key(b): b for b in schema.AGE_BANDS},
    "under11": "0-10", "010years": "0-10", "1117years": "11-17", "1834years": "18-34",
    "3549years": "35-49", "5064years": "50-64", "65": "65 and over", "65plus": "65 and over",
    "65andolder": "65 and over", "over65": "65 and over", "65andoveryears": "65 and over",
}
_RESISTANCE_LOOKUP: dict[str, str] = {
    **{_key(r): r for r in schema.RESISTANCE_LEVELS},
    "passive": "Passive resistance", "verbalresistance": "Verbal resistance/gestures",
    "verbalresistanceorgestures": "Verbal resistance/gestures", "active": "Active resistance",
    "aggressive": "Aggressive resistance", "seriousaggravatedresistance":
        "Serious or aggravated resistance", "seriousandaggravatedresistance":
        "Serious or aggravated resistance", "aggravatedresistance": "Serious or aggravated resistance",
}
_GENDER_LOOKUP: dict[str, str] = {
    "male": "Male", "m": "Male", "man": "Male", "female": "Female", "f": "Female",
    "woman": "Female", "other": "Other", "nonbinary": "Other", "transgender": "Other",
}
_NULL_KEYS = frozenset(_key(m) for m in NULL_MARKERS) | {
    "notknown", "prefernottosay", "notobserved", "refused", "notprovided", "notasked", "ic0", "ic9",
}
_ETHNICITY_RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(p), e) for p, e in (
    (r"mixed", "Mixed"),
    (r"white|^ic[12]$", "White"),
    (r"black|african|caribbean|^ic3$", "Black (or Black British)"),
    (r"asian|indian|pakistan|bangladesh|chinese|^ic[45]$", "Asian (or Asian British)"),
    (r"other|arab|^ic6$", "Other"),
))
_INJURY_LEVEL_LOOKUP: dict[str, str] = {
    "minor": "Minor", "minorinjury": "Minor", "minorinjuries": "Minor",
    "severe": "Severe", "severeinjury": "Severe", "severeinjuries": "Severe", "serious": "Severe",
    "seriousinjury": "Severe", "death": "Death", "fatal": "Death", "fatality": "Death",
    "died": "Death",
}

# --- column resolution ----------------------------------------------------------------------

# canonical-ish field -> folded header names it may go by
_SCALAR_ALIASES: dict[str, tuple[str, ...]] = {
    "report_id": ("reportid", "formid", "uofid", "useofforceid", "recordid", "reportreference",
                  "formreference", "reportnumber"),
    "incident_id": ("incidentid", "incidentreference", "incidentnumber", "incidentref"),
    "officer_id": ("officerid", "staffid", "officernumber", "officerreference", "warrantnumber",
                   "pseudonymisedofficerid", "officerpseudonym"),
    "team": ("team", "officerteam", "unit"),
    "length_of_service_years": ("lengthofservice", "lengthofserviceyears", "yearsofservice",
                                "serviceyears"),
    "date": ("incidentdate", "dateofincident", "date"),
    "time": ("incidenttime", "timeofincident", "time"),
    "area": ("borough", "bcu", "area"),
    "resistance": ("primaryconduct", "subjectconduct", "conduct"),
    "officer_assaulted": ("assaultedbysubject", "staffassaulted", "officerassaulted"),
    "officer_role": ("mainduty", "officerduty", "duty"),
    "single_crewed": ("singlecrewed",),
    "ced_trained": ("trainedced", "cedtrained"),
    "subject_age_band": ("subjectage", "age", "subjectageband"),
    "subject_gender": ("subjectgender", "gender"),
    "subject_ethnicity": ("subjectethnicity", "ethnicity"),
    "subject_physical_disability": ("physicaldisability", "subjectphysicaldisability",
                                    "physicalhealthcondition"),
    "subject_mental_disability": ("mentaldisability", "subjectmentaldisability",
                                  "mentalhealthcondition"),
    "officer_injured": ("staffinjured", "officerinjured"),
    "officer_injury_level": ("staffinjurylevel", "officerinjurylevel"),
    "subject_injured": ("subjectinjured",),
    "subject_injury_level": ("subjectinjurylevel",),
    "subject_injury_text": ("subjectnatureofinjury", "natureofinjury"),
}
_ALIAS_FIELD: dict[str, str] = {a: f for f, aliases in _SCALAR_ALIASES.items() for a in aliases}
# Fields the Met extract carries (with its header): when one is missing, the notes say so.
_EXPECTED_FIELDS: dict[str, str] = {
    "time": "IncidentTime", "area": "Borough", "resistance": "PrimaryConduct",
    "officer_assaulted": "AssaultedBySubject", "officer_role": "MainDuty",
    "single_crewed": "SingleCrewed", "ced_trained": "TrainedCED", "subject_age_band": "SubjectAge",
    "subject_gender": "SubjectGender", "subject_ethnicity": "SubjectEthnicity",
    "subject_physical_disability": "PhysicalDisability",
    "subject_mental_disability": "MentalDisability", "officer_injured": "StaffInjured",
    "officer_injury_level": "StaffInjuryLevel", "subject_injured": "SubjectInjured",
}

# Multi-select groups: header pattern, then (suffix test, item) rules where the first hit wins.
# A rule is a substring of the folded suffix, or "=word" for an exact suffix.
_GROUPS: dict[str, tuple[re.Pattern[str], tuple[tuple[str, str], ...]]] = {
    "location_type": (re.compile(r"^(?:incident)?locations??(.+)$"), (
        ("hospital", "Hospital/A&E (non mental health setting)"),
        ("mentalhealth", "Mental health setting"), ("publictransport", "Public transport"),
        ("policestation", "Police station (excluding custody block)"),
        ("custody", "Custody block"), ("vehicle", "Police vehicle"), ("street", "Street/highway"),
        ("retail", "Retail premises"), ("openground", "Open ground"),
        ("licensed", "Licensed premises"), ("stadi", "Sports or event stadia"),
        ("sport", "Sports or event stadia"), ("ambulance", "Ambulance"), ("dwelling", "Dwelling"),
        ("=other", "Other"))),
    "impact_factors": (re.compile(r"^impactfactors??(.+)$"), (
        ("weapon", "Possession of a weapon"), ("alcohol", "Alcohol"), ("drug", "Drugs"),
        ("mentalhealth", "Mental health"), ("prior", "Prior knowledge"),
        ("size", "Size/gender/build"), ("acute", "Acute behavioural disorder"),
        ("behavioural", "Acute behavioural disorder"), ("crowd", "Crowd"), ("=other", "Other"))),
    "reasons": (re.compile(r"^reasons??(?:forforce|foruseofforce)?(.+)$"), (
        ("protectself", "Protect self"), ("protectpublic", "Protect public"),
        ("protectsubject", "Protect subject"), ("protectother", "Protect other officers"),
        ("preventoffence", "Prevent offence"), ("secureevidence", "Secure evidence"),
        ("effectsearch", "Effect search"), ("effectarrest", "Effect arrest"),
        ("methodofentry", "Method of entry"), ("removehandcuff", "Remove handcuffs"),
        ("preventharm", "Prevent harm"), ("preventescape", "Prevent escape"), ("=other", "Other"))),
    "outcomes": (re.compile(r"^outcomes??(?:ofuseofforceforsubject|forsubject|ofuseofforce)?(.+)$"), (
        ("madeoff", "Made off/escaped"), ("escaped", "Made off/escaped"),
        ("arrest", "Arrested"), ("hospital", "Hospitalised"),
        ("mentalhealth", "Detained (Mental Health Act)"),
        ("detained", "Detained (Mental Health Act)"), ("fatal", "Fatality"), ("=other", "Other"))),
}
_TACTIC_RE = re.compile(r"^tactic(\d{1,2})$")
_EFFECTIVE_RE = re.compile(r"^(?:tactic)?effective(\d{1,2})$")
_CED_FLAG_RE = re.compile(
    r"^(ced[234]?)(drawn|aimed|arced[234]?|reddotted|reddot|drivestun|angledrivestun|"
    r"angleddrivestun|fired)$")
_CED_FLAG_LEVEL: dict[str, str] = {
    "drawn": "CED drawn", "aimed": "CED aimed", "arced": "CED arced", "reddotted": "CED red-dot",
    "reddot": "CED red-dot", "drivestun": "CED drive-stun", "angledrivestun": "CED angle drive-stun",
    "angleddrivestun": "CED angle drive-stun", "fired": "CED fired",
}
_FIREARM_RE = re.compile(r"^firearms?(aimed|fired)$")
_FORM_KEYS = frozenset(_key(c) for c in FORM_COLUMNS)
SIGNATURE_COLUMNS: tuple[str, ...] = (
    "IncidentDate", "IncidentTime", "Borough", "PrimaryConduct", "AssaultedBySubject", "MainDuty",
    "SingleCrewed", "TrainedCED", "Tactic 1", "Effective 1", "SubjectAge", "StaffInjured",
    "StaffInjuryLevel", "StaffInjuryIntentional", "SubjectInjured",
    "Incident Location: Street/Highway", "Reason for Force: Protect self",
    "Impact Factor: Alcohol", "Outcome: Arrested", "Firearms Aimed",
)
_SIGNATURE_KEYS = frozenset(_key(c) for c in SIGNATURE_COLUMNS)


@dataclass
class _Columns:
    """Which raw header feeds which field."""

    scalar: dict[str, str] = field(default_factory=dict)
    groups: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    tactic: dict[int, str] = field(default_factory=dict)
    effective: dict[int, str] = field(default_factory=dict)
    tactic_flags: dict[str, list[str]] = field(default_factory=dict)  # canonical tactic -> headers
    unknown: list[str] = field(default_factory=list)
    duplicate: list[str] = field(default_factory=list)


def _resolve(columns: Sequence[str]) -> _Columns:
    """Match raw headers to fields by folded name."""
    out = _Columns(groups={g: {} for g in _GROUPS})
    seen: set[str] = set()
    for column in columns:
        if column in (FILE, ROW):
            continue
        key = _key(column)
        if key in seen:
            out.duplicate.append(column)
            continue
        seen.add(key)
        if key in _ALIAS_FIELD:
            name = _ALIAS_FIELD[key]
            if name in out.scalar:
                out.duplicate.append(column)
            else:
                out.scalar[name] = column
            continue
        if m := _TACTIC_RE.match(key):
            out.tactic.setdefault(int(m.group(1)), column)
            continue
        if m := _EFFECTIVE_RE.match(key):
            out.effective.setdefault(int(m.group(1)), column)
            continue
        if m := _CED_FLAG_RE.match(key):
            level = _CED_FLAG_LEVEL[re.sub(r"\d$", "", m.group(2))]
            out.tactic_flags.setdefault(level, []).append(column)
            continue
        if m := _FIREARM_RE.match(key):
            out.tactic_flags.setdefault(f"Firearm {m.group(1)}", []).append(column)
            continue
        if (hit := _group_item(key)) is not None:
            group, item = hit
            out.groups[group].setdefault(item, []).append(column)
            continue
        if key not in _FORM_KEYS:
            out.unknown.append(column)
    return out


def _group_item(key: str) -> tuple[str, str] | None:
    for group, (pattern, rules) in _GROUPS.items():
        m = pattern.match(key)
        if not m:
            continue
        # The optional plural "s" is left in the suffix ("Location: Street" vs "Locations:
        # Street"), so a suffix that starts with "s" is tried without it too.
        suffixes = (m.group(1), m.group(1)[1:]) if m.group(1).startswith("s") else (m.group(1),)
        for suffix in suffixes:
            for test, item in rules:
                if (suffix == test[1:]) if test.startswith("=") else (test in suffix):
                    return group, item
    return None


# --- cell decoding (on distinct values, broadcast by code) -----------------------------------


@dataclass(frozen=True)
class _Coded:
    """A text column as codes into its distinct values (-1 = empty cell)."""

    codes: np.ndarray
    values: list[str]

    def counts(self) -> np.ndarray:
        return np.bincount(self.codes[self.codes >= 0], minlength=len(self.values))


def _arrow_text(values: pd.Series) -> pa.ChunkedArray:
    """Return a column as Arrow strings, without copying where it already is Arrow-backed."""
    try:
        arr = pa.array(values, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        arr = pa.array(values.astype("str"), from_pandas=True)
    if not isinstance(arr, pa.ChunkedArray):
        arr = pa.chunked_array([arr])
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        arr = arr.cast(pa.large_string())
    return arr


def _code(values: pd.Series) -> _Coded:
    encoded = pc.dictionary_encode(_arrow_text(values)).unify_dictionaries()
    if encoded.num_chunks == 0:
        return _Coded(np.zeros(0, dtype=np.int32), [])
    indices = pa.chunked_array([chunk.indices for chunk in encoded.chunks], type=encoded.type.index_type)
    codes = pc.fill_null(indices, -1).to_numpy().astype(np.int32)
    return _Coded(codes, encoded.chunk(0).dictionary.to_pylist())


def _lookup(coded: _Coded, mapper: Callable[[str], object], null: object, dtype: str) -> np.ndarray:
    """Map each distinct value once and broadcast to rows; empty cells get `null`."""
    table = np.array([mapper(v) for v in coded.values] + [null], dtype=dtype)
    return table[coded.codes]  # code -1 picks the trailing `null`


_FLAG_TOKENS = pa.array(["Yes", "No", ""], pa.large_string())


def _flags(values: pd.Series) -> np.ndarray:
    """Read a Yes/No column as int8: 1 yes, 0 no, -1 unanswered or unreadable."""
    arr = _arrow_text(values)
    idx = pc.index_in(arr, value_set=_FLAG_TOKENS.cast(arr.type))
    if idx.null_count == arr.null_count:  # only the three common spellings: the fast path
        codes = pc.fill_null(idx, 2).to_numpy()
        return np.array([1, 0, -1], dtype=np.int8)[codes]
    coded = _code(values)
    parsed = to_bool(pd.Series(coded.values, dtype="string"))
    table = np.append(np.where(parsed.isna(), -1, parsed.fillna(False).astype(int)), -1)
    return table.astype(np.int8)[coded.codes]


@functools.lru_cache(maxsize=1 << 16)
def _clean(value: str) -> str | None:
    text = value.strip()
    return None if text.lower() in NULL_MARKERS or _key(text) in _NULL_KEYS else text


def _categorical(coded: _Coded, mapper: Callable[[str], str | None], vocabulary: Sequence[str],
                 ) -> tuple[np.ndarray, list[str], dict[str, int]]:
    """Map distinct values into a vocabulary; keep (and count) the values it cannot place."""
    mapped = [mapper(v) for v in coded.values]
    extra = sorted({m for m in mapped if m is not None and m not in vocabulary})
    categories = list(vocabulary) + extra
    index = {c: i for i, c in enumerate(categories)}
    table = np.array([index[m] if m is not None else -1 for m in mapped] + [-1], dtype=np.int32)
    counts = coded.counts()
    unmapped: dict[str, int] = {}
    for value, n in zip(mapped, counts.tolist(), strict=True):
        if value is not None and value in extra and n:
            unmapped[value] = unmapped.get(value, 0) + int(n)
    return table[coded.codes], categories, dict(sorted(unmapped.items(), key=lambda kv: -kv[1]))


def _by_lookup(table: dict[str, str]) -> Callable[[str], str | None]:
    def mapper(value: str) -> str | None:
        text = _clean(value)
        return None if text is None else table.get(_key(text), text)
    return mapper


def _by_rules(rules: Sequence[tuple[re.Pattern[str], str]], fold: Callable[[str], str],
              ) -> Callable[[str], str | None]:
    def mapper(value: str) -> str | None:
        text = _clean(value)
        if text is None:
            return None
        folded = fold(text)
        return next((target for pattern, target in rules if pattern.search(folded)), text)
    return mapper


def _age(value: str) -> str | None:
    text = _clean(value)
    if text is None:
        return None
    key = _key(text)
    return _AGE_LOOKUP.get(key) or _AGE_LOOKUP.get(re.sub(r"(years?|yrs)$", "", key), text)


def _area(value: str) -> str | None:
    text = _clean(value)
    return None if text is None else _AREA_LOOKUP.get(_area_key(text), re.sub(r"\s+", " ", text))


def _subject_injury_from_text(value: str) -> str | None:
    text = _clean(value)
    return None if text is None else _INJURY_LEVEL_LOOKUP.get(_key(text))


def _tactic_name(value: str) -> str | None:
    text = _clean(value)
    if text is None:
        return None
    key = _key(text)
    if key in _TACTIC_LOOKUP:
        return _TACTIC_LOOKUP[key]
    return "Unarmed skills" if key.startswith("unarmedskills") else re.sub(r"\s+", " ", text)


_DATE_WITH_TIME = re.compile(r"^\s*(\S+?)(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*([AaPp][Mm])?)\s*$")
_EXCEL_SERIAL = re.compile(r"^\s*(\d{5})(?:\.\d+)?\s*$")
_TIME_IN_DATETIME = re.compile(r"^\s*\d{4}-\d{2}-\d{2}[ T](.+)$")


_REMEMBERED: dict[Callable[[list[str]], pd.Series], dict[str, object]] = {}
_REMEMBER_AT_MOST = 1 << 17
_REMEMBERING = threading.Lock()


def _remembered(parse: Callable[[list[str]], pd.Series], values: list[str], dtype: str) -> np.ndarray:
    """Return parse(values) as an array, parsing only values not met before (in any batch or file).

    A batch of 75,000 rows holds about 1,500 distinct times, the same in every batch.
    """
    with _REMEMBERING:  # files may be read on several threads at once (the engine reads a dataset's file whole)
        memo = _REMEMBERED.setdefault(parse, {})
        new = [v for v in values if v not in memo]
        if new and len(memo) + len(new) > _REMEMBER_AT_MOST:  # forget the others: these values are all needed now
            memo.clear()
            new = list(values)
        if new:
            memo.update(zip(new, parse(new).to_numpy(dtype=dtype, na_value=np.nan).tolist(), strict=True))
        return np.array([memo[v] for v in values], dtype=dtype)


def _parse_dates(values: list[str]) -> pd.Series:
    """Read distinct IncidentDate cells: UK day-first, Excel date-times and serial numbers."""
    text = pd.Series(values, dtype="string")
    stripped = text.str.replace(_DATE_WITH_TIME, r"\1", regex=True)
    parsed = to_datetime(stripped, dayfirst=True)
    serial = pd.to_numeric(text.str.extract(_EXCEL_SERIAL)[0], errors="coerce")
    from_serial = pd.Timestamp("1899-12-30") + pd.to_timedelta(serial, unit="D")
    use_serial = parsed.isna() & serial.between(20000, 80000)
    return parsed.where(~use_serial, from_serial.astype("datetime64[us]"))


def _parse_times(values: list[str]) -> pd.Series:
    """Read distinct IncidentTime cells as minutes after midnight (Excel forms included)."""
    text = pd.Series(values, dtype="string")
    text = text.str.replace(_TIME_IN_DATETIME, r"\1", regex=True)
    text = text.str.replace(r"^(\s*\d{1,2}:\d{2}:\d{2})\.\d+", r"\1", regex=True)
    minutes = to_time_minutes(text)
    fraction = pd.to_numeric(text.where(text.str.fullmatch(r"\s*0?\.\d+\s*")), errors="coerce")
    return minutes.fillna((fraction * 1440).round().astype("Float64"))


# --- the format -------------------------------------------------------------------------------


class UkNationalForm:
    """The national use-of-force recording form as the Metropolitan Police publish it."""

    name = "uk-national"
    label = "UK national use-of-force recording form (Metropolitan Police export)"
    extra_header_rows = 0

    def __init__(self, *, force: str = "Metropolitan Police",
                 shifts: schema.ShiftBoundaries = schema.DEFAULT_SHIFTS) -> None:
        self.force = force
        self.shifts = shifts

    def score(self, columns: list[str]) -> float:
        """Return the share of the form's signature columns present in a header."""
        keys = {_key(c) for c in columns}
        return len(_SIGNATURE_KEYS & keys) / len(_SIGNATURE_KEYS)

    def columns_read(self, columns: list[str]) -> list[str]:
        """Return the header columns adapt() reads (about half of the form's): the rest are ignored."""
        cols = _resolve(columns)
        used = {*cols.scalar.values(), *cols.tactic.values(), *cols.effective.values(),
                *(h for items in cols.groups.values() for hs in items.values() for h in hs),
                *(h for hs in cols.tactic_flags.values() for h in hs)}
        return [c for c in columns if c in used]

    def adapt(self, raw: pd.DataFrame, source: Source | None = None) -> Adapted:
        """Turn a national-form extract into canonical reports and tactics.

        `source` is the whole extract when `raw` holds only the columns_read() columns.
        """
        return _Adaptation(raw, self.force, self.shifts, source).run()

    def merge_notes(self, batches: list[list[str]]) -> list[str]:
        """Return the notes adapt() writes for a whole file, from its notes for each batch (a row is one report)."""
        return merge_notes(batches, COUNTED_NOTES)


class _Adaptation:
    """One adapt() call: the raw frame, what its columns mean, and what was learned on the way."""

    def __init__(self, raw: pd.DataFrame, force: str, shifts: schema.ShiftBoundaries,
                 source: Source | None = None) -> None:
        if FILE not in raw.columns:
            raw = raw.assign(**{FILE: "upload"})
        if ROW not in raw.columns:
            raw = raw.assign(**{ROW: np.arange(1, len(raw) + 1)})
        self.raw = raw
        self.source = source
        self.header = list(source.columns) if source is not None else list(raw.columns)
        self.n = len(raw)
        self.force = force
        self.shifts = shifts
        self.cols = _resolve([str(c) for c in self.header])
        self.mapping: dict[str, str] = {}
        self.unmapped: dict[str, dict[str, int]] = {}
        self.notes: list[str] = []
        self.flag_cache: dict[str, np.ndarray] = {}
        self.code_cache: dict[str, _Coded] = {}

    # -- helpers --

    def decode(self) -> None:
        """Decode every column the adaptation reads, on all cores (Arrow frees the GIL)."""
        flags = [self.cols.scalar[f] for f in schema.BOOL_COLUMNS if f in self.cols.scalar]
        flags += [h for items in self.cols.groups.values() for hs in items.values() for h in hs]
        flags += list(self.cols.effective.values())
        flags += [h for hs in self.cols.tactic_flags.values() for h in hs]
        texts = [h for f, h in self.cols.scalar.items() if f not in schema.BOOL_COLUMNS]
        texts += list(self.cols.tactic.values())
        with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
            coded = pool.map(lambda h: _code(self.raw[h]), texts)
            flagged = pool.map(lambda h: _flags(self.raw[h]), flags)
            self.code_cache = dict(zip(texts, coded, strict=True))
            self.flag_cache = dict(zip(flags, flagged, strict=True))

    def flag_codes(self, header: str) -> np.ndarray:
        if header not in self.flag_cache:
            self.flag_cache[header] = _flags(self.raw[header])
        return self.flag_cache[header]

    def coded(self, header: str) -> _Coded:
        if header not in self.code_cache:
            self.code_cache[header] = _code(self.raw[header])
        return self.code_cache[header]

    def column(self, name: str) -> pd.Series | None:
        header = self.cols.scalar.get(name)
        if header is None:
            return None
        if name in schema.REPORT_COLUMNS:
            self.mapping.setdefault(name, header)
        return self.raw[header]

    def flags(self, name: str) -> pd.arrays.BooleanArray | None:
        values = self.column(name)
        if values is None:
            return None
        f = self.flag_codes(self.cols.scalar[name])
        return pd.arrays.BooleanArray(f == 1, f < 0)

    def category(self, name: str, mapper: Callable[[str], str | None],
                 vocabulary: Sequence[str]) -> pd.Categorical | None:
        values = self.column(name)
        if values is None:
            return None
        codes, categories, unmapped = _categorical(self.coded(self.cols.scalar[name]), mapper,
                                                   vocabulary)
        if unmapped:
            self.unmapped[name] = unmapped
        return pd.Categorical.from_codes(codes, categories=categories)

    # -- the steps --

    def run(self) -> Adapted:
        self.decode()
        when, time_known = self.occurred_at()
        keep, quarantine = self.quarantine(when)
        reports = self.reports(when, time_known)
        tactics = self.tactics(reports["report_id"])
        self.describe()
        # Reports and tactics of quarantined rows go together.
        position = tactics.pop("_position").to_numpy()
        if not keep.all():
            reports = reports[keep].reset_index(drop=True)
            tactics = tactics[keep[position]].reset_index(drop=True)
        for col in ("tactic", "tactic_group"):
            tactics[col] = tactics[col].cat.remove_unused_categories()
        unmapped_tactics = _unmapped_counts(tactics["tactic"], schema.TACTICS)
        if unmapped_tactics:
            self.unmapped["tactic"] = unmapped_tactics
        # Every column named like an officer id, the ignored repeats too: the ingester pseudonymises them.
        officer_columns = [c for c in self.header if _ALIAS_FIELD.get(_key(c)) == "officer_id"]
        return Adapted(reports=reports, tactics=tactics, quarantine=quarantine, mapping=self.mapping,
                       unmapped=self.unmapped, notes=self.notes, officer_id_columns=officer_columns)

    def occurred_at(self) -> tuple[pd.Series, np.ndarray]:
        dates = self.column("date")
        if dates is None:
            self.notes.append("no IncidentDate column: every row is quarantined")
            return pd.Series(pd.NaT, index=range(self.n), dtype="datetime64[us]"), np.zeros(self.n, bool)
        coded = self.coded(self.cols.scalar["date"])
        self.date_codes = coded
        parsed = _remembered(_parse_dates, coded.values, "datetime64[us]")
        day = np.append(parsed, np.datetime64("NaT", "us"))[coded.codes]
        minutes = np.full(self.n, np.nan)
        unreadable = np.zeros(self.n, dtype=bool)
        times = self.column("time")
        if times is not None:
            tcoded = self.coded(self.cols.scalar["time"])
            tmin = _remembered(_parse_times, tcoded.values, "float64")
            minutes = np.append(tmin, np.nan)[tcoded.codes]
            given = np.array([_clean(v) is not None for v in tcoded.values] + [False])[tcoded.codes]
            unreadable = given & np.isnan(minutes)
        dated = ~np.isnat(day)
        no_time = int((dated & np.isnan(minutes)).sum())
        if no_time:
            bad = int((dated & unreadable).sum())
            self.notes.append(_time_note(no_time, bad))
        self.mapping["occurred_at"] = (f"{self.cols.scalar['date']} (day first) + "
                                       f"{self.cols.scalar.get('time', '(no time column)')}; a missing "
                                       "time leaves the date at midnight and the shift null")
        when = combine_date_time(pd.Series(day), pd.Series(minutes))
        return when, ~np.isnan(minutes)

    def quarantine(self, when: pd.Series) -> tuple[np.ndarray, pd.DataFrame]:
        bad = when.isna().to_numpy()
        keep = ~bad
        if not bad.any():
            return keep, empty_quarantine()
        rows = np.flatnonzero(bad)
        reasons = np.empty(rows.size, dtype=object)
        header = self.cols.scalar.get("date")
        if header is None:
            reasons[:] = "IncidentDate is missing (no IncidentDate column)"
        else:
            codes = self.date_codes.codes[rows]
            values = self.date_codes.values
            reasons[:] = [f"{header} is missing" if c < 0 or _clean(values[c]) is None
                          else f"{header} '{values[c].strip()}' is not a date" for c in codes]
        empty = self.empty_rows(rows)
        reasons[empty] = "empty row"
        mask = pd.Series(bad, index=self.raw.index)
        reason = pd.Series(pd.NA, index=self.raw.index, dtype="string")
        reason.iloc[rows] = reasons
        return keep, quarantine_rows(self.raw, mask, reason).reset_index(drop=True)

    def empty_rows(self, rows: np.ndarray) -> np.ndarray:
        """Which of the given rows (positions) are blank in every data column."""
        empty = _blank_rows(self.raw, rows)
        if self.source is not None and empty.any():
            # The frame holds only the columns this format reads: look at the other cells too.
            numbers = self.raw[ROW].to_numpy()[rows[empty]]
            whole = self.source.cells(numbers)
            blank = whole[ROW].to_numpy()[_blank_rows(whole, np.arange(len(whole)))]
            empty[empty] = np.isin(numbers, blank)
        return empty

    def reports(self, when: pd.Series, time_known: np.ndarray) -> pd.DataFrame:
        n = self.n
        cols: dict[str, object] = {}
        cols["report_id"] = self.report_ids()
        cols["incident_id"] = self.text("incident_id")
        cols["occurred_at"] = when.to_numpy(dtype="datetime64[us]")
        shift = schema.derive_shift(when, self.shifts)
        cols["shift"] = shift.where(time_known).array
        self.mapping["shift"] = "derived from IncidentTime (null where the time is missing)"
        cols["force"] = pd.Categorical.from_codes(np.zeros(n, dtype=np.int8), categories=[self.force])
        self.mapping["force"] = f"constant {self.force!r} (the form has no force column)"
        cols["area"] = self.open_category("area", _area)
        cols["location_type"] = self.location()
        cols["officer_id"] = self.text("officer_id")
        if self.cols.scalar.get("officer_id") is None:
            self.notes.append("no officer identifier in this extract: officer-level views are "
                              "unavailable")
        cols["officer_role"] = self.category(
            "officer_role", _by_rules(ROLE_RULES, normalise_name), schema.OFFICER_ROLES)
        cols["team"] = self.open_category("team", _clean)
        cols["single_crewed"] = self.flags("single_crewed")
        cols["ced_trained"] = self.flags("ced_trained")
        cols["length_of_service_years"] = self.number("length_of_service_years")
        cols["subject_age_band"] = self.category("subject_age_band", _age, schema.AGE_BANDS)
        cols["subject_gender"] = self.category("subject_gender", _by_lookup(_GENDER_LOOKUP),
                                               schema.GENDERS)
        cols["subject_ethnicity"] = self.category(
            "subject_ethnicity", _by_rules(_ETHNICITY_RULES, _key), schema.ETHNICITIES)
        cols["subject_physical_disability"] = self.flags("subject_physical_disability")
        cols["subject_mental_disability"] = self.flags("subject_mental_disability")
        cols["resistance"] = self.category("resistance", _by_lookup(_RESISTANCE_LOOKUP),
                                           schema.RESISTANCE_LEVELS)
        cols["reasons"] = self.item_list("reasons", schema.REASONS)
        cols["impact_factors"] = self.item_list("impact_factors", schema.IMPACT_FACTORS)
        cols["officer_injured"] = self.flags("officer_injured")
        cols["officer_injury_level"] = self.category(
            "officer_injury_level", _by_lookup(_INJURY_LEVEL_LOOKUP), schema.OFFICER_INJURY_LEVELS)
        cols["officer_assaulted"] = self.flags("officer_assaulted")
        if "officer_assaulted" in self.mapping:
            self.mapping["officer_assaulted"] += (" (StaffInjuryIntentional is not used: it is asked "
                                                  "only of injured officers)")
        cols["subject_injured"] = self.flags("subject_injured")
        cols["subject_injury_level"] = self.subject_injury_level()
        cols["outcomes"] = self.item_list("outcomes", schema.OUTCOMES)

        frame = {}
        for name, kind in schema.REPORT_COLUMNS.items():
            value = cols.get(name)
            if value is None:
                value = KINDS[kind].null(n)
            frame[name] = value
        frame[FILE] = self.raw[FILE].astype("string").array
        frame[ROW] = pd.to_numeric(self.raw[ROW]).to_numpy(dtype="int64")
        frame[ROWS] = np.ones(n, dtype="int64")
        return pd.DataFrame(frame)

    def report_ids(self) -> pd.arrays.ArrowStringArray:
        rows = pa.array(pd.to_numeric(self.raw[ROW]).to_numpy(dtype="int64")).cast(pa.large_string())
        files = _code(self.raw[FILE].astype("string"))
        stems = _strings(files.codes, [Path(f).stem for f in files.values])
        made = pc.binary_join_element_wise(stems, rows, pa.scalar("-", pa.large_string()))
        given = self.column("report_id")
        if given is None:
            self.mapping["report_id"] = "<file stem>-<row> (the form has no report id)"
            return pd.arrays.ArrowStringArray(made.cast(pa.large_string()))
        text = pc.utf8_trim_whitespace(_arrow_text(given))
        text = pc.if_else(pc.equal(text, ""), pa.scalar(None, text.type), text)
        return pd.arrays.ArrowStringArray(pc.coalesce(text, made.cast(text.type)).cast(pa.large_string()))

    def text(self, name: str) -> pd.arrays.ArrowStringArray | None:
        values = self.column(name)
        if values is None:
            return None
        text = pc.utf8_trim_whitespace(_arrow_text(values))
        text = pc.if_else(pc.equal(text, ""), pa.scalar(None, text.type), text)
        return pd.arrays.ArrowStringArray(text.cast(pa.large_string()))

    def number(self, name: str) -> np.ndarray | None:
        values = self.column(name)
        if values is None:
            return None
        coded = self.coded(self.cols.scalar[name])
        parsed = pd.to_numeric(pd.Series(coded.values, dtype="string").str.strip(), errors="coerce")
        return np.append(parsed.to_numpy(dtype="float64", na_value=np.nan), np.nan)[coded.codes]

    def open_category(self, name: str, mapper: Callable[[str], str | None]) -> pd.Categorical | None:
        values = self.column(name)
        if values is None:
            return None
        coded = self.coded(self.cols.scalar[name])
        mapped = [mapper(v) for v in coded.values]
        categories = sorted({m for m in mapped if m is not None})
        index = {c: i for i, c in enumerate(categories)}
        table = np.array([index[m] if m is not None else -1 for m in mapped] + [-1], dtype=np.int32)
        return pd.Categorical.from_codes(table[coded.codes], categories=categories)

    def group_flags(self, group: str, vocabulary: Sequence[str]) -> np.ndarray:
        """An n x k matrix: whether each item of a multi-select group is ticked Yes."""
        ticked = np.zeros((self.n, len(vocabulary)), dtype=bool)
        found = self.cols.groups[group]
        for j, item in enumerate(vocabulary):
            for header in found.get(item, []):
                ticked[:, j] |= self.flag_codes(header) == 1
        if found:
            self.mapping[group] = "Yes flags of " + ", ".join(h for hs in found.values() for h in hs)
        return ticked

    def item_list(self, group: str, vocabulary: Sequence[str]) -> np.ndarray:
        ticked = self.group_flags(group, vocabulary)
        if not self.cols.groups[group]:
            self.notes.append(f"no {group.replace('_', ' ')} columns in this extract: the lists are empty")
        return _list_array(ticked, vocabulary)

    def location(self) -> pd.Categorical | None:
        if not self.cols.groups["location_type"]:
            return None
        vocabulary = schema.LOCATION_TYPES
        ticked = self.group_flags("location_type", vocabulary)
        order = [vocabulary.index(item) for item in LOCATION_PRIORITY]
        by_priority = ticked[:, order]
        first = np.argmax(by_priority, axis=1)
        codes = np.where(by_priority.any(axis=1), np.asarray(order)[first], -1)
        several = int((ticked.sum(axis=1) > 1).sum())
        if several:
            self.notes.append(_locations_note(several))
        self.mapping["location_type"] += " (first Yes in order: " + ", ".join(LOCATION_PRIORITY) + ")"
        return pd.Categorical.from_codes(codes, categories=list(vocabulary))

    def subject_injury_level(self) -> pd.Categorical | None:
        if "subject_injury_level" in self.cols.scalar:
            return self.category("subject_injury_level", _by_lookup(_INJURY_LEVEL_LOOKUP),
                                 schema.SUBJECT_INJURY_LEVELS)
        if "subject_injury_text" not in self.cols.scalar:
            return None
        header = self.cols.scalar["subject_injury_text"]
        self.mapping["subject_injury_level"] = f"{header} when it names a level (Minor/Severe/Death)"
        codes, categories, _ = _categorical(self.coded(header), _subject_injury_from_text,
                                            schema.SUBJECT_INJURY_LEVELS)
        return pd.Categorical.from_codes(codes, categories=categories)

    def tactics(self, report_ids: pd.arrays.ArrowStringArray) -> pd.DataFrame:
        labels: list[str] = list(schema.TACTICS)
        label_index = {t: i for i, t in enumerate(labels)}

        def global_code(name: str | None) -> int:
            if name is None:
                return -1
            if name not in label_index:
                label_index[name] = len(labels)
                labels.append(name)
            return label_index[name]

        rows, codes, effective = [], [], []
        for k, header in sorted(self.cols.tactic.items()):
            coded = self.coded(header)
            g = _lookup(coded, lambda v: global_code(_tactic_name(v)), -1, "int32")
            picked = np.flatnonzero(g >= 0)
            rows.append(picked)
            codes.append(g[picked])
            eff_header = self.cols.effective.get(k)
            eff = (self.flag_codes(eff_header)[picked] if eff_header
                   else np.full(picked.size, -1, np.int8))
            effective.append(eff)
        for tactic, headers in self.cols.tactic_flags.items():
            for header in headers:
                picked = np.flatnonzero(self.flag_codes(header) == 1)
                rows.append(picked)
                codes.append(np.full(picked.size, global_code(tactic), dtype=np.int32))
                effective.append(np.full(picked.size, -1, dtype=np.int8))
        if self.cols.tactic:
            first, last = min(self.cols.tactic), max(self.cols.tactic)
            self.mapping["tactic"] = (
                f"{self.cols.tactic[first]}..{self.cols.tactic[last]} with their Effective columns"
                + ("; Yes flags of " + ", ".join(h for hs in self.cols.tactic_flags.values() for h in hs)
                   if self.cols.tactic_flags else "")
                + "; duplicates per report collapse to one; highest CED use per report only")
        else:
            self.notes.append("no Tactic columns in this extract: tactics come from the CED and "
                              "firearms flags only")
        row = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
        code = np.concatenate(codes).astype(np.int64) if codes else np.zeros(0, dtype=np.int64)
        eff = np.concatenate(effective) if effective else np.zeros(0, dtype=np.int8)

        # One row per (report, tactic): effective if any entry says Yes, else No if any says No.
        key = row.astype(np.int64) * len(labels) + code
        unique, inverse = np.unique(key, return_inverse=True)
        said_yes = np.bincount(inverse, weights=eff == 1, minlength=unique.size) > 0
        said_no = np.bincount(inverse, weights=eff == 0, minlength=unique.size) > 0
        position = unique // len(labels)
        tactic_code = (unique % len(labels)).astype(np.int32)
        frame = pd.DataFrame({
            "report_id": pd.arrays.ArrowStringArray(
                pc.take(pa.array(report_ids), pa.array(position))) if position.size
            else pd.array([], dtype="string"),
            "tactic": pd.Categorical.from_codes(tactic_code, categories=labels),
            "effective": pd.arrays.BooleanArray(said_yes, ~(said_yes | said_no)),
            "_position": position,
        })
        # The national CED rule, applied to the CED rows only so the rest need not be re-sorted.
        is_ced = np.isin(tactic_code, [labels.index(t) for t in schema.CED_LADDER])
        if is_ced.any():
            top = schema.apply_ced_highest_use(frame[is_ced])
            keep = ~is_ced
            keep[top.index.to_numpy()] = True
            frame = frame[keep].reset_index(drop=True)
        groups = list(schema.TACTIC_GROUPS)
        group_of = np.array([groups.index(schema.TACTIC_GROUP_OF[t]) if t in schema.TACTIC_GROUP_OF
                             else -1 for t in labels] + [-1])
        frame.insert(2, "tactic_group", pd.Categorical.from_codes(
            group_of[frame["tactic"].cat.codes.to_numpy()], categories=groups))
        return frame

    def describe(self) -> None:
        if self.cols.unknown:
            shown = ", ".join(self.cols.unknown[:20])
            more = f" and {len(self.cols.unknown) - 20} more" if len(self.cols.unknown) > 20 else ""
            k = len(self.cols.unknown)
            self.notes.append(f"ignored {k} column{'s' if k > 1 else ''} this format does not know: "
                              f"{shown}{more}")
        if self.cols.duplicate:
            self.notes.append("ignored columns that repeat an earlier one: "
                              + ", ".join(self.cols.duplicate))
        missing = [f"{header} ({'shift' if field == 'time' else field})"
                   for field, header in _EXPECTED_FIELDS.items() if field not in self.cols.scalar]
        if missing:
            self.notes.append("columns not in this extract, so these fields are null: "
                              + ", ".join(missing))
        if "subject_injury_level" not in self.mapping:
            self.notes.append("subject_injury_level is null: no injury level column")


def _blank_rows(frame: pd.DataFrame, rows: np.ndarray) -> np.ndarray:
    """Which of the given rows (positions) of a frame are blank in every data column."""
    empty = np.ones(rows.size, dtype=bool)
    taken = pa.array(rows)
    for column in frame.columns:
        if column in (FILE, ROW):
            continue
        cells = pc.take(_arrow_text(frame[column]), taken)
        blank = pc.fill_null(pc.equal(pc.utf8_trim_whitespace(cells), ""), True)
        empty &= blank.to_numpy(zero_copy_only=False)
        if not empty.any():
            break
    return empty


def _time_note(no_time: int, unreadable: int) -> str:
    return (f"{_count(no_time, 'report')} no usable IncidentTime ({unreadable:,} of them unreadable): "
            "occurred_at is the date at midnight and shift is null")


def _locations_note(several: int) -> str:
    return (f"{_count(several, 'report')} more than one Incident Location ticked: "
            "location_type is the first of them in LOCATION_PRIORITY order")


# The notes that count rows, as merge_notes reads them back from each batch's notes.
COUNTED_NOTES: tuple[CountedNote, ...] = (
    (re.compile(r"([\d,]+) reports? ha(?:s|ve) no usable IncidentTime \(([\d,]+) of them unreadable\): "
                r"occurred_at is the date at midnight and shift is null"), _time_note),
    (re.compile(r"([\d,]+) reports? ha(?:s|ve) more than one Incident Location ticked: "
                r"location_type is the first of them in LOCATION_PRIORITY order"), _locations_note),
)


def _count(n: int, noun: str) -> str:
    """'1 report has' / '3 reports have'."""
    return f"{n:,} {noun} has" if n == 1 else f"{n:,} {noun}s have"


def _list_array(ticked: np.ndarray, vocabulary: Sequence[str]) -> np.ndarray:
    """Build a list column (Python lists, in vocabulary order) from an n x k matrix of ticks.

    Each distinct combination becomes one list, shared by the rows that have it: a million rows
    hold only a few thousand combinations, so this is much faster than a list per row.
    """
    n, k = ticked.shape
    if k == 0:
        key = np.zeros(n, dtype=np.int64)
    else:
        key = ticked.astype(np.int64) @ (np.int64(1) << np.arange(k, dtype=np.int64))
    combos, inverse = np.unique(key, return_inverse=True)
    lists = np.empty(combos.size, dtype=object)
    lists[:] = [[vocabulary[j] for j in range(k) if (c >> j) & 1] for c in combos.tolist()]
    return lists[inverse.reshape(-1)]


def _unmapped_counts(values: pd.Series, vocabulary: Sequence[str]) -> dict[str, int]:
    """Count values outside a vocabulary in a categorical column (as count_unmapped does)."""
    counts = values.value_counts(sort=True)
    return {str(k): int(v) for k, v in counts.items() if v and k not in vocabulary}


def _strings(codes: np.ndarray, labels: Sequence[str | None]) -> pa.Array:
    """Turn codes into an Arrow string array of labels; code -1 or a None label is null."""
    codes = np.asarray(codes)
    valid = np.array([label is not None for label in labels] + [False])
    dictionary = pa.array([label or "" for label in labels], type=pa.large_string())
    index = pa.array(np.where(codes >= 0, codes, 0).astype(np.int32), mask=~valid[codes])
    return pc.take(dictionary, index)
