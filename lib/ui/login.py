"""The login gate: local single-user mode, or every page behind a streamlit-authenticator login.

Without OSE_AUTH_CONFIG the app serves this machine only (127.0.0.1) as one local user. With it, the
config is checked before anything is served, and a user signs in through our hardened form:

- the password is checked with bcrypt even for unknown users, with the same answer, so neither the
  message nor the time tells whether a username exists;
- failed logins are counted per username in a store every session shares (lib/security/sessions.py), which
  survives restarts, and lock the username after the configured number of attempts;
- a login opens a server-side session; the library's signed cookie carries its id, and the session is
  checked on every rerun, so logout, a password change or an administrator ends it everywhere and a
  copied cookie stops working.

streamlit-authenticator provides the config format, the bcrypt hashes, the cookie (its JWT and its
cookie manager) and the session-state contract (`authentication_status`, `username`, `name`, `roles`).
Its own login() is not used: it skips bcrypt for unknown users, counts failures in memory, accepts any
unexpired cookie, and rewrites the config file.
"""
from __future__ import annotations

import copy
import ipaddress
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import jwt
import streamlit as st

from lib.model.paths import data_dir
from lib.model.settings import SettingsError, settings
from lib.security import audit, sessions, users
from lib.security.access import LOCAL_USER, User

SID_KEY = "_ose_sid"
COOKIE_TOKEN_KEY = "_ose_cookie_token"
COOKIE_RUNS = 3  # runs after signing in that draw the set-cookie component
DELETE_COOKIE_KEY = "_ose_delete_cookie"
LOGIN_NOTICE_KEY = "_ose_login_notice"
LIBRARY_KEYS = ("authentication_status", "username", "name", "roles", "email")
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}


def store() -> sessions.Store:
    """Return the session and lockout store every session shares (under the data directory)."""
    return _store(str(data_dir()))


@st.cache_resource(show_spinner=False)
def _store(folder: str) -> sessions.Store:
    return sessions.Store.for_data_dir()


@st.cache_data(show_spinner=False, max_entries=4)
def _config(path: str, mtime_ns: int) -> users.AuthConfig:
    return users.load_config(path)


def config() -> users.AuthConfig | None:
    """Return the checked auth config (re-read when the file changes), or None in local mode."""
    path = users.config_path()
    if path is None:
        return None
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        mtime = 0
    return _config(str(path), mtime)


def demo_mode() -> bool:
    """Say whether the app runs as a stakeholder demo (OSE_DEMO=1): synthetic data, small numbers hidden."""
    return settings().demo


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _names_this_machine(address: str, port: int, *, url: bool) -> bool:
    # A Host ("127.0.0.1:8501", "[::1]") or an Origin ("http://localhost:8501"): a loopback name, and
    # the app's port or none. A web page whose own name resolves to 127.0.0.1 (DNS rebinding) sends its
    # name in both, so a foreign name means a page that is not this app's.
    try:
        parts = urlsplit(address if url else f"//{address}")
        named_port = parts.port
    except ValueError:
        return False
    if url and parts.scheme not in ("http", "https"):
        return False
    if parts.username is not None or parts.password is not None or parts.path or parts.query or parts.fragment:
        return False
    return _is_loopback(parts.hostname) and named_port in (None, port)


def named_this_machine(hosts: Sequence[str], origins: Sequence[str], port: int) -> bool:
    """Say whether a request names this machine: a Host, and any Origin, on loopback and the app's port."""
    return (bool(hosts) and all(_names_this_machine(host, port, url=False) for host in hosts)
            and all(_names_this_machine(origin, port, url=True) for origin in origins))


def client_address() -> str | None:
    """Return this run's client address for the audit log: the peer, or whom a trusted proxy says it serves."""
    headers = st.context.headers  # (empty in a test harness: no request, and no address)
    if not len(headers):
        return None
    peer = st.context.ip_address
    # Streamlit gives no address for a loopback peer, such as a reverse proxy on this machine.
    peer = peer if isinstance(peer, str) and peer else "127.0.0.1"
    return audit.client_address(peer, headers.get_all("X-Forwarded-For"), settings().trusted_proxies)


def serves_this_machine() -> bool:
    """Say whether the server listens on this machine only (loopback, or no address: a test harness)."""
    address = st.get_option("server.address")
    return address is None or _is_loopback(address)


def _local_user() -> User:
    # .streamlit/config.toml binds 127.0.0.1; an address set to anything else, or any client that is not
    # this machine (whatever the address), is refused. (No address and no client: a test harness.)
    client = st.context.ip_address  # None for a client on this machine
    client = client if isinstance(client, str) else None  # (a test harness has no real connection)
    headers = st.context.headers  # (empty in a test harness: no request)
    # A reverse proxy on this machine would make every client look local: it says so in these headers.
    proxied = any(h in headers for h in ("X-Forwarded-For", "Forwarded", "X-Real-Ip"))
    # A web page from elsewhere can reach 127.0.0.1 under its own name (DNS rebinding): Host and Origin
    # say so. (A real connection always sends headers; none at all is a test harness.)
    named = not len(headers) or named_this_machine(headers.get_all("Host"), headers.get_all("Origin"),
                                                   int(st.get_option("server.port")))
    if not serves_this_machine() or (client is not None and not _is_loopback(client)) or proxied or not named:
        st.error("Officer Safety Explorer will not serve other machines without a login. Run it on "
                 "127.0.0.1 (`make run` does) and open it as http://localhost or http://127.0.0.1 on its "
                 "port, or set OSE_AUTH_CONFIG to a users file to require a login (see README, Deployment).")
        st.stop()
    return LOCAL_USER


def current_user() -> User:
    """Return the signed-in user; draw the login form and stop the run if nobody is signed in."""
    try:
        settings()  # every OSE_* setting checked before anything is served
        cfg = config()
    except SettingsError as exc:
        st.error(f"Officer Safety Explorer will not start: {exc}. Fix the setting and restart the app.")
        st.stop()
    except users.ConfigError as exc:
        st.error(f"Officer Safety Explorer will not start: {exc}. Fix {users.CONFIG_ENV} and reload.")
        st.stop()
    if cfg is None:
        return _local_user()
    user = _signed_in(cfg)
    if user is None:
        user = _login_form(cfg)
        if user is None:
            st.stop()
    pending = st.session_state.get(COOKIE_TOKEN_KEY)
    if pending and cfg.expiry_days > 0:
        # Drawn, unchanged (so mounted once), on the first few runs after signing in: the cookie is set
        # even if the next rerun comes before the component has loaded; after that it costs nothing.
        token, runs_left = pending
        expires = datetime.fromtimestamp(jwt.decode(token, options={"verify_signature": False})["exp_date"])
        _cookie_manager(cfg).set(cfg.cookie_name, token, key="ose_set_cookie", expires_at=expires,
                                 secure=cfg.cookie_secure or None, same_site="strict")
        if runs_left > 1:
            st.session_state[COOKIE_TOKEN_KEY] = (token, runs_left - 1)
        else:
            st.session_state.pop(COOKIE_TOKEN_KEY)
    return user


def _clear_library_keys() -> None:
    for key in LIBRARY_KEYS:
        st.session_state.pop(key, None)
    st.session_state.pop(SID_KEY, None)
    st.session_state.pop(COOKIE_TOKEN_KEY, None)


def _cookie_claims(cfg: users.AuthConfig) -> dict | None:
    try:
        token = st.context.cookies.get(cfg.cookie_name)
    except Exception:  # no browser request (e.g. a test harness): no cookie
        return None
    if not token:
        return None
    try:
        claims = jwt.decode(token, cfg.cookie_key, algorithms=["HS256"])
    except jwt.PyJWTError:
        return None
    if not isinstance(claims, dict) or float(claims.get("exp_date", 0)) <= time.time():
        return None
    return claims


def _signed_in(cfg: users.AuthConfig) -> User | None:
    sid = st.session_state.get(SID_KEY)
    username = store().session_user(sid) if sid else None
    if username is None:
        claims = _cookie_claims(cfg)
        if claims and claims.get("sid"):
            owner = store().session_user(str(claims["sid"]))
            if owner is not None and owner == claims.get("username"):
                sid, username = str(claims["sid"]), owner
    if username is None:
        _clear_library_keys()
        return None
    user = cfg.user(username)
    if user is None:  # removed from the config since signing in
        store().revoke(sid)
        _clear_library_keys()
        return None
    st.session_state[SID_KEY] = sid
    st.session_state["authentication_status"] = True
    st.session_state["username"] = user.username
    st.session_state["name"] = user.name
    st.session_state["roles"] = list(user.roles)
    return user


def _cookie_manager(cfg: users.AuthConfig):
    import streamlit_authenticator as stauth

    # Only the cookie controller is used; a copy of the users so the library never writes the config.
    authenticator = stauth.Authenticate({"usernames": copy.deepcopy(cfg.users)}, cfg.cookie_name, cfg.cookie_key,
                                        cfg.expiry_days, auto_hash=False)
    return authenticator.cookie_controller.cookie_model.cookie_manager


def _cookie_token(cfg: users.AuthConfig, username: str, sid: str) -> str:
    expires = datetime.now() + timedelta(days=cfg.expiry_days)
    # The library's token (username, exp_date) plus the server-side session it stands for.
    return jwt.encode({"username": username, "exp_date": expires.timestamp(), "sid": sid}, cfg.cookie_key,
                      algorithm="HS256")


def _login_form(cfg: users.AuthConfig) -> User | None:
    if st.session_state.pop(DELETE_COOKIE_KEY, False) and cfg.expiry_days > 0:
        try:
            _cookie_manager(cfg).delete(cfg.cookie_name, key="ose_delete_cookie")
        except KeyError:  # no cookie in this browser
            pass
    page = st.empty()
    box = page.container()
    box.title("Officer Safety Explorer")
    if demo_mode():
        with box:
            demo_banner()
    notice = st.session_state.pop(LOGIN_NOTICE_KEY, None)
    if notice:
        box.info(notice)
    with box.form("ose_login"):
        st.subheader("Sign in")
        username = st.text_input("Username", key="ose_login_username", autocomplete="username")
        password = st.text_input("Password", type="password", key="ose_login_password",
                                 autocomplete="current-password")
        submitted = st.form_submit_button("Sign in", type="primary")
    box.caption("Records of force and injury are personal data: sign-ins, exports and officer-level views are "
                "recorded in an audit log.")
    if not submitted:
        return None
    username = username.strip()
    result = sessions.attempt_login(store(), cfg.password_hash(username), username, password,
                                    attempts=cfg.lockout_attempts, minutes=cfg.lockout_minutes)
    known = cfg.user(username)
    if not result.ok:
        # The name typed is logged only if it is a real account: a password typed into it must not be kept.
        audit.record("locked_out" if result.locked else "failed_login", user=username if known else "(unknown)",
                     role=known.role if known else None, client=client_address())
        box.error(result.message)
        return None
    sid = store().open_session(username, max(cfg.expiry_days, 1 / 24) * 86400)
    st.session_state[SID_KEY] = sid
    if cfg.expiry_days > 0:
        st.session_state[COOKIE_TOKEN_KEY] = (_cookie_token(cfg, username, sid), COOKIE_RUNS)
    audit.record("login", user=username, role=known.role, client=client_address())
    page.empty()  # the app is drawn in this same run, so the cookie component reaches the browser
    return _signed_in(cfg)


def logout() -> None:
    """End this session server-side and in the browser (a button callback)."""
    cfg = config()
    sid = st.session_state.get(SID_KEY)
    username = st.session_state.get("username")
    roles = st.session_state.get("roles") or []
    store().revoke(sid)
    if username:
        audit.record("logout", user=username, role="+".join(roles) or None, client=client_address())
    _clear_library_keys()
    st.session_state["logout"] = True
    if cfg is not None:
        st.session_state[DELETE_COOKIE_KEY] = True
    st.session_state[LOGIN_NOTICE_KEY] = "You are signed out."


def change_password(user: User, current: str, new: str, repeat: str) -> str | None:
    """Change the signed-in user's password and end all their sessions; return an error message or None."""
    cfg = config()
    if cfg is None:
        return "Passwords apply only when the app runs with a users file."
    if not sessions.check_password(current, cfg.password_hash(user.username)):
        return "The current password is not right."
    if new != repeat:
        return "The new passwords differ."
    try:
        users.upsert_user(cfg.path, user.username, password=new)
    except ValueError as exc:
        return str(exc).capitalize() + "."
    ended = store().revoke_user(user.username)
    audit.record("password_change", user=user.username, role=user.role, detail={"sessions_ended": ended},
                 client=client_address())
    _clear_library_keys()
    st.session_state[DELETE_COOKIE_KEY] = True
    st.session_state[LOGIN_NOTICE_KEY] = "Password changed. Every session was signed out: sign in with the new one."
    return None


def account_sidebar(user: User) -> None:
    """Draw who is signed in, with logout and password change (login mode only); a demonstration says so."""
    side = st.sidebar
    if config() is None:
        side.caption("**Demonstration** on synthetic data, shown as a viewer sees it: small numbers hidden, counts "
                     "adjusted, no officer-level detail." if demo_mode() else
                     "Local single-user mode: serving 127.0.0.1 only, no login.")
        return
    side.caption(f"Signed in as **{user.name}** ({user.role})" +
                 (f" · {user.scope.describe()}" if user.forces is not None or user.areas is not None else ""))
    side.button("Log out", on_click=logout, key="ose_logout", width="stretch")
    with side.expander("Change password"):
        with st.form("ose_password", clear_on_submit=True):
            current = st.text_input("Current password", type="password")
            new = st.text_input(f"New password ({users.MIN_PASSWORD}+ characters)", type="password")
            repeat = st.text_input("New password again", type="password")
            if st.form_submit_button("Change password"):
                problem = change_password(user, current, new, repeat)
                if problem:
                    st.error(problem)
                else:
                    st.rerun()


def demo_banner() -> None:
    """Say, on every page, that this is a demonstration on synthetic data."""
    st.warning("**Demonstration** on synthetic data: no real person or force is shown. Counts below the "
               "disclosure threshold are hidden, and every count is adjusted by up to 3 either way, as a "
               "viewer sees them.", icon=":material/slideshow:")
