"""Who may see what: roles, their permissions, the pages they open, and the data scope they carry.

Deny by default: a page or section that is not granted to one of a user's roles is not shown, and a
role this module does not know grants nothing. streamlit-authenticator stores roles; this enforces them.
"""
from __future__ import annotations

from dataclasses import dataclass

from lib.model.scope import Actor, Scope

# Permissions, named for what they open.
AGGREGATES = "aggregates"          # the analysis pages, counts and rates only
OFFICER_DETAIL = "officer_detail"  # officer-level views (pseudonymised ids), within the officer scope
ROW_DETAIL = "row_detail"          # individual reports (e.g. the records behind a data-quality rule)
MANAGE_DATA = "manage_data"        # upload, save, append, delete datasets; data quality
ROLL_BACK_DATA = "roll_back_data"  # make an earlier version of a saved dataset current again
MANAGE_USERS = "manage_users"      # user accounts, lockouts and sessions
AUDIT = "audit"                    # read and download the audit log
UNSUPPRESSED = "unsuppressed"      # may switch disclosure control off

ROLES: dict[str, frozenset[str]] = {
    "admin": frozenset({MANAGE_DATA, ROLL_BACK_DATA, MANAGE_USERS, AUDIT, UNSUPPRESSED, ROW_DETAIL}),
    "analyst": frozenset({AGGREGATES, OFFICER_DETAIL, ROW_DETAIL, MANAGE_DATA, UNSUPPRESSED}),
    "supervisor": frozenset({AGGREGATES, OFFICER_DETAIL, UNSUPPRESSED}),
    "viewer": frozenset({AGGREGATES}),
}

ROLE_DESCRIPTIONS = {
    "admin": "users, datasets and the audit log",
    "analyst": "every analysis, including officer-level views",
    "supervisor": "every analysis; officer-level views for their own teams only",
    "viewer": "counts and rates only, with small numbers always suppressed",
}

# Each page file and the permission that opens it. A page missing here opens for nobody.
PAGES: dict[str, str] = {
    "overview": AGGREGATES,
    "risk": AGGREGATES,
    "tactics": AGGREGATES,
    "explore": AGGREGATES,
    "training": AGGREGATES,
    "data": MANAGE_DATA,
    "quality": MANAGE_DATA,
    "admin": MANAGE_USERS,
}

LOCAL = "local"


@dataclass(frozen=True)
class User:
    """A signed-in user (or the single local user): roles, and the force, areas and teams they cover."""

    username: str
    name: str
    roles: tuple[str, ...]
    forces: frozenset[str] | None = None
    areas: frozenset[str] | None = None
    teams: frozenset[str] | None = None

    @property
    def permissions(self) -> frozenset[str]:
        """Return the union of what the user's known roles grant (unknown roles grant nothing)."""
        granted: set[str] = set()
        for role in self.roles:
            granted |= ROLES.get(role, frozenset())
        return frozenset(granted)

    @property
    def role(self) -> str:
        """Return the roles as one label for the audit log and the sidebar."""
        return "+".join(self.roles) or "none"

    def may(self, permission: str) -> bool:
        """Say whether one of the user's roles grants this permission."""
        return permission in self.permissions

    def may_open(self, page: str) -> bool:
        """Say whether the user may open a page (by its file stem); unknown pages open for nobody."""
        needed = PAGES.get(page)
        return needed is not None and self.may(needed)

    @property
    def scope(self) -> Scope:
        """Return the rows this user may see at all: their forces and areas (None: every one)."""
        return Scope(forces=self.forces, areas=self.areas)

    @property
    def actor(self) -> Actor:
        """Return who acts on saved datasets: this user's name, scope, and whether they are an admin."""
        return Actor(self.username, self.scope, admin="admin" in self.roles)

    @property
    def officer_scope(self) -> Scope | None:
        """Return the rows whose officers this user may see one by one, or None if none at all.

        Analysts see every officer in their scope; a supervisor sees only officers in their own teams,
        and a supervisor with no teams configured sees none.
        """
        if not self.may(OFFICER_DETAIL):
            return None
        if "analyst" in self.roles:
            return self.scope
        if not self.teams:
            return None
        return Scope(forces=self.forces, areas=self.areas, teams=self.teams)

    @property
    def suppression_forced(self) -> bool:
        """Say whether small numbers must always be suppressed for this user (viewers)."""
        return not self.may(UNSUPPRESSED)


def protection_forced(user: User, demo: bool) -> bool:
    """Say whether disclosure control is forced on this run: a viewer's, or any demonstration.

    Forced protection also snaps periods to whole months and shows nothing of a selection with fewer
    reports than the threshold, so no two views differ by a few days or a few reports.
    """
    return demo or user.suppression_forced


LOCAL_USER = User(username=LOCAL, name="Local user", roles=("analyst", "admin"))


def allowed_pages(user: User, demo: bool = False) -> list[str]:
    """Return the page stems this user may open, in navigation order.

    A demo drops data management; a local demo (no accounts, no audience for the log) drops administration too.
    """
    dropped = {MANAGE_DATA} if demo else set()
    if demo and user.username == LOCAL:
        dropped.add(MANAGE_USERS)
    return [page for page in PAGES if user.may_open(page) and PAGES[page] not in dropped]
