"""The CLI end to end, as a user runs it: separate processes, a temporary DATA_DIR and MODEL_DIR."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd


def _mlobs(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlobs", *args],
        cwd=cwd,
        env={**os.environ, "COLUMNS": "200", **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_generate_then_train_writes_data_models_and_prints_metrics(tmp_path: Path) -> None:
    env = {"DATA_DIR": str(tmp_path / "d"), "MODEL_DIR": str(tmp_path / "m"), "LOG_LEVEL": "debug"}
    gen = _mlobs("generate-data", "--rows", "3000", "--seed", "5", cwd=tmp_path, **env)
    assert gen.returncode == 0, gen.stderr
    for name in ("fraud", "price", "churn"):
        df = pd.read_parquet(tmp_path / "d" / f"{name}.parquet")
        assert len(df) == 3000

    train = _mlobs("train-models", "--model", "price", "--model", "churn", cwd=tmp_path, **env)
    assert train.returncode == 0, train.stderr
    assert "r2=" in train.stdout and "roc_auc=" in train.stdout
    assert (tmp_path / "m" / "price" / "model.txt").is_file()
    assert (tmp_path / "m" / "churn" / "model.skops").is_file()
    assert not (tmp_path / "m" / "fraud").exists()
    meta = json.loads((tmp_path / "m" / "churn" / "metadata.json").read_text())
    assert meta["train_rows"] == 2400

    again = _mlobs("train-models", "--only-missing", "--model", "price", cwd=tmp_path, **env)
    assert again.returncode == 0 and "already trained" in again.stdout


def test_log_level_really_configures_logging(tmp_path: Path) -> None:
    env = {"DATA_DIR": str(tmp_path / "d"), "MODEL_DIR": str(tmp_path / "m")}
    quiet = _mlobs("train-models", "--model", "price", cwd=tmp_path, LOG_LEVEL="WARNING", **env)
    assert quiet.returncode == 0, quiet.stderr
    assert "generating it" not in quiet.stderr
    (tmp_path / "d" / "price.parquet").unlink()
    loud = _mlobs("train-models", "--model", "price", cwd=tmp_path, LOG_LEVEL="info", **env)
    assert loud.returncode == 0, loud.stderr
    assert "no data for price" in loud.stderr


def test_unknown_model_is_a_clear_usage_error(tmp_path: Path) -> None:
    out = _mlobs("train-models", "--model", "nope", cwd=tmp_path)
    assert out.returncode == 2
    assert "unknown model" in out.stderr


def test_scripts_wrap_the_cli(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [
            sys.executable,
            str(root / "scripts" / "generate_data.py"),
            "--model",
            "fraud",
            "--rows",
            "200",
        ],
        cwd=tmp_path,
        env={**os.environ, "DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "fraud.parquet").is_file()


def test_cli_demo_names_match_the_demo_catalogue() -> None:
    from mlobs import cli
    from mlobs.data.demo_models import DEMO_NAMES

    assert cli.DEMO_NAMES == DEMO_NAMES


def test_reference_profiles_are_frozen_at_training_and_rebuilt_by_setup_reference(
    tmp_path: Path,
) -> None:
    env = {"DATA_DIR": str(tmp_path / "d"), "MODEL_DIR": str(tmp_path / "m")}
    assert (
        _mlobs(
            "generate-data", "--model", "churn", "--rows", "2000", cwd=tmp_path, **env
        ).returncode
        == 0
    )
    missing = _mlobs("setup-reference", "--model", "churn", cwd=tmp_path, **env)
    assert missing.returncode == 1 and "not trained" in missing.stdout
    assert _mlobs("train-models", "--model", "churn", cwd=tmp_path, **env).returncode == 0
    path = tmp_path / "m" / "churn" / "reference.json"
    trained = json.loads(path.read_text())
    assert trained["rows"] == 1600  # the training split
    meta = json.loads((tmp_path / "m" / "churn" / "metadata.json").read_text())
    assert trained["model_version"] == meta["version"]
    assert set(trained["features"]) >= {"tenure_months", "contract_type"}
    assert trained["output"]["name"] == "__prediction__"
    path.unlink()
    rebuilt = _mlobs("setup-reference", "--model", "churn", cwd=tmp_path, **env)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert json.loads(path.read_text())["rows"] == 2000  # the whole data set this time
    kept = _mlobs("setup-reference", "--only-missing", "--model", "churn", cwd=tmp_path, **env)
    assert "reference profile present" in kept.stdout
