"""Single-row serving paths for the tree models.

The estimators' own single-row paths carry heavy per-call overhead: scikit-learn's forest about
7-10 ms (input checks, a joblib dispatch over the trees), XGBoost's ``inplace_predict`` about
0.35 ms. Treelite's GTIL walks the same trees in C++ in 0.03-0.2 ms (``CompiledTrees``, for the
forest and XGBoost). For LightGBM, whose own C code is faster than GTIL on its trees, the
library's single-row fast API is used instead (``LightGBMOneRow``). The library's own artifact
stays the artifact of record; these forms are rebuilt from it at load time.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from ctypes import byref as _byref
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


def _single_row(model: treelite.Model) -> Callable[[FloatArray], FloatArray] | None:
    """A one-row GTIL call with everything but the row prepared once: dtypes, the output shape,
    ctypes pointer types and the config handle. ``_predict_impl`` recomputes them per call (its
    ctypes plumbing is ~40% of a one-row prediction: 58 -> 34 us for the fraud model). Built on
    Treelite's C API (``TreeliteGTILPredict``, stable across 4.x); None when it is not there."""
    try:
        import ctypes

        from treelite.core import _LIB, _check_call
        from treelite.gtil.gtil import GTILConfig
        from treelite.util import c_str, typestr_to_numpy_type

        config = GTILConfig(nthread=1, predict_type="default")
        in_type, out_type = model.input_type, model.output_type
        in_dtype = typestr_to_numpy_type(in_type)  # type: ignore[no-untyped-call]
        out_dtype = typestr_to_numpy_type(out_type)  # type: ignore[no-untyped-call]
        shape_ptr, ndim = ctypes.POINTER(ctypes.c_uint64)(), ctypes.c_uint64()
        _check_call(
            _LIB.TreeliteGTILGetOutputShape(
                model.handle, ctypes.c_uint64(1), config.handle,
                ctypes.byref(shape_ptr), ctypes.byref(ndim),
            )
        )  # fmt: skip
        shape = tuple(int(d) for d in np.ctypeslib.as_array(shape_ptr, shape=(ndim.value,)))
        predict_fn, handle, config_handle = _LIB.TreeliteGTILPredict, model.handle, config.handle
        type_name = c_str(in_type)  # type: ignore[no-untyped-call]
        one, void_p = ctypes.c_uint64(1), ctypes.c_void_p
    except (ImportError, AttributeError):  # pragma: no cover - another Treelite
        return None

    def predict(x: FloatArray) -> FloatArray:
        row = np.ascontiguousarray(x, dtype=in_dtype)
        out = np.empty(shape, dtype=out_dtype)
        # The handles stay valid: the model is held by CompiledTrees, the config by the
        # attribute set below; the row and the output by these locals during the call.
        _check_call(
            predict_fn(
                handle, void_p(row.ctypes.data), type_name, one,
                void_p(out.ctypes.data), config_handle,
            )
        )  # fmt: skip
        return out

    predict.keep_alive = config  # type: ignore[attr-defined]
    return predict


class CompiledTrees:
    """A Treelite model and the output column that holds the score we serve (None: every
    column, a multiclass model's [N, K] probabilities)."""

    def __init__(
        self, model: treelite.Model, column: int | None, *, round_to_float32: bool
    ) -> None:
        self.model, self.column, self.round_to_float32 = model, column, round_to_float32
        self._one_row = _single_row(model)
        self._n_feature = int(model.num_feature)

    @classmethod
    def from_sklearn(cls, forest: Any) -> CompiledTrees:
        # GTIL returns (rows, targets, classes) for a classifier; column 1 is the positive class.
        # scikit-learn compares float32 inputs with float64 thresholds: round the same way, or
        # values next to a threshold take the other branch.
        return cls(treelite.sklearn.import_model(forest), column=1, round_to_float32=True)

    @classmethod
    def from_xgboost(cls, booster: Any, *, multiclass: bool = False) -> CompiledTrees:
        # binary:logistic gives one column: the positive-class probability; multi:softprob one
        # per class.
        model = treelite.frontend.from_xgboost(booster)
        return cls(model, column=None if multiclass else 0, round_to_float32=False)

    def predict(self, x: FloatArray) -> FloatArray:
        if self.round_to_float32:
            x = x.astype(np.float32).astype(np.float64)
        if self._one_row is not None and x.shape == (1, self._n_feature):
            out = self._one_row(x)
        else:
            out = _PREDICT(self.model, np.ascontiguousarray(x))
        scores = np.asarray(out, dtype=np.float64).reshape(len(x), -1)
        return scores if self.column is None else scores[:, self.column]


class LightGBMOneRow:
    """LightGBM's own single-row C API (``LGBM_BoosterPredictForMatSingleRowFast``) with its
    configuration built once: 18 us a row for the price model against 38 us through
    ``Booster.predict``, whose per-call checks and ctypes setup cost more than the trees. The
    output is LightGBM's own, bit for bit (a test holds it). One call at a time: the fast
    configuration holds a row buffer, so calls are serialised by a lock."""

    def __init__(
        self, booster: Any, n_features: int, n_outputs: int, fast: Any, lib: Any, check: Any
    ) -> None:
        import ctypes

        self._booster, self.n_features = booster, n_features  # the booster outlives the config
        self.n_outputs = n_outputs  # a multiclass booster's K class probabilities
        self._fast, self._lib, self._check = fast, lib, check
        self._out_len = ctypes.c_int64(0)
        self._void_p, self._double_p = ctypes.c_void_p, ctypes.POINTER(ctypes.c_double)
        self._lock = threading.Lock()
        weakref.finalize(self, lib.LGBM_FastConfigFree, fast)

    @classmethod
    def build(cls, booster: Any) -> LightGBMOneRow | None:
        """None when this LightGBM lacks the API (the caller keeps ``Booster.predict``)."""
        try:
            import ctypes

            from lightgbm.basic import _LIB, _c_str, _safe_call  # type: ignore[attr-defined]

            n_features = int(booster.num_feature())
            n_outputs = int(booster.num_model_per_iteration())
            fast = ctypes.c_void_p()
            # predict_type 0 (normal), all iterations, float64 rows.
            _safe_call(
                _LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
                    booster._handle, ctypes.c_int(0), ctypes.c_int(0), ctypes.c_int(-1),
                    ctypes.c_int(1), ctypes.c_int32(n_features), _c_str("num_threads=1"),
                    ctypes.byref(fast),
                )
            )  # fmt: skip
        except (ImportError, AttributeError):  # pragma: no cover - another LightGBM
            return None
        return cls(booster, n_features, n_outputs, fast, _LIB, _safe_call)

    def predict(self, x: FloatArray) -> FloatArray:
        row = np.ascontiguousarray(x, dtype=np.float64).reshape(-1)
        out = np.empty(self.n_outputs, dtype=np.float64)
        with self._lock:
            self._check(
                self._lib.LGBM_BoosterPredictForMatSingleRowFast(
                    self._fast, row.ctypes.data_as(self._void_p), _byref(self._out_len),
                    out.ctypes.data_as(self._double_p),
                )
            )  # fmt: skip
        return out if self.n_outputs == 1 else out.reshape(1, -1)
