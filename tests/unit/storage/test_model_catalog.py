"""Registration's edge cases: labels read as floats, the positive class of an ONNX probability
tensor, a booster's unseen category, ONNX weights outside the file, versions that follow the
reference, removing a broken model, and a reader between the two renames of a new version."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer

from mlobs.models import load_model
from mlobs.storage.model_catalog import Registration, RegistrationError, register, remove

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cancer() -> pd.DataFrame:
    data: pd.DataFrame = load_breast_cancer(as_frame=True).frame
    return data[["mean radius", "mean texture", "mean smoothness", "target"]]


def _xgb(frame: pd.DataFrame, path: Path, **dmatrix: object) -> Path:
    import xgboost as xgb

    x = frame.drop(columns="target")
    booster = xgb.train({"objective": "binary:logistic", "nthread": 1},
                        xgb.DMatrix(x, label=frame["target"], **dmatrix), num_boost_round=20)  # fmt: skip
    booster.save_model(path)
    return path


def test_labels_read_as_floats_are_the_same_classes(cancer: pd.DataFrame, tmp_path: Path) -> None:
    """A CSV target with a blank cell reads as 0.0/1.0: 1.0 is the positive class 1."""
    artifact = _xgb(cancer, tmp_path / "m.ubj")
    ref = cancer.astype({"target": float})
    ref.loc[0, "target"] = np.nan
    done = register(tmp_path / "models", Registration("m", ref, target="target", artifact=artifact))
    assert done.manifest.positive_class == 1
    assert done.metadata.holdout_metrics["recall"] > 0.8
    with pytest.raises(RegistrationError, match="positive class 7 is not among") as err:
        register(tmp_path / "models", Registration("m", ref, target="target", artifact=artifact,
                                                   positive_class=7))  # fmt: skip
    assert err.value.field == "positive_class"


@pytest.mark.parametrize("zipmap", [True, False])
def test_an_onnx_classifier_answers_for_the_positive_class_it_was_given(
    cancer: pd.DataFrame, tmp_path: Path, zipmap: bool
) -> None:
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    x = cancer.drop(columns="target").astype(np.float32)
    labels = np.where(cancer["target"] == 1, "benign", "malignant")
    clf = LogisticRegression(max_iter=1000).fit(x.to_numpy(), labels)
    onx = to_onnx(clf, x.to_numpy()[:1], options={id(clf): {"zipmap": zipmap}})
    (tmp_path / "m.onnx").write_bytes(onx.SerializeToString())
    ref = x.assign(diagnosis=labels)
    for positive, column in (("benign", 0), ("malignant", 1)):
        reg = Registration("m", ref, target="diagnosis", artifact=tmp_path / "m.onnx",
                           positive_class=positive)  # fmt: skip
        register(tmp_path / "models", reg)
        model = load_model(tmp_path / "models", "m")
        record = {k: float(v) for k, v in x.iloc[0].items()}
        want = clf.predict_proba(x.to_numpy()[:1])[0, column]
        assert model.predict_record(record).probability == pytest.approx(want, abs=1e-6)


def test_a_category_the_booster_never_saw_is_passed_as_missing(tmp_path: Path) -> None:
    import xgboost as xgb

    rng = np.random.default_rng(0)
    colour = pd.Categorical(rng.choice(["red", "green", "blue"], 600))
    frame = pd.DataFrame({"size": rng.normal(size=600), "colour": colour})
    frame["target"] = ((frame["colour"] == "red") ^ (frame["size"] > 1)).astype(int)
    artifact = _xgb(frame, tmp_path / "m.ubj", enable_categorical=True)
    booster = xgb.Booster()
    booster.load_model(artifact)
    ref = frame.astype({"colour": str})
    register(tmp_path / "models", Registration("m", ref, target="target", artifact=artifact))
    model = load_model(tmp_path / "models", "m")
    unseen = model.predict_record({"size": 0.0, "colour": "purple"}).probability
    missing = model.predict_record({"size": 0.0, "colour": None}).probability
    assert unseen == pytest.approx(missing, abs=1e-6)
    library = booster.inplace_predict(pd.DataFrame({"size": [0.0], "colour": pd.Categorical(
        [None], categories=colour.categories)}))  # fmt: skip
    assert missing == pytest.approx(float(library[0]), abs=1e-6)


def test_an_onnx_model_that_points_at_a_file_on_the_server_is_refused(tmp_path: Path) -> None:
    from onnx import TensorProto, helper

    weights = TensorProto(name="w", data_type=TensorProto.UINT8, dims=[4])
    weights.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "secret.bin"), ("offset", "0"), ("length", "4")):
        entry = weights.external_data.add()
        entry.key, entry.value = key, value
    (tmp_path / "secret.bin").write_bytes(b"KEYS")
    graph = helper.make_graph(
        [helper.make_node("Cast", ["w"], ["wf"], to=TensorProto.FLOAT),
         helper.make_node("Cast", ["x"], ["xi"], to=TensorProto.INT64),
         helper.make_node("Gather", ["wf", "xi"], ["variable"], axis=0)],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 1])],
        [helper.make_tensor_value_info("variable", TensorProto.FLOAT, [None, 1])], [weights],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    (tmp_path / "m.onnx").write_bytes(model.SerializeToString())
    ref = pd.DataFrame({"i": [0.0, 1.0, 2.0, 3.0]})
    with pytest.raises(RegistrationError, match="external data") as err:
        register(tmp_path / "models", Registration("leak", ref, task="regression",
                                                   artifact=tmp_path / "m.onnx"))  # fmt: skip
    assert err.value.field == "artifact"


def test_the_version_follows_the_reference(cancer: pd.DataFrame, tmp_path: Path) -> None:
    artifact = _xgb(cancer, tmp_path / "m.ubj")
    first = register(tmp_path / "models", Registration("m", cancer.head(200), target="target",
                                                       artifact=artifact))  # fmt: skip
    second = register(tmp_path / "models", Registration("m", cancer, target="target",
                                                        artifact=artifact))  # fmt: skip
    assert first.manifest.version != second.manifest.version
    assert second.replaced == first.manifest.version


def test_a_broken_model_can_be_removed(cancer: pd.DataFrame, tmp_path: Path) -> None:
    models = tmp_path / "models"
    register(models, Registration("m", cancer, target="target"))
    (models / "m" / "manifest.yaml").write_bytes(b"\xff\xfe not yaml")
    assert remove(models, "m") is None  # the version is unknown, the folder goes anyway
    assert not (models / "m").exists()
    with pytest.raises(RegistrationError, match="invalid"):
        remove(models, "..")


def test_a_reader_between_the_two_renames_waits_for_the_new_version(tmp_path: Path) -> None:
    from mlobs.models.artifacts import swap_in_progress

    models = tmp_path / "models"
    (models / ".old-m-1234abcd").mkdir(parents=True)  # the old folder moved aside, new not yet in
    assert swap_in_progress(models)
    assert not swap_in_progress(tmp_path / "elsewhere")


def test_an_onnx_integer_input_is_declared_whole_and_never_missing(
    cancer: pd.DataFrame, tmp_path: Path
) -> None:
    """A graph that takes a column as int64 can take neither null nor 14.5: the manifest says so,
    so the API refuses them with a 422 instead of failing inside onnxruntime."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType, Int64TensorType
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    x = cancer[["mean texture", "mean smoothness"]].astype(np.float32)
    x["radius"] = cancer["mean radius"].round().astype("int64")
    cols = list(x.columns)
    pipe = Pipeline([("s", ColumnTransformer([("n", StandardScaler(), cols)])),
                     ("m", LogisticRegression())]).fit(x, cancer["target"])  # fmt: skip
    types = [(c, FloatTensorType([None, 1])) for c in cols[:2]] + [
        ("radius", Int64TensorType([None, 1]))
    ]
    (tmp_path / "m.onnx").write_bytes(to_onnx(pipe, initial_types=types).SerializeToString())
    reference = x.assign(target=cancer["target"])
    reg = Registration("m", reference, target="target", artifact=tmp_path / "m.onnx")
    done = register(tmp_path / "models", reg)
    radius = next(f for f in done.manifest.features if f.name == "radius")
    assert radius.integer and not radius.nullable
    texture = next(f for f in done.manifest.features if f.name == "mean texture")
    assert texture.nullable and not texture.integer


def test_what_an_interrupted_registration_left_is_tidied(
    cancer: pd.DataFrame, tmp_path: Path
) -> None:
    """A crash between the two renames leaves the old version aside and no current one: it is put
    back; unfinished and removed folders go; a registration in progress now is left alone."""
    import os
    import time

    from mlobs.storage.model_catalog import recover

    models = tmp_path / "models"
    register(models, Registration("m", cancer, target="target"))
    os.rename(models / "m", models / ".old-m-1234abcd")  # the crash: moved aside, nothing in
    (models / ".new-k-99999999").mkdir()
    (models / ".new-busy-11111111").mkdir()
    past = time.time() - 3600
    for name in (".old-m-1234abcd", ".new-k-99999999"):
        os.utime(models / name, (past, past))
    done = recover(models)
    assert sorted(done) == ["removed .new-k-99999999", "restored m from .old-m-1234abcd"]
    assert (models / "m" / "manifest.yaml").is_file()
    assert (models / ".new-busy-11111111").is_dir()  # too recent: perhaps still being written
