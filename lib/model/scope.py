"""The data scope a user carries: the forces, areas and teams whose rows they may see.

Kept apart from lib.engine.query (and its engine imports) so the login gate can build it before anything heavy loads.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scope:
    """The forces, areas and teams a user may see; None means no restriction on that level."""

    forces: frozenset[str] | None = None
    areas: frozenset[str] | None = None
    teams: frozenset[str] | None = None

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


UNRESTRICTED = Scope()
