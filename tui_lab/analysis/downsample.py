"""Thinning a series to a bounded number of points, keeping its ends."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def thin(values: Sequence[float], limit: int) -> list[float]:
    """At most ``limit`` evenly spaced items, always keeping the first and the last."""
    n = len(values)
    if n <= limit:
        return [float(v) for v in values]
    keep = np.unique(np.linspace(0, n - 1, limit).round().astype(int))
    return [float(values[i]) for i in keep]
