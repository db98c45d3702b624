"""Home Office national use-of-force tables, read into tidy frames, for national figures to set
beside a force's own.

Sources (see shared/realdata/README.md): the published data tables (.ods, "Police use of force
statistics, England and Wales"), and Resistance Lab's CSV flattenings of Table 14 (tactics by
force and perceived age) and Table 13 (CED use by type and force). Counting units follow the
Home Office: an "incident" is one officer's use-of-force report (the canonical `report`), a
tactic is counted once per incident, and CED (Taser) once per incident at its highest level.

Header rows are found by their content, never by position, since each sheet has title rows
above its header and a Notes block below its data. ':' (not available) is read as null.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from lib.model import schema
from lib.model.forces import FORCES
from lib.model.values import normalise_name

# --- vocabularies ------------------------------------------------------------------------------

NATIONAL, REGION, FORCE = "national", "region", "force"

# Home Office tactic labels that normalise to a canonical tactic's name map by name
# ("Limb / Body restraints" -> "Limb/body restraints"); these are the exceptions. Labels such as
# "CED non-discharge", "Handcuffing not stated" or "Firearms" have no single canonical tactic.
TACTIC_ALIASES: dict[str, str] = {
    "tactical communication with other tactic": "Tactical communication",
}
_CANONICAL_BY_KEY: dict[str, str] = {normalise_name(t): t for t in schema.TACTICS}

# Types of force shown in the tables but left out of the Home Office "Total Tactics".
EXCLUDED_FROM_TOTAL: frozenset[str] = frozenset({"not reported", "tactical communication"})

# Perceived age columns of Table 14 (normalised header -> output column), in band order.
AGE_COLUMNS: dict[str, str] = {
    "under 11 years": "age_0_10",
    "11 17 years": "age_11_17",
    "18 34 years": "age_18_34",
    "35 49 years": "age_35_49",
    "50 64 years": "age_50_64",
    "65 and over": "age_65_and_over",
    "not reported": "age_not_reported",
}
# Canonical age band of each age column (the last, not reported, has none).
AGE_BAND_OF_COLUMN: dict[str, str] = dict(zip(list(AGE_COLUMNS.values())[:-1], schema.AGE_BANDS,
                                              strict=True))

# CED (Taser) use columns of Table 13 (normalised header -> output column).
CED_COLUMNS: dict[str, str] = {
    "total": "total",
    "total non discharge": "total_non_discharge",
    "drawn": "drawn",
    "aimed": "aimed",
    "red dot": "red_dot",
    "arced": "arced",
    "total discharge": "total_discharge",
    "drive stun": "drive_stun",
    "fired": "fired",
    "angled drive stun": "angled_drive_stun",
    "not stated": "not_stated",
    "ced not stated": "not_stated",
}
# The CED levels (one per incident, the highest) and their canonical tactic.
CED_TYPE_TACTIC: dict[str, str] = {
    "drawn": "CED drawn",
    "aimed": "CED aimed",
    "red_dot": "CED red-dot",
    "arced": "CED arced",
    "drive_stun": "CED drive-stun",
    "fired": "CED fired",
    "angled_drive_stun": "CED angle drive-stun",
}

# Words that do not tell forces apart ("Kent Police" is "Kent").
_FORCE_NOISE = frozenset({"police", "constabulary", "service", "force", "and", "the"})
# Forces whose Home Office short name is not their full name less the noise words.
FORCE_ALIASES: dict[str, str] = {
    "hampshire isle of wight": "hampshire",  # renamed in 2022; the HO tables of 2019/20 say Hampshire
}


# --- small helpers -----------------------------------------------------------------------------


def _clean_label(value: object) -> str:
    """Strip spaces, line breaks and the revised-figure marker ' (R)' from a table label."""
    text = re.sub(r"\s+", " ", str(value)).strip()
    return re.sub(r"\s*\(R\)$", "", text)


def _counts(values: pd.Series) -> pd.Series:
    """Read published counts ('998.0', 998, ':') as nullable integers; ':' is not available."""
    numbers = pd.to_numeric(values.astype("string").str.replace(",", "").str.strip(), errors="coerce")
    return numbers.round().astype("Int64")


def force_level(name: str) -> str:
    """Say whether a table row is England and Wales, a region subtotal or one force."""
    key = normalise_name(name)
    if key in ("england and wales", "total england and wales"):
        return NATIONAL
    return REGION if key.startswith("total ") else FORCE


def canonical_tactic(label: str) -> str | None:
    """Return the canonical tactic a Home Office tactic label stands for, or None if none does."""
    key = normalise_name(label)
    return TACTIC_ALIASES.get(key) or _CANONICAL_BY_KEY.get(key)


def _row_kinds(groups: pd.Series, labels: pd.Series, types: pd.Series) -> pd.Series:
    """Classify tactic rows: the all-tactics total, a group total, an ', of which' parent, a leaf.

    A group shown by its total alone (Unarmed skills, Firearms, Not reported) is a leaf.
    """
    keys = labels.map(normalise_name)
    size = labels.groupby(groups, sort=False).transform("size")
    kind = pd.Series("leaf", index=labels.index, dtype="object")
    kind[keys.str.endswith("of which")] = "parent"
    kind[keys.str.startswith("total ") & (size > 1)] = "group"
    kind[types.map(normalise_name).str.startswith("total")] = "total"
    return kind


def _parents(groups: pd.Series, kind: pd.Series, labels: pd.Series) -> pd.Series:
    """Name the ', of which' row each leaf belongs to: the leaves after it, up to '... not stated'."""
    parent: list[str | None] = []
    open_parent: tuple[str, str] | None = None
    for group, row_kind, label in zip(groups, kind, labels, strict=True):
        if row_kind == "parent":
            open_parent = (group, label)
            parent.append(None)
        elif row_kind == "leaf" and open_parent is not None and open_parent[0] == group:
            parent.append(open_parent[1])
            if normalise_name(label).endswith("not stated"):
                open_parent = None
        else:
            open_parent = None
            parent.append(None)
    return pd.Series(parent, index=labels.index, dtype="object")


def _tidy_tactic_rows(frame: pd.DataFrame, group_keys: list[str]) -> pd.DataFrame:
    """Add row kind, subtotal and in-total flags, leaf labels and canonical tactics."""
    types = frame["type_of_force"]
    groups = frame[group_keys].astype(str).agg("|".join, axis=1)
    kind = _row_kinds(groups, frame["tactic"], types)
    leaf = kind == "leaf"
    labels = frame["tactic"].str.lstrip("*").str.strip()
    # A lone group total is the tactic itself: "*Total Unarmed skills" is "Unarmed skills".
    labels = labels.where(~leaf, labels.str.replace(r"^Total\s+", "", regex=True))
    out = frame.assign(tactic=labels, row_kind=kind, parent=_parents(groups, kind, labels))
    out["canonical_tactic"] = labels.where(leaf).map(
        lambda v: canonical_tactic(v) if isinstance(v, str) else None).astype("object")
    out["is_subtotal"] = ~leaf
    out["in_total"] = (kind != "total") & ~types.map(normalise_name).isin(EXCLUDED_FROM_TOTAL)
    return out


def _rename_by_key(frame: pd.DataFrame, names: Mapping[str, str]) -> pd.DataFrame:
    """Rename columns whose normalised header is a key of `names`."""
    return frame.rename(columns={c: names[normalise_name(c)] for c in frame.columns
                                 if normalise_name(c) in names})


def _require(frame: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what}: no column for {', '.join(missing)}")


# --- Table 14 (tactics by force and perceived age) -----------------------------------------------


def _tidy_tactics_by_force(raw: pd.DataFrame, year: str | None = None) -> pd.DataFrame:
    frame = _rename_by_key(raw, {"police force": "force", "type of force": "type_of_force",
                                 "tactic": "tactic", **AGE_COLUMNS,
                                 "number of times tactic reported": "times_reported"})
    _require(frame, ["force", "type_of_force", "tactic", "times_reported"], "tactics by force")
    frame = frame.dropna(subset=["force", "tactic"]).copy()
    for col in ("force", "type_of_force", "tactic"):
        frame[col] = frame[col].map(_clean_label)
    frame["level"] = frame["force"].map(force_level)
    ages = [c for c in AGE_COLUMNS.values() if c in frame.columns]
    for col in [*ages, "times_reported"]:
        frame[col] = _counts(frame[col])
    frame = _tidy_tactic_rows(frame, ["force", "type_of_force"])
    if year is not None:
        frame["year"] = year
    columns = ["force", "level", "type_of_force", "tactic", "parent", "canonical_tactic",
               "row_kind", "is_subtotal", "in_total", "times_reported", *ages]
    return frame[columns + (["year"] if year is not None else [])].reset_index(drop=True)


def read_tactics_by_force(path: str | Path) -> pd.DataFrame:
    """Read Table 14 (times each tactic was reported, by force and perceived age) from its CSV.

    Columns: force, level (national / force), type_of_force, tactic (the Home Office label; a
    lone group total such as "*Total Firearms" becomes "Firearms"), parent (the ", of which"
    row a leaf is part of, else null), canonical_tactic (null where
    no single canonical tactic matches), row_kind (total / group / parent / leaf), is_subtotal,
    in_total (counted in the Home Office "Total Tactics", which leaves out "Not reported" and
    tactical communication), times_reported and the age counts (age_0_10 ... age_not_reported).
    The leaves with in_total add up to each force's total row; subtotals must not be summed.
    """
    return _tidy_tactics_by_force(pd.read_csv(path, dtype=str, encoding="utf-8-sig"))


# --- Table 13 (CED by type and force) ------------------------------------------------------------


def _tidy_ced_by_force(raw: pd.DataFrame) -> pd.DataFrame:
    frame = _rename_by_key(raw, {"financial year": "year", "region": "region",
                                 "police force": "force", **CED_COLUMNS})
    _require(frame, ["region", "force", "total", *CED_TYPE_TACTIC], "CED by force")
    frame = frame.dropna(subset=["force"]).copy()
    frame["region"] = frame["region"].map(_clean_label)
    frame["force"] = frame["force"].map(_clean_label).str.lstrip("*").str.strip()
    frame["level"] = frame["force"].map(force_level)
    counts = list(dict.fromkeys(c for c in CED_COLUMNS.values() if c in frame.columns))
    for col in counts:
        frame[col] = _counts(frame[col])
    lead = (["year"] if "year" in frame.columns else []) + ["region", "force", "level"]
    return frame[lead + counts].reset_index(drop=True)


def read_ced_by_force(path: str | Path) -> pd.DataFrame:
    """Read CED (Taser) use by type and force (Table 13 of one year) from its CSV.

    Columns: region, force (region and national subtotal rows keep their "Total ..." name),
    level (national / region / force), total, total_non_discharge, drawn, aimed, red_dot, arced,
    total_discharge, drive_stun, fired, angled_drive_stun, not_stated. Each incident counts
    once, at its highest level of CED use.
    """
    return _tidy_ced_by_force(pd.read_csv(path, dtype=str, encoding="utf-8-sig"))


# --- the data tables (.ods) ---------------------------------------------------------------------


def financial_year(title: str) -> str | None:
    """Return '2019/20' from a title saying 'year ending March 2020'; None if it says no year."""
    match = re.search(r"year ending March (\d{4})", title)
    if match is None:
        return None
    end = int(match.group(1))
    return f"{end - 1}/{end % 100:02d}"


def _locate_header(sheet: pd.DataFrame, required: tuple[str, ...]) -> int:
    """Return the index of the first row whose cells include every required header name."""
    for i, row in enumerate(sheet.itertuples(index=False)):
        cells = {normalise_name(v) for v in row if isinstance(v, str)}
        if set(required) <= cells:
            return i
    raise ValueError(f"no header row with {', '.join(required)}")


def table_below_header(sheet: pd.DataFrame, required: tuple[str, ...]) -> pd.DataFrame:
    """Cut a sheet read without headers to its table: header row (found by content) to Notes.

    Blank rows, and blank columns without a header, are dropped.
    """
    at = _locate_header(sheet, required)
    header = [_clean_label(v) if isinstance(v, str) else f"column_{j}"
              for j, v in enumerate(sheet.iloc[at])]
    body = sheet.iloc[at + 1:]
    first = body.iloc[:, 0].map(lambda v: normalise_name(v) if isinstance(v, str) else "")
    notes = first.index[first == "notes"]
    if len(notes):
        body = body.loc[: notes[0] - 1] if notes[0] > body.index[0] else body.iloc[:0]
    body = body.dropna(how="all")
    table = pd.DataFrame(body.to_numpy(), columns=header)
    return table.loc[:, [not (c.startswith("column_") and table[c].isna().all()) for c in header]]


def _split_total(frame: pd.DataFrame, label_column: str, what: str,
                 counts: list[str]) -> pd.DataFrame:
    """Drop the 'Total incidents' row after checking that the other rows add up to it."""
    is_total = frame[label_column].map(normalise_name) == "total incidents"
    total, rows = frame[is_total], frame[~is_total]
    if len(total) == 1:
        published = total[counts].iloc[0]
        summed = rows[counts].sum()
        if not (published == summed).all():
            raise ValueError(f"{what}: rows add up to {summed.to_dict()}, "
                             f"not the published total {published.to_dict()}")
    return rows.reset_index(drop=True)


def _tidy_tactics(table: pd.DataFrame, year: str | None) -> pd.DataFrame:
    frame = _rename_by_key(table, {"type of force": "type_of_force", "tactic": "tactic",
                                   "number of times tactic reported": "times_reported",
                                   "number of incidents involving tactic": "incidents"})
    _require(frame, ["type_of_force", "tactic", "times_reported", "incidents"], "Table 1")
    for col in ("type_of_force", "tactic"):
        frame[col] = frame[col].map(_clean_label)
    for col in ("times_reported", "incidents"):
        frame[col] = _counts(frame[col])
    frame = _tidy_tactic_rows(frame, ["type_of_force"])
    frame["year"] = year
    return frame[["type_of_force", "tactic", "parent", "canonical_tactic", "row_kind",
                  "is_subtotal", "in_total", "times_reported", "incidents", "year"]]


def _tidy_officer_injuries(table: pd.DataFrame, year: str | None) -> pd.DataFrame:
    frame = _rename_by_key(table, {
        "officer injured as a result of incident": "officer_injured",
        "intentional assault": "intentional_assault", "total incidents": "incidents",
        "minor": "minor", "severe": "severe", "not reported": "level_not_reported"})
    counts = ["incidents", "minor", "severe", "level_not_reported"]
    _require(frame, ["officer_injured", "intentional_assault", *counts], "Table 10")
    # The injured answer is printed once per block of three assault answers.
    frame["officer_injured"] = frame["officer_injured"].ffill().map(_clean_label)
    frame["intentional_assault"] = frame["intentional_assault"].map(
        lambda v: _clean_label(v) if isinstance(v, str) else v)
    for col in counts:
        frame[col] = _counts(frame[col])
    frame = _split_total(frame, "officer_injured", "Table 10", counts)
    frame["year"] = year
    return frame[["officer_injured", "intentional_assault", *counts, "year"]]


def _tidy_subject_injuries(table: pd.DataFrame, year: str | None) -> pd.DataFrame:
    frame = _rename_by_key(table, {
        "person involved injured as a result of officer use of force": "subject_injured",
        "total incidents": "incidents", "minor": "minor", "severe": "severe", "death": "death",
        "not reported": "level_not_reported"})
    counts = ["incidents", "minor", "severe", "death", "level_not_reported"]
    _require(frame, ["subject_injured", *counts], "Table 11")
    frame["subject_injured"] = frame["subject_injured"].map(_clean_label)
    for col in counts:
        frame[col] = _counts(frame[col])
    frame = _split_total(frame, "subject_injured", "Table 11", counts)
    frame["year"] = year
    return frame[["subject_injured", *counts, "year"]]


def _tidy_incidents_by_force(table: pd.DataFrame, year: str | None) -> pd.DataFrame:
    frame = _rename_by_key(table, {"region": "region", "police force": "force", "total": "incidents"})
    _require(frame, ["region", "force", "incidents"], "Table 12")
    frame["region"] = frame["region"].map(_clean_label)
    frame["force"] = frame["force"].map(_clean_label).str.lstrip("*").str.strip()
    frame["level"] = frame["force"].map(force_level)
    frame["incidents"] = _counts(frame["incidents"])
    frame["year"] = year
    return frame[["region", "force", "level", "incidents", "year"]]


@dataclass(frozen=True)
class OdsTable:
    """One published table: its number, the header names that find it, and how to tidy it."""

    key: str
    number: int
    header: tuple[str, ...]
    tidy: Callable[[pd.DataFrame, str | None], pd.DataFrame]


ODS_TABLES: tuple[OdsTable, ...] = (
    OdsTable("tactics", 1, ("type of force", "tactic", "number of incidents involving tactic"),
             _tidy_tactics),
    OdsTable("officer_injuries", 10,
             ("officer injured as a result of incident", "intentional assault", "total incidents"),
             _tidy_officer_injuries),
    OdsTable("subject_injuries", 11,
             ("person involved injured as a result of officer use of force", "total incidents"),
             _tidy_subject_injuries),
    OdsTable("incidents_by_force", 12, ("region", "police force", "total"), _tidy_incidents_by_force),
    OdsTable("ced_by_force", 13, ("financial year", "region", "police force", "total"),
             lambda t, _year: _tidy_ced_by_force(t)),
    OdsTable("tactics_by_force", 14, ("police force", "type of force", "tactic"),
             lambda t, year: _tidy_tactics_by_force(t, year)),
)


def _sheet_for(sheets: Mapping[str, pd.DataFrame], number: int) -> tuple[pd.DataFrame, str]:
    """Find a table's sheet by the 'Table N.' title in its first cell (else by the sheet name)."""
    pattern = re.compile(rf"^Table {number}\b")
    for sheet in sheets.values():
        if sheet.shape[0] and isinstance(sheet.iat[0, 0], str) and pattern.match(sheet.iat[0, 0].strip()):
            return sheet, sheet.iat[0, 0]
    name = f"Table_{number}"
    if name in sheets:
        return sheets[name], str(sheets[name].iat[0, 0])
    raise ValueError(f"no sheet holds Table {number}")


def read_ods_tables(path: str | Path) -> dict[str, pd.DataFrame]:
    """Read the published data tables (.ods) into tidy frames keyed by what they hold.

    Keys: tactics (Table 1: times_reported and incidents per tactic), officer_injuries
    (Table 10: officer_injured x intentional_assault -> incidents, minor, severe,
    level_not_reported), subject_injuries (Table 11), incidents_by_force (Table 12), ced_by_force
    (Table 13, every year it covers) and tactics_by_force (Table 14, as `read_tactics_by_force`).
    Every frame has a `year` column ('2019/20'). Read with python-calamine.
    """
    sheets = pd.read_excel(path, engine="calamine", sheet_name=None, header=None)
    tables: dict[str, pd.DataFrame] = {}
    for spec in ODS_TABLES:
        sheet, title = _sheet_for(sheets, spec.number)
        tables[spec.key] = spec.tidy(table_below_header(sheet, spec.header), financial_year(title))
    return tables


# --- force names --------------------------------------------------------------------------------


def force_key(name: str) -> str:
    """Reduce a force name to the words that identify it ('Avon & Somerset' -> 'avon somerset')."""
    words = [w for w in normalise_name(name).split() if w not in _FORCE_NOISE]
    key = " ".join(words)
    return FORCE_ALIASES.get(key, key)


def match_force_names(short_names: Iterable[str], full_names: Iterable[str]) -> dict[str, str]:
    """Map each Home Office short force name to the full name that identifies the same force."""
    by_key: dict[str, str] = {}
    for full in full_names:
        by_key.setdefault(force_key(full), full)
    return {short: by_key[force_key(short)] for short in short_names if force_key(short) in by_key}


def synth_force_names(short_names: Iterable[str]) -> dict[str, str]:
    """Map Home Office short force names to the full names the synthetic generator uses."""
    return match_force_names(short_names, (f[0] for f in FORCES))


# --- national benchmarks -----------------------------------------------------------------------


def _national(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["level"] == NATIONAL]


def _share(part: float, whole: float) -> float:
    return float(part) / float(whole) if whole else float("nan")


def national_benchmarks(tables: Mapping[str, pd.DataFrame]) -> dict[str, object]:
    """Return the England and Wales figures of one year to set beside a force's own.

    `tables` is what `read_ods_tables` returns; `read_ced_by_force` or `read_tactics_by_force`
    frames may stand in for its ced_by_force and tactics_by_force (they hold the same figures).
    Keys:
    - year ('2019/20'); incidents (use-of-force reports, Table 12); tactics_reported (times
      tactics were used, leaving out tactical communication and not reported, Table 1).
    - tactic_mix: per canonical tactic, `incidents` involving it (Table 1) over all incidents
      (`incident_share`: the denominator is incidents, i.e. reports, as `query.tactic_counts`
      counts), and `times_reported` over tactics_reported (`times_share`; null for tactical
      communication, which the Home Office leaves out of that total).
    - type_of_force_mix: incidents involving each Home Office type of force, and their share.
    - officer_injured, officer_injured_not_reported, officer_injured_share (injured Yes over all
      incidents, Table 10), officer_injured_share_of_answered (over incidents that answered),
      intentional_assault, intentional_assault_share (over all incidents; most incidents do
      not answer it), injured_and_assaulted_share, severe_share_of_injured (Severe over Minor
      plus Severe, among injured officers).
    - ced_uses (Table 13 total, one per incident at its highest level), ced_by_type (per level:
      uses, share of all CED uses, share of uses whose level is stated), ced_fired_share.
    - force_names: Home Office short force name -> the synthetic data's full force name.
    """
    incidents_frame = tables["incidents_by_force"]
    incidents = int(_national(incidents_frame)["incidents"].iloc[0])
    year = str(incidents_frame["year"].iloc[0])

    t1 = tables["tactics"]
    tactics_reported = int(t1.loc[t1["row_kind"] == "total", "times_reported"].iloc[0])
    leaves = t1[t1["canonical_tactic"].notna()]
    order = {t: i for i, t in enumerate(schema.TACTICS)}
    mix = pd.DataFrame({
        "canonical_tactic": leaves["canonical_tactic"].to_numpy(),
        "tactic_group": leaves["canonical_tactic"].map(schema.TACTIC_GROUP_OF).to_numpy(),
        "incidents": leaves["incidents"].to_numpy(),
        "incident_share": leaves["incidents"].astype("float64").to_numpy() / incidents,
        "times_reported": leaves["times_reported"].to_numpy(),
        "times_share": (leaves["times_reported"].astype("float64") / tactics_reported)
        .where(leaves["in_total"]).to_numpy(),
    })
    mix = mix.sort_values("canonical_tactic", key=lambda s: s.map(order)).reset_index(drop=True)

    # A type of force is a group total, or a lone leaf (Unarmed skills, Firearms, ...).
    size = t1.groupby("type_of_force")["tactic"].transform("size")
    types = t1[(t1["row_kind"] == "group") | ((t1["row_kind"] == "leaf") & (size == 1))]
    type_mix = pd.DataFrame({
        "type_of_force": types["type_of_force"].to_numpy(),
        "in_total": types["in_total"].to_numpy(),
        "incidents": types["incidents"].to_numpy(),
        "incident_share": types["incidents"].astype("float64").to_numpy() / incidents,
    })

    inj = tables["officer_injuries"]
    injured = inj[inj["officer_injured"] == "Yes"]
    injured_count = int(injured["incidents"].sum())
    not_reported = int(inj.loc[inj["officer_injured"] == "Not reported", "incidents"].sum())
    assaulted = int(inj.loc[inj["intentional_assault"] == "Yes", "incidents"].sum())
    both = int(injured.loc[injured["intentional_assault"] == "Yes", "incidents"].sum())
    minor, severe = int(injured["minor"].sum()), int(injured["severe"].sum())

    ced_frame = _national(tables["ced_by_force"])
    if "year" in ced_frame.columns:
        ced_frame = ced_frame[ced_frame["year"] == year]
    ced = ced_frame.iloc[0]
    ced_total = int(ced["total"])
    stated = ced_total - int(ced["not_stated"])
    ced_types = pd.DataFrame({
        "ced_type": list(CED_TYPE_TACTIC),
        "canonical_tactic": list(CED_TYPE_TACTIC.values()),
        "uses": [int(ced[c]) for c in CED_TYPE_TACTIC],
    })
    ced_types["share"] = ced_types["uses"] / ced_total
    ced_types["share_of_stated"] = ced_types["uses"] / stated

    forces = incidents_frame.loc[incidents_frame["level"] == FORCE, "force"]
    return {
        "year": year,
        "incidents": incidents,
        "tactics_reported": tactics_reported,
        "tactic_mix": mix,
        "type_of_force_mix": type_mix,
        "officer_injured": injured_count,
        "officer_injured_not_reported": not_reported,
        "officer_injured_share": _share(injured_count, incidents),
        "officer_injured_share_of_answered": _share(injured_count, incidents - not_reported),
        "intentional_assault": assaulted,
        "intentional_assault_share": _share(assaulted, incidents),
        "injured_and_assaulted_share": _share(both, incidents),
        "severe_share_of_injured": _share(severe, minor + severe),
        "ced_uses": ced_total,
        "ced_by_type": ced_types,
        "ced_fired_share": _share(int(ced["fired"]), ced_total),
        "force_names": synth_force_names(forces),
    }


# --- national figures kept for the app ----------------------------------------------------

BENCHMARK_GLOB = "national-*.json"


def benchmarks_json(bench: Mapping[str, object]) -> str:
    """Return national benchmarks as JSON (frames become lists of records)."""
    def plain(value: object) -> object:
        if isinstance(value, pd.DataFrame):
            return json.loads(value.to_json(orient="records"))
        return value
    return json.dumps({k: plain(v) for k, v in bench.items()}, indent=2, default=str)


def save_benchmarks(bench: Mapping[str, object], directory: Path) -> Path:
    """Keep national benchmarks for one year under DIRECTORY (national-YYYY-YY.json)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"national-{str(bench['year']).replace('/', '-')}.json"
    path.write_text(benchmarks_json(bench))
    return path


def load_benchmarks(directory: Path) -> dict | None:
    """Return the latest year's kept national benchmarks, or None if none were imported."""
    found = sorted(directory.glob(BENCHMARK_GLOB)) if directory.is_dir() else []
    return json.loads(found[-1].read_text()) if found else None


def comparison(summary_rates: Mapping[str, float], tactic_shares: Mapping[str, float],
               bench: Mapping[str, object]) -> pd.DataFrame:
    """Set a dataset's officer-injury share and tactic mix beside the national figures."""
    rows = [{"Measure": "Officer injured (share of reports answering)",
             "This data (%)": summary_rates.get("officer_injured"),
             "England and Wales (%)": bench.get("officer_injured_share_of_answered")},
            {"Measure": "Officer intentionally assaulted (share of reports)",
             "This data (%)": summary_rates.get("officer_assaulted"),
             "England and Wales (%)": bench.get("intentional_assault_share")}]
    for item in bench.get("tactic_mix", []):
        tactic = item.get("canonical_tactic")
        if not tactic or tactic == "Tactical communication":
            continue
        rows.append({"Measure": f"Reports using {tactic}", "This data (%)": tactic_shares.get(tactic, 0.0),
                     "England and Wales (%)": item.get("incident_share")})
    frame = pd.DataFrame(rows)
    for col in ("This data (%)", "England and Wales (%)"):
        frame[col] = (pd.to_numeric(frame[col], errors="coerce") * 100).round(1)
    return frame
