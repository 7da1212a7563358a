"""Input checks shared by the statistics modules."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from mlobs.stats._types import FloatArray


def nonnegative_vector(values: npt.ArrayLike, name: str) -> FloatArray:
    """``values`` as a validated 1-D float64 vector: non-empty, finite, non-negative."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite")
    if np.any(arr < 0):
        raise ValueError(f"{name} must be non-negative, got minimum {float(arr.min())}")
    return arr
