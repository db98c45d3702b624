"""Configuration: the shipped Streamlit config, every OSE_* setting (lib/model/settings.py) and the users file."""
from __future__ import annotations

import copy
import dataclasses
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from streamlit.testing.v1 import AppTest

from lib import ingest
from lib.engine import backends
from lib.ingest import Limits, library, pseudonym
from lib.model import paths, schema, settings
from lib.model.settings import parse_shift_boundaries
from lib.privacy import disclosure
from lib.security import users

from .conftest import ROOT


def test_upload_limit_matches_the_ingest_limit_and_telemetry_is_off():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] * 1024 * 1024 == Limits().max_bytes
    assert config["server"]["enableXsrfProtection"] is True
    assert config["browser"]["gatherUsageStats"] is False


def test_the_shipped_config_is_hardened():
    """XSRF on, no tracebacks for users, no telemetry, loopback by default, no developer toolbar."""
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["enableXsrfProtection"] is True
    assert config["server"]["address"] == "127.0.0.1"
    assert config["client"]["showErrorDetails"] == "none"
    assert config["client"]["toolbarMode"] == "minimal"
    assert config["browser"]["gatherUsageStats"] is False
    assert 0 < config["server"]["maxUploadSize"] <= 1024


def test_edits_are_found_by_polling_not_by_watching_the_whole_project_folder():
    """The event-based watcher walks the project folder, .venv included, as the first browser connects."""
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["fileWatcherType"] == "poll"


# --- one configuration: every OSE_* variable read and checked once (lib/model/settings.py) -------------


def _clean(monkeypatch) -> None:
    """Unset every OSE_* variable, so a test sees only what it sets."""
    for name in [k for k in os.environ if k.startswith("OSE_")]:
        monkeypatch.delenv(name)


def test_with_nothing_set_every_setting_has_its_documented_default(monkeypatch):
    _clean(monkeypatch)
    current = settings.settings()
    assert current == settings.Settings()
    assert current.data_dir == Path("var") and current.dataset is None and current.auth_config is None
    assert current.demo is False and current.disclosure_threshold == 10 and current.engine_url == "duckdb://"
    assert current.pseudonym_key is None and current.max_upload_bytes == Limits().max_bytes == 1 << 30
    assert str(current.shift_starts) == "07:00,15:00,23:00" and current.spark_shuffle_partitions == 2
    assert current.max_rows == Limits().max_rows == 20_000_000
    assert current.max_expanded_bytes == Limits().max_expanded_bytes == 4 << 30
    assert current.upload_seconds == 600
    # The reading worker's memory: half the machine's, leaving the rest to the server and other users.
    assert current.upload_memory_bytes == settings.default_upload_memory_mb() * 1024 * 1024
    assert 0 < current.upload_memory_bytes < os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    monkeypatch.setenv("OSE_DISCLOSURE_THRESHOLD", "   ")  # blank is the same as unset
    assert settings.settings().disclosure_threshold == 10


@pytest.mark.parametrize(("variable", "raw", "field", "expected"), [
    ("OSE_DATA_DIR", "/srv/ose", "data_dir", Path("/srv/ose")),
    ("OSE_DATASET", " data/synth ", "dataset", Path("data/synth")),
    ("OSE_AUTH_CONFIG", "/etc/ose/users.yaml", "auth_config", Path("/etc/ose/users.yaml")),
    ("OSE_DEMO", "1", "demo", True),
    ("OSE_DEMO", "Yes", "demo", True),
    ("OSE_DEMO", "off", "demo", False),
    ("OSE_DISCLOSURE_THRESHOLD", "5", "disclosure_threshold", 5),
    ("OSE_DISCLOSURE_THRESHOLD", "1000", "disclosure_threshold", 1000),
    ("OSE_ENGINE_URL", "postgres://ose:pw@db:5432/ose", "engine_url", "postgres://ose:pw@db:5432/ose"),
    ("OSE_ENGINE_URL", "pyspark://local[2]", "engine_url", "pyspark://local[2]"),
    ("OSE_ENGINE_URL", "duckdb:///srv/ose.duckdb", "engine_url", "duckdb:///srv/ose.duckdb"),
    ("OSE_SPARK_SHUFFLE_PARTITIONS", "8", "spark_shuffle_partitions", 8),
    ("OSE_PSEUDONYM_KEY", "k" * 40, "pseudonym_key", b"k" * 40),
    ("OSE_MAX_UPLOAD_MB", "0.5", "max_upload_mb", 0.5),
    ("OSE_MAX_EXPANDED_MB", "512", "max_expanded_bytes", 512 << 20),
    ("OSE_MAX_ROWS", "5000000", "max_rows", 5_000_000),
    ("OSE_UPLOAD_MEMORY_MB", "3072", "upload_memory_bytes", 3072 << 20),
    ("OSE_UPLOAD_SECONDS", "120", "upload_seconds", 120),
    ("OSE_SHIFT_STARTS", "06:00, 14:00, 22:00", "shift_starts", parse_shift_boundaries("06:00,14:00,22:00")),
    ("OSE_SHIFT_STARTS", "22:00,06:00,14:00", "shift_starts", parse_shift_boundaries("22:00,06:00,14:00")),
    ("OSE_KEEP_VERSIONS", "12", "keep_versions", 12),
])
def test_good_values_are_read(monkeypatch, variable, raw, field, expected):
    _clean(monkeypatch)
    monkeypatch.setenv(variable, raw)
    assert getattr(settings.settings(), field) == expected


@pytest.mark.parametrize(("variable", "raw", "allowed"), [
    ("OSE_DISCLOSURE_THRESHOLD", "ten", "is not a whole number from 2 to 1000"),
    ("OSE_KEEP_VERSIONS", "0", "is not a whole number from 1 to 1000"),
    ("OSE_DISCLOSURE_THRESHOLD", "1", "is not a whole number from 2 to 1000"),
    ("OSE_DISCLOSURE_THRESHOLD", "2.5", "is not a whole number from 2 to 1000"),
    ("OSE_DISCLOSURE_THRESHOLD", "1001", "is not a whole number from 2 to 1000"),
    ("OSE_DEMO", "maybe", "is not on or off"),
    ("OSE_ENGINE_URL", "mysql://db/ose", "names no engine"),
    ("OSE_ENGINE_URL", "localhost:5432", "names no engine"),
    ("OSE_ENGINE_URL", "pyspark://", "names no Spark master"),
    ("OSE_SPARK_SHUFFLE_PARTITIONS", "0", "is not a whole number from 1 to"),
    ("OSE_SPARK_SHUFFLE_PARTITIONS", "many", "is not a whole number from 1 to"),
    ("OSE_MAX_UPLOAD_MB", "big", "is not a number of megabytes above 0"),
    ("OSE_MAX_UPLOAD_MB", "-3", "is not a number of megabytes above 0"),
    ("OSE_MAX_UPLOAD_MB", "0", "is not a number of megabytes above 0"),
    ("OSE_MAX_UPLOAD_MB", "inf", "is not a number of megabytes above 0"),
    ("OSE_MAX_EXPANDED_MB", "lots", "is not a number of megabytes above 0"),
    ("OSE_MAX_ROWS", "0", "is not a whole number from 1 to"),
    ("OSE_MAX_ROWS", "1e6", "is not a whole number from 1 to"),
    ("OSE_UPLOAD_MEMORY_MB", "-1", "is not a number of megabytes above 0"),
    ("OSE_UPLOAD_SECONDS", "0", "is not a whole number from 1 to 86400"),
    ("OSE_SHIFT_STARTS", "07:00,15:00", "is not three HH:MM start times"),
    ("OSE_SHIFT_STARTS", "7am,3pm,11pm", "is not three HH:MM start times"),
    ("OSE_SHIFT_STARTS", "15:00,07:00,23:00", "in Early, Late, Night order"),
    ("OSE_SHIFT_STARTS", "07:00,07:00,23:00", "in Early, Late, Night order"),
])
def test_each_bad_value_is_refused_with_the_variable_the_value_and_what_is_allowed(monkeypatch, variable, raw,
                                                                                   allowed):
    _clean(monkeypatch)
    monkeypatch.setenv(variable, raw)
    with pytest.raises(settings.SettingsError) as caught:
        settings.settings()
    assert str(caught.value).startswith(f"{variable}={raw!r} ")
    assert allowed in str(caught.value)
    assert caught.value.variables == (variable,)
    assert isinstance(caught.value, ValueError)


def test_a_data_dir_that_is_a_file_is_refused(monkeypatch, tmp_path):
    _clean(monkeypatch)
    a_file = tmp_path / "var"
    a_file.write_text("not a folder")
    monkeypatch.setenv("OSE_DATA_DIR", str(a_file))
    with pytest.raises(settings.SettingsError, match="OSE_DATA_DIR=.* is a file, not a folder"):
        paths.data_dir()


def test_secrets_are_never_repeated_in_a_message_or_a_repr(monkeypatch):
    _clean(monkeypatch)
    monkeypatch.setenv("OSE_ENGINE_URL", "mysql://ose:hunter2-secret@db/ose")
    monkeypatch.setenv("OSE_PSEUDONYM_KEY", "short-secret")
    with pytest.raises(settings.SettingsError) as caught:
        settings.settings()
    message = str(caught.value)
    assert "hunter2-secret" not in message and "short-secret" not in message
    assert "OSE_ENGINE_URL='mysql://ose:***@db/ose' names no engine" in message
    assert "OSE_PSEUDONYM_KEY is 12 bytes long" in message and "at least 32" in message
    monkeypatch.setenv("OSE_ENGINE_URL", "postgres://ose:hunter2-secret@db/ose")
    monkeypatch.setenv("OSE_PSEUDONYM_KEY", "a long enough secret key, 32 bytes or more")
    shown = repr(settings.settings())
    assert "hunter2-secret" not in shown and "long enough secret" not in shown and "postgres://ose:***@db" in shown


def test_the_audit_key_and_trusted_proxies_are_read_and_checked_never_echoing_the_key(monkeypatch):
    import ipaddress
    import secrets

    _clean(monkeypatch)
    good = secrets.token_urlsafe(48)
    monkeypatch.setenv("OSE_AUDIT_KEY", good)
    monkeypatch.setenv("OSE_TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/24,::1")
    current = settings.settings()
    assert current.audit_key == good.encode() and good not in repr(current)
    assert current.trusted_proxies == (ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("10.0.0.0/24"),
                                       ipaddress.ip_network("::1/128"))
    assert "10.0.0.0/24" in repr(current)
    assert current.audit_key_file == Path("var") / "secrets" / "audit.key"
    for weak, why in (("a" * 32, "repeats one character"), ("passwordpassword" * 2, "repeats a pattern"),
                      ("short", "is 5 bytes long")):
        monkeypatch.setenv("OSE_AUDIT_KEY", weak)
        with pytest.raises(settings.SettingsError) as caught:
            settings.settings()
        assert str(caught.value).startswith("OSE_AUDIT_KEY is ") and why in str(caught.value)
        assert weak not in str(caught.value) and "secrets.token_urlsafe(48)" in str(caught.value)
    monkeypatch.setenv("OSE_AUDIT_KEY", good)
    monkeypatch.setenv("OSE_TRUSTED_PROXIES", "127.0.0.1,proxy.local")
    with pytest.raises(settings.SettingsError, match="OSE_TRUSTED_PROXIES='127.0.0.1,proxy.local' holds 'proxy.local'"):
        settings.settings()


def test_every_bad_value_is_named_at_once(monkeypatch):
    _clean(monkeypatch)
    monkeypatch.setenv("OSE_DISCLOSURE_THRESHOLD", "ten")
    monkeypatch.setenv("OSE_DEMO", "maybe")
    monkeypatch.setenv("OSE_MAX_UPLOAD_MB", "big")
    with pytest.raises(settings.SettingsError) as caught:
        settings.settings()
    assert set(caught.value.variables) == {"OSE_DISCLOSURE_THRESHOLD", "OSE_DEMO", "OSE_MAX_UPLOAD_MB"}
    assert all(name in str(caught.value) for name in caught.value.variables)


def test_a_changed_environment_is_seen_and_an_unchanged_one_is_read_once(monkeypatch, tmp_path):
    _clean(monkeypatch)
    first = settings.settings()
    assert settings.settings() is first  # read once, while nothing changes
    monkeypatch.setenv("OSE_DISCLOSURE_THRESHOLD", "7")
    assert settings.settings().disclosure_threshold == 7
    monkeypatch.setenv("OSE_DISCLOSURE_THRESHOLD", "ten")
    with pytest.raises(settings.SettingsError, match="OSE_DISCLOSURE_THRESHOLD='ten'"):
        settings.settings()
    monkeypatch.delenv("OSE_DISCLOSURE_THRESHOLD")
    assert settings.settings() == first
    monkeypatch.setenv("OSE_DATA_DIR", str(tmp_path))
    assert paths.data_dir() == tmp_path  # through the module's own function


def test_settings_are_frozen(monkeypatch):
    _clean(monkeypatch)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.settings().demo = True


def test_every_module_reads_its_setting_through_settings(monkeypatch, tmp_path):
    _clean(monkeypatch)
    users_file = tmp_path / "users.yaml"
    monkeypatch.setenv("OSE_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("OSE_AUTH_CONFIG", str(users_file))
    monkeypatch.setenv("OSE_DEMO", "true")
    monkeypatch.setenv("OSE_DISCLOSURE_THRESHOLD", "4")
    monkeypatch.setenv("OSE_ENGINE_URL", "duckdb://")
    monkeypatch.setenv("OSE_MAX_UPLOAD_MB", "2")
    monkeypatch.setenv("OSE_SHIFT_STARTS", "08:00,16:00,00:00")
    monkeypatch.setenv("OSE_PSEUDONYM_KEY", "p" * 32)
    from lib.ui import login

    assert paths.data_dir() == tmp_path / "var" and library.data_dir() == tmp_path / "var"
    assert ingest.profile_dir() == tmp_path / "var" / "profiles"
    assert users.config_path() == users_file and users.config_path("/other.yaml") == Path("/other.yaml")
    assert login.demo_mode() is True
    assert disclosure.threshold_from_env() == 4
    assert backends.configured_url() == "duckdb://"
    assert Limits.from_env().max_bytes == 2 * 1024 * 1024
    assert schema.configured_shifts() == parse_shift_boundaries("08:00,16:00,00:00")
    assert pseudonym.secret() == b"p" * 32
    monkeypatch.delenv("OSE_PSEUDONYM_KEY")
    assert pseudonym.key_path() == tmp_path / "var" / "secrets" / "pseudonym.key"


def test_an_ingest_with_a_bad_setting_is_refused_naming_it(monkeypatch):
    monkeypatch.setenv("OSE_SHIFT_STARTS", "early,late,night")
    with pytest.raises(ingest.RejectedFile, match="OSE_SHIFT_STARTS='early,late,night' is not three HH:MM"):
        ingest.ingest([("x.csv", b"report_id,occurred_at,force,officer_id\nR1,2024-01-01,F,AB12\n")])


def test_the_settings_module_stays_light():
    """The login gate reads settings before sign-in: no pandas, engine or Streamlit may load with them."""
    heavy = ("pandas", "numpy", "pyarrow", "duckdb", "ibis", "altair", "streamlit")
    code = ("import sys; from lib.model.settings import settings; settings(); "
            f"print(','.join(m for m in {heavy!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""


# --- the users file: every field checked, with a ConfigError naming it ------------------------------

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def good_config() -> dict:
    """A users file's contents that load: one analyst, a cookie, lockout and disclosure settings."""
    return {"credentials": {"usernames": {"jo": {"name": "Jo", "password": users.hash_password(PASSWORD),
                                                 "roles": ["analyst"], "force": "Kent Police",
                                                 "teams": ["Response A", 7]}}},
            "cookie": {"name": "ose_auth", "key": "test-only cookie key: Xq7Lm2Vz9RkP4wN8cT3hYbJ6fD",
                       "expiry_days": 0.5, "secure": True},
            "lockout": {"attempts": 3, "minutes": 2.5},
            "disclosure": {"threshold": 5}}


def _write(tmp_path: Path, config: dict) -> Path:
    path = tmp_path / "users.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def _with(config: dict, section: str, **values) -> dict:
    changed = copy.deepcopy(config)
    changed.setdefault(section, {}).update(values)
    return changed


def test_a_good_users_file_loads_with_its_values(tmp_path, good_config):
    config = users.load_config(_write(tmp_path, good_config))
    assert (config.lockout_attempts, config.lockout_minutes, config.disclosure_threshold) == (3, 2.5, 5)
    assert config.expiry_days == 0.5 and config.cookie_secure is True and config.cookie_name == "ose_auth"
    assert config.user("jo").teams == {"Response A", "7"} and config.user("jo").forces == {"Kent Police"}
    bare = copy.deepcopy(good_config)
    for section in ("lockout", "disclosure"):
        del bare[section]
    config = users.load_config(_write(tmp_path, bare))
    assert (config.lockout_attempts, config.lockout_minutes, config.disclosure_threshold) == (5, 15, None)


@pytest.mark.parametrize(("section", "values", "message"), [
    ("lockout", {"attempts": "five"}, "lockout.attempts='five' is not a whole number of failed sign-ins from 1"),
    ("lockout", {"attempts": 0}, "lockout.attempts=0 is not a whole number"),
    ("lockout", {"attempts": 2.5}, "lockout.attempts=2.5 is not a whole number"),
    ("lockout", {"attempts": True}, "lockout.attempts=True is not a whole number"),
    ("lockout", {"minutes": -3}, "lockout.minutes=-3 is not a number of minutes above 0"),
    ("lockout", {"minutes": "a while"}, "lockout.minutes='a while' is not a number of minutes"),
    ("lockout", {"minutes": 0}, "lockout.minutes=0 is not a number of minutes above 0"),
    ("lockout", {"attemps": 3}, "lockout has unknown field 'attemps'; allowed: attempts, minutes"),
    ("cookie", {"expiry_days": "soon"}, "cookie.expiry_days='soon' is not a number of days from 0 to 1"),
    ("cookie", {"expiry_days": -1}, "cookie.expiry_days=-1 is not a number of days"),
    ("cookie", {"expiry_days": [1]}, "cookie.expiry_days=[1] is not a number of days"),
    ("cookie", {"expiry_days": 2}, "at most 1 day"),
    ("cookie", {"secure": "yes please"}, "cookie.secure='yes please' is not true or false"),
    ("cookie", {"name": "my cookie"}, "cookie.name='my cookie' is not a cookie name"),
    ("disclosure", {"threshold": "ten"}, "disclosure.threshold='ten' is not a whole number from 2 to 1000"),
    ("disclosure", {"threshold": 1}, "disclosure.threshold=1 is not a whole number from 2 to 1000"),
    ("disclosure", {"threshold": 5.5}, "disclosure.threshold=5.5 is not a whole number"),
    ("pseudonymisation", {"key": "short"}, "pseudonymisation.key is 5 bytes long; it must be at least 32"),
    ("pseudonymisation", {"key": 12345}, "pseudonymisation.key must be text"),
])
def test_a_bad_field_in_the_users_file_is_a_config_error_naming_it(tmp_path, good_config, section, values,
                                                                   message):
    with pytest.raises(users.ConfigError) as caught:
        users.load_config(_write(tmp_path, _with(good_config, section, **values)))
    assert message in str(caught.value)


@pytest.mark.parametrize(("text", "message"), [
    ("lockout: [5, 15]\n", "lockout must be a mapping with attempts and minutes"),
    ("lockout: five\n", "lockout must be a mapping"),
    ("disclosure: 5\n", "disclosure must be a mapping with threshold"),
    ("cookie: yes\n", "cookie must be a mapping"),
    ("credentials: [jo]\n", "credentials must be a mapping"),
    ("- just\n- a list\n", "must be a YAML mapping"),
    ("lockout: {attempts: [\n", "not valid YAML"),
])
def test_a_section_of_the_wrong_shape_is_a_config_error(tmp_path, good_config, text, message):
    path = tmp_path / "users.yaml"
    base = {k: v for k, v in good_config.items() if not text.startswith(f"{k}:")}
    path.write_text(text if text.startswith("-") else yaml.safe_dump(base) + text, encoding="utf-8")
    with pytest.raises(users.ConfigError, match=re.escape(message)):
        users.load_config(path)


@pytest.mark.parametrize(("entry", "message"), [
    ({"roles": ["superuser"]}, "needs roles from"),
    ({"roles": [["analyst"]]}, "needs roles from"),
    ({"roles": {"analyst": 1}}, "roles={'analyst': 1} is not a list of roles"),
    ({"roles": []}, "needs roles from"),
    ({"password": 12345}, "no bcrypt password hash"),
    ({"force": {"Kent": 1}}, "user 'jo': force={'Kent': 1} is not a name or a list of names"),
    ({"teams": [["Response A"]]}, "user 'jo': teams=[['Response A']] is not a name or a list of names"),
    ({"areas": 42}, "user 'jo': areas=42 is not a name or a list of names"),
    ({"name": ["Jo", "Smith"]}, "user 'jo': name=['Jo', 'Smith'] is not text"),
])
def test_a_bad_user_entry_is_a_config_error_naming_the_user_and_field(tmp_path, good_config, entry, message):
    config = copy.deepcopy(good_config)
    config["credentials"]["usernames"]["jo"].update(entry)
    with pytest.raises(users.ConfigError, match=re.escape(message)):
        users.load_config(_write(tmp_path, config))


def test_the_users_command_reports_a_bad_field_in_one_line(tmp_path, good_config):
    path = _write(tmp_path, _with(good_config, "lockout", attempts="five"))
    env = {"OSE_DATA_DIR": str(tmp_path / "var"), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "lib.users", "--config", str(path), "check"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip() == ("error: lockout.attempts='five' is not a whole number of failed sign-ins "
                                   "from 1 to 100")
    bad_env = {**env, "OSE_AUTH_CONFIG": str(path), "OSE_DEMO": "maybe"}
    done = subprocess.run([sys.executable, "-m", "lib.users", "check"], cwd=ROOT, env=bad_env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.startswith("error: OSE_DEMO='maybe' is not on or off")


# --- the app refuses to start, with the message and no traceback --------------------------------


def _app_run(monkeypatch, tmp_path) -> AppTest:
    import streamlit as st

    st.cache_data.clear()
    st.cache_resource.clear()
    monkeypatch.setenv("OSE_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("OSE_DATASET", raising=False)
    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=90).run()


def test_the_app_will_not_start_with_a_bad_lockout_in_the_users_file(monkeypatch, tmp_path, good_config):
    monkeypatch.delenv("OSE_DEMO", raising=False)
    monkeypatch.setenv("OSE_AUTH_CONFIG", str(_write(tmp_path, _with(good_config, "lockout", attempts="five"))))
    at = _app_run(monkeypatch, tmp_path)
    assert not at.exception
    assert [e.value for e in at.error] == [
        "Officer Safety Explorer will not start: lockout.attempts='five' is not a whole number of failed sign-ins "
        "from 1 to 100. Fix OSE_AUTH_CONFIG and reload."]
    assert not at.text_input and not at.metric  # no login form, no data


@pytest.mark.parametrize(("variable", "raw"), [("OSE_DEMO", "maybe"), ("OSE_SHIFT_STARTS", "7am,3pm,11pm"),
                                               ("OSE_ENGINE_URL", "mysql://db/ose")])
def test_the_app_will_not_start_with_a_bad_setting(monkeypatch, tmp_path, variable, raw):
    monkeypatch.delenv("OSE_AUTH_CONFIG", raising=False)
    monkeypatch.setenv(variable, raw)
    at = _app_run(monkeypatch, tmp_path)
    assert not at.exception
    assert len(at.error) == 1
    assert at.error[0].value.startswith(f"Officer Safety Explorer will not start: {variable}={raw!r} ")
    assert not at.metric and not at.get("vega_lite_chart")
