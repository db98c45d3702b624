"""Where the app keeps what it writes: the data directory (OSE_DATA_DIR, default ./var)."""
from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path:
    """Return the data directory (OSE_DATA_DIR, default ./var)."""
    return Path(os.environ.get("OSE_DATA_DIR", "var"))
