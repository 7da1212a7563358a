"""The simulator's drift for any schema: what moves, by how much, and what never does."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlobs.models.manifest import Manifest
from mlobs.tools.simulate import drift_rows

MANIFEST = Manifest.parse(
    {
        "name": "m",
        "task": "regression",
        "target": "y",
        "features": [
            {"name": "a", "kind": "numeric", "minimum": 0, "maximum": 100},
            {"name": "b", "kind": "numeric", "nullable": False},
            {"name": "c", "kind": "categorical", "categories": ["x", "y", "z"]},
            {"name": "d", "kind": "boolean"},
        ],
    }
)


def _frame(n: int = 20_000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "a": rng.normal(50, 5, n), "b": rng.normal(0, 1, n),
        "c": rng.choice(["x", "y", "z"], n, p=[0.6, 0.3, 0.1]),
        "d": rng.random(n) < 0.5, "y": rng.normal(size=n),
    })  # fmt: skip


def test_no_intensity_changes_nothing() -> None:
    df = _frame()
    pd.testing.assert_frame_equal(drift_rows(df, MANIFEST, 0.0, np.random.default_rng(1)), df)


@pytest.mark.parametrize("intensity", [0.25, 1.0])
def test_what_moves_and_by_how_much(intensity: float) -> None:
    df = _frame()
    out = drift_rows(df, MANIFEST, intensity, np.random.default_rng(1))
    shift = (out["a"].mean() - df["a"].mean()) / df["a"].std()
    assert shift == pytest.approx(2 * intensity, abs=0.05)
    assert out["a"].max() <= 100 and out["a"].min() >= 0  # declared bounds hold
    assert out["b"].notna().all()  # not nullable: never blanked
    assert (out["b"] == df["b"]).all()  # the second half of the numeric features stays
    # The rarest category (10%) gains half the rows at full intensity; then a tenth go missing.
    expected = (0.1 + intensity / 2 * 0.9) * (1 - intensity / 10)
    assert (out["c"] == "z").mean() == pytest.approx(expected, abs=0.01)
    assert out["a"].isna().mean() == pytest.approx(intensity / 10, abs=0.01)
    assert (out["y"] == df["y"]).all()  # labels untouched
