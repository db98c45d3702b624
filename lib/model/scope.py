"""The data scope a user carries: the forces, areas and teams whose rows they may see.

Kept apart from lib.engine.query (and its engine imports) so the login gate can build it before anything heavy loads.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scope:
    """The forces, areas and teams a user may see; None means no restriction on that level.

    `perturbed`: the user sees counts through the cell key method (viewers, demonstrations): every count
    a query makes is published adjusted (lib/privacy/cellkey.py), and rates are computed from those.
    """

    forces: frozenset[str] | None = None
    areas: frozenset[str] | None = None
    teams: frozenset[str] | None = None
    perturbed: bool = False

    def describe(self) -> str:
        """Say in words which data this scope covers."""
        if self.forces is None and self.areas is None and self.teams is None:
            return "all forces"
        parts = []
        if self.forces is not None:
            parts.append(", ".join(sorted(self.forces)) or "no force")
        if self.areas is not None:
            parts.append("areas " + (", ".join(sorted(self.areas)) or "none"))
        if self.teams is not None:
            parts.append("teams " + (", ".join(sorted(self.teams)) or "none"))
        return "; ".join(parts)

    def covers(self, other: Scope) -> bool:
        """Say whether every row `other` may hold is inside this scope (an unrestricted level holds every row)."""
        for mine, theirs in ((self.forces, other.forces), (self.areas, other.areas), (self.teams, other.teams)):
            if mine is not None and (theirs is None or not theirs <= mine):
                return False
        return True

    def as_dict(self) -> dict[str, list[str] | None]:
        """Return the scope as JSON-ready lists (None: no restriction on that level)."""
        return {level: None if values is None else sorted(values)
                for level, values in (("forces", self.forces), ("areas", self.areas), ("teams", self.teams))}

    @classmethod
    def from_dict(cls, data: object) -> Scope | None:
        """Return the scope `as_dict` wrote, or None when `data` is not one (a damaged file)."""
        if not isinstance(data, dict):
            return None
        levels: dict[str, frozenset[str] | None] = {}
        for level in ("forces", "areas", "teams"):
            values = data.get(level)
            if values is not None and not (isinstance(values, list) and all(isinstance(v, str) for v in values)):
                return None
            levels[level] = None if values is None else frozenset(values)
        return cls(**levels)


UNRESTRICTED = Scope()


@dataclass(frozen=True)
class Actor:
    """Who acts on a stored object: the name recorded, the rows they may see, and whether they administer data."""

    name: str
    scope: Scope = UNRESTRICTED
    admin: bool = False
