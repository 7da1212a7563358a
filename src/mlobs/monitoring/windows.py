"""Window counts: a window of traffic as counts over a reference profile's frozen bins.

A window costs O(features x bins) memory whatever the traffic, and two windows (two processes, or
two time slices) merge by adding their counts. ``LiveWindow`` is the per-process accumulator that
every prediction updates; its counts reach the shared window in the database as deltas.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlobs.monitoring.profiles import OUTPUT, CategoricalProfile, NumericProfile, ReferenceProfile
from mlobs.stats import bin_counts

DUPLICATES = "__duplicates__"


@dataclass
class WindowCounts:
    """Counts of one window: per feature (and the output) a vector over its frozen bins, the
    missing values per feature, numeric values outside the reference range, the rows, and rows
    that repeated an earlier row."""

    n_rows: int = 0
    counts: dict[str, np.ndarray] = field(default_factory=dict)
    missing: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    out_of_range: dict[str, int] = field(default_factory=dict)

    @classmethod
    def empty(cls, profile: ReferenceProfile) -> WindowCounts:
        counts = {n: np.zeros(p.n_bins, dtype=np.int64) for n, p in profile.features.items()}
        if profile.output is not None:
            counts[OUTPUT] = np.zeros(profile.output.n_bins, dtype=np.int64)
        return cls(0, counts, dict.fromkeys(profile.features, 0), 0, {})

    @classmethod
    def from_frame(
        cls,
        profile: ReferenceProfile,
        frame: pd.DataFrame,
        predictions: np.ndarray | None = None,
        *,
        duplicates: bool = True,
    ) -> WindowCounts:
        """Count a whole frame at once, vectorised. ``duplicates=False`` skips the duplicate-row
        count, which only data quality needs and which costs more than all the binning."""
        missing_cols = [n for n in profile.features if n not in frame.columns]
        if missing_cols:
            raise ValueError(f"columns missing from the data: {missing_cols}")
        out = cls(n_rows=len(frame))
        for name, p in profile.features.items():
            if isinstance(p, NumericProfile):
                x = pd.to_numeric(frame[name], errors="coerce").to_numpy(
                    dtype=np.float64, na_value=np.nan
                )
                out.counts[name] = bin_counts(x, np.asarray(p.edges, dtype=np.float64))
                out.missing[name] = int(np.isnan(x).sum())
                with np.errstate(invalid="ignore"):
                    outside = (x < p.minimum) | (x > p.maximum)
                out.out_of_range[name] = int(outside.sum())
            else:
                # value_counts runs in C (Arrow strings included); only distinct values reach
                # Python, to be mapped onto the reference categories.
                seen = frame[name].value_counts(dropna=True)
                codes = {c: i for i, c in enumerate(p.categories)}
                counts = np.zeros(len(p.categories) + 1, dtype=np.int64)
                for value, n in zip(seen.index.tolist(), seen.to_numpy().tolist(), strict=True):
                    counts[codes.get(str(value), len(p.categories))] += n
                out.counts[name] = counts
                out.missing[name] = len(frame) - int(counts.sum())
        if predictions is not None and profile.output is not None:
            y = np.asarray(predictions, dtype=np.float64)
            out.counts[OUTPUT] = bin_counts(y, np.asarray(profile.output.edges, dtype=np.float64))
        if duplicates and len(frame):
            out.duplicates = int(frame[list(profile.features)].duplicated().sum())
        return out

    def merge(self, other: WindowCounts) -> WindowCounts:
        """A new window holding both windows' counts."""
        counts = {k: v.copy() for k, v in self.counts.items()}
        for k, v in other.counts.items():
            counts[k] = counts[k] + v if k in counts else v.copy()
        missing, outside = dict(self.missing), dict(self.out_of_range)
        for k, m in other.missing.items():
            missing[k] = missing.get(k, 0) + m
        for k, m in other.out_of_range.items():
            outside[k] = outside.get(k, 0) + m
        return WindowCounts(
            self.n_rows + other.n_rows,
            counts,
            missing,
            self.duplicates + other.duplicates,
            outside,
        )

    def nbytes(self) -> int:
        return sum(v.nbytes for v in self.counts.values())


class LiveWindow:
    """The per-process accumulator updated by every prediction: plain Python lists and bisect,
    about a microsecond per feature. ``take()`` hands over the counts and starts afresh."""

    def __init__(self, profile: ReferenceProfile, *, track_duplicates: int = 10_000) -> None:
        self.profile = profile
        self._numeric = [
            (n, list(p.edges), p.minimum, p.maximum)
            for n, p in profile.features.items()
            if isinstance(p, NumericProfile)
        ]
        self._categorical = [
            (n, {c: i for i, c in enumerate(p.categories)}, len(p.categories))
            for n, p in profile.features.items()
            if isinstance(p, CategoricalProfile)
        ]
        self._output_edges = list(profile.output.edges) if profile.output else None
        self._track = track_duplicates
        self._reset()

    def _reset(self) -> None:
        self.n_rows = 0
        self._counts = {n: [0] * p.n_bins for n, p in self.profile.features.items()}
        if self.profile.output is not None:
            self._counts[OUTPUT] = [0] * self.profile.output.n_bins
        self._missing = dict.fromkeys(self.profile.features, 0)
        self._outside = {n: 0 for n, *_ in self._numeric}
        self._seen: set[int] = set()
        self._duplicates = 0

    def add(self, record: Mapping[str, Any], output: float | None = None) -> None:
        """Count one validated record (every feature key present; None is missing)."""
        counts, missing = self._counts, self._missing
        for name, edges, lo, hi in self._numeric:
            v = record[name]
            if v is None or (isinstance(v, float) and math.isnan(v)):
                missing[name] += 1
            else:
                counts[name][bisect.bisect_left(edges, v)] += 1
                if v < lo or v > hi:
                    self._outside[name] += 1
        for name, codes, unseen in self._categorical:
            v = record[name]
            if v is None:
                missing[name] += 1
            else:
                counts[name][codes.get(v, unseen)] += 1
        if output is not None and self._output_edges is not None:
            counts[OUTPUT][bisect.bisect_left(self._output_edges, output)] += 1
        if len(self._seen) < self._track:
            key = hash(tuple(record.values()))
            if key in self._seen:
                self._duplicates += 1
            else:
                self._seen.add(key)
        self.n_rows += 1

    def take(self) -> WindowCounts:
        """The counts so far, as a window; the accumulator starts empty again."""
        out = WindowCounts(
            n_rows=self.n_rows,
            counts={k: np.asarray(v, dtype=np.int64) for k, v in self._counts.items()},
            missing=dict(self._missing),
            duplicates=self._duplicates,
            out_of_range=dict(self._outside),
        )
        self._reset()
        return out

    def restore(self, window: WindowCounts) -> None:
        """Put counts taken by ``take()`` back (their push to the shared window failed)."""
        for name, counts in window.counts.items():
            mine = self._counts.get(name)
            if mine is not None and len(mine) == len(counts):
                for i, c in enumerate(counts.tolist()):
                    mine[i] += c
        for name, n in window.missing.items():
            self._missing[name] = self._missing.get(name, 0) + n
        for name, n in window.out_of_range.items():
            self._outside[name] = self._outside.get(name, 0) + n
        self._duplicates += window.duplicates
        self.n_rows += window.n_rows
