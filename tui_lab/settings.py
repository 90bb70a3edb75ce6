"""Settings that come from the environment and the folders bslab uses by default, read in one place.

- ``BSLAB_DATA``: where downloaded data sets are cached (default ``~/.cache/bslab/data``).
- ``BSLAB_OFFLINE=1``: never download a data set (tests and air-gapped machines).
"""

from __future__ import annotations

import os
from pathlib import Path

SESSIONS_DIR = Path("sessions")  # where runs are saved unless --out says otherwise


def data_cache_dir() -> Path:
    return Path(os.environ.get("BSLAB_DATA", Path.home() / ".cache" / "bslab" / "data"))


def downloads_allowed() -> bool:
    return os.environ.get("BSLAB_OFFLINE", "") not in ("1", "true", "yes")
