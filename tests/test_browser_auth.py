"""Browser journeys for login: a copied cookie stops working at logout; local mode stays on this machine."""
from __future__ import annotations

from pathlib import Path

import pytest

from lib import access, users

from .browser import browser_page, metric_value, running_app, settle

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


@pytest.mark.parametrize(("address", "headers"), [
    ("0.0.0.0", {}),  # bound beyond this machine
    # A reverse proxy on this machine makes every client look local: local mode refuses what it forwards.
    ("127.0.0.1", {"X-Forwarded-For": "203.0.113.7"}),
], ids=["all-interfaces", "behind-a-proxy"])
def test_local_mode_will_not_serve_beyond_this_machine(tmp_path, address, headers):
    env = {"OSE_DATA_DIR": str(tmp_path / "var")}
    with running_app(env, address=address) as url, browser_page() as page:
        page.context.set_extra_http_headers(headers)
        page.goto(url)
        page.get_by_text("will not serve other machines without a login").wait_for(timeout=60_000)
        settle(page)
        assert page.locator('[data-testid="stMetric"]').count() == 0


def test_tables_offer_our_downloads_not_streamlits(tmp_path):
    from lib import audit

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
