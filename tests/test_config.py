"""The shipped Streamlit configuration: uploads sized for real extracts, no usage statistics."""
from __future__ import annotations

import tomllib

from lib.ingest import Limits

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
