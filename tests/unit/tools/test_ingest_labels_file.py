"""Label files: ids read as written (a CSV's "00042" stays so; a Parquet column of whole floats
reads as the integers), labels as plain values."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mlobs.tools.ingest import _pairs


def test_ids_are_read_as_written(tmp_path: Path) -> None:
    csv = tmp_path / "labels.csv"
    csv.write_text("id,label\n00042,1\n7,0\n,1\n")
    assert _pairs(csv, "id", "label")[:2] == [("00042", 1), ("7", 0)]
    parquet = tmp_path / "labels.parquet"
    pd.DataFrame({"id": [42.0, 7.0, None], "label": [1.0, 0.0, 1.0]}).to_parquet(parquet)
    assert _pairs(parquet, "id", "label")[:2] == [("42", 1), ("7", 0)]
