"""Where the app keeps what it writes: the data directory (OSE_DATA_DIR, default ./var)."""
from __future__ import annotations

from pathlib import Path

from lib.model.settings import settings


def data_dir() -> Path:
    """Return the data directory (OSE_DATA_DIR, default ./var)."""
    return settings().data_dir


def cache_dir() -> Path:
    """Return where what is derived once per dataset version is kept (OSE_CACHE_DIR, else OSE_DATA_DIR/cache)."""
    return settings().derived_dir
