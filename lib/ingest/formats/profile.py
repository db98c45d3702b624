"""Mapping profiles: a declarative (JSON) description of any other extract layout.

A user maps a new layout once in the app and saves the profile; `ProfileFormat` then reads every
later extract of that layout. Shipped profiles live in `lib/ingest/formats/profiles/*.json`.

How a profile reads a file:
- cells are stripped, and `values.NULL_MARKERS` plus the profile's own `null_markers` become null;
- `value_maps` translate source values (matched after `normalise_name`) to canonical ones; a value
  with no entry is kept as written and, where the field has a vocabulary, counted as unmapped;
- a raw row is set aside (quarantined) when its date is missing or unreadable, or when it has no
  report id although the profile names a report id column;
- with `group_by`, the rows that share the report id and the `group_by` values fold into one
  report: tactics come from every row, yes/no fields are True when any row says yes, other fields
  take the first value given. When several reports share one source id they are numbered
  `id/1`, `id/2` ... in file order, so every report id is unique;
- with `list_columns`, cells that list several officers in step ("No | Yes", split at
  `list_separator`) are split first (lib/ingest/formats/lists.py): one report per officer item (x
  subject item with `subject_list_columns`), numbered `id/1`, `id/2` ... in list order, each with the
  row's incident id; a row whose lists disagree in length is set aside with the reason.
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lib.ingest.formats import FILE, ROW, ROWS, Adapted, count_unmapped, empty_quarantine, quarantine_rows
from lib.ingest.formats.lists import ITEM, ITEMS, detect, explode
from lib.model import incidents, schema, values
from lib.model.files import write_whole
from lib.model.kinds import KINDS, empty_frame

PROFILE_DIR = Path(__file__).parent / "profiles"
PROFILE_VERSION = 1
JOIN = " / "  # joins the parts of an area or team read from several columns
ID_JOIN = "-"  # joins the parts of an id read from several columns

# Fields with a column attribute of their own (or a constant); `columns` maps the rest.
SPECIAL_FIELDS = ("report_id", "incident_id", "occurred_at", "shift", "force", "area", "team",
                  "officer_id")
MAPPABLE_FIELDS = tuple(c for c in schema.REPORT_COLUMNS if c not in SPECIAL_FIELDS)
Source = str | list[str]
FOLD_SHARE = 0.05  # rows repeating their report id, officer and subject, above which a proposal folds them


@dataclass
class Profile:
    """How the columns of one source layout become canonical reports and tactics."""

    name: str
    label: str = ""
    force: str | None = None  # constant force name written on every report
    extra_header_rows: int = 0  # rows under the header that repeat it (not data)
    dayfirst: bool = True  # False for US month-first dates
    null_markers: list[str] = field(default_factory=list)  # extra cell texts meaning "not known"
    signature: list[str] = field(default_factory=list)  # header names that identify the layout
    date_column: str | None = None  # date, or date and time in one cell
    time_column: str | None = None  # time of day, when separate from the date
    shift_column: str | None = None
    shift_map: dict[str, str | None] = field(default_factory=dict)  # label -> Early/Late/Night/null
    report_id_column: Source | None = None
    incident_id_column: Source | None = None
    officer_id_column: Source | None = None
    area_column: Source | None = None
    team_column: Source | None = None
    group_by: list[str] = field(default_factory=list)  # with the report id: one report per group
    columns: dict[str, Source] = field(default_factory=dict)  # other canonical field -> column(s)
    value_maps: dict[str, dict[str, Any]] = field(default_factory=dict)  # field -> {source: value}
    flag_columns: dict[str, dict[str, str]] = field(default_factory=dict)  # list field -> {yes/no col: item}
    incident_level: list[str] = field(default_factory=list)  # fields recorded once per incident, copied to each report
    tactic_columns: list[str] = field(default_factory=list)  # each cell may be a comma-list
    tactic_map: dict[str, str] = field(default_factory=dict)  # source tactic -> schema tactic
    effective_column: str | None = None
    effective_is_list: bool = False  # a comma-list aligned by position with the tactics of the row
    list_columns: list[str] = field(default_factory=list)  # cells listing the officers' values in step
    subject_list_columns: list[str] = field(default_factory=list)  # cells listing the subjects' values
    list_separator: str = " | "  # between the items of a list cell (items are stripped)
    confidence: dict[str, float] = field(default_factory=dict)  # field -> 0..1, from propose_profile
    notes: list[str] = field(default_factory=list)  # caveats passed on to every load

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise ValueError(f"profile '{self.name}': " + "; ".join(problems))

    def problems(self) -> list[str]:
        """Return what is wrong with this profile (empty when it can be used)."""
        out = []
        shapes = {"columns": dict, "value_maps": dict, "flag_columns": dict, "tactic_map": dict,
                  "shift_map": dict, "confidence": dict, "group_by": list, "tactic_columns": list,
                  "null_markers": list, "signature": list, "notes": list, "list_columns": list,
                  "subject_list_columns": list}
        wrong = [k for k, kind in shapes.items() if not isinstance(getattr(self, k), kind)]
        if wrong:
            return [f"{k} must be a JSON {'object' if shapes[k] is dict else 'list'}" for k in wrong]
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", self.name or ""):
            out.append("name must be letters, digits, '_', '.' or '-'")
        unknown = sorted(set(self.columns) - set(MAPPABLE_FIELDS))
        if unknown:
            out.append(f"columns: unknown canonical field(s) {', '.join(unknown)}")
        for fld, table in self.value_maps.items():
            if fld not in schema.REPORT_COLUMNS and fld != "effective":
                out.append(f"value_maps: unknown canonical field {fld}")
                continue
            kind = "bool" if fld == "effective" else schema.REPORT_COLUMNS[fld]
            vocab = schema.REPORT_VOCABULARIES.get(fld) or schema.LIST_VOCABULARIES.get(fld)
            for source, target in table.items():
                bad = _bad_target(target, kind, vocab)
                if bad:
                    out.append(f"value_maps.{fld}: '{source}' -> {target!r} {bad}")
        bad_flags = sorted(set(self.flag_columns) - set(schema.LIST_VOCABULARIES))
        if bad_flags:
            out.append(f"flag_columns: {', '.join(bad_flags)} is not a list field")
        for source, target in self.tactic_map.items():
            if target not in schema.TACTICS:
                out.append(f"tactic_map: '{source}' -> '{target}' is not a Home Office tactic")
        for source, target in self.shift_map.items():
            if target is not None and target not in schema.SHIFTS:
                out.append(f"shift_map: '{source}' -> '{target}' is not one of {', '.join(schema.SHIFTS)}")
        if self.extra_header_rows < 0:
            out.append("extra_header_rows must not be negative")
        out += incidents.problems(self.incident_level)
        if self.incident_level and not self.incident_id_column:
            out.append("incident_level needs an incident_id_column: fields recorded per incident are counted "
                       "in incidents")
        return out + self.list_problems()

    def list_problems(self) -> list[str]:
        """Return what is wrong with the list columns (cells that list several officers or subjects)."""
        listed = [*self.list_columns, *self.subject_list_columns]
        if not listed:
            return []
        out = []
        if not all(isinstance(c, str) and c for c in listed):
            return ["list_columns and subject_list_columns must be lists of column names"]
        if not isinstance(self.list_separator, str) or not self.list_separator.strip():
            out.append("list_separator must be a visible text such as ' | ' or ';'")
        elif self.list_separator.strip() == ",":
            out.append("list_separator cannot be ',': a comma separates the items of one officer's cell "
                       "(tactics, reasons)")
        both = sorted(set(self.list_columns) & set(self.subject_list_columns))
        if both:
            out.append(f"{', '.join(both)}: listed with the officers and with the subjects")
        once = [*_as_list(self.date_column), *_as_list(self.time_column), *_as_list(self.report_id_column),
                *_as_list(self.incident_id_column)]
        per_row = sorted(set(listed) & set(once))
        if per_row:
            out.append(f"{', '.join(per_row)}: the date, time, report id and incident id are recorded once "
                       "per row, not listed per officer")
        return out

    def to_json(self) -> str:
        """Write this profile as indented JSON."""
        return json.dumps({"version": PROFILE_VERSION, **asdict(self)}, indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Profile:
        """Read a profile written by `to_json` (or by hand)."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("a profile is a JSON object")
        version = data.pop("version", PROFILE_VERSION)
        if version != PROFILE_VERSION:
            raise ValueError(f"profile version {version} is not supported (expected {PROFILE_VERSION})")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown profile key(s): {', '.join(unknown)}")
        return cls(**data)

    def source_columns(self) -> list[str]:
        """Return every source column this profile reads."""
        out: list[str] = []
        for src in (self.date_column, self.time_column, self.shift_column, self.report_id_column,
                    self.incident_id_column, self.officer_id_column, self.area_column, self.team_column,
                    *self.columns.values(), self.group_by, self.tactic_columns, self.effective_column,
                    *(list(f) for f in self.flag_columns.values())):
            out += _as_list(src)
        return list(dict.fromkeys(out))


def _bad_target(target: Any, kind: str, vocab: tuple[str, ...] | None) -> str:
    if target is None:
        return ""
    if kind == "bool":
        return "" if isinstance(target, bool) else "must be true, false or null"
    items = target if kind == "list" and isinstance(target, list) else [target]
    if not all(isinstance(t, str) for t in items):
        return "must be text" + (" or a list of text" if kind == "list" else "")
    if vocab and any(t not in vocab for t in items):
        return "is not in the vocabulary"
    return ""


def _as_list(source: Source | None) -> list[str]:
    if source is None:
        return []
    return [source] if isinstance(source, str) else list(source)


def load_profile(path: Path | str) -> Profile:
    """Read one profile from a JSON file."""
    path = Path(path)
    try:
        return Profile.from_json(path.read_text(encoding="utf-8"))
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path.name}: {exc}") from exc


def save_profile(profile: Profile, directory: Path | str) -> Path:
    """Write a profile to DIRECTORY/<name>.json and return the path."""
    directory = Path(directory)
    path = directory / f"{profile.name}.json"
    with write_whole(path) as tmp:
        tmp.write_text(profile.to_json(), encoding="utf-8")
    return path


def shipped_profiles() -> list[Profile]:
    """Return the profiles shipped with the app, in name order."""
    return [load_profile(p) for p in sorted(PROFILE_DIR.glob("*.json"))]


# --- reading a file with a profile -------------------------------------------------------


class ProfileFormat:
    """A `Format` that reads any layout described by a mapping profile."""

    def __init__(self, profile: Profile, bounds: schema.ShiftBoundaries | None = None) -> None:
        self.profile = profile
        self.bounds = bounds
        self.name = f"profile:{profile.name}"
        self.label = profile.label or profile.name
        self.extra_header_rows = profile.extra_header_rows

    def score(self, columns: list[str]) -> float:
        """Return the share of the profile's signature columns that the header holds."""
        wanted = {values.normalise_name(c) for c in (self.profile.signature or self.profile.source_columns())}
        if not wanted:
            return 0.0
        have = {values.normalise_name(c) for c in columns}
        return len(wanted & have) / len(wanted)

    def adapt(self, raw: pd.DataFrame) -> Adapted:
        """Turn a raw extract into canonical reports and tactics as the profile says."""
        p = self.profile
        if not (p.list_columns or p.subject_list_columns):
            adapted = _Reader(p, raw, self.bounds).read()
            adapted.incident_level = list(incidents.normalised(p.incident_level))
            return adapted
        # One row per officer item (x subject item) first; the reader then reads items as rows.
        split = explode(raw, [p.list_columns, p.subject_list_columns], p.list_separator)
        adapted = _Reader(p, split.frame, self.bounds).read()
        set_aside = split.set_aside.assign(**{ITEMS: pd.Series(pd.NA, index=split.set_aside.index,
                                                               dtype="Int64")})
        adapted.quarantine = pd.concat([set_aside, adapted.quarantine], ignore_index=True)
        adapted.items_in = split.items_in
        adapted.rows_lists_disagree = len(split.set_aside)
        listed = ", ".join([*p.list_columns, *p.subject_list_columns])
        adapted.mapping["lists"] = f"{listed}: items split at '{p.list_separator.strip()}', one report each"
        if split.rows_split:
            adapted.notes.append(f"{split.rows_split:,} row(s) list several officers (or subjects) in "
                                 f"{listed}: each item was read as one report ({split.items_in:,} items "
                                 f"from {len(raw) - len(split.set_aside):,} rows)")
        if len(split.set_aside):
            adapted.notes.append(f"{len(split.set_aside):,} row(s) set aside: their lists disagree in length")
        # A harm field read from a column that is not listed per officer was recorded once for the whole row
        # (the incident) and is copied to each officer's report: counted per report it would be multiplied by
        # the officers present, so it is counted in incidents.
        once = [f for f in schema.HARM_FIELDS if f in p.columns
                and not set(_as_list(p.columns[f])) & {*p.list_columns, *p.subject_list_columns}]
        adapted.incident_level = list(incidents.normalised([*p.incident_level, *once]))
        added = [f for f in once if f not in p.incident_level]
        if added:
            adapted.notes.append(f"{', '.join(schema.HARM_FIELDS[f] for f in added)}: one answer per row, not "
                                 "listed per officer, so counted in incidents")
        return adapted


class _Reader:
    """One pass of a profile over one raw frame (keeps the working state out of ProfileFormat)."""

    def __init__(self, profile: Profile, raw: pd.DataFrame, bounds: schema.ShiftBoundaries | None) -> None:
        self.p = profile
        self.raw = raw
        self.bounds = bounds
        self.notes: list[str] = list(profile.notes)
        self.mapping: dict[str, str] = {}
        self.unmapped: dict[str, dict[str, int]] = {}
        self._clean_cache: dict[str, pd.Series] = {}
        self._nulls = {m.strip().lower() for m in profile.null_markers}
        missing = [c for c in profile.source_columns() if c not in raw.columns]
        if missing:
            self.notes.append(f"column(s) named in profile '{profile.name}' but not in the file: "
                              + ", ".join(missing))

    # cells ------------------------------------------------------------------------------

    def clean(self, column: str) -> pd.Series:
        """Return a column's cells stripped, with null markers as null (all null if absent)."""
        if column not in self._clean_cache:
            if column not in self.raw.columns:
                cells = pd.Series(pd.NA, index=self.raw.index, dtype="string")
            else:
                cells = values.blank_to_null(self.raw[column])
                if self._nulls:
                    cells = cells.mask(cells.str.lower().isin(self._nulls))
            self._clean_cache[column] = cells
        return self._clean_cache[column]

    def joined(self, source: Source | None, sep: str = JOIN) -> pd.Series:
        """Return the text of one column, or of several joined with a separator (null if all empty)."""
        cols = _as_list(source)
        if not cols:
            return pd.Series(pd.NA, index=self.raw.index, dtype="string")
        if len(cols) == 1:
            return self.clean(cols[0])
        out = self.clean(cols[0])
        for col in cols[1:]:
            part = self.clean(col)
            out = (out + sep + part).fillna(out).fillna(part)
        return out

    def text_field(self, fld: str, source: Source | None, sep: str = JOIN) -> pd.Series:
        """Return a text field with its value map applied."""
        cells = self.joined(source, sep)
        if source:
            self.mapping[fld] = _describe(source)
        table = self.p.value_maps.get(fld)
        if not table:
            return cells
        mapped = _map_values(cells, table)
        return pd.Series([v if isinstance(v, str) else pd.NA for v in mapped], index=cells.index,
                         dtype="string")

    # the pass -----------------------------------------------------------------------------

    def read(self) -> Adapted:
        """Quarantine unreadable rows, parse the rest, fold them into reports and list the tactics."""
        p, raw = self.p, self.raw
        occurred, minutes, reason = self.when()
        report_base = (self.joined(p.report_id_column, ID_JOIN) if p.report_id_column
                       else pd.Series(pd.NA, index=raw.index, dtype="string"))
        if p.report_id_column:
            reason[report_base.isna() & reason.isna()] = (f"{_describe(p.report_id_column)} is empty "
                                                          "(no report id)")
        bad = reason.notna()
        quarantine = quarantine_rows(raw, bad, reason) if bad.any() else empty_quarantine()
        # Split list rows: each item is one entry, and only a row's first item carries the raw row.
        listed = ITEM in raw.columns
        weight = (raw[ITEM] == 1).astype("int64") if listed else pd.Series(1, index=raw.index)
        if listed:
            quarantine = quarantine.assign(**{ROWS: weight[bad].to_numpy(dtype="int64"),
                                              ITEMS: pd.array(np.ones(int(bad.sum()), dtype="int64"),
                                                              dtype="Int64")})
        keep = reason.isna()
        kept = raw.index[keep]
        if not len(kept):
            return self.empty(quarantine)

        rows = pd.DataFrame(index=kept)
        rows["occurred_at"] = occurred[keep]
        rows["shift"] = self.shift(occurred, minutes)[keep]
        rows["force"] = pd.Series(p.force, index=kept, dtype="string")
        if p.force:
            self.mapping["force"] = f"constant '{p.force}'"
        rows["incident_id"] = self.text_field("incident_id", p.incident_id_column, ID_JOIN)[keep]
        if listed and not p.incident_id_column:  # the items of one row are one incident
            rows["incident_id"] = self.row_ids(report_base)[keep]
            self.mapping["incident_id"] = (f"{_describe(p.report_id_column)} (the row listing the officers)"
                                           if p.report_id_column else "file name and data row number")
        rows["officer_id"] = self.text_field("officer_id", p.officer_id_column, ID_JOIN)[keep]
        rows["area"] = self.text_field("area", p.area_column)[keep]
        rows["team"] = self.text_field("team", p.team_column)[keep]
        for fld in MAPPABLE_FIELDS:
            rows[fld] = self.field(fld)[keep]

        group = self.groups(report_base, keep)
        reports = self.fold(rows, group)
        reports.insert(0, "report_id", self.report_ids(report_base[keep], group, raw.loc[kept]))
        first = group.drop_duplicates().index
        carried = weight[kept].groupby(group.to_numpy(), sort=False).sum()
        reports.insert(0, ROWS, carried.reindex(group[first]).to_numpy(dtype="int64"))
        if listed:
            items = group.value_counts(sort=False).reindex(group[first]).to_numpy(dtype="int64")
            reports.insert(0, ITEMS, pd.array(items, dtype="Int64"))
        reports.insert(0, ROW, raw.loc[first, ROW].to_numpy(dtype="int64"))
        reports.insert(0, FILE, pd.array(raw.loc[first, FILE].astype(str).to_numpy(), dtype="string"))
        reports = reports.reset_index(drop=True)
        reports = reports[[FILE, ROW, ROWS, *([ITEMS] if listed else []), *schema.REPORT_COLUMNS]]

        tactics = self.tactics(kept, group, reports["report_id"])
        self.count_unmapped(reports, tactics)
        tactics = schema.apply_ced_highest_use(tactics).reset_index(drop=True)
        tactics["tactic_group"] = tactics["tactic"].map(schema.TACTIC_GROUP_OF).astype("string")
        tactics = tactics[["report_id", "tactic", "tactic_group", "effective"]]
        return Adapted(reports, tactics, quarantine, self.mapping, self.unmapped, self.notes,
                       officer_id_columns=_as_list(self.p.officer_id_column))

    def empty(self, quarantine: pd.DataFrame) -> Adapted:
        """Return empty canonical tables (every row was quarantined)."""
        reports = pd.DataFrame({FILE: pd.Series(dtype="string"), ROW: pd.Series(dtype="int64"),
                                ROWS: pd.Series(dtype="int64")})
        if ITEM in self.raw.columns:
            reports[ITEMS] = pd.Series(dtype="Int64")
        for col, kind in schema.REPORT_COLUMNS.items():
            reports[col] = KINDS[kind].empty()
        tactics = empty_frame(schema.TACTIC_COLUMNS)
        return Adapted(reports, tactics, quarantine, self.mapping, self.unmapped, self.notes,
                       officer_id_columns=_as_list(self.p.officer_id_column))

    # when ---------------------------------------------------------------------------------

    def when(self) -> tuple[pd.Series, pd.Series, pd.Series]:
        """Return occurred_at, minutes after midnight (null when the time is unknown), and the
        quarantine reason for rows whose date is missing or unreadable (null when fine)."""
        p, idx = self.p, self.raw.index
        if not p.date_column:
            reason = pd.Series("the profile names no date column", index=idx, dtype="string")
            return pd.Series(pd.NaT, index=idx, dtype="datetime64[us]"), pd.Series(dtype="Float64"), reason
        text = self.clean(p.date_column)
        date_text, time_text = text, None
        if p.time_column:
            time_text = self.clean(p.time_column)
            self.mapping["occurred_at"] = f"{p.date_column} + {p.time_column}"
        else:
            # A date-time in one cell: read the date part and the clock part separately.
            parts = text.str.extract(DATE_TIME)
            has_time = parts[0].notna()
            date_text = text.where(~has_time, parts[0])
            time_text = parts[1].astype("string")
            self.mapping["occurred_at"] = p.date_column
        dates = values.to_datetime(date_text, dayfirst=p.dayfirst, strict=True)
        minutes = values.to_time_minutes(time_text) if time_text is not None else pd.Series(
            pd.NA, index=idx, dtype="Float64")
        if p.time_column:
            unreadable = time_text.notna() & minutes.isna()
            if unreadable.any():
                sample = time_text[unreadable].iloc[0]
                self.notes.append(f"{int(unreadable.sum())} row(s): {p.time_column} is not a time "
                                  f"(e.g. '{sample}'); their time and shift are left unknown")
        occurred = values.combine_date_time(dates, minutes)
        reason = pd.Series(pd.NA, index=idx, dtype="string")
        if p.date_column not in self.raw.columns:
            reason[:] = f"date column {p.date_column} is not in the file"
        else:
            reason[text.isna()] = f"{p.date_column} is empty"
            bad = text.notna() & dates.isna()
            reason[bad] = (f"{p.date_column} '" + text[bad].str.slice(0, 40) + "' is not a date")
            # A date that reads only the other way round: say so, rather than read one column two ways.
            other = bad & values.to_datetime(date_text.where(bad), dayfirst=not p.dayfirst, strict=True).notna()
            if other.any():
                reason[other] = (f"{p.date_column} '" + text[other].str.slice(0, 40) + "' is not a date "
                                 + ("day first (as 23/06/2014), the order the mapping reads"
                                    if p.dayfirst else "month first (as 06/23/2014), the order the mapping reads"))
        return occurred, minutes, reason

    def shift(self, occurred: pd.Series, minutes: pd.Series) -> pd.Series:
        """Return the shift the data gives, else the one derived from a known time of day."""
        p = self.p
        given = pd.Series(pd.NA, index=self.raw.index, dtype="string")
        described = []
        if p.shift_column:
            cells = self.clean(p.shift_column)
            mapped = _map_values(cells, p.shift_map)
            given = pd.Series([v if isinstance(v, str) else pd.NA for v in mapped], index=cells.index,
                              dtype="string")
            described.append(f"{p.shift_column} (mapped)")
        known_time = minutes.notna() if len(minutes) else pd.Series(False, index=self.raw.index)
        if known_time.any():
            # Never from a midnight default: rows without a time of day get no derived shift.
            derived = schema.derive_shift(occurred.where(known_time), self.bounds).astype("string")
            given = given.fillna(derived)
            described.append("derived from the time of day" if not described
                             else "else derived from the time of day")
        if described:
            self.mapping["shift"] = ", ".join(described)
        return given

    # fields -------------------------------------------------------------------------------

    def field(self, fld: str) -> pd.Series:
        """Return one mappable canonical field for every raw row, parsed to its canonical type."""
        kind = schema.REPORT_COLUMNS[fld]
        source = self.p.columns.get(fld)
        flags = self.p.flag_columns.get(fld, {})
        idx = self.raw.index
        if kind == "list":
            return self.list_field(fld, _as_list(source), flags)
        if not source:
            return pd.Series(pd.NA, index=idx, dtype=KINDS[kind].pandas)
        self.mapping[fld] = _describe(source)
        cells = self.joined(source)
        table = self.p.value_maps.get(fld, {})
        mapped = _map_values(cells, table) if table else cells
        if kind == "bool":
            as_text = pd.Series([("yes" if v else "no") if isinstance(v, bool | np.bool_) else v
                                 for v in mapped], index=idx, dtype="string")
            return KINDS[kind].parse(as_text)
        if kind == "float":
            return KINDS[kind].parse(pd.Series(mapped, index=idx, dtype="string")).astype(KINDS[kind].pandas)
        text = pd.Series([v if isinstance(v, str) else pd.NA for v in mapped], index=idx, dtype="string")
        if fld == "subject_age_band":
            return _age_bands(text)
        return text

    def list_field(self, fld: str, sources: list[str], flags: dict[str, str]) -> pd.Series:
        """Return a list field from comma-list columns and yes/no flag columns."""
        parts = []
        table = self.p.value_maps.get(fld, {})
        for col in sources:
            items = values.split_list(self.clean(col)).explode().dropna()
            if table:
                items = pd.Series(_map_values(items.astype("string"), table), index=items.index,
                                  dtype=object).explode()
            items = items[items.map(lambda v: isinstance(v, str))]
            parts.append(pd.DataFrame({"item": items}))
        for col, item in flags.items():
            yes = values.to_bool(self.clean(col)).fillna(False).astype(bool)
            parts.append(pd.DataFrame({"item": item}, index=self.raw.index[yes]))
        described = [_describe(sources)] if sources else []
        described += [f"{col} = yes -> {item}" for col, item in flags.items()]
        if described:
            self.mapping[fld] = "; ".join(described)
        return _collect_lists(parts, self.raw.index)

    # folding ------------------------------------------------------------------------------

    def groups(self, report_base: pd.Series, keep: pd.Series) -> pd.Series:
        """Return a report number for every kept raw row (equal numbers fold into one report)."""
        kept = self.raw.index[keep]
        if not self.p.group_by:
            return pd.Series(np.arange(len(kept)), index=kept)
        keys = pd.DataFrame({"_id": report_base[keep].fillna("")}, index=kept)
        for col in self.p.group_by:
            keys[col] = self.clean(col)[keep].fillna("")
        number = keys.groupby(list(keys.columns), sort=False, dropna=False).ngroup()
        self.mapping["report_id"] = (f"{_describe(self.p.report_id_column) or 'file'}: one report per "
                                     f"distinct {' + '.join(self.p.group_by)}")
        return number

    def fold(self, rows: pd.DataFrame, group: pd.Series) -> pd.DataFrame:
        """Fold the rows of each group into one report; note fields whose rows disagree."""
        if group.is_unique:
            return rows.reset_index(drop=True)
        by = rows.groupby(group.to_numpy(), sort=False)
        out = pd.DataFrame(index=pd.RangeIndex(group.nunique()))
        for col in rows.columns:
            kind = schema.REPORT_COLUMNS.get(col, "string")
            if kind == "bool":
                # Any yes makes the report yes: a folded harm flag must not lose an injury.
                out[col] = by[col].max().reset_index(drop=True).astype("boolean")
            elif kind == "list":
                out[col] = _union_lists(rows[col], group, len(out))
            else:
                out[col] = by[col].first().reset_index(drop=True).astype(rows[col].dtype)
        self.note_disagreements(group)
        return out

    def note_disagreements(self, group: pd.Series) -> None:
        """Note source columns whose values differ between rows folded into one report."""
        tactic_side = set(self.p.tactic_columns) | {self.p.effective_column}
        cols = [c for c in self.p.source_columns() if c in self.raw.columns and c not in tactic_side]
        if not cols:
            return
        cells = pd.DataFrame({c: self.clean(c)[group.index] for c in cols})
        differ = cells.groupby(group.to_numpy(), sort=False).nunique() > 1
        counts = differ.sum()
        for col, n in counts[counts > 0].items():
            self.notes.append(f"{int(n)} report(s): the rows folded into one report disagree on {col}; "
                              "the first value given is kept (for yes/no fields: yes if any row says yes)")

    def row_ids(self, report_base: pd.Series) -> pd.Series:
        """Return each raw row's own id: its report id, else its file name and data row number."""
        if self.p.report_id_column:
            return report_base.astype("string")
        stems = self.raw[FILE].astype(str).map(lambda f: Path(f).stem)
        return (stems + "-" + self.raw[ROW].astype(str)).astype("string")

    def report_ids(self, base: pd.Series, group: pd.Series, kept_raw: pd.DataFrame) -> pd.Series:
        """Return one unique id per report: the source id, numbered /1, /2 ... where it repeats."""
        first = group.drop_duplicates().index
        if self.p.report_id_column:
            ids = base[first].astype("string").reset_index(drop=True)
            self.mapping.setdefault("report_id", _describe(self.p.report_id_column))
        else:
            stems = kept_raw.loc[first, FILE].astype(str).map(lambda f: Path(f).stem)
            ids = (stems + "-" + kept_raw.loc[first, ROW].astype(str)).astype("string").reset_index(drop=True)
            self.mapping.setdefault("report_id", "file name and data row number")
        repeats = ids.duplicated(keep=False)
        if repeats.any():
            number = ids.groupby(ids, sort=False).cumcount() + 1
            shared = int(ids[repeats].nunique())
            ids = ids.where(~repeats, ids + "/" + number.astype(str))
            if ITEM in self.raw.columns:
                self.notes.append(f"{shared} id(s) cover several officers' reports ({int(repeats.sum())} "
                                  "reports); those reports are numbered id/1, id/2 ... in list order")
                return ids.astype("string")
            self.notes.append(f"{shared} source id(s) cover several reports ({int(repeats.sum())} reports); "
                              "those reports are numbered id/1, id/2 ... in file order")
        return ids.astype("string")

    # tactics ------------------------------------------------------------------------------

    def tactics(self, kept: pd.Index, group: pd.Series, report_ids: pd.Series) -> pd.DataFrame:
        """Return one row per tactic per report, each with its effectiveness where known."""
        p = self.p
        parts = []
        for order, col in enumerate(p.tactic_columns):
            items = values.split_list(self.clean(col)[kept]).explode().dropna()
            if len(items):
                parts.append(pd.DataFrame({"row": items.index, "col": order, "source": items.to_numpy()}))
        if not parts:
            return pd.DataFrame({"report_id": pd.Series(dtype="string"), "tactic": pd.Series(dtype="string"),
                                 "effective": pd.Series(dtype="boolean")})
        self.mapping["tactic"] = _describe(p.tactic_columns)
        long = pd.concat(parts, ignore_index=True)
        long["item"] = long.groupby(["row", "col"], sort=False).cumcount()
        long = long.sort_values(["row", "col", "item"], kind="stable").reset_index(drop=True)
        long["position"] = long.groupby("row", sort=False).cumcount()
        long["effective"] = self.effectiveness(long, kept)
        long["tactic"] = _map_values(long["source"], p.tactic_map)
        long["report"] = group.reindex(long["row"]).to_numpy()
        # Each tactic counts once per report; it was effective if it worked in any row.
        eff = long["effective"].astype("Float64")
        folded = (long.assign(eff=eff).groupby(["report", "tactic"], sort=False)["eff"].max().reset_index())
        effective = folded["eff"].map(lambda v: pd.NA if pd.isna(v) else bool(v)).astype("boolean")
        return pd.DataFrame({"report_id": report_ids.iloc[folded["report"].to_numpy()].to_numpy(),
                             "tactic": folded["tactic"].astype("string"),
                             "effective": effective}).astype({"report_id": "string"})

    def effectiveness(self, long: pd.DataFrame, kept: pd.Index) -> pd.Series:
        """Return the effectiveness of each tactic in `long` (null where not recorded)."""
        p = self.p
        none = pd.Series(pd.NA, index=long.index, dtype="boolean")
        if not p.effective_column:
            return none
        table = p.value_maps.get("effective", {})
        cells = self.clean(p.effective_column)[kept]
        if p.effective_is_list:
            items = values.split_list(cells).explode().dropna()
            frame = pd.DataFrame({"row": items.index, "value": items.to_numpy()})
            frame["position"] = frame.groupby("row", sort=False).cumcount()
            given = frame.groupby("row").size()
            used = long.groupby("row").size()
            aligned = given.reindex(used.index).eq(used)
            misaligned = used.index[~aligned.to_numpy()]
            if len(misaligned):
                self.notes.append(f"{len(misaligned)} row(s): {p.effective_column} does not list one value "
                                  "per tactic; their effectiveness is left unknown")
            merged = long[["row", "position"]].merge(frame, on=["row", "position"], how="left")
            merged.loc[merged["row"].isin(misaligned), "value"] = pd.NA
            text = merged["value"]
            self.mapping["effective"] = f"{p.effective_column} (list aligned with the tactics)"
        else:
            text = cells.reindex(long["row"]).reset_index(drop=True)
            self.mapping["effective"] = p.effective_column
        text = pd.Series(text.to_numpy(), index=long.index, dtype="string")
        mapped = _map_values(text, table) if table else text
        as_text = pd.Series([("yes" if v else "no") if isinstance(v, bool | np.bool_) else v
                             for v in mapped], index=long.index, dtype="string")
        return values.to_bool(as_text)

    # accounting ---------------------------------------------------------------------------

    def count_unmapped(self, reports: pd.DataFrame, tactics: pd.DataFrame) -> None:
        """Count, per field, the values (in reports, or tactics) outside the canonical vocabulary."""
        for fld, vocab in schema.REPORT_VOCABULARIES.items():
            found = count_unmapped(reports[fld], vocab)
            if found:
                self.unmapped[fld] = found
        for fld, vocab in schema.LIST_VOCABULARIES.items():
            found = count_unmapped(reports[fld].explode(), vocab)
            if found:
                self.unmapped[fld] = found
        found = count_unmapped(tactics["tactic"], schema.TACTICS)
        if found:
            self.unmapped["tactic"] = found


def _describe(source: Source | None) -> str:
    cols = _as_list(source)
    if len(cols) > 2 and all(re.fullmatch(r".*?\d+", c) for c in cols):
        return f"{cols[0]}..{cols[-1]}"
    return " + ".join(cols)


def _map_values(cells: pd.Series, table: dict[str, Any]) -> list[Any]:
    """Translate cells through a value map matched on normalised text; others stay as written."""
    lookup = {values.normalise_name(k): v for k, v in table.items()}
    seen: dict[Any, Any] = {}
    out = []
    for v in cells.tolist():
        if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
            out.append(None)
            continue
        if v not in seen:
            key = values.normalise_name(v)
            seen[v] = lookup[key] if key in lookup else v
        out.append(seen[v])
    return out


def _collect_lists(parts: list[pd.DataFrame], index: pd.Index) -> pd.Series:
    """Gather (row, item) pieces, given in source order, into one de-duplicated list per row."""
    found: dict[Any, dict[str, None]] = {}
    for part in parts:
        for row, item in zip(part.index, part["item"], strict=True):
            found.setdefault(row, {})[item] = None
    return pd.Series([list(found.get(i, ())) for i in index], index=index, dtype=object)


def _union_lists(lists: pd.Series, group: pd.Series, n: int) -> list[list[str]]:
    """Return, for each of n groups, the de-duplicated union of its rows' lists in row order."""
    found: list[dict[str, None]] = [{} for _ in range(n)]
    for g, items in zip(group.to_numpy(), lists, strict=True):
        for item in items:
            found[g][item] = None
    return [list(d) for d in found]


_AGE_EDGES = (0, 11, 18, 35, 50, 65, 200)


def _age_bands(text: pd.Series) -> pd.Series:
    """Put ages written as numbers into the national age bands; other text stays as written."""
    age = values.to_number(text).astype("float64")
    band = pd.cut(age, bins=list(_AGE_EDGES), right=False, labels=list(schema.AGE_BANDS))
    banded = band.astype("string")
    return text.where(age.isna(), banded)


# --- proposing a profile from an unseen extract ------------------------------------------

SUBJECT_WORDS = ("subject", "subj", "suspect", "citizen", "cit", "person", "detainee", "arrestee")
OFFICER_WORDS = ("officer", "off", "staff", "constable", "pc", "employee", "ofcr")

# field -> (word groups that must all appear in the header, words that must not, kind of values)
HEADER_RULES: dict[str, tuple[tuple[tuple[str, ...], ...], tuple[str, ...], str]] = {
    "officer_injured": ((OFFICER_WORDS, ("injur",)), ("type", "desc", "hospital", "level") + SUBJECT_WORDS,
                        "yesno"),
    "subject_injured": ((SUBJECT_WORDS, ("injur",)), ("type", "desc", "hospital", "level") + OFFICER_WORDS,
                        "yesno"),
    "officer_assaulted": ((("assault",),), ("type", "desc"), "yesno"),
    "single_crewed": ((("single", "crew", "crewed", "alone"),), (), "yesno"),
    "ced_trained": ((("ced", "taser", "cew"), ("train",)), (), "yesno"),
    "subject_physical_disability": ((("physical",), ("disab", "health", "condition")), (), "yesno"),
    "subject_mental_disability": ((("mental",),), (), "yesno"),
    "subject_gender": ((SUBJECT_WORDS, ("gender", "sex")), OFFICER_WORDS, "text"),
    "subject_ethnicity": ((SUBJECT_WORDS, ("race", "ethnic", "ethnicity")), OFFICER_WORDS, "text"),
    "subject_age_band": ((SUBJECT_WORDS, ("age", "ageband", "agegroup")), OFFICER_WORDS, "text"),
    "officer_role": ((("role", "duty", "assignment"),), (), "text"),
    "location_type": ((("location", "premises", "place"), ("type",)), (), "text"),
    "resistance": ((("resistance", "resist"),), ("reason",), "text"),
    "length_of_service_years": ((("years", "year", "length", "tenure"),
                                 ("service", "force", "served", "tenure", "experience")), (), "number"),
    "officer_injury_level": ((OFFICER_WORDS, ("injur",), ("level", "severity")), (), "text"),
    "subject_injury_level": ((SUBJECT_WORDS, ("injur",), ("level", "severity")), (), "text"),
    "reasons": ((("reason",),), ("incident", "call", "stop"), "text"),
    "impact_factors": ((("influenc", "impact", "factor", "impair"),), (), "text"),
}
AREA_WORDS = ("division", "district", "borough", "bcu", "area", "region", "precinct", "command", "sector",
              "ward", "beat")  # most likely first
TEAM_WORDS = ("team", "unit", "platoon", "squad", "section", "relief", "watch", "group")

GENDER_SYNONYMS = {"male": "Male", "m": "Male", "man": "Male", "female": "Female", "f": "Female",
                   "woman": "Female", "other": "Other", "non binary": "Other"}
ETHNICITY_PREFIXES = (("white", "White"), ("w", "White"), ("black", "Black (or Black British)"),
                      ("b", "Black (or Black British)"), ("african", "Black (or Black British)"),
                      ("caribbean", "Black (or Black British)"), ("asian", "Asian (or Asian British)"),
                      ("pakistani", "Asian (or Asian British)"), ("bangladeshi", "Asian (or Asian British)"),
                      ("chinese", "Asian (or Asian British)"), ("mixed", "Mixed"), ("other", "Other"),
                      ("american ind", "Other"))
IMPACT_RULES = ((r"\balc\w*|\bdrunk|intoxicat", "Alcohol"),
                (r"\bdrug|marijuana|cannabis|narcotic", "Drugs"),
                (r"\bmental", "Mental health"),
                (r"(?<!un)armed\b(?<!if armed)|weapon|\bgun\b|knife", "Possession of a weapon"),
                (r"behaviou?ral disorder|\babd\b|excited delirium", "Acute behavioural disorder"),
                (r"\bcrowd", "Crowd"))
REASON_RULES = ((r"arrest", "Effect arrest"), (r"escape|flight|flee", "Prevent escape"),
                (r"search|frisk", "Effect search"), (r"(protect|defen[cs]e).*self|battery on police|"
                                                     r"assault.*officer|active aggression", "Protect self"),
                (r"protect.*public|other person|reporting person", "Protect public"),
                (r"danger|harm", "Prevent harm"), (r"entry", "Method of entry"),
                (r"prevent.*offen|property destruction", "Prevent offence"), (r"^other$", "Other"))
# Source tactic wording -> Home Office tactic; first match wins, so specific rules come first.
TACTIC_RULES: tuple[tuple[str, str], ...] = (
    (r"spit", "Spit and bite guard"),
    (r"\bshield", "Shield"),
    (r"(taser|\bcew\b|\bced\b|stun gun|conducted energy).*drive stun|^drive stun", "CED drive-stun"),
    (r"(taser|\bcew\b|\bced\b).*\barc", "CED arced"),
    (r"(taser|\bcew\b|\bced\b).*(laser|red dot)", "CED red-dot"),
    (r"(taser|\bcew\b|\bced\b).*(aim|point|display|exhibit)", "CED aimed"),
    (r"(taser|\bcew\b|\bced\b).*draw", "CED drawn"),
    (r"taser|\bcew\b|\bced\b|stun gun|conducted energy", "CED fired"),
    (r"(canine|\bk ?9\b|\bdog).*\bbite\b(?<!no bite)", "Dog bite"),
    (r"canine|\bk ?9\b|\bdog", "Dog deployed"),
    (r"pepper ?ball|\boc\b|pava|\bcs\b|irritant|spray|\bmace", "Irritant spray used"),
    (r"\baep\b|baton round|attenuating|bean ?bag|\b40 ?mm", "AEP used"),
    (r"baton|\bpr ?24|\basp\b|nightstick", "Baton used"),
    (r"(firearm|\bgun\b|rifle|shotgun|pistol|handgun).*(discharg|fired|\bshot)", "Firearm fired"),
    (r"firearm|\bgun\b|rifle|shotgun|pistol|handgun|weapon display|weapon drawn", "Firearm aimed"),
    (r"impact weapon|vehicle|improvis", "Other/improvised"),
    (r"leg restraint|limb|body restraint|fetter|hobble|restraint system", "Limb/body restraints"),
    (r"held .*down|ground|\bpin", "Ground restraint"),
    (r"non compliant handcuff", "Non-compliant handcuffing"),
    (r"compliant handcuff", "Compliant handcuffing"),
    (r"take ?down|strike|punch|kick|\bhands?\b|joint lock|pressure point|escort|grab|push|trip|\bbd\b|"
     r"unarmed|restraint hold|wrist|arm lock|defen[cs]e tech|knee|elbow|palm", "Unarmed skills"),
    (r"verbal|command|communicat|negotiat|warning", "Tactical communication"),
    (r"^other$", "Other/improvised"),
)
SHIFT_WORDS = (("earl", "Early"), ("morning", "Early"), ("day", "Early"), ("late", "Late"),
                         ("afternoon", "Late"), ("evening", "Late"), ("night", "Night"))


def propose_tactic(text: str) -> str | None:
    """Return the Home Office tactic a source tactic most likely means, or None."""
    norm = values.normalise_name(text)
    for pattern, tactic in TACTIC_RULES:
        if re.search(pattern, norm):
            if tactic == "Baton used" and re.search(r"display|drawn|\bdraw\b", norm):
                return "Baton drawn"
            if tactic == "Irritant spray used" and re.search(r"display|drawn|\bdraw\b", norm):
                return "Irritant spray drawn"
            return tactic
    return None


def propose_shift(label: str, bounds: schema.ShiftBoundaries | None = None) -> str | None:
    """Return the shift a source shift label names ('Between 7am-3pm' -> Early), or None."""
    norm = values.normalise_name(label)
    if not norm or "unknown" in norm:
        return None
    start = re.search(r"(\d{1,2})(?::?(\d{2}))?\s*(am|pm|a|p)?\b", label.lower())
    if start:
        hour, minute = int(start.group(1)), int(start.group(2) or 0)
        half = start.group(3) or ""
        if half.startswith("p") and hour < 12:
            hour += 12
        if half.startswith("a") and hour == 12:
            hour = 0
        if hour < 24 and minute < 60:
            ts = pd.Series([pd.Timestamp(2000, 1, 1, hour, minute)])
            # The label names the shift's start; a few minutes in avoids boundary ambiguity.
            return str(schema.derive_shift(ts + pd.Timedelta(minutes=30), bounds).iloc[0])
    for word, shift in SHIFT_WORDS:
        if re.search(rf"\b{word}", norm):
            return shift
    return None


def _impact_items(text: str) -> list[str] | None:
    norm = values.normalise_name(text)
    if norm in ("none", "none detected", "no", "nil") or "unarmed" in norm:
        return []
    found = [target for pattern, target in IMPACT_RULES if re.search(pattern, norm)]
    return found or None


def _reason(text: str) -> str | None:
    norm = values.normalise_name(text)
    return next((target for pattern, target in REASON_RULES if re.search(pattern, norm)), None)


def _ethnicity(text: str) -> str | None:
    norm = values.normalise_name(text)
    for prefix, target in ETHNICITY_PREFIXES:
        if norm == prefix or (len(prefix) > 1 and norm.startswith(prefix)):
            return target
    return None


@dataclass
class _Sniff:
    """What the header and a sample of values say about one source column."""

    name: str
    norm: str
    tokens: tuple[str, ...]
    sample: pd.Series
    distinct_values: list[str]  # every distinct value (up to 500), for proposing value maps
    date_share: float
    time_share: float
    yesno_share: float
    number_share: float
    distinct: int
    unique_share: float
    month_first: int  # cells whose second number exceeds 12 (so the month comes first)
    day_first: int  # cells whose first number exceeds 12

    def says(self, *groups: tuple[str, ...]) -> bool:
        """Return whether every group has a word that starts a header token."""
        return all(any(_word_in(w, self.tokens) for w in group) for group in groups)


def _word_in(word: str, tokens: tuple[str, ...]) -> bool:
    if " " in word:
        return word in " ".join(tokens)
    return any(t == word or (len(word) >= 4 and t.startswith(word)) or _misspelt(word, t) for t in tokens)


def _misspelt(word: str, token: str) -> bool:
    """Return whether a header token is the word with one letter dropped, added or changed ("occured").

    Only for words of six letters or more, starting with the same letter: a short word is one letter
    from too many others ("date" and "data", "rank" and "race").
    """
    if len(word) < 6 or not token or token[0] != word[0] or abs(len(word) - len(token)) > 1 or word == token:
        return False
    if len(word) == len(token):
        return sum(a != b for a, b in zip(word, token, strict=True)) == 1
    short, long_ = (word, token) if len(word) < len(token) else (token, word)
    return any(long_[:i] + long_[i + 1:] == short for i in range(len(long_)))


DATE_TIME = re.compile(r"^(\S+)[ T](\d{1,2}[:.]\d{2}.*)$")  # a date and a clock time in one cell


def date_part(cells: pd.Series) -> pd.Series:
    """Return the date part of cells that may hold a date and a time ("06/07/2014 10:30:00 PM")."""
    parts = cells.astype("string").str.strip().str.extract(DATE_TIME)
    return cells.astype("string").str.strip().where(parts[0].isna(), parts[0])


@dataclass(frozen=True)
class DateOrder:
    """What a date column's own values say about the order of day and month.

    `month_first` counts cells like 06/23/2014 (the second number is over 12, so it cannot be a month),
    `day_first` cells like 23/06/2014. `dayfirst` is the order the values prove (None when no value settles
    it, or when both kinds occur); `ambiguous` counts the cells that read both ways (both numbers 12 or less).
    """

    month_first: int
    day_first: int
    ambiguous: int
    examples: tuple[str, ...]  # a few cells that settle the order (or, when none does, that read both ways)

    @property
    def dayfirst(self) -> bool | None:
        if self.month_first and not self.day_first:
            return False
        if self.day_first and not self.month_first:
            return True
        return None


def date_order(cells: pd.Series, limit: int = 500_000) -> DateOrder:
    """Read the order of day and month from a column's values (up to `limit` of its distinct cells)."""
    text = values.blank_to_null(cells).dropna().drop_duplicates()
    text = date_part(text.head(limit))
    parts = text.str.extract(r"^(\d{1,2})[/.-](\d{1,2})[/.-]\d{2,4}$")
    first, second = pd.to_numeric(parts[0], errors="coerce"), pd.to_numeric(parts[1], errors="coerce")
    month_first, day_first = second > 12, first > 12
    both = (first <= 12) & (second <= 12) & (first >= 1) & (second >= 1)
    settling = text[month_first ^ day_first]
    shown = settling if len(settling) else text[both]
    return DateOrder(int(month_first.sum()), int(day_first.sum()), int(both.sum()),
                     tuple(str(v) for v in shown.head(3)))


def _sniff(name: str, cells: pd.Series, limit: int = 2000) -> _Sniff:
    text = values.blank_to_null(cells).dropna()
    sample = text.head(limit) if len(text) > limit else text
    n = max(len(sample), 1)
    norm = values.normalise_name(name)
    dates = values.to_datetime(date_part(sample), dayfirst=False) if len(sample) else sample
    looks_dated = sample.str.contains(r"\d{1,4}[/.-]\d{1,2}[/.-]\d{1,4}|\d{1,2} [A-Za-z]{3}", regex=True)
    order = date_order(sample)  # the sample's; the chosen date column's whole is read in propose_profile
    yesno = values.to_bool(values.split_list(sample).explode().dropna().astype("string")) if len(sample) \
        else sample
    return _Sniff(
        name=name, norm=norm, tokens=tuple(norm.split()), sample=sample,
        distinct_values=[str(v) for v in text.drop_duplicates().head(500)],
        date_share=float((dates.notna() & looks_dated).sum() / n) if len(sample) else 0.0,
        time_share=float(values.to_time_minutes(sample).notna().sum() / n) if len(sample) else 0.0,
        yesno_share=float(yesno.notna().mean()) if len(yesno) else 0.0,
        number_share=float(values.to_number(sample).notna().sum() / n) if len(sample) else 0.0,
        distinct=int(text.nunique()), unique_share=float(text.nunique() / max(len(text), 1)),
        month_first=order.month_first, day_first=order.day_first,
    )


def _extra_header_rows(raw: pd.DataFrame, columns: list[str], limit: int = 3) -> int:
    """Count leading rows that repeat a header: text where the column below holds numbers or dates."""
    rest = raw.iloc[limit:limit + 500]
    typed = []
    for col in columns:
        below = values.blank_to_null(rest[col]).dropna()
        if len(below) >= 5 and (values.to_number(below).notna().mean() > 0.9
                                or values.to_datetime(below, dayfirst=False).notna().mean() > 0.9):
            typed.append(col)
    if len(typed) < 2:
        return 0
    count = 0
    for i in range(min(limit, len(raw))):
        row = raw.iloc[[i]]
        fails = sum(1 for col in typed
                    if pd.isna(values.to_number(row[col]).iloc[0])
                    and pd.isna(values.to_datetime(row[col], dayfirst=False).iloc[0])
                    and pd.notna(values.blank_to_null(row[col]).iloc[0]))
        if fails / len(typed) < 0.5:
            break
        count += 1
    return count


def propose_profile(raw: pd.DataFrame, name: str) -> Profile:
    """Propose a mapping for an unseen extract from its header names and its values.

    `Profile.confidence` says, per canonical field, how sure the proposal is (0..1), so the app can
    ask the user to check the unsure ones.
    """
    columns = [c for c in raw.columns if c not in (FILE, ROW)]
    extra = _extra_header_rows(raw, columns)
    body = raw.iloc[extra:]
    # Cells listing several officers in step are judged item by item (a "No | Yes" cell is yes/no).
    found = detect(body, columns)
    listed = found.columns if found else []
    items = explode(body, [listed], found.separator).frame if found else body
    sniffs = {c: _sniff(c, items[c] if c in listed else body[c]) for c in columns}
    used: set[str] = set()
    conf: dict[str, float] = {}
    notes: list[str] = []

    def take(col: str | None, fld: str, confidence: float) -> str | None:
        if col is not None:
            used.add(col)
            conf[fld] = round(confidence, 2)
        return col

    # when
    date_col = _best(sniffs, used, _date_score)
    take(date_col, "occurred_at", _date_score(sniffs[date_col]) if date_col else 0)
    dayfirst = True
    if date_col:
        s = date_order(body[date_col])  # every value of the column, not the sample: the first rows may not settle it
        dayfirst = not (s.month_first > 0 and s.day_first == 0)
        if s.month_first == 0 and s.day_first == 0:
            notes.append(f"{date_col}: no date settles whether the day or the month comes first, so day first "
                         "(UK) is assumed: check the order of day and month")
            conf["dayfirst"] = 0.5
        else:
            conf["dayfirst"] = 0.95
    time_col = _best(sniffs, used, _time_score)
    take(time_col, "time", _time_score(sniffs[time_col]) if time_col else 0)
    shift_col = _best(sniffs, used, lambda s: 0.9 if s.says(("shift", "tour")) else 0.0)
    shift_map: dict[str, str | None] = {}
    if shift_col:
        labels = sniffs[shift_col].distinct_values
        shift_map = {str(v): propose_shift(str(v)) for v in labels}
        known = sum(1 for v in shift_map.values() if v) / max(len(shift_map), 1)
        take(shift_col, "shift", 0.5 + 0.4 * known)

    # who and where
    report_col = _best(sniffs, used, _report_id_score)
    take(report_col, "report_id", _report_id_score(sniffs[report_col]) if report_col else 0)
    incident_col = _best(sniffs, used, lambda s: 0.8 if s.says(("incident", "occurrence", "event"),
                                                                ("number", "num", "no", "id", "ref",
                                                                 "reference")) else 0.0)
    take(incident_col, "incident_id", 0.8)
    officer_col = _best(sniffs, used, _officer_id_score)
    take(officer_col, "officer_id", _officer_id_score(sniffs[officer_col]) if officer_col else 0)
    area_col = _best(sniffs, used, _area_score)
    take(area_col, "area", _area_score(sniffs[area_col]) if area_col else 0)
    team_col = _best(sniffs, used, lambda s: 0.6 if s.says(TEAM_WORDS) and 1 < s.distinct <= 500 else 0.0)
    take(team_col, "team", 0.6)

    # tactics
    tactic_cols = [c for c, s in sniffs.items() if c not in used and _is_tactic_header(s)]
    if not tactic_cols:  # nothing named like a tactic: look for columns whose values read as tactics
        tactic_cols = [c for c, s in sniffs.items() if c not in used and s.distinct
                       and _tactic_value_share(s) >= 0.6]
        conf["tactic"] = 0.5 if tactic_cols else 0.0
    else:
        conf["tactic"] = 0.9
    used.update(tactic_cols)
    cells = pd.Series([v for c in tactic_cols for v in sniffs[c].distinct_values], dtype="string")
    tactic_values = list(dict.fromkeys(str(v) for v in values.split_list(cells).explode().dropna()))
    tactic_map = {v: t for v in tactic_values if (t := propose_tactic(v))}
    if tactic_cols:
        conf["tactic_map"] = round(len(tactic_map) / max(len(tactic_values), 1), 2)
    effective_col = _best(sniffs, used, lambda s: 0.9 if s.says(("effective", "effectiveness", "success"))
                          and s.yesno_share >= 0.7 else 0.0)
    take(effective_col, "effective", 0.9)
    effective_is_list = bool(effective_col and sniffs[effective_col].sample.str.contains(",").mean() > 0.05)

    # other fields
    cols: dict[str, Source] = {}
    value_maps: dict[str, dict[str, Any]] = {}
    for fld, (groups, avoid, kind) in HEADER_RULES.items():
        def score(s: _Sniff, groups=groups, avoid=avoid, kind=kind) -> float:
            if not s.says(*groups) or any(_word_in(w, s.tokens) for w in avoid):
                return 0.0
            fits = {"yesno": s.yesno_share, "number": s.number_share, "text": 1.0}[kind]
            return 0.0 if fits < 0.7 else 0.6 + 0.3 * fits
        col = _best(sniffs, used, score)
        if col is None and fld == "impact_factors":  # values like 'Alcohol', 'Mentally unstable'
            col = _best(sniffs, used, lambda s: _impact_share(s) if s.distinct <= 60 else 0.0)
            col = col if col and _impact_share(sniffs[col]) >= 0.6 else None
        if col is None:
            continue
        confidence = score(sniffs[col]) or 0.6
        if fld == "reasons":
            # Prefer the reason for force over the reason for the encounter.
            forceful = [c for c in sniffs if c not in used and score(sniffs[c])
                        and sniffs[c].says(("force", "uof", "tactic"))]
            col = forceful[0] if forceful else col
        schema_kind = schema.REPORT_COLUMNS[fld]
        cols[fld] = [col] if schema_kind == "list" else col
        take(col, fld, confidence)
        table = _propose_values(fld, sniffs[col].distinct_values)
        if table:
            value_maps[fld] = table
    flags = _propose_outcome_flags(sniffs, used)
    if flags:
        conf["outcomes"] = 0.6

    # A report id is proposed only if it is unique. One that repeats names the incident (or file) the rows
    # belong to: each row is then one report, numbered by file and row, unless the rows of one officer and
    # subject repeat too (one row per tactic), when they fold into one report by those columns.
    group_by: list[str] = []
    generated = False
    if report_col and sniffs[report_col].distinct < len(values.blank_to_null(body[report_col]).dropna()):
        repeated = sniffs[report_col]
        if incident_col is None:
            incident_col = take(report_col, "incident_id", 0.8)
        descriptors = [c for c, s in sniffs.items() if c != report_col and _is_descriptor(s)]
        if officer_col:
            descriptors = [officer_col] + [c for c in descriptors if not sniffs[c].says(OFFICER_WORDS)]
        # One row per tactic (New Orleans) repeats an officer and subject in most incidents; a few repeats
        # (Dallas: 1%, two subjects alike) are separate reports that folding would merge.
        if not listed and body[[report_col, *descriptors]].duplicated().mean() >= FOLD_SHARE:
            group_by = descriptors
            conf["group_by"] = 0.4
            notes.append(f"{report_col} repeats ({repeated.distinct:,} distinct values in {len(body):,} rows), "
                         "and so do its officer and subject columns: rows are folded into one report by "
                         "them: check the grouping")
        else:
            used.discard(report_col) if report_col != incident_col else None
            conf.pop("report_id", None)
            notes.append(f"{report_col} repeats ({repeated.distinct:,} distinct values in {len(body):,} rows), "
                         "so it is not a report id: it is read as the incident id, and each row is one report, "
                         "numbered by file and row")
            report_col, generated = None, True
    if not report_col and not generated:
        notes.append("no report id column found: reports are numbered by file and row")
    notes.append("force is not in the data: name the force before loading")
    conf["force"] = 0.0
    once = {date_col, time_col, report_col, incident_col}
    listed = [c for c in listed if c not in once]
    if found and len(listed) >= 2:
        conf["lists"] = round(0.5 + 0.4 * found.agreement, 2)
        notes.append(f"{found.rows_split:,} sampled rows list several officers in one cell, separated by "
                     f"'{found.separator.strip()}', in {', '.join(listed)}: each item is read as one officer's "
                     f"report (the lists agree in {found.agreement:.0%} of those rows); check the list columns")
    else:
        listed = []

    return Profile(
        name=_slug(name), label=name, force=None, extra_header_rows=extra, dayfirst=dayfirst,
        signature=[c for c in columns if c in used][:12] or columns[:12],
        date_column=date_col, time_column=time_col, shift_column=shift_col, shift_map=shift_map,
        report_id_column=report_col, incident_id_column=incident_col, officer_id_column=officer_col,
        area_column=area_col, team_column=team_col, group_by=group_by, columns=cols, value_maps=value_maps,
        flag_columns={"outcomes": flags} if flags else {}, tactic_columns=tactic_cols, tactic_map=tactic_map,
        effective_column=effective_col, effective_is_list=effective_is_list, confidence=conf, notes=notes,
        list_columns=listed, list_separator=found.separator if found else " | ",
    )


def _slug(name: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name.strip()).strip("-.")
    return slug or "profile"


def _best(sniffs: dict[str, _Sniff], used: set[str], score) -> str | None:
    """Return the unused column with the highest positive score (first in file order on ties)."""
    best, best_score = None, 0.0
    for col, s in sniffs.items():
        if col in used:
            continue
        value = score(s)
        if value > best_score:
            best, best_score = col, value
    return best


def _date_score(s: _Sniff) -> float:
    if s.date_share < 0.8:
        return 0.0
    score = 0.5 + 0.2 * s.says(("date", "occurred", "datetime", "when", "dt"))
    score += 0.2 * s.says(("incident", "occur", "occurred", "event", "offence", "offense", "uof", "force"))
    score -= 0.4 * s.says(("hire", "birth", "dob", "join", "joined", "appointed", "entered", "created",
                           "updated", "modified", "closed", "received"))
    return max(score, 0.0)


def _time_score(s: _Sniff) -> float:
    if s.time_share < 0.8 or s.date_share > 0.5:
        return 0.0
    return 0.6 + 0.3 * s.says(("time", "hour", "clock"))


def _report_id_score(s: _Sniff) -> float:
    named = s.says(("report", "file", "uof", "form", "reference", "ref", "case", "incident", "record",
                    "urn"), ("number", "num", "no", "id", "ref", "reference", "urn", "uof"))
    if not named or s.says(("officer", "subject", "suspect", "citizen")):
        return 0.0
    return 0.5 + 0.4 * s.unique_share


def _officer_id_score(s: _Sniff) -> float:
    ident = ("id", "number", "num", "no", "badge", "collar", "payroll", "ref", "warrant", "pseudonym")
    named = s.says(OFFICER_WORDS, ident) or s.says(("badge", "collar"))
    if not named or s.says(("age", "years", "year", "race", "gender", "sex", "name", "rank")):
        return 0.0
    return 0.9 if s.distinct > 1 else 0.5


def _area_score(s: _Sniff) -> float:
    for rank, word in enumerate(AREA_WORDS):
        if _word_in(word, s.tokens) and 1 < s.distinct <= 300:
            # Prefer the most likely word, then the coarser of two columns named alike.
            return 0.9 - 0.04 * rank - 0.0001 * s.distinct
    return 0.0


def _is_tactic_header(s: _Sniff) -> bool:
    if s.says(("reason", "effective", "level", "number", "cycles", "years", "year", "count")):
        return False
    return s.says(("tactic", "tactics")) or s.says(("force", "uof"), ("type", "used", "tactic", "method"))


def _tactic_value_share(s: _Sniff) -> float:
    items = values.split_list(s.sample).explode().dropna().astype(str)
    if not len(items) or s.yesno_share > 0.5 or s.number_share > 0.5:
        return 0.0
    found = {v: propose_tactic(v) is not None for v in items.unique()}
    return float(items.map(found).mean())


def _impact_share(s: _Sniff) -> float:
    if not len(s.sample) or s.yesno_share > 0.5 or s.number_share > 0.5:
        return 0.0
    found = {v: _impact_items(v) is not None for v in s.sample.unique()}
    return float(sum(found[v] for v in s.sample) / len(s.sample))


def _is_descriptor(s: _Sniff) -> bool:
    who = s.says(OFFICER_WORDS) or s.says(SUBJECT_WORDS)
    what = s.says(("race", "ethnic", "ethnicity", "gender", "sex", "age", "years", "service", "build",
                   "height", "id", "number"))
    return who and what and not s.says(("injur", "hospital", "arrest", "charges"))


def _propose_values(fld: str, distinct: list[str]) -> dict[str, Any]:
    """Propose a value map for the values a column holds, where a translation is clear."""
    if fld == "subject_gender":
        table = {v: GENDER_SYNONYMS.get(values.normalise_name(v)) for v in distinct}
        return {k: v for k, v in table.items() if v and v != k}
    if fld == "subject_ethnicity":
        return {v: t for v in distinct if (t := _ethnicity(v)) and t != v}
    if fld == "impact_factors":
        items = values.split_list(pd.Series(distinct, dtype="string")).explode().dropna().unique()
        out: dict[str, Any] = {}
        for v in items:
            found = _impact_items(str(v))
            if found is not None and found != [v]:
                out[str(v)] = found[0] if len(found) == 1 else found
        return out
    if fld == "reasons":
        items = values.split_list(pd.Series(distinct, dtype="string")).explode().dropna().unique()
        return {str(v): t for v in items if (t := _reason(str(v))) and t != v}
    return {}


def _propose_outcome_flags(sniffs: dict[str, _Sniff], used: set[str]) -> dict[str, str]:
    flags = {}
    for col, s in sniffs.items():
        if col in used or s.yesno_share < 0.9 or s.says(OFFICER_WORDS):
            continue
        if s.says(("arrest", "arrested")):
            flags[col] = "Arrested"
        elif s.says(("hospital", "hospitalised", "hospitalized", "hospitalization", "hospitalisation")):
            flags[col] = "Hospitalised"
        elif s.says(("escaped", "escape", "made off")):
            flags[col] = "Made off/escaped"
        else:
            continue
        used.add(col)
    return flags
