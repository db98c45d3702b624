"""Browser journeys for login: a copied cookie stops working at logout; local mode stays on this machine, by
address and by name; Streamlit's metrics endpoint is not served."""
from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from lib.security import access, users

from .browser import browser_page, metric_value, reverse_proxy, running_app, script_run, settle

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery staple"


@pytest.fixture
def users_file(tmp_path) -> Path:
    path = tmp_path / "users.yaml"
    users.upsert_user(path, "ana", role="analyst", password=PASSWORD)
    return path


def sign_in(page, url: str) -> None:
    page.goto(url)
    page.get_by_role("textbox", name="Username").fill("ana")
    page.get_by_role("textbox", name="Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.locator('[data-testid="stMetric"]').first.wait_for(timeout=60_000)


def cookie_named(context, name: str, timeout_s: float = 20) -> dict:
    import time
    end = time.time() + timeout_s
    while time.time() < end:
        found = [c for c in context.cookies() if c["name"] == name]
        if found:
            return found[0]
        time.sleep(0.2)
    raise AssertionError(f"the login cookie {name} was never set")


def test_a_copied_login_cookie_stops_working_at_logout(users_file, tmp_path):
    env = {"OSE_AUTH_CONFIG": str(users_file), "OSE_DATA_DIR": str(tmp_path / "var")}
    name = users.load_config(users_file).cookie_name
    with running_app(env) as url, browser_page() as page:
        sign_in(page, url)
        cookie = cookie_named(page.context, name)
        assert cookie["sameSite"] == "Strict"

        thief = page.context.browser.new_context()
        thief.add_cookies([{"name": name, "value": cookie["value"], "url": url}])
        stolen = thief.new_page()
        stolen.goto(url)
        stolen.locator('[data-testid="stMetric"]').first.wait_for(timeout=60_000)  # the cookie signs in...
        assert metric_value(stolen, "Reports")
        stolen.close()

        page.get_by_role("button", name="Log out").click()
        page.get_by_role("button", name="Sign in").wait_for(timeout=30_000)

        replay = thief.new_page()
        replay.goto(url)
        replay.get_by_role("button", name="Sign in").wait_for(timeout=60_000)  # ...until the owner logs out
        settle(replay)
        assert replay.locator('[data-testid="stMetric"]').count() == 0
        assert replay.get_by_label("Username").is_visible()
        thief.close()


def refused(page) -> bool:
    """Say whether the page shows local mode's refusal, and no data."""
    page.get_by_text("will not serve other machines without a login").wait_for(timeout=60_000)
    settle(page)
    return page.locator('[data-testid="stMetric"]').count() == 0


def test_local_mode_will_not_serve_when_bound_to_every_interface(tmp_path):
    with running_app({"OSE_DATA_DIR": str(tmp_path / "var")}, address="0.0.0.0") as url, browser_page() as page:
        page.goto(url)
        assert refused(page)


def test_local_mode_will_not_serve_through_a_reverse_proxy(tmp_path):
    """A reverse proxy on this machine makes every client look local: local mode refuses what it forwards."""
    with running_app({"OSE_DATA_DIR": str(tmp_path / "var")}) as app_url, browser_page() as page:
        page.goto(app_url)  # straight to the app, from this machine: served
        page.locator('[data-testid="stMetric"]').first.wait_for(timeout=60_000)
        with reverse_proxy(app_url, tmp_path / "nginx") as proxy_url:
            page.goto(proxy_url)  # the same browser, through nginx on loopback: refused
            assert refused(page)
            page.close()  # nginx logs a websocket once it closes
            assert wait_for_line(tmp_path / "nginx" / "access.log", 'GET /_stcore/stream HTTP/1.1" 101')


def test_local_mode_will_not_serve_a_page_under_another_name(tmp_path):
    """A web page whose name resolves to 127.0.0.1 (DNS rebinding) reaches the app, which refuses it by name."""
    with running_app({"OSE_DATA_DIR": str(tmp_path / "var")}) as url:
        foreign = script_run(url, "rebind.example")
        assert not [e for e in foreign if e.WhichOneof("type") == "metric"]  # no Overview, no numbers
        errors = [e.alert.body for e in foreign if e.WhichOneof("type") == "alert"]
        assert any("will not serve other machines without a login" in body for body in errors)
        assert [e.metric.label for e in script_run(url, "127.0.0.1") if e.WhichOneof("type") == "metric"]
        with browser_page() as page:  # a browser on this machine, by the name localhost: the Overview
            page.goto(f"http://localhost:{urlsplit(url).port}")
            page.locator('[data-testid="stMetric"]').first.wait_for(timeout=60_000)
            assert metric_value(page, "Reports")


@pytest.mark.parametrize("mode", ["local", "users file"])
def test_streamlit_metrics_are_not_served(mode, users_file, tmp_path):
    env = {"OSE_DATA_DIR": str(tmp_path / "var")} | ({"OSE_AUTH_CONFIG": str(users_file)} if mode != "local" else {})
    with running_app(env) as url:
        assert urllib.request.urlopen(f"{url}/_stcore/health", timeout=30).status == 200  # the server answers
        for path in ("/_stcore/metrics", "/_stcore/metrics?families=cache_memory_bytes", "/_stcore/metrics/"):
            with pytest.raises(urllib.error.HTTPError) as refused_metrics:
                urllib.request.urlopen(url + path, timeout=30)
            assert refused_metrics.value.code == 404, path


def wait_for_line(path: Path, text: str, timeout_s: float = 20) -> bool:
    """Wait until a log file has a line containing `text` (the websocket really went through nginx)."""
    import time
    end = time.time() + timeout_s
    while time.time() < end:
        if path.exists() and text in path.read_text():
            return True
        time.sleep(0.2)
    return False


def test_tables_offer_our_downloads_not_streamlits(tmp_path):
    from lib.security import audit

    env = {"OSE_DATA_DIR": str(tmp_path / "var")}
    with running_app(env) as url, browser_page() as page:
        page.goto(url)
        page.locator('[data-testid="stMetric"]').first.wait_for(timeout=60_000)
        settle(page)
        expander = page.locator('[data-testid="stExpander"]').filter(has_text="Table behind this chart").first
        expander.get_by_text("Table behind this chart").click()
        grid = expander.locator('[data-testid="stDataFrame"]').first
        grid.wait_for(timeout=30_000)
        grid.hover()
        page.wait_for_timeout(500)
        assert page.locator('button[aria-label="Download as CSV"]').filter(visible=True).count() == 0
        ours = expander.get_by_role("button", name="Download CSV")
        assert ours.is_visible()
        with page.expect_download(timeout=60_000) as done:
            ours.click()
        body = Path(done.value.path()).read_bytes().decode("utf-8-sig")
        assert body.splitlines()[0].startswith("Month")
    logged = audit.read(tmp_path / "var" / "audit" / "audit.jsonl").iloc[-1]
    assert (logged["event"], logged["user"], logged["rows"]) == ("export", access.LOCAL_USER.username,
                                                                 len(body.splitlines()) - 1)


@pytest.mark.parametrize(("trusted", "client"), [(None, "127.0.0.1"), ("127.0.0.1", "203.0.113.66")])
def test_the_audit_log_records_the_client_a_trusted_proxy_names(users_file, tmp_path, trusted, client):
    """Behind a proxy the peer is the proxy; its X-Forwarded-For is believed only when OSE_TRUSTED_PROXIES lists it."""
    from lib.security import audit

    # Streamlit's server (uvicorn) itself believes X-Forwarded-For from a peer on this machine; told to believe
    # no one, nginx stands for a proxy on another host, the case OSE_TRUSTED_PROXIES is for.
    env = {"OSE_AUTH_CONFIG": str(users_file), "OSE_DATA_DIR": str(tmp_path / "var"), "FORWARDED_ALLOW_IPS": ""}
    env |= {"OSE_TRUSTED_PROXIES": trusted} if trusted else {}
    # The requests arrive claiming an address, standing for the one a proxy would see; nginx appends its own
    # peer's, this machine's.
    with running_app(env) as app_url, reverse_proxy(app_url, tmp_path / "nginx", "203.0.113.66") as proxy_url, \
            browser_page() as page:
        sign_in(page, proxy_url)
    logins = [e for e in audit.entries(tmp_path / "var" / "audit" / "audit.jsonl") if e["event"] == "login"]
    assert [(e["user"], e["client"]) for e in logins] == [("ana", client)]
    assert audit.verify(tmp_path / "var" / "audit" / "audit.jsonl").ok
