"""A viewer's budget of selections: how many different views of one dataset they may open in a day.

The cell key method gives the same answer to the same reports however often they are asked for, so
repeating a question teaches nothing. Different overlapping questions are another matter: every run of
months that starts or ends at a hidden month is one more difference over it, and the mean of hundreds of
them drifts towards the hidden count (README, "What a determined viewer can still learn"). That attack
needs hundreds of different selections of one force; a supervisor's working day needs a few dozen. So a
viewer may open at most `limit` different selections (filter states) of one dataset in 24 hours; a
selection opened already in that time opens again freely. The first refusal in a window is audited.

The count is kept in the server's memory: a restart starts it again, and servers behind a load balancer
each keep their own (a viewer pinned to one server by a sticky session meets one budget).
"""
from __future__ import annotations

import threading
import time
from collections.abc import Hashable
from dataclasses import dataclass

WINDOW_SECONDS = 24 * 60 * 60


@dataclass(frozen=True)
class Admission:
    """Whether a selection may be shown, how many of the budget are used, and whether to audit a refusal."""

    allowed: bool
    used: int
    limit: int
    first_refusal: bool = False


class SelectionBudget:
    """Count each viewer's different selections of each dataset in a rolling window, up to a limit."""

    def __init__(self, limit: int, window_seconds: float = WINDOW_SECONDS) -> None:
        if limit < 1:
            raise ValueError(f"a selection budget must allow at least one selection, not {limit}")
        self.limit = limit
        self.window = window_seconds
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, str], dict[Hashable, float]] = {}
        self._refused: dict[tuple[str, str], float] = {}  # when the window's first refusal was audited

    def admit(self, who: str, dataset: str, selection: Hashable, now: float | None = None) -> Admission:
        """Admit a selection already seen in the window, or a new one while the budget lasts."""
        now = time.time() if now is None else now
        key = (who, dataset)
        with self._lock:
            seen = self._seen.setdefault(key, {})
            for old in [s for s, when in seen.items() if now - when >= self.window]:
                del seen[old]
            if selection in seen:
                return Admission(True, len(seen), self.limit)
            if len(seen) < self.limit:
                seen[selection] = now
                return Admission(True, len(seen), self.limit)
            refused_at = self._refused.get(key)
            first = refused_at is None or now - refused_at >= self.window
            if first:
                self._refused[key] = now
            return Admission(False, len(seen), self.limit, first_refusal=first)


def refusal_message(admission: Admission) -> str:
    """Say why a new selection is not shown, and what the viewer can do."""
    return (f"You have opened {admission.used:,} different selections of this dataset in the last 24 hours, the "
            "most a viewer may: many overlapping questions about the same small numbers could work out values "
            "that are hidden. Selections you have already opened still show; for more, ask an analyst.")
