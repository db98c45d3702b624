"""Administration: accounts, lockouts and sessions from the users file (administrators only)."""
from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd

from lib.ui import context


def accounts_table(cfg) -> pd.DataFrame:
    """Return the accounts in the users file, with live sessions and lockouts (never a password hash)."""
    from lib.ui import login

    live = login.store().live_sessions()
    locked = dict(login.store().locked_users())
    rows = []
    for username in sorted(cfg.users):
        user = cfg.user(username)
        rows.append({"Username": username, "Name": user.name, "Roles": ", ".join(user.roles),
                     "Force": ", ".join(sorted(user.forces)) if user.forces is not None else "every force",
                     "Areas": ", ".join(sorted(user.areas)) if user.areas is not None else "",
                     "Teams": ", ".join(sorted(user.teams)) if user.teams is not None else "",
                     "Live sessions": live.get(username, 0),
                     "Locked until (UTC)": (datetime.fromtimestamp(locked[username], UTC).strftime("%H:%M")
                                            if username in locked else "")})
    return pd.DataFrame(rows)


def unlock(username: str) -> None:
    """Clear a username's failed logins (administrator)."""
    from lib.ui import login

    login.store().clear_failures(username)
    context.audit_event("user_change", account=username, action="unlocked")


def sign_out_everywhere(username: str) -> int:
    """End every session of a user (administrator); return how many ended."""
    from lib.ui import login

    ended = login.store().revoke_user(username)
    context.audit_event("session_revoked", account=username, sessions_ended=ended)
    return ended


def save_account(cfg, username: str, name: str, role: str, force: str, teams: str,
                 password: str) -> tuple[str, bool]:
    """Create or update an account from the admin form; return a message and whether it worked."""
    from lib.security import users
    from lib.ui import login

    username = username.strip()
    team_list = [t.strip() for t in teams.split(",") if t.strip()]
    try:
        created = users.upsert_user(cfg.path, username, role=role, password=password or None, name=name or None,
                                    force=force.strip(), teams=team_list)
    except (ValueError, OSError) as exc:
        return f"Not saved: {exc}.", False
    ended = login.store().revoke_user(username) if password and not created else 0
    context.audit_event("user_change", account=username, action="created" if created else "updated", role=role)
    return (f"{'Created' if created else 'Updated'} {username}" + (f"; {ended} session(s) signed out" if ended else "")
            + "."), True
