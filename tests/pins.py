"""Comparing a page's figures with those pinned before a speed change (the figure-pin tests share this)."""
from __future__ import annotations

from typing import Any


def differences(got: Any, want: Any, relative: float, where: str = "") -> list[str]:
    """List where got differs from want: exactly for counts, words and types, to `relative` for floats."""
    if isinstance(want, dict) and isinstance(got, dict):
        if set(got) != set(want):
            return [f"{where}: keys {sorted(set(got) ^ set(want))}"]
        return [d for key in want for d in differences(got[key], want[key], relative, f"{where}/{key}")]
    if isinstance(want, list) and isinstance(got, list):
        if len(got) != len(want):
            return [f"{where}: {len(got)} items, pinned {len(want)}"]
        return [d for i, (g, w) in enumerate(zip(got, want, strict=True))
                for d in differences(g, w, relative, f"{where}[{i}]")]
    if isinstance(want, float) and isinstance(got, float):
        same = got == want or abs(got - want) <= relative * max(abs(got), abs(want))
        return [] if same else [f"{where}: {got!r}, pinned {want!r}"]
    return [] if got == want and type(got) is type(want) else [f"{where}: {got!r}, pinned {want!r}"]
