"""Generated data sets on disk, as Parquet files in the data directory."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

DEFAULT_ROWS = {"fraud": 50_000, "price": 20_000, "churn": 20_000}


def dataset_path(data_dir: Path, name: str) -> Path:
    return Path(data_dir) / f"{name}.parquet"


def write_dataset(df: pd.DataFrame, data_dir: Path, name: str) -> Path:
    path = dataset_path(data_dir, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    df.to_parquet(tmp, index=False)
    tmp.replace(path)
    return path


def read_dataset(data_dir: Path, name: str) -> pd.DataFrame:
    return pd.read_parquet(dataset_path(data_dir, name))
