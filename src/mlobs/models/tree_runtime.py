"""One compiled tree runtime (Treelite's GTIL) for single-row serving.

The estimators' own single-row paths carry heavy per-call overhead: scikit-learn's forest about
7-10 ms (input checks, a joblib dispatch over the trees), XGBoost's ``inplace_predict`` about
0.35 ms. GTIL walks the same trees in C++ in 0.1-0.2 ms. The library's own artifact stays the
artifact of record; the compiled form is rebuilt from it at load time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import treelite

FloatArray = np.ndarray

# Rows up to this count go through GTIL; larger batches through the library's own vectorised
# (and far faster per row) predict: GTIL walks one row at a time.
SMALL_BATCH = 64


def _gtil() -> Callable[[treelite.Model, FloatArray], FloatArray]:
    """GTIL's predict with its configuration parsed once: the public ``gtil.predict`` builds
    and JSON-parses a config object on every call, a fifth of a single-row prediction."""
    try:
        from treelite.gtil.gtil import GTILConfig, _predict_impl

        config = GTILConfig(nthread=1, predict_type="default")
        return lambda model, x: _predict_impl(model, x, config=config)
    except ImportError:  # pragma: no cover - a Treelite without these internals
        return lambda model, x: treelite.gtil.predict(model, x, nthread=1)


_PREDICT = _gtil()


class CompiledTrees:
    """A Treelite model and the output column that holds the score we serve."""

    def __init__(self, model: treelite.Model, column: int, *, round_to_float32: bool) -> None:
        self.model, self.column, self.round_to_float32 = model, column, round_to_float32

    @classmethod
    def from_sklearn(cls, forest: Any) -> CompiledTrees:
        # GTIL returns (rows, targets, classes) for a classifier; column 1 is the positive class.
        # scikit-learn compares float32 inputs with float64 thresholds: round the same way, or
        # values next to a threshold take the other branch.
        return cls(treelite.sklearn.import_model(forest), column=1, round_to_float32=True)

    @classmethod
    def from_xgboost(cls, booster: Any) -> CompiledTrees:
        # binary:logistic gives one column: the positive-class probability.
        return cls(treelite.frontend.from_xgboost(booster), column=0, round_to_float32=False)

    def predict(self, x: FloatArray) -> FloatArray:
        if self.round_to_float32:
            x = x.astype(np.float32).astype(np.float64)
        out = _PREDICT(self.model, np.ascontiguousarray(x))
        return np.asarray(out, dtype=np.float64).reshape(len(x), -1)[:, self.column]
