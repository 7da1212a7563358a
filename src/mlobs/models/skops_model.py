"""scikit-learn models from skops files, loaded only when every type they hold is on mlobs's own
allowlist (never the list the artifact asks for), and served on the raw feature columns.

A skops file is a zip whose ``schema.json`` names the module and class of every object it
rebuilds; that list is read first and checked against ``ALLOWED_TYPES``. A bare forest trained by
mlobs on its own encoding is served by :class:`~mlobs.models.forest_model.RandomForestModel`
(Treelite); anything else (a pipeline, a column transformer and an estimator) by
:class:`SklearnModel`, which hands the estimator a one-row or many-row frame of the features.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from mlobs.models.base import (
    BatchPrediction,
    FloatArray,
    Prediction,
    TabularModel,
    class_columns,
    label_key,
)
from mlobs.models.schema import ModelSchema

_SK = "sklearn."
# Plain containers and numpy values that every estimator's state is made of.
_BASIC = {
    "builtins.dict", "builtins.list", "builtins.tuple", "builtins.set", "builtins.frozenset",
    "builtins.slice", "builtins.str", "builtins.int", "builtins.float", "builtins.bool",
    "builtins.bytes", "builtins.NoneType", "builtins.complex",
    "numpy.ndarray", "numpy.dtype", "numpy.float64", "numpy.float32", "numpy.float16",
    "numpy.int64", "numpy.int32", "numpy.int16", "numpy.int8", "numpy.uint64", "numpy.uint32",
    "numpy.uint16", "numpy.uint8", "numpy.bool_", "numpy.bool", "numpy.str_", "numpy.object_",
    "numpy.random._generator.Generator", "numpy.random.mtrand.RandomState",
    "numpy.random._pcg64.PCG64", "numpy.random._mt19937.MT19937",
    "scipy.sparse._csr.csr_matrix", "scipy.sparse._csr.csr_array",
}  # fmt: skip
# Pipelines, column transformers, encoders, scalers, imputers, and the common linear, tree and
# boosting estimators, with the internal types they are made of.
_SKLEARN = {
    "pipeline.Pipeline", "pipeline.FeatureUnion",
    "compose._column_transformer.ColumnTransformer",
    "compose._column_transformer._RemainderColsList",
    "compose._column_transformer.make_column_selector",
    "compose._target.TransformedTargetRegressor",
    "preprocessing._encoders.OneHotEncoder", "preprocessing._encoders.OrdinalEncoder",
    "preprocessing._target_encoder.TargetEncoder", "preprocessing._label.LabelEncoder",
    "preprocessing._label.LabelBinarizer",
    "preprocessing._data.StandardScaler", "preprocessing._data.MinMaxScaler",
    "preprocessing._data.MaxAbsScaler", "preprocessing._data.RobustScaler",
    "preprocessing._data.QuantileTransformer", "preprocessing._data.PowerTransformer",
    "preprocessing._data.Normalizer", "preprocessing._data.Binarizer",
    "preprocessing._polynomial.PolynomialFeatures", "preprocessing._polynomial.SplineTransformer",
    "preprocessing._discretization.KBinsDiscretizer",
    "impute._base.SimpleImputer", "impute._base.MissingIndicator", "impute._knn.KNNImputer",
    "feature_selection._variance_threshold.VarianceThreshold",
    "decomposition._pca.PCA",
    "linear_model._logistic.LogisticRegression", "linear_model._base.LinearRegression",
    "linear_model._ridge.Ridge", "linear_model._ridge.RidgeClassifier",
    "linear_model._coordinate_descent.Lasso", "linear_model._coordinate_descent.ElasticNet",
    "linear_model._stochastic_gradient.SGDClassifier",
    "linear_model._stochastic_gradient.SGDRegressor",
    "linear_model._huber.HuberRegressor", "linear_model._glm.glm.PoissonRegressor",
    "svm._classes.LinearSVC", "svm._classes.LinearSVR",
    "naive_bayes.GaussianNB",
    "calibration.CalibratedClassifierCV", "calibration._CalibratedClassifier",
    "calibration._SigmoidCalibration", "isotonic.IsotonicRegression",
    "tree._classes.DecisionTreeClassifier", "tree._classes.DecisionTreeRegressor",
    "tree._classes.ExtraTreeClassifier", "tree._classes.ExtraTreeRegressor", "tree._tree.Tree",
    "ensemble._forest.RandomForestClassifier", "ensemble._forest.RandomForestRegressor",
    "ensemble._forest.ExtraTreesClassifier", "ensemble._forest.ExtraTreesRegressor",
    "ensemble._gb.GradientBoostingClassifier", "ensemble._gb.GradientBoostingRegressor",
    "ensemble._gb_losses.BinomialDeviance", "ensemble._gb_losses.LeastSquaresError",
    "dummy.DummyClassifier", "dummy.DummyRegressor",
    "ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
    "ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingRegressor",
    "ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "ensemble._hist_gradient_boosting.binning._BinMapper",
    "_loss.loss.HalfBinomialLoss", "_loss.loss.HalfMultinomialLoss",
    "_loss.loss.HalfSquaredError", "_loss.loss.AbsoluteError", "_loss.loss.HalfPoissonLoss",
    "_loss._loss.CyHalfBinomialLoss", "_loss._loss.CyHalfMultinomialLoss",
    "_loss._loss.CyHalfSquaredError", "_loss._loss.CyAbsoluteError", "_loss._loss.CyHalfPoissonLoss",
    "_loss.link.Interval", "_loss.link.LogitLink", "_loss.link.IdentityLink",
    "_loss.link.MultinomialLogit", "_loss.link.LogLink",
}  # fmt: skip
ALLOWED_TYPES: frozenset[str] = frozenset(_BASIC | {_SK + t for t in _SKLEARN})


class UntrustedArtifact(ValueError):
    """A skops file holding types outside the allowlist; ``types`` names them."""

    def __init__(self, types: Sequence[str]) -> None:
        self.types = list(types)
        super().__init__(
            f"the skops file holds types outside mlobs's allowlist: {', '.join(self.types)}"
        )


def artifact_types(data: bytes) -> set[str]:
    """Every ``module.Class`` a skops file would rebuild, read from its ``schema.json``."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            schema = json.loads(z.read("schema.json"))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise ValueError(f"not a skops file: {exc}") from None
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "__module__" in node and "__class__" in node:
                found.add(f"{node['__module__']}.{node['__class__']}")
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(schema)
    return found


def load_skops(data: bytes) -> Any:
    """The object of a skops file whose every type is allowed; UntrustedArtifact otherwise."""
    import skops.io as sio  # ~2 s to import: only when loading

    refused = sorted(artifact_types(data) - ALLOWED_TYPES)
    if refused:
        raise UntrustedArtifact(refused)
    untrusted = sio.get_untrusted_types(data=data)
    refused = sorted(set(untrusted) - ALLOWED_TYPES)
    if refused:  # a type the schema walk missed: refuse rather than trust the artifact
        raise UntrustedArtifact(refused)
    return sio.loads(data, trusted=list(untrusted))


class SklearnModel(TabularModel):
    """A scikit-learn estimator or pipeline over the raw feature columns (a frame in, as it was
    fitted): categorical columns as strings, numeric as floats, missing as NaN/None."""

    algorithm: ClassVar[str] = "sklearn"
    artifact_suffix: ClassVar[str] = "skops"

    def __init__(self, spec: ModelSchema, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(spec, params)
        self._estimator: Any = None
        self._positive: int = 1
        self._class_cols: list[int] = []  # multiclass: the estimator's column of each class
        self._columns = spec.feature_names
        self._object = {f.name for f in spec.features if f.kind == "categorical"}

    def set_estimator(self, estimator: Any, positive_class: Any = None) -> None:
        """Use ``estimator``; a binary classifier's probability is of ``positive_class`` (default:
        its second class)."""
        if self.is_classifier:
            if not hasattr(estimator, "predict_proba"):
                raise ValueError(f"{type(estimator).__name__} has no predict_proba")
            classes = [c.item() if hasattr(c, "item") else c for c in estimator.classes_]
            if self.spec.task == "binary_classification":
                if len(classes) != 2:
                    raise ValueError(f"a binary classifier needs 2 classes, has {classes}")
                want = classes[1] if positive_class is None else positive_class
                matches = [i for i, c in enumerate(classes) if label_key(c) == label_key(want)]
                if not matches:
                    raise ValueError(f"positive class {want!r} is not among {classes}")
                self._positive = matches[0]
            else:
                self._class_cols = class_columns(classes, self.classes)
        self._estimator = estimator

    def artifact_feature_names(self) -> list[str] | None:
        names = getattr(self._estimator, "feature_names_in_", None)
        return [str(n) for n in names] if names is not None else None

    def _frame(self, records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
        cols: dict[str, Any] = {}
        for name in self._columns:
            values = [r[name] for r in records]
            if name in self._object:
                cols[name] = pd.array(values, dtype=object)
            else:
                cols[name] = np.array([np.nan if v is None else float(v) for v in values])
        return pd.DataFrame(cols, columns=self._columns)

    def _from_frame(self, df: pd.DataFrame) -> FloatArray:
        if self._estimator is None:
            raise RuntimeError(f"model {self.name!r} has no estimator")
        if self.is_classifier:
            proba = np.asarray(self._estimator.predict_proba(df), dtype=np.float64)
            return (
                proba[:, self._positive] if not self.is_multiclass else proba[:, self._class_cols]
            )
        return np.asarray(self._estimator.predict(df), dtype=np.float64).reshape(-1)

    def predict_record(self, record: Mapping[str, Any]) -> Prediction:
        return self._output(self._from_frame(self._frame([record]))[0])

    def predict_records(self, records: Sequence[Mapping[str, Any]]) -> BatchPrediction:
        return self._batch(self._from_frame(self._frame(records)))

    def predict_frame(self, df: pd.DataFrame) -> BatchPrediction:
        return self._batch(self._from_frame(df[self._columns]))

    # Trained elsewhere: the encoded-matrix hooks do not apply.
    def _fit_estimator(self, x: FloatArray, y: np.ndarray, seed: int) -> None:
        raise NotImplementedError("mlobs serves this model; it does not train it")

    def _raw_predict(self, x: FloatArray) -> FloatArray:
        raise NotImplementedError("served on the raw columns: use predict_record")

    def estimator_bytes(self) -> bytes:
        import skops.io as sio

        return bytes(sio.dumps(self._estimator))

    def load_estimator(self, data: bytes) -> None:
        self.set_estimator(load_skops(data), self.positive_class)
