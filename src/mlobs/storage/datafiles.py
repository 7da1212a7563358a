"""The one reader of tabular data files, for every command that takes data (register, ingest,
check): Parquet (a file, a folder of files, or a glob), CSV, and JSON lines."""

from __future__ import annotations

import glob
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

PARQUET = (".parquet", ".pq")
CSV = (".csv",)
JSON_LINES = (".jsonl", ".ndjson", ".json")
SUFFIXES = PARQUET + CSV + JSON_LINES


class DataFileError(ValueError):
    """A data file that cannot be read; the message names the file and the reason."""


def _files(path: str | Path) -> list[Path]:
    text = str(path)
    if any(ch in text for ch in "*?["):
        found = sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file())
        if not found:
            raise DataFileError(f"{text}: no file matches")
        return found
    p = Path(path)
    if p.is_dir():
        found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in SUFFIXES)
        if not found:
            raise DataFileError(f"{p}: no Parquet, CSV or JSON lines file in the folder")
        return found
    if not p.is_file():
        raise DataFileError(f"{p}: no such file")
    return [p]


def _read_one(path: Path, text: Sequence[str] = ()) -> pd.DataFrame:
    suffix = path.suffix.lower()
    as_text = dict.fromkeys(text, str)
    try:
        if suffix in PARQUET:
            return pd.read_parquet(path)
        if suffix in CSV:
            return pd.read_csv(path, dtype=as_text or None)
        if suffix in JSON_LINES:
            return pd.read_json(path, lines=True, dtype=as_text or None)
    except Exception as exc:  # the library's own message, not a traceback
        raise DataFileError(f"{path}: not readable as {suffix[1:]}: {exc}") from None
    raise DataFileError(
        f"{path}: unknown data format {suffix or '(no suffix)'!r}; accepted: Parquet (.parquet), "
        "CSV (.csv), JSON lines (.jsonl, .ndjson)"
    )


def read_table(path: str | Path, text: Sequence[str] = ()) -> pd.DataFrame:
    """The rows of a data file, a folder of them or a glob, as one frame (index 0..n-1);
    ``text`` columns are read from CSV and JSON lines as written (ids: "00042" stays so)."""
    frames = [_read_one(f, text) for f in _files(path)]
    if len(frames) == 1:
        return frames[0].reset_index(drop=True)
    columns = list(frames[0].columns)
    for f, df in zip(_files(path), frames, strict=True):
        if list(df.columns) != columns:
            raise DataFileError(f"{f}: columns {list(df.columns)} differ from the first file's")
    return pd.concat(frames, ignore_index=True)
