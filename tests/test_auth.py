"""Login, roles and their pages, lockout, sessions and the config checks, run as Streamlit runs them."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from streamlit.testing.v1 import AppTest

from lib.engine.store import SAMPLE_DIR
from lib.security import access, audit, sessions, users

from .conftest import ROOT

PASSWORD = "correct horse battery staple"
FORCE = "Thames Valley Police"
# A fixed cookie key random enough for the check (forty "k"s were used before the check refused them).
COOKIE_KEY = "test-only cookie key: Xq7Lm2Vz9RkP4wN8cT3hYbJ6fD"
PAGES = {"overview": "Overview", "risk": "Officer risk", "tactics": "Tactics", "explore": "Explore",
         "training": "Training", "data": "Data", "quality": "Data quality", "admin": "Administration"}
EXPECTED = {
    "admin": {"data", "quality", "admin"},
    "analyst": {"overview", "risk", "tactics", "explore", "training", "data", "quality"},
    "supervisor": {"overview", "risk", "tactics", "explore", "training"},
    "viewer": {"overview", "risk", "tactics", "explore", "training"},
}


@pytest.fixture(autouse=True)
def _fresh(fresh_caches):
    """Every app run here starts with empty caches (see conftest)."""


@pytest.fixture(scope="module")
def users_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("auth") / "users.yaml"
    for role in access.ROLES:
        users.upsert_user(path, role, role=role, password=PASSWORD, name=f"A {role}")
    users.upsert_user(path, "northern", role="analyst", password=PASSWORD, force=FORCE)
    users.upsert_user(path, "sarge", role="supervisor", password=PASSWORD, teams=["No team"])
    return path


@pytest.fixture
def login_mode(users_file, tmp_path, monkeypatch) -> Path:
    """Serve with the users file, and a fresh data directory (sessions, lockouts, audit log)."""
    monkeypatch.setenv("OSE_AUTH_CONFIG", str(users_file))
    monkeypatch.setenv("OSE_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("OSE_DEMO", raising=False)
    monkeypatch.delenv("OSE_DATASET", raising=False)
    return tmp_path / "var"


def app() -> AppTest:
    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)


def sign_in(at: AppTest, username: str, password: str = PASSWORD) -> AppTest:
    if not at.text_input:  # not yet run
        at.run()
    at.text_input(key="ose_login_username").input(username)
    at.text_input(key="ose_login_password").input(password)
    next(b for b in at.button if b.label == "Sign in").click().run()
    return at


def navigation(at: AppTest) -> set[str]:
    return {Path(str(info["script_path"])).stem for info in at._registered_pages.values() if info.get("script_path")}


def titles(at: AppTest) -> list[str]:
    return [t.value for t in at.title]


def shows_data(at: AppTest) -> bool:
    return bool(at.metric or at.get("vega_lite_chart") or at.dataframe or at.get("arrow_data_frame"))


def test_no_page_shows_anything_but_the_login_form_before_sign_in(login_mode):
    at = app().run()
    assert not at.exception
    assert titles(at) == ["Officer Safety Explorer"]
    assert [t.label for t in at.text_input] == ["Username", "Password"]
    assert not shows_data(at)
    assert not at.sidebar.selectbox and not at.sidebar.multiselect  # no dataset picker, no filters
    assert navigation(at) <= {"app"}  # only the router: no page is registered until someone signs in


@pytest.mark.parametrize("role", list(access.ROLES))
def test_each_role_sees_only_its_pages(login_mode, role):
    at = sign_in(app(), role)
    assert not at.exception
    assert navigation(at) == EXPECTED[role]
    for page in EXPECTED[role]:
        at.switch_page(f"app_pages/{page}.py").run()
        assert not at.exception, (role, page)
        assert PAGES[page] in titles(at), (role, page)
        assert not any("does not open this page" in e.value for e in at.error)
    for page in set(PAGES) - EXPECTED[role]:
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            at.switch_page(f"app_pages/{page}.py")


@pytest.mark.parametrize("page", ["data", "quality", "admin", "risk"])
def test_a_page_reached_without_its_role_refuses(login_mode, page):
    """A page file run directly (a stale tab, a crafted link) checks the role again and shows nothing."""
    from lib.engine import query
    from lib.engine.store import Engine
    from lib.ui import context

    engine = Engine()
    ds = engine.open(SAMPLE_DIR)
    nobody = access.User(username="x", name="x", roles=("viewer",) if page != "risk" else ("admin",))
    at = AppTest.from_file(str(ROOT / "app_pages" / f"{page}.py"), default_timeout=60)
    at.session_state[context.CONTEXT_KEY] = context.Context(dataset=ds, filters=query.default_filters(ds),
                                                  scope=nobody.scope, user=nobody)
    at.run()
    assert not at.exception
    assert any("does not open this page" in e.value for e in at.error)
    assert not shows_data(at) and not at.get("file_uploader")


def test_viewer_has_small_numbers_hidden_and_no_officer_views(login_mode):
    at = sign_in(app(), "viewer")
    assert any("counts below 10 are suppressed" in c.value for c in at.sidebar.caption)
    assert not at.sidebar.toggle  # a viewer cannot switch disclosure control off
    at.switch_page("app_pages/risk.py").run()
    assert not at.exception
    assert "Officer" not in at.radio(key="risk_level").options  # the options as shown
    assert any("not open to your role" in i.value for i in at.info)


def test_a_supervisor_sees_officers_of_their_own_teams_only(login_mode):
    at = sign_in(app(), "sarge")  # their team, "No team", has no reports
    at.switch_page("app_pages/risk.py").run()
    assert not at.exception
    assert "Officer" in at.radio(key="risk_level").options  # the options as shown
    at.radio(key="risk_level").set_value("officer").run()
    assert any("No officer in this view" in i.value or "No officer" in i.value for i in at.info)
    events = audit.read()
    assert "officer_view" in set(events["event"])


def test_a_force_scoped_user_sees_only_their_force(login_mode, engine):
    from lib.engine import query
    from lib.engine.query import Scope

    ds = engine.open(SAMPLE_DIR)
    at = sign_in(app(), "northern")
    assert not at.exception
    assert at.multiselect(key="flt_forces").options == [FORCE]
    expected = query.summarise(engine, ds, query.default_filters(ds), Scope(forces=frozenset({FORCE}))).reports
    assert next(m.value for m in at.metric if m.label == "Reports") == f"{expected:,}"


def test_a_shared_link_cannot_widen_a_scoped_users_force(login_mode, engine):
    at = app()
    at.query_params["forces"] = "Metropolitan Police"
    sign_in(at, "northern")
    assert not at.exception
    assert at.multiselect(key="flt_forces").value == []  # the other force is not an option, so not applied
    assert all("Metropolitan" not in c.value for c in at.caption)


def test_wrong_password_and_unknown_user_get_the_same_answer(login_mode):
    wrong = sign_in(app(), "analyst", "not the password at all")
    unknown = sign_in(app(), "nobody-here", "not the password at all")
    assert [e.value for e in wrong.error] == [e.value for e in unknown.error] == [sessions.FAILED]
    assert not shows_data(wrong) and not shows_data(unknown)


def test_unknown_users_cost_a_real_password_check(tmp_path, monkeypatch):
    """An unknown username runs the same bcrypt check as a real one (same cost), so time cannot tell them apart."""
    import bcrypt

    store = sessions.Store(tmp_path / "s.sqlite")
    hashed = users.hash_password(PASSWORD).encode()
    checks: list[bytes] = []
    real_check = bcrypt.checkpw

    def recording(password: bytes, target: bytes) -> bool:  # the real check, with the hash it used noted
        checks.append(target)
        return real_check(password, target)

    monkeypatch.setattr(bcrypt, "checkpw", recording)

    def work(h: bytes | None) -> list[bytes]:
        checks.clear()
        assert not sessions.attempt_login(store, h, "someone", "wrong password", attempts=1000).ok
        return [target.split(b"$")[2] for target in checks]  # the cost factor of each check made

    known, unknown = work(hashed), work(None)
    assert known == unknown == [hashed.split(b"$")[2]]
    assert int(known[0]) >= 10  # a real bcrypt cost, not a cheap stand-in


def test_lockout_holds_across_sessions_and_a_restart(login_mode, users_file):
    for _ in range(5):
        at = sign_in(app(), "analyst", "wrong password again")
    assert at.error[0].value == sessions.LOCKED
    fresh = sign_in(app(), "analyst")  # a new session, with the right password
    assert fresh.error[0].value == sessions.LOCKED
    assert not shows_data(fresh)
    restarted = sessions.Store.for_data_dir()  # a new process opens the same store
    assert restarted.locked_until("analyst") is not None
    other = sign_in(app(), "viewer")  # the lockout is per username
    assert not other.error and other.metric
    events = list(audit.read()["event"])
    assert events.count("failed_login") == 4 and events.count("locked_out") >= 2


def test_logout_ends_the_session_server_side(login_mode):
    at = sign_in(app(), "analyst")
    sid = at.session_state["_ose_sid"]
    store = sessions.Store.for_data_dir()
    assert store.session_user(sid) == "analyst"
    next(b for b in at.sidebar.button if b.label == "Log out").click().run()
    assert not at.exception
    assert store.session_user(sid) is None  # the cookie that names this session no longer signs anyone in
    assert [t.label for t in at.text_input] == ["Username", "Password"] and not shows_data(at)
    assert list(audit.read()["event"]) == ["login", "logout"]


def test_a_password_change_signs_the_user_out_everywhere(login_mode, users_file, tmp_path):
    own = tmp_path / "own.yaml"
    own.write_bytes(users_file.read_bytes())
    import os
    os.environ["OSE_AUTH_CONFIG"] = str(own)
    elsewhere = sign_in(app(), "analyst")
    here = sign_in(app(), "analyst")
    form = here.sidebar
    inputs = [t for t in form.text_input]
    inputs[0].input(PASSWORD)
    inputs[1].input("a brand new long password")
    inputs[2].input("a brand new long password")
    next(b for b in here.sidebar.button if b.label == "Change password").click().run()
    assert not here.exception
    assert any("Password changed" in i.value for i in here.info)
    elsewhere.run()  # the other session's next click
    assert [t.label for t in elsewhere.text_input] == ["Username", "Password"] and not shows_data(elsewhere)
    assert sign_in(app(), "analyst", "a brand new long password").metric
    assert "password_change" in set(audit.read()["event"])


@pytest.mark.parametrize(("cookie", "message"), [
    ({"name": "c", "expiry_days": 0.5}, "cookie.key is missing"),
    ({"name": "c", "key": "short-key", "expiry_days": 0.5}, "must be at least 32"),
    ({"name": "c", "key": "some_key", "expiry_days": 0.5}, "published example"),
    ({"name": "c", "key": "random_signature_key", "expiry_days": 0.5}, "published example"),
    ({"name": "c", "key": COOKIE_KEY, "expiry_days": 30}, "at most 1 day"),
])
def test_the_app_refuses_to_start_with_an_unsafe_cookie_setting(tmp_path, monkeypatch, cookie, message):
    path = tmp_path / "users.yaml"
    path.write_text(yaml.safe_dump({"credentials": {"usernames": {}}, "cookie": cookie}))
    with pytest.raises(users.ConfigError, match=message):
        users.load_config(path)
    monkeypatch.setenv("OSE_AUTH_CONFIG", str(path))
    monkeypatch.setenv("OSE_DATA_DIR", str(tmp_path / "var"))
    at = app().run()
    assert not at.exception
    assert any("will not start" in e.value and message.split()[0] in e.value for e in at.error)
    assert not at.text_input and not shows_data(at)


@pytest.mark.parametrize(("key", "why"), [
    ("a" * 32, "repeats one character"),
    ("0" * 32, "repeats one character"),
    ("password" * 4, "repeats a pattern of 8 characters"),
    ("changeme" * 4, "repeats a pattern of 8 characters"),
    ("ab1" * 12, "repeats a pattern of 3 characters"),
    ("passwordpassword1234", None),  # too short first: the length rule speaks
    ("my-streamlit-cookie-secret-key-2024!", "mostly of common words"),
    ("Password_Admin_Letmein_Secret_Cookie7", "mostly of common words"),
    ("correcthorsebatterystaplecorrect", "only one kind of character"),
    ("38271946501836492017364829103746", "only one kind of character"),
    ("Aa1Aa2Aa3Bb1Bb2Bb3Cc1Cc2Cc3Dd1Dd2", "bits of entropy"),
])
def test_a_guessable_cookie_key_is_refused_saying_how_to_make_a_good_one(tmp_path, key, why):
    path = tmp_path / "users.yaml"
    path.write_text(yaml.safe_dump({"credentials": {"usernames": {}}, "cookie": {"name": "c", "key": key}}))
    with pytest.raises(users.ConfigError) as caught:
        users.load_config(path)
    message = str(caught.value)
    assert message.startswith("cookie.key is ")
    assert why is None and "must be at least 32" in message or why in message and "too easy to guess" in message
    assert 'python -c "import secrets; print(secrets.token_urlsafe(48))"' in message
    assert key not in message


def test_random_cookie_keys_are_accepted():
    import secrets

    for _ in range(200):
        for key in (secrets.token_hex(32), secrets.token_urlsafe(48), secrets.token_urlsafe(32)):
            assert users.check_cookie_key(key) == key
    assert users.check_cookie_key(users.new_config()["cookie"]["key"])  # what `lib.users add` writes


def test_plain_text_passwords_and_unknown_roles_are_refused(tmp_path):
    base = {"cookie": {"name": "c", "key": COOKIE_KEY, "expiry_days": 0.5}}
    for entry, message in (({"password": "hunter2", "roles": ["analyst"]}, "bcrypt"),
                           ({"password": users.hash_password(PASSWORD), "roles": ["superuser"]}, "unknown: superuser")):
        path = tmp_path / "u.yaml"
        path.write_text(yaml.safe_dump({**base, "credentials": {"usernames": {"u": entry}}}))
        with pytest.raises(users.ConfigError, match=message):
            users.load_config(path)


def test_users_command_creates_a_hashed_user_and_refuses_weak_passwords(tmp_path, monkeypatch):
    import subprocess
    import sys

    path = tmp_path / "users.yaml"
    env = {"OSE_DATA_DIR": str(tmp_path / "var"), "PATH": "/usr/bin:/bin"}
    run = lambda *args, password: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "lib.users", "--config", str(path), *args, "--password-stdin"],
        input=password + "\n", capture_output=True, text=True, cwd=ROOT, env=env)
    done = run("add", "jo", "--role", "supervisor", "--force", FORCE, "--team", "Response A", password=PASSWORD)
    assert done.returncode == 0, done.stderr
    config = users.load_config(path)
    user = config.user("jo")
    assert user.roles == ("supervisor",) and user.forces == {FORCE} and user.teams == {"Response A"}
    assert PASSWORD not in path.read_text() and sessions.check_password(PASSWORD, config.password_hash("jo"))
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    weak = run("passwd", "jo", password="short")
    assert weak.returncode == 2 and "at least 12" in weak.stderr
    assert sessions.check_password(PASSWORD, users.load_config(path).password_hash("jo"))  # unchanged
    assert audit.read(tmp_path / "var" / "audit" / "audit.jsonl")["event"].tolist() == ["user_change"]


@pytest.mark.slow
def test_the_administrator_manages_accounts_and_reads_the_audit_log(login_mode, users_file):
    for _ in range(5):
        sign_in(app(), "viewer", "wrong password again")
    at = sign_in(app(), "admin")
    at.switch_page("app_pages/admin.py").run()
    assert not at.exception
    accounts = at.dataframe[0].value
    assert set(accounts["Username"]) == set(users.load_config(users_file).users)
    assert not accounts.astype(str).apply(lambda c: c.str.contains(r"\$2[aby]\$")).any().any()  # no hashes
    assert at.selectbox(key="admin_unlock_user").options == ["viewer"]
    next(b for b in at.button if b.label == "Unlock").click().run()
    assert sessions.Store.for_data_dir().locked_until("viewer") is None
    assert sign_in(app(), "viewer").metric  # unlocked
    assert any("chain intact" in s.value for s in at.success)
    assert audit.verify().ok
    log = audit.read()
    assert {"failed_login", "locked_out", "login", "user_change"} <= set(log["event"])
    assert log[log["event"] == "user_change"].iloc[-1]["user"] == "admin"


def test_the_cookie_is_handed_over_on_the_first_runs_only(login_mode):
    """The set-cookie component is drawn after sign-in, then no more: later reruns do not pay for it."""
    from lib.ui import login

    at = sign_in(app(), "analyst")
    assert at.session_state[login.COOKIE_TOKEN_KEY][1] == login.COOKIE_RUNS - 1
    for _ in range(login.COOKIE_RUNS):
        at.run()
    assert login.COOKIE_TOKEN_KEY not in at.session_state
    assert at.metric  # still signed in: the server-side session, not the component, keeps the user


@pytest.mark.parametrize(("hosts", "origins", "named"), [
    (["127.0.0.1:8501"], ["http://127.0.0.1:8501"], True),
    (["localhost:8501"], ["http://localhost:8501"], True),
    (["[::1]:8501"], ["https://[::1]:8501"], True),
    (["LOCALHOST"], [], True),  # no port, no Origin: a program on this machine
    (["rebind.example:8501"], ["http://rebind.example:8501"], False),  # DNS rebinding
    (["127.0.0.1:8501"], ["http://rebind.example:8501"], False),
    (["127.0.0.1:9000"], [], False),  # another port: something in front of the app
    (["127.0.0.1:8501"], ["http://localhost:3000"], False),  # a page of another local site
    (["127.0.0.1:8501"], ["null"], False),
    (["127.0.0.1:8501", "rebind.example"], [], False),
    (["127.0.0.1.rebind.example:8501"], [], False),
    (["user@127.0.0.1:8501"], [], False),
    (["127.0.0.1:port"], [], False),
    ([], [], False),
])
def test_local_mode_answers_only_to_this_machines_names(hosts, origins, named):
    from lib.ui.login import named_this_machine

    assert named_this_machine(hosts, origins, 8501) is named


def test_an_analyst_sees_a_datasets_versions_but_only_an_admin_may_roll_back(login_mode):
    from lib import ingest
    from lib.ingest import library

    csv = (ROOT / "tests" / "fixtures" / "small_canonical.csv").read_text().strip().split("\n")
    library.save("Kent", ingest.ingest([("q1.csv", "\n".join(csv[:4]).encode())]))
    library.append("Kent", ingest.ingest([("q2.csv", "\n".join([csv[0], *csv[4:]]).encode())]))
    buttons = {}
    for role in ("analyst", "admin"):
        at = sign_in(app(), role)
        at.switch_page("app_pages/data.py").run()
        assert not at.exception
        assert any("Version" in d.value.columns and len(d.value) == 2 for d in at.dataframe), role
        buttons[role] = [b.label for b in at.button if b.label.startswith("Roll back")]
    assert buttons == {"analyst": [], "admin": ["Roll back Kent"]}
    assert not access.User("a", "A", ("analyst",)).may(access.ROLL_BACK_DATA)
