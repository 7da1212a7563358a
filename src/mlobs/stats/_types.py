"""Array type aliases shared by the statistics modules."""

from __future__ import annotations

from typing import TypeAlias

import numpy as np
import numpy.typing as npt

FloatArray: TypeAlias = npt.NDArray[np.float64]
"""A numpy array of 64-bit floats (values, proportions, bin edges)."""

IntArray: TypeAlias = npt.NDArray[np.int64]
"""A numpy array of 64-bit integers (bin indices, counts)."""
