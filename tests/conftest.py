"""Shared fixtures: trained models (once per session) and factories."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mlobs.data import generate
from mlobs.models import MODEL_CLASSES, save_model

REQUIRE_SERVICES = os.environ.get("MLOBS_REQUIRE_SERVICES") == "1"


def skip_or_fail(reason: str) -> None:
    """Skip a test whose service is missing, or fail it where services are required (CI)."""
    if REQUIRE_SERVICES:
        pytest.fail(f"required service unavailable: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """All three models trained on small generated data sets, saved once per test session."""
    path = tmp_path_factory.mktemp("models")
    for name, rows in (("fraud", 20_000), ("price", 5_000), ("churn", 5_000)):
        model = MODEL_CLASSES[name]()
        model.fit(generate(name, rows, seed=7), seed=7)
        save_model(model, path)
    return path
