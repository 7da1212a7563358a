"""ONNX models through onnxruntime.

Two input layouts are read from the graph itself: one float tensor [N, n_features] (a booster or
an estimator over a numeric matrix, converted with onnxmltools or skl2onnx; categorical features
then arrive as the manifest's category codes), or one input per feature named as the feature, of
shape [N, 1] (a scikit-learn pipeline converted with its column transformer). A classifier's
probabilities are read from a [N, K] tensor, or from the list of maps skl2onnx writes by default.
"""

from __future__ import annotations

import math
import re
import threading
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
from mlobs.models.preprocessing import FeatureSchema
from mlobs.models.schema import ModelSchema

_NUMPY_TYPES = {
    "tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64,
    "tensor(int32)": np.int32, "tensor(string)": np.str_, "tensor(bool)": np.bool_,
}  # fmt: skip


def inspect_graph(data: bytes) -> list[Any] | None:
    """Check an ONNX model before onnxruntime sees it, and return its classifier's class labels
    in score order (None when it states none). A tensor stored as external data (a file path
    that onnxruntime would read from the server's disk) is refused: a registered model carries
    all its weights in its one file."""
    import onnx
    from onnx import AttributeProto, TensorProto

    try:
        model = onnx.load_model_from_string(data)  # external data is never loaded from bytes
    except Exception as exc:
        raise ValueError(f"not an ONNX model: {exc}") from None
    labels: list[Any] | None = None

    def tensor(t: TensorProto, where: str) -> None:
        if t.data_location == TensorProto.EXTERNAL or t.external_data:
            raise ValueError(f"the ONNX tensor {t.name or where!r} refers to external data; "
                             "save the model with all its tensors in the one file")  # fmt: skip

    def graph(g: Any) -> None:
        nonlocal labels
        for t in g.initializer:
            tensor(t, "initializer")
        for s in g.sparse_initializer:
            tensor(s.values, "sparse initializer")
            tensor(s.indices, "sparse initializer")
        for node in g.node:
            for a in node.attribute:
                if a.type == AttributeProto.TENSOR:
                    tensor(a.t, node.name)
                elif a.type == AttributeProto.TENSORS:
                    for t in a.tensors:
                        tensor(t, node.name)
                elif a.type == AttributeProto.GRAPH:
                    graph(a.g)
                elif a.type == AttributeProto.GRAPHS:
                    for sub in a.graphs:
                        graph(sub)
                elif a.name in ("classlabels_int64s", "classlabels_ints") and labels is None:
                    labels = [int(v) for v in a.ints]
                elif a.name == "classlabels_strings" and labels is None:
                    labels = [v.decode() for v in a.strings]

    graph(model.graph)
    for function in model.functions:
        for node in function.node:
            for a in node.attribute:
                if a.type == AttributeProto.TENSOR:
                    tensor(a.t, node.name)
    return labels


def _identifier(name: str) -> str:
    """A column name as converters write it for a graph input: other characters become '_'."""
    return re.sub(r"[^0-9A-Za-z_]", "_", name)


class OnnxModel(TabularModel):
    """An ONNX graph served by an onnxruntime session (one thread: on a small machine extra
    threads cost more than they gain for one row)."""

    algorithm: ClassVar[str] = "onnx"
    artifact_suffix: ClassVar[str] = "onnx"

    def __init__(self, spec: ModelSchema, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(spec, params)
        self._bytes: bytes | None = None
        self._session: Any = None
        self._per_column: list[tuple[str, str, Any]] = []  # (feature, input name, numpy type)
        self._matrix: tuple[str, Any] | None = None  # (input name, numpy type)
        self._output_name: str = ""
        self._column = 1
        self._columns: list[int] | None = None
        self._buffers = threading.local()

    def load_estimator(self, data: bytes) -> None:
        import onnxruntime as ort

        classes = inspect_graph(data)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        inputs = session.get_inputs()
        names = self.spec.feature_names
        by_name = {i.name: i for i in inputs}
        if len(inputs) == 1 and (len(names) > 1 or inputs[0].name not in names):
            i = inputs[0]
            width = i.shape[-1] if len(i.shape) == 2 else None
            if isinstance(width, int) and width != len(names):
                raise ValueError(
                    f"the ONNX input {i.name!r} has {width} columns, the manifest {len(names)} features"
                )
            self._matrix = (i.name, _NUMPY_TYPES.get(i.type, np.float32))
            if self.schema is None:
                self.schema = FeatureSchema.declared(self.spec)
        else:
            # Converters may have made names identifiers ("mean radius" -> "mean_radius").
            if not set(names) <= set(by_name):
                by_name = {_identifier(k): v for k, v in by_name.items()} | by_name
            missing = [n for n in names if n not in by_name and _identifier(n) not in by_name]
            extra = [
                i.name
                for i in inputs
                if i.name not in names and i.name not in map(_identifier, names)
            ]
            if missing or extra:
                raise ValueError(
                    f"ONNX inputs do not match the features: missing {missing}, unknown {extra}"
                )
            self._per_column = []
            for n in names:
                given = by_name.get(n) or by_name[_identifier(n)]
                self._per_column.append((n, given.name, _NUMPY_TYPES.get(given.type, np.float32)))
        outputs = [o.name for o in session.get_outputs()]
        if self.is_classifier:
            prob = [o for o in outputs if "prob" in o.lower()]
            if not prob and len(outputs) < 2:
                raise ValueError(
                    f"a classifier's ONNX graph needs a probability output; has {outputs}"
                )
            self._output_name = prob[0] if prob else outputs[1]
        else:
            self._output_name = outputs[0]
        self._session, self._bytes = session, data
        # The probability column of the positive class: by the graph's own class labels where it
        # states them, else the second column (scikit-learn's classes_[1]). A multiclass graph's
        # columns are put in the manifest's class order (by position when it names none).
        self._column = 1
        self._columns = None
        if self.is_multiclass:
            self._columns = class_columns(
                classes if classes is not None else list(range(len(self.classes))), self.classes
            )
        elif classes is not None and self.spec.task == "binary_classification":
            wanted = classes[1] if self.positive_class is None else self.positive_class
            keys = [label_key(c) for c in classes]
            if label_key(wanted) not in keys:
                raise ValueError(f"positive class {wanted!r} is not among the model's {classes}")
            self._column = keys.index(label_key(wanted))
        elif self.spec.task == "binary_classification" and self.positive_class not in (None, 1):
            raise ValueError("the ONNX graph names no class labels: the positive class is its "
                             "second probability column (class 1)")  # fmt: skip

    def whole_number_inputs(self) -> list[str]:
        """Features the graph takes as integers: they can be neither missing nor fractional."""
        return [f for f, _, dtype in self._per_column
                if dtype is not np.str_ and not np.issubdtype(dtype, np.floating)]  # fmt: skip

    def artifact_feature_names(self) -> list[str] | None:
        if self._session is None or self._matrix is not None:
            return None
        return [feature for feature, _, _ in self._per_column]

    def estimator_bytes(self) -> bytes:
        if self._bytes is None:
            raise RuntimeError(f"model {self.name!r} is not loaded")
        return self._bytes

    # ------------------------------------------------------------------ inference

    def _feed(self, records: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
        if self._matrix is not None:
            name, dtype = self._matrix
            assert self.schema is not None
            return {name: self.schema.transform_records(records).astype(dtype, copy=False)}
        feed = {}
        for feature, name, dtype in self._per_column:
            if dtype is np.str_:
                col = np.array(
                    [["" if r[feature] is None else str(r[feature])] for r in records], dtype=object
                )
            else:
                col = np.array(
                    [[math.nan if r[feature] is None else r[feature]] for r in records], dtype=dtype
                )
            feed[name] = col
        return feed

    def _run(self, feed: dict[str, np.ndarray]) -> FloatArray:
        out = self._session.run([self._output_name], feed)[0]
        if isinstance(out, list):  # skl2onnx's ZipMap: one {class: probability} per row
            keys = list(out[0])
            if self._columns is not None:
                order = [keys[j] for j in self._columns]
                return np.array([[row[k] for k in order] for row in out], dtype=np.float64)
            key = keys[self._column]
            return np.array([row[key] for row in out], dtype=np.float64)
        arr = np.asarray(out, dtype=np.float64)
        if self._columns is not None:
            if arr.ndim != 2 or arr.shape[1] != len(self._columns):
                raise ValueError(
                    f"the graph's {self._output_name!r} has shape {arr.shape}; a multiclass model "
                    f"needs [N, {len(self._columns)}]"
                )
            return arr[:, self._columns]
        if self.is_classifier and arr.ndim == 2:
            return arr[:, self._column] if arr.shape[1] > 1 else arr[:, 0]
        return arr.reshape(-1)

    def predict_record(self, record: Mapping[str, Any]) -> Prediction:
        if self._per_column:
            return self._output(self._run(self._one_row(record))[0])
        return self._output(self._run(self._feed([record]))[0])

    def _one_row(self, record: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """The single-row feed: this thread's own 1x1 arrays, filled in place (allocating one
        array per column was half of a one-row prediction)."""
        feed: dict[str, np.ndarray] | None = getattr(self._buffers, "feed", None)
        if feed is None:
            feed = {name: np.empty((1, 1), dtype=object if dtype is np.str_ else dtype)
                    for _, name, dtype in self._per_column}  # fmt: skip
            self._buffers.feed = feed
        for feature, name, dtype in self._per_column:
            v = record[feature]
            if dtype is np.str_:
                feed[name][0, 0] = "" if v is None else str(v)
            elif v is None and not np.issubdtype(dtype, np.floating):
                return self._feed([record])  # a missing value in an integer input: no NaN there
            else:
                feed[name][0, 0] = math.nan if v is None else v
        return feed

    def predict_records(self, records: Sequence[Mapping[str, Any]]) -> BatchPrediction:
        return self._batch(self._run(self._feed(records)))

    def predict_frame(self, df: pd.DataFrame) -> BatchPrediction:
        cols = df[self.spec.feature_names].astype(object)
        records = cols.where(cols.notna(), None).to_dict("records")
        return self.predict_records(records)  # type: ignore[arg-type]

    def _fit_estimator(self, x: FloatArray, y: np.ndarray, seed: int) -> None:
        raise NotImplementedError("mlobs serves ONNX models; it does not train them")

    def _raw_predict(self, x: FloatArray) -> FloatArray:
        raise NotImplementedError("use predict_record")
