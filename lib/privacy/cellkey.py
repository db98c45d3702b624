"""The cell key method: small, repeatable adjustments to published counts, so differences between queries are noisy.

Threshold suppression protects one table, not a viewer's many overlapping questions: two periods, or a
filter and its complement, subtract to the hidden cell. The cell key method (ONS, Census 2021 outputs)
answers that:

- every report carries a fixed random **record key** from 0 to 255 (`record_keys`: a keyed hash of its
  report id under the installation's secret key, so it is the same in every version of a dataset, after
  every append and in every session, and cannot be worked out without the key);
- a count's **cell key** is the sum of the record keys of the reports it counts, modulo 256;
- the published **perturbation table** (`data/perturbation_table.csv`, made by `table()`) maps the
  count and its cell key to an adjustment from -3 to +3.

The same set of reports always gets the same answer, however the question is asked, so repeating or
rephrasing a query reveals nothing; a difference between two overlapping counts carries both their
adjustments, so it is no longer the hidden value. Zero stays zero and a count of at least one is never
published as zero; the adjustment averages zero (counts are unbiased), is at most 3, and is 0 three
times in ten. Rates and intervals are then computed from the adjusted counts.
"""
from __future__ import annotations

import csv
import hashlib
import hmac
import io
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

BASE = 256  # record and cell keys run from 0 to BASE - 1
MAX_ADJUSTMENT = 3
# The chance of each adjustment (-3..+3) for a count large enough to take any of them.
WEIGHTS = {0: 0.30, 1: 0.20, 2: 0.10, 3: 0.05}
KEY_SUFFIX = "__ck"  # beside a count column `c`, the sum of its reports' record keys is `c__ck`
RECORD_KEY = "record_key"  # the reports table's column of record keys
TABLE_FILE = Path(__file__).resolve().parents[2] / "data" / "perturbation_table.csv"
METHOD = "cell key perturbation (ONS Census 2021 method)"
_LABEL = b"officer-safety-explorer record keys v1"


def key_column(count: str) -> str:
    """Return the name of the key-sum column that goes with a count column."""
    return f"{count}{KEY_SUFFIX}"


def _row_adjustments(value: int) -> np.ndarray:
    """Return the adjustment for each cell key (0..BASE-1) of a count of this value (the last row: and above)."""
    reach = 0 if value <= 0 else min(MAX_ADJUSTMENT, value - 1)  # never below one, never to zero
    weights = {a: WEIGHTS[a] for a in range(reach + 1)}
    total = weights[0] + 2 * sum(w for a, w in weights.items() if a)
    # Symmetric whole numbers of keys, so every row averages zero exactly; zero takes what is left.
    side = {a: int(round(BASE * w / total)) for a, w in weights.items() if a}
    keys = {0: BASE - 2 * sum(side.values()), **side, **{-a: n for a, n in side.items()}}
    return np.repeat(np.array(sorted(keys)), [keys[a] for a in sorted(keys)])


TOP_ROW = MAX_ADJUSTMENT + 1  # every count of this value or more uses this row
TABLE = np.vstack([_row_adjustments(v) for v in range(TOP_ROW + 1)]).astype(np.int64)


def table() -> list[dict[str, object]]:
    """Return the perturbation table as published: value, cell key range, adjustment."""
    rows: list[dict[str, object]] = []
    for value in range(TOP_ROW + 1):
        adjustments = TABLE[value]
        start = 0
        for key in range(1, BASE + 1):
            if key == BASE or adjustments[key] != adjustments[start]:
                rows.append({"value": f"{value}+" if value == TOP_ROW else str(value),
                             "cell_key_from": start, "cell_key_to": key - 1,
                             "adjustment": int(adjustments[start])})
                start = key
    return rows


def table_csv() -> str:
    """Return the perturbation table as CSV text (what data/perturbation_table.csv holds)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["value", "cell_key_from", "cell_key_to", "adjustment"],
                            lineterminator="\n")
    writer.writeheader()
    writer.writerows(table())
    return out.getvalue()


def adjustments(values: np.ndarray | Sequence[int], key_sums: np.ndarray | Sequence[int]) -> np.ndarray:
    """Return each count's adjustment: the table's entry for its value and cell key (key sum modulo BASE)."""
    v = np.asarray(values, dtype=np.int64)
    k = np.mod(np.asarray(key_sums, dtype=np.int64), BASE)
    return TABLE[np.clip(v, 0, TOP_ROW), k]


def perturb(values: np.ndarray | Sequence[int], key_sums: np.ndarray | Sequence[int]) -> np.ndarray:
    """Return the published counts: each true count plus its adjustment."""
    v = np.asarray(values, dtype=np.int64)
    return v + adjustments(v, key_sums)


def perturb_one(value: int, key_sum: int) -> int:
    """Return one published count."""
    return int(perturb(np.array([value]), np.array([key_sum]))[0])


def perturb_frame(frame: pd.DataFrame, counts: Sequence[str],
                  nested: Sequence[tuple[str, str]] = ()) -> pd.DataFrame:
    """Return a frame whose count columns are perturbed by their key-sum columns, which are dropped.

    `nested` pairs (part, whole) where the part cannot exceed the whole (injured within answered):
    a part adjusted above its adjusted whole is brought back to it.
    """
    out = frame.copy()
    for c in counts:
        if c in out.columns:
            out[c] = perturb(out[c].to_numpy(dtype=np.int64), out[key_column(c)].to_numpy(dtype=np.int64))
    for part, whole in nested:
        if part in out.columns and whole in out.columns:
            out[part] = np.minimum(out[part].to_numpy(), out[whole].to_numpy())
    return out.drop(columns=[key_column(c) for c in counts if key_column(c) in out.columns])


def _hash_key(secret: bytes) -> str:
    # pandas' keyed SipHash takes 16 characters of key: 64 bits from an HMAC of the installation's secret.
    return hmac.new(secret, _LABEL, hashlib.sha256).hexdigest()[:16]


def record_keys(report_ids: Sequence[object] | pd.Series | np.ndarray, secret: bytes) -> np.ndarray:
    """Return each report's record key (0..BASE-1): a keyed hash of its report id, fixed for the key."""
    values = np.asarray(report_ids, dtype=object)
    if pd.api.types.infer_dtype(values, skipna=False) != "string":  # ids read as numbers hash as their text
        values = pd.Series(values).astype(str).to_numpy(dtype=object)
    # Unique ids: hashing each directly is ten times faster than pandas' default (factorise first).
    hashed = pd.util.hash_array(values, hash_key=_hash_key(secret), categorize=False)
    return (hashed % np.uint64(BASE)).astype(np.int16)


def describe() -> dict[str, object]:
    """Return the method and its parameters, for a `protection` key and captions."""
    return {"method": METHOD, "base": BASE, "max_adjustment": MAX_ADJUSTMENT,
            "zero_stays_zero": True, "never_to_zero": True,
            "adjustment_chances": {str(a): w for a, w in sorted({**WEIGHTS, **{-a: w for a, w in WEIGHTS.items()}}
                                                               .items())},
            "table": "data/perturbation_table.csv"}


def main(argv: Sequence[str] | None = None) -> int:
    """Write (or with --check, compare) the published perturbation table."""
    args = list(sys.argv[1:] if argv is None else argv)
    text = table_csv()
    if args == ["--check"]:
        same = TABLE_FILE.exists() and TABLE_FILE.read_text() == text
        print("the published table matches" if same else f"{TABLE_FILE} differs from the method's table")
        return 0 if same else 1
    TABLE_FILE.write_text(text)
    print(f"wrote {TABLE_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
