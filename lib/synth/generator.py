"""Synthetic UK use-of-force data with planted effects, for demos, tests and benchmarks.

The generator builds a national roster (43 territorial forces, their areas, teams and officers),
draws incidents in time from a seasonal / weekly / hourly pattern, lets officers' use of force fall
by 9% after personal safety training (or by an effect that builds up over `training_growth_months`),
and gives each report officer- and subject-harm outcomes
from a multiplicative risk model. What was planted, and the exact values a marginal estimator
should recover from the generated rows, are written to ``effects.json`` beside the tables.

Everything is vectorised over reports (loops run over forces or small vocabularies only) and
driven by one ``numpy.random.default_rng(seed)``, so the same arguments give the same bytes.

    python -m lib.synth --reports 5000000 --seed 1 --out /tmp/synth5m
"""
from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lib.model.files import write_whole_folder
from lib.model.forces import FORCES
from lib.model.kinds import KINDS
from lib.model.schema import (
    AGE_BANDS,
    CED_LADDER,
    DEFAULT_SHIFTS,
    ETHNICITIES,
    GENDERS,
    HARM_FIELDS,
    IMPACT_FACTORS,
    LOCATION_TYPES,
    OFFICER_COLUMNS,
    OFFICER_ROLES,
    OUTCOMES,
    REASONS,
    REPORT_COLUMNS,
    REPORT_VOCABULARIES,
    RESISTANCE_LEVELS,
    SHIFTS,
    TACTIC_COLUMNS,
    TACTIC_GROUP_OF,
    TACTIC_GROUPS,
    TACTICS,
)

GENERATOR_VERSION = "1.0"
DEFAULT_START = "2023-04-01"
DEFAULT_MONTHS = 24
MIN_OFFICERS = 500
REPORTS_PER_OFFICER = 8

# --- organisation -------------------------------------------------------------------------

AREA_SUFFIXES: tuple[str, ...] = (
    "North", "South", "East", "West", "Central", "North East", "North West", "South East",
    "South West", "Central North", "Central South", "Central East",
)
MIN_OFFICERS_PER_FORCE = 3
AREA_DIRICHLET = 6.0  # concentration of area sizes within a force (higher = more even)

ROLE_SHARE: dict[str, float] = {
    "Response": 0.45, "Neighbourhood": 0.20, "Custody": 0.06, "Roads policing": 0.05,
    "Public order": 0.06, "Armed response": 0.04, "Investigation": 0.08, "Dog handler": 0.01,
    "Other": 0.05,
}
# Mean reports per officer-month relative to the average officer, before individual variation.
ROLE_ACTIVITY: dict[str, float] = {
    "Response": 1.6, "Neighbourhood": 0.9, "Custody": 1.2, "Roads policing": 0.8,
    "Public order": 1.3, "Armed response": 0.8, "Investigation": 0.35, "Dog handler": 1.0,
    "Other": 0.3,
}
ACTIVITY_SHAPE = 0.8  # gamma shape of individual officers' activity (CV about 1.1)
TEAM_SIZE: dict[str, int] = {
    "Response": 16, "Neighbourhood": 12, "Custody": 10, "Roads policing": 10,
    "Public order": 14, "Armed response": 10, "Investigation": 12, "Dog handler": 6, "Other": 10,
}
SINGLE_CREWED_P: dict[str, float] = {
    "Response": 0.34, "Neighbourhood": 0.32, "Custody": 0.08, "Roads policing": 0.55,
    "Public order": 0.05, "Armed response": 0.05, "Investigation": 0.30, "Dog handler": 0.60,
    "Other": 0.25,
}
CED_TRAINED_P: dict[str, float] = {
    "Response": 0.38, "Neighbourhood": 0.20, "Custody": 0.10, "Roads policing": 0.40,
    "Public order": 0.50, "Armed response": 1.0, "Investigation": 0.05, "Dog handler": 0.50,
    "Other": 0.10,
}
SERVICE_EXTRA_YEARS: dict[str, float] = {
    "Response": 0.0, "Neighbourhood": 1.0, "Custody": 3.0, "Roads policing": 3.0,
    "Public order": 2.0, "Armed response": 4.0, "Investigation": 2.0, "Dog handler": 4.0,
    "Other": 3.0,
}
PST_TRAINED_SHARE = 0.60
PST_RATE_MULTIPLIER = 0.91  # reports per officer-month after training / before
DEFAULT_TRAINING_EFFECT = round(PST_RATE_MULTIPLIER - 1, 6)  # relative change in the rate, -0.09

# --- training records and exposure (drawn from a second random stream, see _roster_records) --

PST_COURSE = "Personal safety training"
PST_STANDARD_HOURS = 12  # hours a year every officer is to receive
PST_FIRST_COURSE_HOURS = (6, 12)
PST_REFRESHER_HOURS = 6
# P(an officer's first course is the full 12 hours) and the mean P(of a refresher at each
# half-yearly opportunity), by role; teams vary around the role's mean (beta, this concentration).
PST_FULL_COURSE_P: dict[str, float] = {
    "Response": 0.45, "Neighbourhood": 0.30, "Custody": 0.35, "Roads policing": 0.30,
    "Public order": 0.70, "Armed response": 0.85, "Investigation": 0.15, "Dog handler": 0.50,
    "Other": 0.10,
}
PST_REFRESH_P: dict[str, float] = {
    "Response": 0.75, "Neighbourhood": 0.60, "Custody": 0.65, "Roads policing": 0.60,
    "Public order": 0.90, "Armed response": 0.95, "Investigation": 0.40, "Dog handler": 0.80,
    "Other": 0.35,
}
TEAM_REFRESH_CONCENTRATION = 8.0
REFRESH_GAP_DAYS = (150, 210)
JOINER_SHARE = 0.08  # officers who join during the period (no shifts, no reports before)
SHIFTS_PER_MONTH = (15.0, 3.0)  # mean and standard deviation of shifts in a full month
MAX_SHIFTS_PER_MONTH = 24
ROSTER_STREAM = 1  # second entropy word of the roster records' random stream

# --- time ---------------------------------------------------------------------------------

# Relative rate by hour of day: low 05:00-08:00, peak 21:00-02:00.
HOUR_PROFILE: tuple[float, ...] = (
    1.45, 1.35, 1.15, 0.90, 0.65, 0.45, 0.35, 0.40, 0.55, 0.70, 0.80, 0.88,
    0.95, 1.00, 1.05, 1.10, 1.15, 1.20, 1.25, 1.30, 1.35, 1.45, 1.50, 1.50,
)
WEEKDAY_PROFILE: tuple[float, ...] = (0.92, 0.92, 0.95, 1.00, 1.12, 1.17, 1.00)  # Mon..Sun
WEEKEND_NIGHT_BOOST = 1.35  # Fri/Sat 20:00-23:59 and Sat/Sun 00:00-03:59
SEASON_AMPLITUDE = 0.08  # +-8%, peak in July
TREND_PER_YEAR = 0.04
INCIDENT_EXTRA_OFFICERS: tuple[float, ...] = (0.76, 0.17, 0.045, 0.017, 0.008)  # P(0..4 more)
SAME_TEAM_P = 0.8  # an extra officer at an incident comes from the lead's team, else its area
EXTRA_OFFICER_DELAY_MINUTES = 16

# --- subjects and context -----------------------------------------------------------------

AGE_SHARE: dict[str, float] = {
    "0-10": 0.001, "11-17": 0.07, "18-34": 0.52, "35-49": 0.30, "50-64": 0.09,
    "65 and over": 0.019,
}
GENDER_SHARE: dict[str, float] = {"Male": 0.85, "Female": 0.147, "Other": 0.003}
ETHNICITY_NATIONAL: dict[str, float] = {
    "White": 0.70, "Black (or Black British)": 0.15, "Asian (or Asian British)": 0.07,
    "Mixed": 0.05, "Other": 0.03,
}
ETHNICITY_MET: dict[str, float] = {
    "White": 0.42, "Black (or Black British)": 0.33, "Asian (or Asian British)": 0.11,
    "Mixed": 0.08, "Other": 0.06,
}
METROPOLITAN = "Metropolitan Police"
PHYSICAL_DISABILITY_P = 0.03
MENTAL_DISABILITY_P = 0.12
RESISTANCE_SHARE: dict[str, float] = {
    "Compliant": 0.10, "Passive resistance": 0.12, "Verbal resistance/gestures": 0.15,
    "Active resistance": 0.33, "Aggressive resistance": 0.25,
    "Serious or aggravated resistance": 0.05,
}
LOCATION_SHARE: dict[str, float] = {
    "Street/highway": 0.47, "Open ground": 0.04, "Retail premises": 0.06,
    "Licensed premises": 0.04, "Public transport": 0.015, "Sports or event stadia": 0.005,
    "Police vehicle": 0.03, "Police station (excluding custody block)": 0.02,
    "Custody block": 0.04, "Hospital/A&E (non mental health setting)": 0.025,
    "Mental health setting": 0.015, "Ambulance": 0.005, "Dwelling": 0.20, "Other": 0.03,
}
# Where a role's incidents differ from the general mix (weights are renormalised).
LOCATION_BY_ROLE: dict[str, dict[str, float]] = {
    "Custody": {"Custody block": 6.0, "Street/highway": 0.02, "Dwelling": 0.01},
    "Roads policing": {"Street/highway": 0.75, "Police vehicle": 0.08, "Dwelling": 0.05},
    "Public order": {"Sports or event stadia": 0.06, "Licensed premises": 0.08,
                     "Open ground": 0.08, "Dwelling": 0.05},
    "Armed response": {"Dwelling": 0.30},
    "Neighbourhood": {"Retail premises": 0.09, "Dwelling": 0.24},
}
REASON_P: dict[str, float] = {
    "Protect self": 0.55, "Protect public": 0.22, "Protect subject": 0.15,
    "Protect other officers": 0.22, "Prevent offence": 0.15, "Secure evidence": 0.04,
    "Effect search": 0.07, "Effect arrest": 0.48, "Method of entry": 0.01,
    "Remove handcuffs": 0.01, "Prevent harm": 0.42, "Prevent escape": 0.13, "Other": 0.03,
}
IMPACT_P: dict[str, float] = {
    "Possession of a weapon": 0.10, "Alcohol": 0.40, "Drugs": 0.25, "Mental health": 0.15,
    "Prior knowledge": 0.25, "Size/gender/build": 0.35, "Acute behavioural disorder": 0.03,
    "Crowd": 0.05, "Other": 0.06,
}
OUTCOME_P: dict[str, float] = {
    "Made off/escaped": 0.03, "Arrested": 0.63, "Hospitalised": 0.025,
    "Detained (Mental Health Act)": 0.02, "Fatality": 0.0, "Other": 0.12,
}
# When a report would otherwise have no outcome.
OUTCOME_FILL: dict[str, float] = {
    "Made off/escaped": 0.10, "Arrested": 0.30, "Hospitalised": 0.0,
    "Detained (Mental Health Act)": 0.0, "Fatality": 0.0, "Other": 0.60,
}
MAX_LIST_ITEMS = 4

# --- missingness: share of reports where the field is unanswered ---------------------------

NULL_SHARE: dict[str, float] = {
    "officer_injured": 0.03, "officer_assaulted": 0.04, "subject_injured": 0.04,
    "subject_ethnicity": 0.12, "subject_age_band": 0.06, "subject_gender": 0.03,
    "location_type": 0.02, "resistance": 0.05, "single_crewed": 0.05,
    "length_of_service_years": 0.02, "team": 0.01, "ced_trained": 0.01,
    "subject_physical_disability": 0.08, "subject_mental_disability": 0.08,
}

# --- tactics ------------------------------------------------------------------------------

RESTRAINT_P = 0.78
HANDCUFF_IN_RESTRAINT_P = 0.86
HANDCUFF_IN_RESTRAINT_CUSTODY_P = 0.45
LIMB_IN_RESTRAINT_P = 0.11
LIMB_IN_RESTRAINT_CUSTODY_P = 0.35
# By resistance level (RESISTANCE_LEVELS order is looked up by name below).
GROUND_IN_RESTRAINT_P: dict[str, float] = {
    "Compliant": 0.05, "Passive resistance": 0.14, "Verbal resistance/gestures": 0.16,
    "Active resistance": 0.26, "Aggressive resistance": 0.38,
    "Serious or aggravated resistance": 0.50,
}
NON_COMPLIANT_CUFF_SHARE: dict[str, float] = {
    "Compliant": 0.05, "Passive resistance": 0.25, "Verbal resistance/gestures": 0.35,
    "Active resistance": 0.50, "Aggressive resistance": 0.65,
    "Serious or aggravated resistance": 0.75,
}
FORCEFULNESS: dict[str, float] = {  # how much more likely harder tactics are
    "Compliant": 0.2, "Passive resistance": 0.4, "Verbal resistance/gestures": 0.6,
    "Active resistance": 1.0, "Aggressive resistance": 1.6,
    "Serious or aggravated resistance": 2.4,
}
UNARMED_WITH_RESTRAINT_P = 0.155
UNARMED_WITHOUT_RESTRAINT_P = 0.22
CED_SHARE = 0.06  # reports with any CED use
CED_WITHOUT_RESTRAINT_FACTOR = 2.0
CED_ARMED_RESPONSE_FACTOR = 2.0
CED_LEVEL_SHARE: dict[str, float] = {  # highest CED use, given any
    "CED drawn": 0.22, "CED aimed": 0.10, "CED red-dot": 0.50, "CED arced": 0.015,
    "CED drive-stun": 0.003, "CED fired": 0.16, "CED angle drive-stun": 0.002,
}
# (tactic, probability for a typical officer, {role: probability}) for the rarer tactics;
# probabilities marked scaled are multiplied by FORCEFULNESS.
RARE_TACTICS: tuple[tuple[str, float, dict[str, float], bool], ...] = (
    ("Irritant spray drawn", 0.012, {"Public order": 0.025}, True),
    ("Irritant spray used", 0.016, {"Public order": 0.03}, True),
    ("Baton drawn", 0.006, {"Public order": 0.04}, True),
    ("Baton used", 0.003, {"Public order": 0.02}, True),
    ("Spit and bite guard", 0.015, {"Custody": 0.04}, True),
    ("Shield", 0.001, {"Public order": 0.06, "Armed response": 0.02}, False),
    ("AEP drawn", 0.0, {"Armed response": 0.012}, False),
    ("AEP used", 0.0, {"Armed response": 0.002}, False),
    ("Firearm aimed", 0.00015, {"Armed response": 0.12}, False),
    ("Firearm fired", 0.0, {"Armed response": 0.0008}, False),
    ("Dog deployed", 0.0008, {"Dog handler": 0.55}, False),
    ("Dog bite", 0.0002, {"Dog handler": 0.12}, False),
    ("Other/improvised", 0.035, {}, False),
)
# A report none of whose draws produced a tactic gets one of these.
FILL_TACTIC: dict[str, float] = {
    "Unarmed skills": 0.62, "Other/improvised": 0.18, "Spit and bite guard": 0.08,
    "Irritant spray drawn": 0.08, "Baton drawn": 0.04,
}
EFFECTIVE_P = (0.85, 0.10)  # True, False; the rest unanswered

# --- planted harm model -------------------------------------------------------------------

HARM_TARGET: dict[str, float] = {
    "officer_injured": 0.05, "officer_assaulted": 0.025, "subject_injured": 0.055,
}
INJURED_GIVEN_ASSAULTED = 0.7
SHIFT_RR: dict[str, dict[str, float]] = {
    "officer_injured": {"Early": 1.0, "Late": 1.2, "Night": 1.6},
    "officer_assaulted": {"Early": 1.0, "Late": 1.2, "Night": 1.6},
    "subject_injured": {"Early": 1.0, "Late": 1.1, "Night": 1.25},
}
_OFFICER_ROLE_RR: dict[str, float] = {
    "Response": 1.5, "Neighbourhood": 1.0, "Custody": 1.2, "Roads policing": 0.9,
    "Public order": 1.3, "Armed response": 0.8, "Investigation": 0.7, "Dog handler": 1.1,
    "Other": 0.8,
}
ROLE_RR: dict[str, dict[str, float]] = {
    "officer_injured": _OFFICER_ROLE_RR,
    "officer_assaulted": _OFFICER_ROLE_RR,
    "subject_injured": {
        "Response": 1.2, "Neighbourhood": 1.0, "Custody": 0.8, "Roads policing": 1.0,
        "Public order": 1.2, "Armed response": 1.3, "Investigation": 0.8, "Dog handler": 1.6,
        "Other": 0.9,
    },
}
SINGLE_CREWED_RR: dict[str, float] = {
    "officer_injured": 1.3, "officer_assaulted": 1.3, "subject_injured": 1.1,
}
_OFFICER_RESISTANCE_RR: dict[str, float] = {
    "Compliant": 0.4, "Passive resistance": 0.6, "Verbal resistance/gestures": 0.8,
    "Active resistance": 1.0, "Aggressive resistance": 1.4,
    "Serious or aggravated resistance": 1.8,
}
RESISTANCE_RR: dict[str, dict[str, float]] = {
    "officer_injured": _OFFICER_RESISTANCE_RR,
    "officer_assaulted": _OFFICER_RESISTANCE_RR,
    "subject_injured": {
        "Compliant": 0.5, "Passive resistance": 0.6, "Verbal resistance/gestures": 0.8,
        "Active resistance": 1.0, "Aggressive resistance": 1.5,
        "Serious or aggravated resistance": 2.0,
    },
}
REFERENCE: dict[str, str] = {
    "shift": "Early", "officer_role": "Neighbourhood", "single_crewed": "False",
    "resistance": "Active resistance",
}
OUTLIER_TEAMS = 4
OUTLIER_POOL = 12  # outliers are drawn from this many teams with the most reports
OUTLIER_MULTIPLIER = 3.0
OUTLIER_FIELDS: tuple[str, ...] = ("officer_injured", "officer_assaulted")
MAX_PROBABILITY = 0.49
OFFICER_SEVERE_P = 0.05
SUBJECT_SEVERE_P = 0.05
SUBJECT_DEATH_P = 0.00005  # of injured subjects


@dataclass(frozen=True)
class Synthetic:
    """A generated dataset: the three canonical tables and the planted truth."""

    reports: pa.Table
    tactics: pa.Table
    officers: pa.Table
    effects: dict[str, Any]
    training: pa.Table
    exposure: pa.Table


@dataclass(frozen=True)
class _Period:
    start: pd.Timestamp
    months: int
    minutes: int  # length of the period

    @property
    def days(self) -> int:
        return self.minutes // 1440


@dataclass(frozen=True)
class _Organisation:
    """Officers sorted by team (teams by force, area, role), with their attributes."""

    force_names: list[str]
    area_names: list[str]
    team_names: list[str]
    team_area: np.ndarray
    force: np.ndarray
    area: np.ndarray
    team: np.ndarray
    role: np.ndarray
    service_years: np.ndarray
    ced_trained: np.ndarray
    trained_day: np.ndarray  # day index of PST, -1 = not trained
    id_number: np.ndarray
    cum_activity: np.ndarray
    team_start: np.ndarray
    team_size: np.ndarray
    area_start: np.ndarray
    area_size: np.ndarray


# --- small helpers ------------------------------------------------------------------------


def _vector(table: Mapping[str, float], vocab: Sequence[str]) -> np.ndarray:
    """Align a name -> value table with a schema vocabulary, refusing unknown or missing names."""
    if set(table) != set(vocab):
        raise ValueError(f"table keys {sorted(set(table) ^ set(vocab))} disagree with the schema")
    return np.array([table[v] for v in vocab], dtype=np.float64)


def _code(vocab: Sequence[str], name: str) -> int:
    """Return the position of a name in a schema vocabulary (ValueError if it is not there)."""
    return list(vocab).index(name)


def _draw(rng: np.random.Generator, weights: np.ndarray, n: int) -> np.ndarray:
    """Draw n category codes with the given (unnormalised) weights."""
    cum = np.cumsum(weights, dtype=np.float64)
    cum /= cum[-1]
    codes = np.searchsorted(cum, rng.random(n), side="right")
    return np.minimum(codes, len(weights) - 1).astype(np.int16)


def _draw_grouped(rng: np.random.Generator, weights: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Draw one code per row from the row's group's weights (weights: groups x categories)."""
    n_groups, k = weights.shape
    cum = np.cumsum(weights, axis=1, dtype=np.float64)
    cum /= cum[:, -1:]
    # Group g's cumulative weights live in [g, g + 1], so one sorted search serves all groups.
    flat = (cum + np.arange(n_groups)[:, None]).ravel()
    hit = np.searchsorted(flat, group + rng.random(group.size), side="right")
    return np.minimum(hit - group.astype(np.int64) * k, k - 1).astype(np.int16)


def _period(start: str, months: int) -> _Period:
    if months < 1:
        raise ValueError("months must be at least 1")
    begin = pd.Timestamp(start).normalize()
    end = begin + pd.DateOffset(months=months)
    return _Period(begin, months, int((end - begin) / pd.Timedelta(minutes=1)))


def _padded_ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """Format integers as zero-padded ids with a prefix ("R00000001")."""
    digits = pc.utf8_lpad(pa.array(numbers, type=pa.int64()).cast(pa.string()), width, "0")
    return pc.binary_join_element_wise(prefix, digits, "")


def _dictionary(codes: np.ndarray, categories: Sequence[str],
                null: np.ndarray | None = None) -> pa.DictionaryArray:
    """Build a dictionary (categorical) array from codes; negative codes or `null` are nulls."""
    index_type = pa.int8() if len(categories) < 128 else pa.int32()
    mask = codes < 0 if null is None else (null | (codes < 0))
    indices = pa.array(codes.astype(index_type.to_pandas_dtype()), type=index_type, mask=mask)
    return pa.DictionaryArray.from_arrays(indices, pa.array(list(categories), type=KINDS["category"].arrow))


def _sorted_categories(codes: np.ndarray, names: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Recode so that the categories are the names in use, sorted alphabetically."""
    used = np.unique(codes[codes >= 0])
    order = sorted(used.tolist(), key=lambda c: names[c])
    remap = np.full(len(names), -1, dtype=np.int32)
    remap[order] = np.arange(len(order), dtype=np.int32)
    return np.where(codes >= 0, remap[np.maximum(codes, 0)], -1), [names[c] for c in order]


def _boolean(values: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    return pa.array(values, type=KINDS["bool"].arrow, mask=null)


def _list_array(offsets: np.ndarray, codes: np.ndarray, vocab: Sequence[str]) -> pa.ListArray:
    values = pc.take(pa.array(list(vocab), type=KINDS["list"].arrow.value_type), pa.array(codes, type=pa.int32()))
    return pa.ListArray.from_arrays(pa.array(offsets, type=pa.int32()), values)


def _multi_select(rng: np.random.Generator, p: Sequence[np.ndarray | float], fill: np.ndarray,
                  n: int, forced: Mapping[int, np.ndarray] | None = None,
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Choose 1..MAX_LIST_ITEMS items per row: independent draws, an item from `fill` if none.

    Returns (offsets, item codes) for an Arrow list column; items of a row are in vocab order.
    """
    k = len(p)
    chosen = np.zeros((n, k), dtype=bool)
    for j, pj in enumerate(p):
        chosen[:, j] = rng.random(n) < pj
    for j, rows in (forced or {}).items():
        chosen[:, j] |= rows
    count = chosen.sum(axis=1)
    empty = np.flatnonzero(count == 0)
    chosen[empty, _draw(rng, fill, empty.size)] = True
    over = np.flatnonzero(count > MAX_LIST_ITEMS)
    if over.size:
        keys = rng.random((over.size, k))
        keys[~chosen[over]] = 3.0  # never keep an item the row did not choose
        for j, rows in (forced or {}).items():
            keys[rows[over], j] = -1.0  # always keep a forced item
        drop = np.argsort(keys, axis=1)[:, MAX_LIST_ITEMS:]
        chosen[over[:, None], drop] = False
    count = chosen.sum(axis=1)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(count, out=offsets[1:])
    return offsets, np.nonzero(chosen)[1].astype(np.int32)


def _group_mean_ratio(p: np.ndarray, codes: np.ndarray, keep: np.ndarray, labels: Sequence[str],
                      reference: str) -> dict[str, Any]:
    """Ratio of the mean of p in each group to the reference group, over rows in `keep`."""
    k = len(labels)
    total = np.bincount(codes[keep], weights=p[keep], minlength=k)
    count = np.bincount(codes[keep], minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
        ratio = mean / mean[list(labels).index(reference)]
    return {"reference": reference,
            "ratios": {lab: _finite(ratio[i]) for i, lab in enumerate(labels) if lab != reference}}


def _finite(x: float, digits: int = 6) -> float | None:
    return round(float(x), digits) if math.isfinite(x) else None


# --- organisation and candidates ----------------------------------------------------------


def _organisation(rng: np.random.Generator, n_target: int, period: _Period) -> _Organisation:
    names = [f[0] for f in FORCES]
    heads = np.array([f[2] for f in FORCES], dtype=np.float64)
    share = heads / heads.sum()
    per_force = np.maximum(np.round(share * n_target).astype(np.int64), MIN_OFFICERS_PER_FORCE)
    force = np.repeat(np.arange(len(FORCES)), per_force)
    n = force.size

    n_areas = 2 + np.floor(10 * (share / share.max()) ** 0.5).astype(np.int64)
    area_weights = np.zeros((len(FORCES), len(AREA_SUFFIXES)))
    for f, k in enumerate(n_areas):
        area_weights[f, :k] = rng.dirichlet(np.full(k, AREA_DIRICHLET))
    area_offset = np.concatenate([[0], np.cumsum(n_areas)[:-1]])
    area = area_offset[force] + _draw_grouped(rng, area_weights, force)
    area_names = [f"{FORCES[f][1]} {AREA_SUFFIXES[i]}"
                  for f, k in enumerate(n_areas) for i in range(k)]
    role = _draw(rng, _vector(ROLE_SHARE, OFFICER_ROLES), n)

    # Teams: officers of one role in one area are dealt round-robin into teams of about
    # TEAM_SIZE, in a random order, so teams end up ordered by force, area, role.
    n_roles = len(OFFICER_ROLES)
    key = area.astype(np.int64) * n_roles + role
    order = np.lexsort((rng.random(n), key))
    force, area, role, key = force[order], area[order], role[order], key[order]
    groups, group_start, group_size = np.unique(key, return_index=True, return_counts=True)
    group_of = np.repeat(np.arange(groups.size), group_size)
    size = _vector(TEAM_SIZE, OFFICER_ROLES)[groups % n_roles]
    n_teams = np.maximum(1, np.round(group_size / size)).astype(np.int64)
    team_offset = np.concatenate([[0], np.cumsum(n_teams)[:-1]])
    local = (np.arange(n) - group_start[group_of]) % n_teams[group_of]
    team = team_offset[group_of] + local
    resort = np.argsort(team, kind="stable")
    force, area, role, team = force[resort], area[resort], role[resort], team[resort]

    team_group = np.repeat(np.arange(groups.size), n_teams)
    team_area = groups[team_group] // n_roles
    team_role = groups[team_group] % n_roles
    team_local = np.arange(n_teams.sum()) - team_offset[team_group]
    team_names = [f"{area_names[a]} {OFFICER_ROLES[r]} {_letters(i)}"
                  for a, r, i in zip(team_area.tolist(), team_role.tolist(), team_local.tolist(),
                                      strict=True)]

    activity = rng.gamma(ACTIVITY_SHAPE, 1.0, n) * _vector(ROLE_ACTIVITY, OFFICER_ROLES)[role]
    service = rng.gamma(1.3, 6.5, n) + _vector(SERVICE_EXTRA_YEARS, OFFICER_ROLES)[role]
    service = np.round(np.clip(service, 0.1, 35.0), 1)
    ced = rng.random(n) < _vector(CED_TRAINED_P, OFFICER_ROLES)[role]
    trained = rng.random(n) < PST_TRAINED_SHARE
    trained_day = np.where(trained, rng.integers(0, period.days, n), -1)
    id_number = rng.permutation(n) + 1

    team_size = np.bincount(team, minlength=len(team_names))
    area_size = np.bincount(area, minlength=len(area_names))
    return _Organisation(
        force_names=names, area_names=area_names, team_names=team_names, team_area=team_area,
        force=force, area=area, team=team, role=role, service_years=service, ced_trained=ced,
        trained_day=trained_day, id_number=id_number, cum_activity=np.cumsum(activity),
        team_start=np.cumsum(team_size) - team_size, team_size=team_size,
        area_start=np.cumsum(area_size) - area_size, area_size=area_size,
    )


def _letters(i: int) -> str:
    """Spreadsheet-style letters: 0 -> A, 25 -> Z, 26 -> AA."""
    out = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        out = chr(65 + r) + out
    return out


def _hour_weights(period: _Period) -> np.ndarray:
    """Relative rate of use of force in each hour of the period."""
    hours = np.arange(period.minutes // 60)
    day = hours // 24
    hod = hours % 24
    dow = (period.start.day_of_week + day) % 7
    days = pd.date_range(period.start, periods=period.days, freq="D")
    month = days.month.to_numpy()[np.minimum(day, period.days - 1)]
    season = 1 + SEASON_AMPLITUDE * np.cos(2 * np.pi * (month - 7) / 12)
    trend = 1 + TREND_PER_YEAR * hours / (24 * 365.25)
    weekend_night = (((dow == 4) | (dow == 5)) & (hod >= 20)) | (((dow == 5) | (dow == 6))
                                                                 & (hod < 4))
    return (np.asarray(HOUR_PROFILE)[hod] * np.asarray(WEEKDAY_PROFILE)[dow] * season * trend
            * np.where(weekend_night, WEEKEND_NIGHT_BOOST, 1.0))


def _month_of_day(period: _Period) -> np.ndarray:
    """Calendar month of each day of the period, counted from the period's first month (0)."""
    days = pd.date_range(period.start, periods=max(period.days, 1), freq="D")
    return ((days.year - period.start.year) * 12 + days.month - period.start.month).to_numpy(np.int64)


def _candidates(rng: np.random.Generator, org: _Organisation, period: _Period, n_reports: int,
                training_effect: float = DEFAULT_TRAINING_EFFECT, growth_months: int = 0,
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float | None]:
    """Draw incidents, their officers and times, thin after training; keep n_reports reports.

    Returns (officer, minute since start, incident code, lead officer by incident code, the
    average planted effect on trained officer-months that an estimator can judge).
    """
    mean_size = 1 + np.dot(np.arange(len(INCIDENT_EXTRA_OFFICERS)), INCIDENT_EXTRA_OFFICERS)
    # Thinning removes under 0.6 * |effect| of reports, so 8% spare is ample for -9%.
    spare = max(1.08, 1.02 + 0.65 * -training_effect)
    n_incidents = math.ceil((n_reports * spare + 500) / mean_size)
    size = 1 + _draw(rng, np.asarray(INCIDENT_EXTRA_OFFICERS), n_incidents).astype(np.int64)
    incident = np.repeat(np.arange(n_incidents), size)
    position = np.arange(incident.size) - (np.cumsum(size) - size)[incident]

    total = org.cum_activity[-1]
    lead = np.searchsorted(org.cum_activity, rng.random(n_incidents) * total, side="right")
    lead = np.minimum(lead, org.force.size - 1)
    weights = np.cumsum(_hour_weights(period))
    hour = np.searchsorted(weights, rng.random(n_incidents) * weights[-1], side="right")
    minute = np.minimum(hour, weights.size - 1) * 60 + rng.integers(0, 60, n_incidents)

    officer = lead[incident]
    when = minute[incident]
    extra = np.flatnonzero(position > 0)
    first = officer[extra]
    same_team = rng.random(extra.size) < SAME_TEAM_P
    start = np.where(same_team, org.team_start[org.team[first]], org.area_start[org.area[first]])
    width = np.where(same_team, org.team_size[org.team[first]], org.area_size[org.area[first]])
    step = 1 + np.floor(rng.random(extra.size) * (width - 1)).astype(np.int64)
    officer[extra] = np.where(width > 1, start + (first - start + step) % width, first)
    delay = rng.integers(0, EXTRA_OFFICER_DELAY_MINUTES, extra.size)
    when[extra] = np.minimum(when[extra] + delay, period.minutes - 1)

    # Use of force after the day of an officer's training is thinned by the effect (9%); with
    # growth_months the effect builds up: effect x min(1, (m + 1) / growth) in the m-th calendar
    # month after the training month (m = 0 is the training month itself).
    day = org.trained_day[officer]
    after = (day >= 0) & (when >= (day + 1) * 1440)
    month_of_day = _month_of_day(period)
    since = month_of_day[np.minimum(when // 1440, month_of_day.size - 1)] - month_of_day[np.maximum(day, 0)]
    ramp = np.minimum(1.0, (since + 1) / growth_months) if growth_months else np.ones(when.size)
    # 1 - (1 + effect) rather than -effect: the same float as before for the default.
    thin = 1 - (1 + training_effect * ramp) if growth_months else 1 - (1 + training_effect)
    keep = np.flatnonzero(~(after & (rng.random(when.size) < thin)))
    if keep.size < n_reports:
        raise RuntimeError("too few candidate reports survived thinning")
    keep = keep[:n_reports]
    # The estimand: the planted change averaged over the use of force trained officers would have
    # had without training (every candidate, thinned or kept, up to the last report kept), in
    # calendar months after the training month, for officers trained after the first month (an
    # officer with no month before training cannot be compared with anyone).
    drawn = slice(0, int(keep[-1]) + 1) if keep.size else slice(0, 0)
    judged = ((day >= 0) & (since >= 1) & (month_of_day[np.maximum(day, 0)] >= 1))[drawn]
    average = float(np.mean(training_effect * ramp[drawn][judged])) if judged.any() else None
    return officer[keep], when[keep], incident[keep], lead, average


def _shift_codes(minute_of_day: np.ndarray) -> np.ndarray:
    """Shift codes (SHIFTS order) with the same arithmetic as schema.derive_shift."""
    b = DEFAULT_SHIFTS
    early, late, night = (t.hour * 60 + t.minute for t in (b.early, b.late, b.night))
    since = (minute_of_day - early) % 1440
    return np.where(since < (late - early) % 1440, 0,
                    np.where(since < (night - early) % 1440, 1, 2)).astype(np.int8)


# --- generation ---------------------------------------------------------------------------


def generate(reports: int, seed: int, start: str = DEFAULT_START, months: int = DEFAULT_MONTHS,
             training_effect: float = DEFAULT_TRAINING_EFFECT, training_growth_months: int = 0) -> Synthetic:
    """Generate a synthetic national use-of-force dataset with planted, recorded effects."""
    if reports < 1:
        raise ValueError("reports must be at least 1")
    if not -1 < training_effect <= 0:
        raise ValueError("training_effect must be in (-1, 0]: training thins reports")
    if training_growth_months < 0:
        raise ValueError("training_growth_months must be 0 (a constant effect) or more")
    rng = np.random.default_rng(seed)
    period = _period(start, months)
    org = _organisation(rng, max(MIN_OFFICERS, reports // REPORTS_PER_OFFICER), period)
    officer, when, incident_code, lead, average_effect = _candidates(rng, org, period, reports, training_effect,
                                                                     training_growth_months)

    order = np.argsort(when, kind="stable")
    officer, when, incident_code = officer[order], when[order], incident_code[order]
    # Incidents are numbered by their first report in time.
    codes, first, inverse = np.unique(incident_code, return_index=True, return_inverse=True)
    number = np.empty(codes.size, dtype=np.int64)
    number[np.argsort(first, kind="stable")] = np.arange(codes.size)
    incident = number[inverse]
    incident_lead = np.empty(codes.size, dtype=np.int64)
    incident_lead[number] = lead[codes]

    n = reports
    role = org.role[officer]
    team = org.team[officer]
    minute_of_day = (when + period.start.hour * 60 + period.start.minute) % 1440
    shift = _shift_codes(minute_of_day)

    # What officers at one incident share: the place, the subject and how the subject resisted.
    lead_role = org.role[incident_lead]
    general = _vector(LOCATION_SHARE, LOCATION_TYPES)
    by_role = np.tile(general, (len(OFFICER_ROLES), 1))
    for r, override in LOCATION_BY_ROLE.items():
        row = by_role[_code(OFFICER_ROLES, r)]
        for loc, w in override.items():
            row[_code(LOCATION_TYPES, loc)] = w
    location = _draw_grouped(rng, by_role, lead_role)[incident]
    age = _draw(rng, _vector(AGE_SHARE, AGE_BANDS), codes.size)[incident]
    gender = _draw(rng, _vector(GENDER_SHARE, GENDERS), codes.size)[incident]
    met = org.force[incident_lead] == org.force_names.index(METROPOLITAN)
    national = _vector(ETHNICITY_NATIONAL, ETHNICITIES)
    met_mix = _vector(ETHNICITY_MET, ETHNICITIES)
    met_share = next(f[2] for f in FORCES if f[0] == METROPOLITAN) / sum(f[2] for f in FORCES)
    rest_mix = np.clip((national - met_share * met_mix) / (1 - met_share), 0.001, None)
    ethnicity = _draw_grouped(rng, np.vstack([rest_mix, met_mix]), met.astype(np.int64))[incident]
    resistance = _draw(rng, _vector(RESISTANCE_SHARE, RESISTANCE_LEVELS), codes.size)[incident]
    physical = (rng.random(codes.size) < PHYSICAL_DISABILITY_P)[incident]
    mental = (rng.random(codes.size) < MENTAL_DISABILITY_P)[incident]

    single = rng.random(n) < _vector(SINGLE_CREWED_P, OFFICER_ROLES)[role]
    ced_trained = org.ced_trained[officer]

    # Harm: p = baseline * shift * role * single-crewed * resistance (* outlier team).
    team_reports = np.bincount(team, minlength=len(org.team_names))
    pool = np.argsort(-team_reports, kind="stable")[:OUTLIER_POOL]
    outliers = np.sort(rng.choice(pool, size=min(OUTLIER_TEAMS, pool.size), replace=False))
    in_outlier = np.isin(team, outliers)
    probability: dict[str, np.ndarray] = {}
    baseline: dict[str, float] = {}
    for field in HARM_FIELDS:
        risk = (_vector(SHIFT_RR[field], SHIFTS)[shift]
                * _vector(ROLE_RR[field], OFFICER_ROLES)[role]
                * np.where(single, SINGLE_CREWED_RR[field], 1.0)
                * _vector(RESISTANCE_RR[field], RESISTANCE_LEVELS)[resistance])
        if field in OUTLIER_FIELDS:
            risk *= np.where(in_outlier, OUTLIER_MULTIPLIER, 1.0)
        baseline[field] = HARM_TARGET[field] / float(risk.mean())
        probability[field] = np.minimum(baseline[field] * risk, MAX_PROBABILITY)

    p_assault = probability["officer_assaulted"]
    p_injury = probability["officer_injured"]
    assaulted = rng.random(n) < p_assault
    # Most assaulted officers are injured; the rest of the injury probability falls on the
    # non-assaulted so that P(injured) stays exactly p_injury.
    p_injury_unassaulted = np.clip((p_injury - INJURED_GIVEN_ASSAULTED * p_assault)
                                   / (1 - p_assault), 0.0, 1.0)
    injured = rng.random(n) < np.where(assaulted, INJURED_GIVEN_ASSAULTED, p_injury_unassaulted)
    subject_injured = rng.random(n) < probability["subject_injured"]
    officer_severe = rng.random(n) < OFFICER_SEVERE_P
    u = rng.random(n)
    subject_true_level = np.where(u < SUBJECT_DEATH_P, 2, np.where(u < SUBJECT_SEVERE_P, 1, 0))

    null = {field: rng.random(n) < share for field, share in NULL_SHARE.items()}
    officer_level = np.where(injured & ~null["officer_injured"], officer_severe.astype(np.int8), -1)
    subject_level = np.where(subject_injured & ~null["subject_injured"], subject_true_level, -1)

    # Lists.
    reason_offsets, reason_codes = _multi_select(
        rng, list(_vector(REASON_P, REASONS)), _vector(REASON_P, REASONS), n)
    impact_p = _vector(IMPACT_P, IMPACT_FACTORS)
    impact_offsets, impact_codes = _multi_select(rng, list(impact_p), impact_p, n)
    mental_impact = _has_item(impact_offsets, impact_codes, _code(IMPACT_FACTORS, "Mental health"))
    outcome_p: list[np.ndarray | float] = list(_vector(OUTCOME_P, OUTCOMES))
    death = subject_injured & (subject_true_level == 2)
    hospital = _code(OUTCOMES, "Hospitalised")
    outcome_p[hospital] = np.select([subject_injured & (subject_true_level == 1), subject_injured],
                                    [0.6, 0.08], OUTCOME_P["Hospitalised"])
    mha = _code(OUTCOMES, "Detained (Mental Health Act)")
    outcome_p[mha] = np.where(mental_impact, 0.2, OUTCOME_P["Detained (Mental Health Act)"])
    outcome_offsets, outcome_codes = _multi_select(
        rng, outcome_p, _vector(OUTCOME_FILL, OUTCOMES), n,
        forced={_code(OUTCOMES, "Fatality"): death, hospital: death})

    tactic_rows, tactic_codes = _tactics(rng, role, resistance, ced_trained)
    effective = rng.random(tactic_rows.size)
    effective_null = effective >= EFFECTIVE_P[0] + EFFECTIVE_P[1]

    # --- tables ---
    report_ids = _padded_ids("R", np.arange(1, n + 1), max(8, len(str(n))))
    incident_ids = _padded_ids("I", incident + 1, max(8, len(str(codes.size))))
    officer_width = max(6, len(str(org.force.size)))
    officer_ids = _padded_ids("OF", org.id_number, officer_width)
    force_codes, force_cats = _sorted_categories(org.force, org.force_names)
    area_codes, area_cats = _sorted_categories(org.area, org.area_names)
    team_codes, team_cats = _sorted_categories(org.team, org.team_names)
    occurred = (period.start.to_datetime64().astype("datetime64[m]")
                + when.astype("timedelta64[m]")).astype("datetime64[us]")
    voc = REPORT_VOCABULARIES
    columns: dict[str, pa.Array] = {
        "report_id": report_ids,
        "incident_id": incident_ids,
        "occurred_at": pa.array(occurred, type=KINDS["timestamp"].arrow),
        "shift": _dictionary(shift, voc["shift"]),
        "force": _dictionary(force_codes[officer], force_cats),
        "area": _dictionary(area_codes[officer], area_cats),
        "location_type": _dictionary(location, voc["location_type"], null["location_type"]),
        "officer_id": pc.take(officer_ids, pa.array(officer)),
        "officer_role": _dictionary(role, voc["officer_role"]),
        "team": _dictionary(team_codes[officer], team_cats, null["team"]),
        "single_crewed": _boolean(single, null["single_crewed"]),
        "ced_trained": _boolean(ced_trained, null["ced_trained"]),
        "length_of_service_years": pa.array(org.service_years[officer], type=KINDS["float"].arrow,
                                            mask=null["length_of_service_years"]),
        "subject_age_band": _dictionary(age, voc["subject_age_band"], null["subject_age_band"]),
        "subject_gender": _dictionary(gender, voc["subject_gender"], null["subject_gender"]),
        "subject_ethnicity": _dictionary(ethnicity, voc["subject_ethnicity"],
                                         null["subject_ethnicity"]),
        "subject_physical_disability": _boolean(physical, null["subject_physical_disability"]),
        "subject_mental_disability": _boolean(mental, null["subject_mental_disability"]),
        "resistance": _dictionary(resistance, voc["resistance"], null["resistance"]),
        "reasons": _list_array(reason_offsets, reason_codes, REASONS),
        "impact_factors": _list_array(impact_offsets, impact_codes, IMPACT_FACTORS),
        "officer_injured": _boolean(injured, null["officer_injured"]),
        "officer_injury_level": _dictionary(officer_level, voc["officer_injury_level"]),
        "officer_assaulted": _boolean(assaulted, null["officer_assaulted"]),
        "subject_injured": _boolean(subject_injured, null["subject_injured"]),
        "subject_injury_level": _dictionary(subject_level, voc["subject_injury_level"]),
        "outcomes": _list_array(outcome_offsets, outcome_codes, OUTCOMES),
    }
    report_table = _with_pandas_metadata(pa.table([columns[c] for c in REPORT_COLUMNS],
                                                  names=list(REPORT_COLUMNS)))

    group_names = list(TACTIC_GROUPS)
    group_of_tactic = np.array([group_names.index(TACTIC_GROUP_OF[t]) for t in TACTICS])
    tactic_table = _with_pandas_metadata(pa.table({
        "report_id": pc.take(report_ids, pa.array(tactic_rows)),
        "tactic": _dictionary(tactic_codes, TACTICS),
        "tactic_group": _dictionary(group_of_tactic[tactic_codes], group_names),
        "effective": _boolean(effective < EFFECTIVE_P[0], effective_null),
    }).select(list(TACTIC_COLUMNS)))

    roster = np.argsort(org.id_number)
    trained_on = (period.start.to_datetime64().astype("datetime64[D]")
                  + np.maximum(org.trained_day, 0).astype("timedelta64[D]"))
    officer_table = _with_pandas_metadata(pa.table({
        "officer_id": officer_ids.take(pa.array(roster)),
        "force": _dictionary(force_codes[roster], force_cats),
        "area": _dictionary(area_codes[roster], area_cats),
        "team": _dictionary(team_codes[roster], team_cats),
        "officer_role": _dictionary(org.role[roster], OFFICER_ROLES),
        "length_of_service_years": pa.array(org.service_years[roster], type=KINDS["float"].arrow),
        "pst_trained_on": pa.array(trained_on[roster], type=KINDS["date"].arrow,
                                   mask=org.trained_day[roster] < 0),
    }).select(list(OFFICER_COLUMNS)))

    outcomes_by_field = {"officer_injured": injured, "officer_assaulted": assaulted,
                         "subject_injured": subject_injured}
    effects = _effects(
        reports=n, seed=seed, period=period, probability=probability, baseline=baseline,
        outcome=outcomes_by_field, null=null, shift=shift, role=role, single=single,
        resistance=resistance, team=team, outliers=outliers, org=org,
        tactic_rows=tactic_rows, tactic_codes=tactic_codes, n_incidents=codes.size,
        training_effect=training_effect)
    effects["training"].update(_growth_record(training_growth_months, average_effect))
    training_table, exposure_table, joiners = _roster_records(seed, org, period, officer, when,
                                                             officer_ids, roster)
    effects["training"]["joiners"] = joiners
    effects["training"]["training_events"] = training_table.num_rows
    return Synthetic(report_table, tactic_table, officer_table, effects,
                     training=training_table, exposure=exposure_table)


def _roster_records(seed: int, org: _Organisation, period: _Period, officer: np.ndarray,
                    when: np.ndarray, officer_ids: pa.Array, roster: np.ndarray,
                    ) -> tuple[pa.Table, pa.Table, int]:
    """Draw training events and monthly shifts; return (training, exposure, number of joiners).

    A second random stream keeps the report, tactic and officer tables exactly as they were
    before these records existed. An officer's first event is on pst_trained_on; refreshers
    follow about every six months with a probability that varies by role and team. Joiners
    work no shifts before the day they join, which is never after their first report or training.
    """
    rng = np.random.default_rng([seed, ROSTER_STREAM])
    n = org.force.size
    trained = np.flatnonzero(org.trained_day >= 0)
    team_role = org.role[org.team_start]
    mean_p = _vector(PST_REFRESH_P, OFFICER_ROLES)[team_role]
    team_p = rng.beta(mean_p * TEAM_REFRESH_CONCENTRATION, (1 - mean_p) * TEAM_REFRESH_CONCENTRATION)
    full = rng.random(trained.size) < _vector(PST_FULL_COURSE_P, OFFICER_ROLES)[org.role[trained]]
    first_hours = np.where(full, PST_FIRST_COURSE_HOURS[1], PST_FIRST_COURSE_HOURS[0])
    who, days, hours = [trained], [org.trained_day[trained]], [first_hours]
    current, day, p = trained, org.trained_day[trained], team_p[org.team[trained]]
    while current.size:
        day = day + rng.integers(REFRESH_GAP_DAYS[0], REFRESH_GAP_DAYS[1] + 1, current.size)
        live = day < period.days
        current, day, p = current[live], day[live], p[live]
        taken = rng.random(current.size) < p
        who.append(current[taken])
        days.append(day[taken])
        hours.append(np.full(int(taken.sum()), PST_REFRESHER_HOURS))
    event_officer, event_day, event_hours = (np.concatenate(v) for v in (who, days, hours))
    order = np.lexsort((event_day, org.id_number[event_officer]))
    event_officer, event_day, event_hours = event_officer[order], event_day[order], event_hours[order]
    start_day = period.start.to_datetime64().astype("datetime64[D]")
    training = _with_pandas_metadata(pa.table({
        "officer_id": pc.take(officer_ids, pa.array(event_officer)),
        "trained_on": pa.array(start_day + event_day.astype("timedelta64[D]"), type=KINDS["date"].arrow),
        "course": _dictionary(np.zeros(event_officer.size, dtype=np.int8), [PST_COURSE]),
        "hours": pa.array(event_hours.astype(np.float64), type=KINDS["float"].arrow),
    }))

    first_report = np.full(n, period.days, dtype=np.int64)
    np.minimum.at(first_report, officer, when // 1440)
    join_day = rng.integers(1, period.days, n) if period.days > 1 else np.zeros(n, dtype=np.int64)
    joiner = ((rng.random(n) < JOINER_SHARE) & (join_day <= first_report)
              & ((org.trained_day < 0) | (join_day <= org.trained_day)))
    join = np.where(joiner, join_day, 0)
    first_month = period.start.to_period("M")
    last_day = period.start + pd.Timedelta(days=period.days - 1)
    months = pd.period_range(first_month, last_day.to_period("M"), freq="M")
    month_start = months.start_time
    lo = np.maximum(((month_start - period.start) / pd.Timedelta(days=1)).to_numpy(), 0).astype(np.int64)
    hi = np.append(lo[1:], period.days)
    length = months.days_in_month.to_numpy()
    active = np.clip(hi[None, :] - np.maximum(lo[None, :], join[:, None]), 0, None)
    full_month = rng.normal(*SHIFTS_PER_MONTH, (n, months.size))
    shifts = np.clip(np.round(full_month), 1, MAX_SHIFTS_PER_MONTH) * active / length[None, :]
    shifts = np.where(active > 0, np.maximum(np.round(shifts), 1), 0).astype(np.int16)
    exposure = _with_pandas_metadata(pa.table({
        "officer_id": pc.take(officer_ids, pa.array(np.repeat(roster, months.size))),
        "month": pa.array(np.tile(month_start.to_numpy().astype("datetime64[D]"), n), type=KINDS["date"].arrow),
        "shifts": pa.array(shifts[roster].ravel(), type=pa.int16()),
    }))
    return training, exposure, int(joiner.sum())


def _has_item(offsets: np.ndarray, codes: np.ndarray, item: int) -> np.ndarray:
    """Whether each list row contains the item."""
    hit = np.zeros(offsets.size - 1, dtype=bool)
    rows = np.repeat(np.arange(offsets.size - 1), np.diff(offsets))
    hit[rows[codes == item]] = True
    return hit


def _tactics(rng: np.random.Generator, role: np.ndarray, resistance: np.ndarray,
             ced_trained: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Draw the tactics of each report; return (report row, tactic code), sorted by row."""
    n = role.size
    t = {name: _code(TACTICS, name) for name in TACTICS}
    chosen = np.zeros((n, len(TACTICS)), dtype=bool)
    custody = role == _code(OFFICER_ROLES, "Custody")
    armed = role == _code(OFFICER_ROLES, "Armed response")
    force_f = _vector(FORCEFULNESS, RESISTANCE_LEVELS)
    force_f = (force_f / np.dot(force_f, _vector(RESISTANCE_SHARE, RESISTANCE_LEVELS)))[resistance]

    compliant_cuff, non_compliant_cuff, limb_name, ground_name = TACTIC_GROUPS["Restraint"]
    restraint = rng.random(n) < RESTRAINT_P
    cuff = restraint & (rng.random(n) < np.where(custody, HANDCUFF_IN_RESTRAINT_CUSTODY_P,
                                                 HANDCUFF_IN_RESTRAINT_P))
    ground = restraint & (rng.random(n)
                          < _vector(GROUND_IN_RESTRAINT_P, RESISTANCE_LEVELS)[resistance])
    limb = restraint & (rng.random(n) < np.where(custody, LIMB_IN_RESTRAINT_CUSTODY_P,
                                                 LIMB_IN_RESTRAINT_P))
    cuff |= restraint & ~(ground | limb)
    non_compliant = rng.random(n) < _vector(NON_COMPLIANT_CUFF_SHARE, RESISTANCE_LEVELS)[resistance]
    chosen[:, t[compliant_cuff]] = cuff & ~non_compliant
    chosen[:, t[non_compliant_cuff]] = cuff & non_compliant
    chosen[:, t[limb_name]] = limb
    chosen[:, t[ground_name]] = ground

    unarmed_p = np.where(restraint, UNARMED_WITH_RESTRAINT_P, UNARMED_WITHOUT_RESTRAINT_P)
    chosen[:, t["Unarmed skills"]] = rng.random(n) < np.minimum(unarmed_p * force_f, 0.95)

    # CED: only trained officers, at most one (the highest) use per report.
    ced_weight = (ced_trained * force_f * np.where(restraint, 1.0, CED_WITHOUT_RESTRAINT_FACTOR)
                  * np.where(armed, CED_ARMED_RESPONSE_FACTOR, 1.0))
    ced_p = np.minimum(ced_weight * (CED_SHARE / max(float(ced_weight.mean()), 1e-12)), 0.9)
    ced_rows = np.flatnonzero(rng.random(n) < ced_p)
    ladder = np.array([t[c] for c in CED_LADDER])
    level = _draw(rng, _vector(CED_LEVEL_SHARE, CED_LADDER), ced_rows.size)
    chosen[ced_rows, ladder[level]] = True

    for name, p_default, by_role, scaled in RARE_TACTICS:
        p = np.full(len(OFFICER_ROLES), p_default)
        for r, pr in by_role.items():
            p[_code(OFFICER_ROLES, r)] = pr
        p_row = p[role] * (force_f if scaled else 1.0)
        chosen[:, t[name]] = rng.random(n) < np.minimum(p_row, 0.95)
    chosen[:, t["Dog deployed"]] |= chosen[:, t["Dog bite"]]

    empty = np.flatnonzero(~chosen.any(axis=1))
    fill = np.array([t[name] for name in FILL_TACTIC])
    fill_weights = np.array(list(FILL_TACTIC.values()))
    chosen[empty, fill[_draw(rng, fill_weights, empty.size)]] = True
    rows, tactic = np.nonzero(chosen)
    return rows, tactic.astype(np.int16)


def _effects(*, reports: int, seed: int, period: _Period, probability: dict[str, np.ndarray],
             baseline: dict[str, float], outcome: dict[str, np.ndarray],
             null: dict[str, np.ndarray], shift: np.ndarray, role: np.ndarray,
             single: np.ndarray, resistance: np.ndarray, team: np.ndarray, outliers: np.ndarray,
             org: _Organisation, tactic_rows: np.ndarray, tactic_codes: np.ndarray,
             n_incidents: int, training_effect: float = DEFAULT_TRAINING_EFFECT) -> dict[str, Any]:
    """Record what was planted and what a marginal estimator should find in these rows."""
    harm: dict[str, Any] = {}
    for field in HARM_FIELDS:
        p = probability[field]
        answered = ~null[field]
        planted = {
            "shift": _planted(SHIFT_RR[field], "shift"),
            "officer_role": _planted(ROLE_RR[field], "officer_role"),
            "single_crewed": {"reference": REFERENCE["single_crewed"],
                              "ratios": {"True": SINGLE_CREWED_RR[field]}},
            "resistance": _planted(RESISTANCE_RR[field], "resistance"),
        }
        sc_known = answered & ~null["single_crewed"]
        expected = {
            "shift": _group_mean_ratio(p, shift, answered, SHIFTS, REFERENCE["shift"]),
            "officer_role": _group_mean_ratio(p, role, answered, OFFICER_ROLES,
                                              REFERENCE["officer_role"]),
            "single_crewed": _group_mean_ratio(p, single.astype(np.int8), sc_known,
                                               ("False", "True"), REFERENCE["single_crewed"]),
            "resistance": _group_mean_ratio(p, resistance, answered & ~null["resistance"],
                                            RESISTANCE_LEVELS, REFERENCE["resistance"]),
        }
        harm[field] = {
            "baseline": round(baseline[field], 8),
            "baseline_means": "probability for an Early-shift Neighbourhood officer, not single "
                              "crewed, Active resistance, not in an outlier team",
            "rate_ratio": planted,
            "outlier_team_multiplier": OUTLIER_MULTIPLIER if field in OUTLIER_FIELDS else 1.0,
            "expected_marginal_rate_ratio": expected,
            "expected_rate": _finite(p[answered].mean()) if answered.any() else None,
        }
    team_label = np.asarray(org.team_names)
    shown_team = np.where(null["team"], -1, team)
    outlier_list = [{
        "team": str(team_label[t]),
        "force": org.force_names[int(org.force[org.team_start[t]])],
        "area": org.area_names[int(org.team_area[t])],
        "multiplier": OUTLIER_MULTIPLIER,
        "reports": int((shown_team == t).sum()),
    } for t in outliers.tolist()]

    groups = list(TACTIC_GROUPS)
    group_of_tactic = np.array([groups.index(TACTIC_GROUP_OF[t]) for t in TACTICS])

    def share_with(tactic_mask: np.ndarray) -> float | None:
        hit = np.zeros(reports, dtype=bool)
        hit[tactic_rows[tactic_mask]] = True
        return _finite(hit.mean())

    tactic_group = group_of_tactic[tactic_codes]
    handcuff = np.isin(tactic_codes, [_code(TACTICS, c) for c in TACTIC_GROUPS["Restraint"][:2]])
    ced = np.isin(tactic_codes, [_code(TACTICS, c) for c in CED_LADDER])
    marginals = {
        field: _finite(outcome[field][~null[field]].mean()) if (~null[field]).any() else None
        for field in HARM_FIELDS
    }
    marginals.update({
        "restraint": share_with(tactic_group == groups.index("Restraint")),
        "handcuffing": share_with(handcuff),
        "ced": share_with(ced),
        "ced_fired": share_with(tactic_codes == _code(TACTICS, "CED fired")),
        "firearms": share_with(tactic_group == groups.index("Firearms")),
        "unarmed_skills": share_with(tactic_group == groups.index("Unarmed skills")),
        "tactics_per_report": _finite(tactic_rows.size / reports),
        "reports_per_incident": _finite(reports / n_incidents),
    })
    trained = org.trained_day >= 0
    return {
        "seed": seed,
        "reports": reports,
        "start": period.start.strftime("%Y-%m-%d"),
        "months": period.months,
        "generator_version": GENERATOR_VERSION,
        "counts": {"reports": reports, "incidents": int(n_incidents),
                   "officers": int(org.force.size), "teams": len(org.team_names),
                   "tactics": int(tactic_rows.size)},
        **harm,
        "outlier_teams": outlier_list,
        "training": {
            "share_trained": _finite(trained.mean()),
            "effect_on_use_of_force": round(training_effect, 6),
            "measure": "reports per 1,000 officer-shifts",
            "applies": "to an officer's reports from the day after pst_trained_on (the first "
                       "personal safety training event); shifts are drawn independently of "
                       "training, so the rate per officer-month changes by the same amount",
            "course": PST_COURSE,
            "standard_hours": PST_STANDARD_HOURS,
        },
        "national_marginals": marginals,
    }


def _growth_record(growth_months: int, average: float | None) -> dict[str, Any]:
    """Describe how the training effect builds up and its average over the trained officer-months."""
    shape = ("constant: the full effect from the day after training" if not growth_months else
             f"grows: effect x min(1, (m + 1) / {growth_months}) in the m-th calendar month after the "
             f"training month, full from month {growth_months - 1}")
    return {
        "growth_months": int(growth_months),
        "effect_shape": shape,
        "average_effect_on_trained": None if average is None else round(average, 6),
        "average_means": "the planted relative change averaged over the use of force trained officers "
                         "would have had without training, in calendar months after their training month, "
                         "officers trained after the first month of the period (the estimand of an "
                         "estimator that compares them with officers not yet or never trained)",
    }


def _planted(table: Mapping[str, float], column: str) -> dict[str, Any]:
    ref = REFERENCE[column]
    vocab = REPORT_VOCABULARIES[column]
    values = _vector(table, vocab)
    return {"reference": ref,
            "ratios": {v: round(float(values[i] / table[ref]), 6)
                       for i, v in enumerate(vocab) if v != ref}}


# --- output -------------------------------------------------------------------------------


def _with_pandas_metadata(table: pa.Table) -> pa.Table:
    """Attach pandas metadata so `to_pandas` gives nullable booleans and categoricals."""
    empty: dict[str, pd.Series] = {}
    for field in table.schema:
        if pa.types.is_dictionary(field.type):
            dtype: Any = pd.CategoricalDtype(table.column(field.name).chunk(0).dictionary
                                             .to_pylist() if table.num_rows else [])
        elif pa.types.is_boolean(field.type):
            dtype = "boolean"
        elif pa.types.is_floating(field.type):
            dtype = "float64"
        elif pa.types.is_timestamp(field.type):
            dtype = "datetime64[us]"
        elif pa.types.is_string(field.type):
            dtype = "str"
        else:
            dtype = object
        empty[field.name] = pd.Series([], dtype=dtype)
    metadata = pa.Schema.from_pandas(pd.DataFrame(empty), preserve_index=False).metadata
    return table.replace_schema_metadata(metadata)


TABLES = ("reports", "tactics", "officers", "training", "exposure")
EFFECTS = "effects.json"


def write(synthetic: Synthetic, out_dir: str | Path) -> list[Path]:
    """Write the dataset as reports/tactics/officers/training/exposure Parquet and effects.json."""
    out = Path(out_dir)
    # All six files appear together or not at all: a run stopped part-way leaves no truncated Parquet.
    with write_whole_folder(out) as tmp:
        for name in TABLES:
            pq.write_table(getattr(synthetic, name), tmp / f"{name}.parquet", compression="zstd")
        (tmp / EFFECTS).write_text(json.dumps(synthetic.effects, indent=2) + "\n", encoding="utf-8")
    return [out / f"{name}.parquet" for name in TABLES] + [out / EFFECTS]


def is_written(out_dir: str | Path) -> bool:
    """Return True if a folder holds a whole written dataset (every file, every Parquet footer readable)."""
    out = Path(out_dir)
    try:
        for name in TABLES:
            pq.read_metadata(out / f"{name}.parquet")
        json.loads((out / EFFECTS).read_text(encoding="utf-8"))
    except (OSError, ValueError):  # missing, truncated (ArrowInvalid is a ValueError) or not JSON
        return False
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """Generate a synthetic dataset from the command line and write it to a directory."""
    parser = argparse.ArgumentParser(prog="python -m lib.synth", description=__doc__.split("\n")[0])
    parser.add_argument("--reports", type=int, required=True, help="number of reports")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--start", default=DEFAULT_START,
                        help=f"first day of the period (default {DEFAULT_START})")
    parser.add_argument("--months", type=int, default=DEFAULT_MONTHS,
                        help=f"length of the period in months (default {DEFAULT_MONTHS})")
    parser.add_argument("--training-effect", type=float, default=DEFAULT_TRAINING_EFFECT,
                        help="relative change in officers' use-of-force rate after personal safety "
                             f"training, in (-1, 0] (default {DEFAULT_TRAINING_EFFECT})")
    parser.add_argument("--training-growth-months", type=int, default=0,
                        help="months over which the training effect builds up to its full size "
                             "(default 0: the full effect from the day after training)")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    synthetic = generate(args.reports, args.seed, args.start, args.months, args.training_effect,
                         args.training_growth_months)
    write(synthetic, args.out)
    seconds = time.perf_counter() - began
    print(f"wrote {args.reports:,} reports, {synthetic.tactics.num_rows:,} tactics, "
          f"{synthetic.officers.num_rows:,} officers and {synthetic.training.num_rows:,} training "
          f"events to {args.out} in {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
