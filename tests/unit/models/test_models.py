"""The contract every model keeps: train small, save, load, identical predictions; and quality."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlobs.data import DATASETS, DriftSpec, generate
from mlobs.data.demo_models import DEMO_NAMES as MODEL_NAMES
from mlobs.data.demo_models import demo_model
from mlobs.errors import ModelNotLoaded, NotFound
from mlobs.models import ModelRegistry, load_model, save_model


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: (None if pd.isna(v) else v) for k, v in r.items()} for r in df.to_dict("records")]


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_save_load_gives_identical_predictions(name: str, tmp_path: Path) -> None:
    df = generate(name, 3_000, seed=11)
    model = demo_model(name)
    model.fit(df, seed=1)
    folder = save_model(model, tmp_path)
    assert not list(folder.glob("*.pkl")) and not list(folder.glob("*.joblib"))
    loaded = load_model(tmp_path, name)
    assert loaded.metadata == model.metadata
    assert loaded.schema == model.schema
    fresh = generate(name, 500, seed=12, drift=DriftSpec.preset(name, 0.5))
    a, b = model.predict_frame(fresh), loaded.predict_frame(fresh)
    np.testing.assert_array_equal(a.values, b.values)
    if model.is_classifier:
        assert a.probabilities is not None and b.probabilities is not None
        np.testing.assert_array_equal(a.probabilities, b.probabilities)
        assert ((a.probabilities >= 0) & (a.probabilities <= 1)).all()
    # Single-record and batch paths agree with the frame path (unseen categories, missing values).
    recs = _records(fresh[model.spec.feature_names])
    np.testing.assert_allclose(loaded.predict_records(recs).values, b.values, rtol=1e-12)
    singles = [loaded.predict_record(r) for r in recs[:40]]
    # Single rows go through Treelite, batches through the library: equal to float32 rounding.
    if model.is_classifier:
        assert b.probabilities is not None
        np.testing.assert_allclose(
            [p.probability for p in singles], b.probabilities[:40], rtol=0, atol=1e-5
        )
    else:
        np.testing.assert_allclose([p.value for p in singles], b.values[:40], rtol=1e-9)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_metadata_records_the_training(name: str, tmp_path: Path) -> None:
    df = generate(name, 2_000, seed=3)
    model = demo_model(name)
    result = model.fit(df, seed=1)
    meta = result.metadata
    assert meta.train_rows == 1_600 and meta.holdout_rows == 400
    assert len(meta.data_hash) == 64 and len(meta.version) == 12
    assert meta.library_versions
    # Same data and parameters: same version; other data: another version.
    again = demo_model(name)
    assert again.fit(df, seed=1).metadata.version == meta.version
    assert again.fit(generate(name, 2_000, seed=4), seed=1).metadata.version != meta.version


def test_holdout_quality_at_default_sizes() -> None:
    """The quality bar, on the sizes `mlobs generate-data` writes."""
    from mlobs.data.store import DEFAULT_ROWS

    scores = {}
    for name in MODEL_NAMES:
        model = demo_model(name)
        scores[name] = model.fit(generate(name, DEFAULT_ROWS[name], seed=42), seed=42).metadata
    assert scores["fraud"].holdout_metrics["roc_auc"] >= 0.85
    assert scores["churn"].holdout_metrics["roc_auc"] >= 0.80
    assert scores["price"].holdout_metrics["r2"] >= 0.80
    # The fraud threshold is tuned for F1: with 3% positives 0.5 would flag almost nothing.
    assert scores["fraud"].decision_threshold < 0.5
    assert scores["fraud"].holdout_metrics["recall"] > 0.2


def test_concept_drift_hurts_a_trained_model() -> None:
    model = demo_model("churn")
    model.fit(generate("churn", 5_000, seed=1), seed=1)
    from sklearn.metrics import roc_auc_score

    same = generate("churn", 5_000, seed=2)
    moved = generate("churn", 5_000, seed=2, drift=DriftSpec(concept=1.0))
    auc_same = roc_auc_score(same["churned"], model.predict_frame(same).probabilities)
    auc_moved = roc_auc_score(moved["churned"], model.predict_frame(moved).probabilities)
    assert auc_moved < auc_same - 0.05


def test_load_rejects_another_models_artifacts(model_dir: Path, tmp_path: Path) -> None:
    import shutil

    shutil.copytree(model_dir / "fraud", tmp_path / "churn")
    with pytest.raises(ValueError, match="name 'fraud' differs from its folder 'churn'"):
        load_model(tmp_path, "churn")
    (tmp_path / "churn" / "manifest.yaml").unlink()  # the layout before manifests: the same check
    with pytest.raises(ValueError, match="holds fraud"):
        load_model(tmp_path, "churn")
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path, "nope")


def test_a_folder_without_manifest_is_read_as_its_manifest_would_say(
    model_dir: Path, tmp_path: Path
) -> None:
    """Model folders written before manifests (schema.json + metadata.json) still load, with the
    same schema, version, threshold and predictions."""
    import shutil

    for name in MODEL_NAMES:
        shutil.copytree(model_dir / name, tmp_path / name)
        (tmp_path / name / "manifest.yaml").unlink()
        old, new = load_model(tmp_path, name), load_model(model_dir, name)
        assert old.spec == new.spec and old.version == new.version
        assert old.metadata is not None and new.metadata is not None
        assert old.metadata.decision_threshold == new.metadata.decision_threshold
        record = DATASETS[name].example()
        assert old.predict_record(record) == new.predict_record(record)


def test_registry_loads_what_it_can_and_says_why_not(model_dir: Path, tmp_path: Path) -> None:
    import shutil

    shutil.copytree(model_dir / "price", tmp_path / "price")
    shutil.copytree(model_dir / "fraud", tmp_path / "fraud")
    shutil.copytree(model_dir / "churn", tmp_path / "broken" / "churn")
    meta = json.loads((tmp_path / "fraud" / "metadata.json").read_text())
    (tmp_path / "fraud" / "model.ubj").write_bytes(b"garbage")
    (tmp_path / "fraud" / "metadata.json").write_text(json.dumps(meta))
    reg = ModelRegistry.load(tmp_path)
    assert list(reg.models) == ["price"]
    assert reg.names == ["fraud", "price"]  # "broken" holds models, it is none itself
    assert "unreadable artifact" in reg.errors["fraud"]
    assert not reg.all_loaded
    with pytest.raises(ModelNotLoaded):
        reg.get("fraud")
    with pytest.raises(NotFound):
        reg.get("churn")  # not in this catalogue
    assert reg.get("price").name == "price"
    # A library's own error type (here LightGBM's) is recorded like any other.
    shutil.copytree(model_dir / "price", tmp_path / "broken" / "price")
    (tmp_path / "broken" / "price" / "model.txt").write_text("not a model")
    broken = ModelRegistry.load(tmp_path / "broken")
    assert "price" in broken.errors and list(broken.models) == ["churn"]
    # Before loading finishes every model answers "loading" (a 503), not "unknown" (a 404).
    with pytest.raises(ModelNotLoaded, match="loading"):
        ModelRegistry.catalog(tmp_path).get("price")


def test_training_needs_every_column() -> None:
    df = generate("price", 200, seed=0).drop(columns=["bedrooms"])
    with pytest.raises(ValueError, match="bedrooms"):
        demo_model("price").fit(df)


def test_untrained_model_refuses_to_predict() -> None:
    with pytest.raises(RuntimeError, match="not trained"):
        demo_model("fraud").predict_record(DATASETS["fraud"].example())


def test_compiled_runtime_matches_the_libraries_own_output(model_dir: Path) -> None:
    """Serving goes through Treelite; its scores agree with XGBoost's and scikit-learn's, for
    small batches and for the one-row path a request takes."""
    fraud, churn = load_model(model_dir, "fraud"), load_model(model_dir, "churn")
    cases = (
        (fraud, fraud.booster_predict, 1e-5),  # type: ignore[attr-defined]
        # scikit-learn rounds inputs to float32 as the compiled path does: exact agreement.
        (churn, lambda x: churn._forest.predict_proba(x)[:, 1], 1e-9),  # type: ignore[attr-defined]
    )
    for model, library, atol in cases:
        assert model.schema is not None
        compiled = model._compiled  # type: ignore[attr-defined]
        df = generate(model.name, 2_000, seed=21, drift=DriftSpec.preset(model.name, 0.5))
        x = model.schema.transform(df)
        expected = library(x)
        # Every row through GTIL, in batches of SMALL_BATCH as the service sends them.
        got = np.concatenate([compiled.predict(x[i : i + 64]) for i in range(0, len(x), 64)])
        np.testing.assert_allclose(got, expected, atol=atol)
        # One row at a time: the single-record path, from the record dict.
        records = df[model.spec.feature_names].head(300).to_dict("records")
        one = [
            model.predict_record({k: None if pd.isna(v) else v for k, v in r.items()})
            for r in records
        ]
        single = np.array([p.probability for p in one])
        np.testing.assert_allclose(single, expected[:300], atol=atol)
        assert not np.allclose(single, single[0])  # real, varied scores


def test_price_one_row_path_is_lightgbms_own_output(model_dir: Path) -> None:
    """The single-row fast API gives LightGBM's own prediction, missing values and categories
    never seen in training included."""
    price = load_model(model_dir, "price")
    assert price._one_row is not None  # type: ignore[attr-defined]
    df = generate("price", 300, seed=9, drift=DriftSpec.preset("price", 0.7))
    df.loc[df.index[:20], "neighborhood"] = "atlantis"  # unseen
    df.loc[df.index[20:40], "area_sqm"] = np.nan
    records = [
        {k: None if pd.isna(v) else v for k, v in r.items()}
        for r in df[price.spec.feature_names].to_dict("records")
    ]
    single = np.array([price.predict_record(r).value for r in records])
    x = price.schema.transform(df)  # type: ignore[union-attr]
    expected = price.booster_predict(x)  # type: ignore[attr-defined]
    np.testing.assert_allclose(single, expected, rtol=1e-12)
    assert len(set(np.round(single, 2))) > 250  # real, varied prices
