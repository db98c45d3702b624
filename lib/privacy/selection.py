"""The minimum-reports rule: a selection too small to show at all to a role under forced disclosure control.

Suppressing small cells inside one table does not stop a viewer narrowing the filters until the whole
view is one small cell, then reading it off the headline figures of the views around it. Under forced
disclosure control (viewers, demonstrations) a selection of fewer reports than the threshold shows
nothing but a message, on every page.
"""
from __future__ import annotations


def too_few_reports(reports: int, threshold: int | None) -> bool:
    """Say whether a selection of this many reports is too small to show (never when the rule is off: None)."""
    return threshold is not None and reports < threshold


def too_few_message(threshold: int) -> str:
    """Say why nothing is shown, and what to do."""
    return (f"This selection holds fewer than {threshold} reports, too few to show for your role; "
            "widen the filters.")
