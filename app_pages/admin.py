"""Administration: user accounts, lockouts and sessions, and the audit log."""
from __future__ import annotations

import streamlit as st

from lib.security import access, audit, users
from lib.ui import admin, context, login

ctx = context.guard("admin")
st.title("Administration")

users_tab, audit_tab = st.tabs(["Users", "Audit log"])

with users_tab:
    cfg = login.config()
    if cfg is None:
        st.info("Local single-user mode: there are no accounts. Set OSE_AUTH_CONFIG to a users file to require "
                "a login (README, Deployment).")
    else:
        st.dataframe(admin.accounts_table(cfg), hide_index=True, width="stretch")
        st.caption(f"From {cfg.path}. Passwords are stored as bcrypt hashes only; sign-in cookies last "
                   f"{cfg.expiry_days:g} day(s) at most and end at logout.")
        left, right = st.columns(2)
        with left:
            locked = login.store().locked_users()
            who = st.selectbox("Locked usernames", [u for u, _ in locked], key="admin_unlock_user",
                               placeholder="None locked", disabled=not locked)
            if st.button("Unlock", disabled=not locked):
                admin.unlock(who)
                st.rerun()
        with right:
            who = st.selectbox("Sign a user out everywhere", sorted(cfg.users), key="admin_revoke_user")
            if st.button("Sign out everywhere", disabled=not cfg.users):
                st.success(f"{admin.sign_out_everywhere(who)} session(s) ended for {who}.")
        with st.expander("Add a user, or change one's role, scope or password"):
            with st.form("admin_user", clear_on_submit=True):
                a, b = st.columns(2)
                username = a.text_input("Username")
                name = b.text_input("Display name")
                role = a.selectbox("Role", list(access.ROLES),
                                   format_func=lambda r: f"{r}: {access.ROLE_DESCRIPTIONS[r]}")
                force = b.text_input("Force (blank: every force)")
                teams = a.text_input("Teams a supervisor looks after (comma-separated)")
                password = b.text_input(f"New password ({users.MIN_PASSWORD}+ characters; blank keeps it)",
                                        type="password")
                if st.form_submit_button("Save user"):
                    message, ok = admin.save_account(cfg, username, name, role, force, teams, password)
                    (st.success if ok else st.error)(message)

with audit_tab:
    check = audit.verify()
    (st.success if check.ok else st.error)(check.message)
    log = audit.read()
    events = sorted(log["event"].dropna().unique()) if len(log) else []
    chosen = st.multiselect("Events", events, placeholder="All", key="admin_audit_events")
    shown = log[log["event"].isin(chosen)] if chosen else log
    st.dataframe(shown.sort_values("seq", ascending=False).head(1000), hide_index=True, width="stretch")
    st.caption(f"{len(shown):,} of {len(log):,} entries (latest 1,000 shown). Times are UTC. Entries record who did "
               "what, with dataset, filters and row counts, never data values.")
    if audit.path().exists():
        st.download_button("Download the audit log (JSON lines, verifiable with `python -m lib.audit verify`)",
                           context.audited("audit_download", lambda: audit.path().read_bytes(), rows=len(log)),
                           file_name="audit.jsonl", mime="application/jsonl", on_click="ignore",
                           icon=":material/download:")
