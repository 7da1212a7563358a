#!/usr/bin/env python
"""Drift monitoring: detection quality, DriftDetector.check() speed, LiveWindow cost and memory.

    .venv/bin/python benchmarks/bench_drift.py [--quick] [--part PART ...] [--out FILE]

1. Detection quality, default thresholds (PSI 0.1/0.2, JS 0.1/0.2, drift share 0.3): a 20,000-row
   reference of ``churn`` (and of ``fraud``), 1,000-row windows. Undrifted windows (other seeds):
   how many have ``dataset_drift`` and, per feature, how many are warning/critical (false
   alarms). Windows with a 0.5-standard-deviation mean shift of one numeric feature
   (``DriftSpec(mean_shift={feature: 0.5})``): how many flag that feature (warning or above).
2. ``check()`` speed on 1,000,000 rows x 20 columns (16 numeric + 4 categorical, and 20 numeric),
   fitted on a 100,000-row reference of the same distributions, against a plain vectorised numpy
   binning of the same columns in the same run (``searchsorted`` + ``bincount`` on the frozen
   edges, ``np.unique(..., return_counts=True)`` on the object arrays). Both best of 3. One more
   ``check()`` under cProfile says where its time goes.
3. ``LiveWindow.add(record, output)`` per prediction for churn records (median over batches of
   1,000 adds), and the window's memory after 10,000 and 1,000,000 adds: the counts handed over
   by ``take()`` (``WindowCounts.nbytes()``) and the tracemalloc-measured growth of the live
   object, its bounded set of row hashes for duplicates included.

``--quick``: 20 windows instead of 100 and 200,000 rows instead of 1,000,000 (a smoke run).
``--part`` (quality, speed_mixed, speed_numeric, live; repeatable) runs some parts only and merges
them into an existing output file (the full run takes about 5 minutes; each part at most 2-3).
Timings are wall-clock on a shared machine: read the ratios more than the figures.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import math
import os
import platform
import pstats
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlobs.data.generator import DATASETS, DriftSpec, generate
from mlobs.monitoring.drift_detector import DriftDetector
from mlobs.monitoring.profiles import ReferenceProfile
from mlobs.monitoring.windows import LiveWindow

REFERENCE_SEED = 20_000
WINDOW_ROWS = 1_000
REFERENCE_ROWS = 20_000
SHIFTS = {"churn": "monthly_charges", "fraud": "customer_age"}
SHIFT_SD = 0.5
FLAGGED = ("warning", "critical")
SPEED_REFERENCE_ROWS = 100_000
SPEED_VARIANTS = {"mixed_16num_4cat": (16, 4), "numeric_20": (20, 0)}
PARTS = ("quality", "speed_mixed", "speed_numeric", "live")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# ------------------------------------------------------------------------------ 1. quality


def _quality(dataset: str, n_windows: int) -> dict[str, Any]:
    spec = DATASETS[dataset]
    ref = generate(dataset, REFERENCE_ROWS, seed=REFERENCE_SEED)
    det = DriftDetector().fit(
        ref, categorical_features=spec.categorical, features=spec.feature_names
    )
    feature = SHIFTS[dataset]

    dataset_drift = 0
    per_feature = {f: {"warning": 0, "critical": 0} for f in spec.feature_names}
    shares = []
    for i in range(n_windows):
        report = det.check(generate(dataset, WINDOW_ROWS, seed=1 + i))
        dataset_drift += report.dataset_drift
        shares.append(report.drift_share)
        for name, fd in report.features.items():
            if fd.status in FLAGGED:
                per_feature[name][fd.status] += 1

    flagged = 0
    shifted_drift = 0
    scores = []
    drift = DriftSpec(mean_shift={feature: SHIFT_SD})
    for i in range(n_windows):
        report = det.check(generate(dataset, WINDOW_ROWS, seed=100_001 + i, drift=drift))
        fd = report.features[feature]
        flagged += fd.status in FLAGGED
        shifted_drift += report.dataset_drift
        scores.append(fd.score)
    s = np.asarray(scores, dtype=np.float64)
    return {
        "reference_rows": REFERENCE_ROWS,
        "window_rows": WINDOW_ROWS,
        "windows": n_windows,
        "undrifted": {
            "dataset_drift_windows": int(dataset_drift),
            "max_drift_share": float(max(shares)),
            "flagged_windows_per_feature": {
                f: {**c, "any": c["warning"] + c["critical"]} for f, c in per_feature.items()
            },
        },
        "shifted": {
            "feature": feature,
            "mean_shift_sd": SHIFT_SD,
            "feature_flagged_windows": int(flagged),
            "dataset_drift_windows": int(shifted_drift),
            "score_min": float(s.min()),
            "score_median": float(np.median(s)),
            "score_max": float(s.max()),
        },
        "targets": {
            "undrifted_dataset_drift_le_2_per_100": dataset_drift <= 0.02 * n_windows,
            "shifted_flagged_ge_95_per_100": flagged >= 0.95 * n_windows,
        },
    }


# ------------------------------------------------------------------------------ 2. check() speed

CATEGORIES = [f"cat_{c}" for c in ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot")]
CATEGORIES += ["golf_longer_name", "hotel"]


def _numeric_column(j: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """Column ``j``: one of eight distributions, continuous, skewed, heavy-tailed or discrete."""
    kind = j % 8
    if kind == 0:
        return rng.normal(50.0 + j, 10.0, n)
    if kind == 1:
        return np.round(rng.lognormal(3.0, 0.8, n), 2)
    if kind == 2:
        return rng.exponential(5.0, n)
    if kind == 3:
        return rng.gamma(2.0, 3.0, n)
    if kind == 4:
        return rng.uniform(0.0, 100.0, n)
    if kind == 5:
        return rng.poisson(3.0, n).astype(np.float64)
    if kind == 6:
        return rng.standard_t(3.0, n)
    return np.round(rng.beta(2.0, 5.0, n), 3)


def _synthetic(n: int, n_numeric: int, n_categorical: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cols: dict[str, Any] = {f"num_{j:02d}": _numeric_column(j, n, rng) for j in range(n_numeric)}
    cats = np.array(CATEGORIES, dtype=object)
    for j in range(n_categorical):
        p = rng.dirichlet(np.full(len(cats), 2.0 + j))
        cols[f"cat_{j}"] = rng.choice(cats, n, p=p)
    return pd.DataFrame(cols)


def _best_of(fn: Callable[[], object], repeat: int = 3) -> float:
    best = math.inf
    for _ in range(repeat):
        gc.collect()
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def _baseline(
    numeric: list[tuple[np.ndarray, np.ndarray]], categorical: list[np.ndarray]
) -> tuple[float, float]:
    """Best-of-3 seconds of plain numpy binning of the numeric and categorical columns."""

    def num() -> None:
        for x, edges in numeric:
            np.bincount(np.searchsorted(edges, x), minlength=len(edges) + 1)

    def cat() -> None:
        for x in categorical:
            np.unique(x, return_counts=True)

    return _best_of(num), (_best_of(cat) if categorical else 0.0)


def _profile(det: DriftDetector, current: pd.DataFrame, top: int = 12) -> dict[str, Any]:
    """One check() under cProfile: share of time of the main stages and the top functions."""
    prof = cProfile.Profile()
    prof.enable()
    det.check(current)
    prof.disable()
    st = pstats.Stats(prof)
    raw: dict[tuple[str, int, str], tuple[Any, ...]] = st.stats  # type: ignore[attr-defined]
    total = max(
        ct
        for (file, _, fn), (_, _, _, ct, _) in raw.items()
        if fn == "check" and file.endswith("drift_detector.py")
    )

    def label(key: tuple[str, int, str]) -> str:
        file, line, fn = key
        if file == "~":
            return fn
        parts = Path(file).parts
        short = "/".join(parts[parts.index("mlobs") :]) if "mlobs" in parts else Path(file).name
        return f"{short}:{line}({fn})"

    stages = {}
    wanted = {
        "duplicate_rows": "quality.py",
        "category_counts": "binning.py",
        "bin_counts": "binning.py",
        "to_numeric": "numeric.py",
        "evaluate": "drift_detector.py",
    }
    for (file, _, fn), (_, _, _, ct, _) in raw.items():
        if fn in wanted and file.endswith(wanted[fn]):
            stages[fn] = {"seconds": ct, "share": ct / total}

    def rows(idx: int) -> list[dict[str, Any]]:
        ranked = sorted(raw.items(), key=lambda kv: kv[1][idx], reverse=True)[:top]
        return [
            {"function": label(k), "seconds": v[idx], "share": v[idx] / total} for k, v in ranked
        ]

    return {
        "check_seconds_profiled": total,
        "stages_cumulative": stages,
        "top_self_time": rows(2),
        "top_cumulative": rows(3),
    }


def _speed_variant(n: int, n_numeric: int, n_categorical: int) -> dict[str, Any]:
    ref = _synthetic(SPEED_REFERENCE_ROWS, n_numeric, n_categorical, seed=1)
    current = _synthetic(n, n_numeric, n_categorical, seed=2)
    cat_names = [c for c in current.columns if c.startswith("cat_")]
    det = DriftDetector().fit(ref, categorical_features=cat_names)
    assert det.profile is not None
    del ref

    numeric = [
        (current[name].to_numpy(dtype=np.float64), np.asarray(p.edges, dtype=np.float64))
        for name, p in det.profile.features.items()
        if name not in cat_names
    ]
    categorical = [current[name].to_numpy(dtype=object) for name in cat_names]
    check_s = _best_of(lambda: det.check(current))  # the first run is the warm-up
    num_s, cat_s = _baseline(numeric, categorical)
    baseline_s = num_s + cat_s
    return {
        "rows": n,
        "numeric_columns": n_numeric,
        "categorical_columns": n_categorical,
        "reference_rows": SPEED_REFERENCE_ROWS,
        "current_dtypes": sorted({str(t) for t in current.dtypes}),
        "check_s": check_s,
        "baseline_s": baseline_s,
        "baseline_numeric_s": num_s,
        "baseline_categorical_s": cat_s,
        "ratio_check_over_baseline": check_s / baseline_s,
        "target_ratio_le_2": check_s / baseline_s <= 2.0,
        "profile": _profile(det, current),
        "baseline_note": (
            "numpy on arrays extracted from the frame beforehand (extraction not timed): "
            "numeric np.bincount(np.searchsorted(edges, x), minlength=len(edges)+1) on the "
            "frozen edges; categorical np.unique(x, return_counts=True) on the object array"
        ),
    }


# ------------------------------------------------------------------------------ 3. live window


def _records(n: int) -> list[dict[str, Any]]:
    spec = DATASETS["churn"]
    rows = generate("churn", n, seed=7)[spec.feature_names]
    return [{k: (None if pd.isna(v) else v) for k, v in r.items()} for r in rows.to_dict("records")]


def _live(total_adds: int) -> dict[str, Any]:
    spec = DATASETS["churn"]
    ref = generate("churn", REFERENCE_ROWS, seed=REFERENCE_SEED)
    rng = np.random.default_rng(3)
    # A model output to count as well (a churn probability): the profile gets an output profile.
    profile = ReferenceProfile.build(
        ref,
        categorical_features=spec.categorical,
        features=spec.feature_names,
        output=rng.beta(2.0, 5.0, len(ref)),
    )
    records = _records(100_000)
    outputs = rng.beta(2.0, 5.0, len(records)).tolist()
    pairs = list(zip(records, outputs, strict=True))
    batch, n_batches = 1_000, 100

    def per_add_us(flush_every: int | None) -> dict[str, float]:
        win = LiveWindow(profile)
        add = win.add
        for rec, out in pairs[:2_000]:  # warm-up
            add(rec, out)
        win.take()
        per = np.empty(n_batches)
        for b in range(n_batches):
            if flush_every and b and (b * batch) % flush_every == 0:
                win.take()
            chunk = pairs[b * batch : (b + 1) * batch]
            t = time.perf_counter()
            for rec, out in chunk:
                add(rec, out)
            per[b] = (time.perf_counter() - t) / batch * 1e6
        return {
            "median_us": float(np.median(per)),
            "p90_us": float(np.percentile(per, 90)),
            "min_us": float(per.min()),
        }

    # take() every 10,000 adds: the duplicate set never fills, so every add hashes its row (the
    # dearer case); without take(), the set fills after 10,000 distinct rows and hashing stops.
    timing = {
        "adds": batch * n_batches,
        "batch": batch,
        "take_every_10k_dedup_always_on": per_add_us(10_000),
        "no_take_dedup_set_full_after_10k": per_add_us(None),
    }

    # Memory: counts handed over, and traced growth of one live window fed without take().
    small = LiveWindow(profile)
    for rec, out in pairs[:10_000]:
        small.add(rec, out)
    nbytes_10k = small.take().nbytes()
    del small

    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    win = LiveWindow(profile)
    empty = tracemalloc.get_traced_memory()[0] - base
    checkpoints = {10_000: 0, total_adds: 0}
    n_pairs = len(pairs)
    add = win.add
    for i in range(total_adds):
        rec, out = pairs[i % n_pairs]
        add(rec, out)
        if i + 1 in checkpoints:
            gc.collect()
            checkpoints[i + 1] = tracemalloc.get_traced_memory()[0] - base
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    seen = len(win._seen)
    duplicates = win._duplicates
    nbytes_total = win.take().nbytes()
    return {
        "per_add": timing,
        "memory": {
            "track_duplicates": win._track,
            "records_cycled": n_pairs,
            "take_nbytes_after_10k": nbytes_10k,
            "total_adds": total_adds,
            "take_nbytes_after_total": nbytes_total,
            "traced_bytes_empty_window": empty,
            "traced_bytes_after_10k": checkpoints[10_000],
            "traced_bytes_after_total": checkpoints[total_adds],
            "traced_peak_bytes": peak,
            "duplicate_set_size_at_end": seen,
            "duplicates_counted": duplicates,
        },
    }


# ------------------------------------------------------------------------------ main


def _print_quality(quality: dict[str, Any]) -> None:
    n_windows = next(iter(quality.values()))["windows"]
    print(f"1. detection quality ({n_windows} windows of {WINDOW_ROWS} rows)")
    print(f"{'data':6} {'no drift: dataset_drift':>24} {'shifted feature':>22} {'flagged':>8} "
          f"{'score min/med/max':>22}")  # fmt: skip
    for d, q in quality.items():
        s = q["shifted"]
        print(
            f"{d:6} {q['undrifted']['dataset_drift_windows']:>19}/{n_windows:<4} "
            f"{s['feature'] + ' +0.5sd':>22} {s['feature_flagged_windows']:>4}/{n_windows:<3} "
            f"{s['score_min']:>7.3f}/{s['score_median']:.3f}/{s['score_max']:.3f}"
        )
        alarms = {
            f: c["any"]
            for f, c in q["undrifted"]["flagged_windows_per_feature"].items()
            if c["any"]
        }
        print(f"       false alarms per feature (undrifted windows): {alarms or 'none'}")


def _print_speed(speed: dict[str, Any]) -> None:
    n_rows = next(iter(speed.values()))["rows"]
    print(f"2. check() on {n_rows:,} rows x 20 columns (best of 3)")
    print(f"{'variant':18} {'check':>8} {'numpy':>8} {'ratio':>6} "
          f"  biggest stages (cProfile)")  # fmt: skip
    for v, r in speed.items():
        stages = sorted(r["profile"]["stages_cumulative"].items(), key=lambda kv: -kv[1]["share"])
        top = ", ".join(f"{k} {s['share']:.0%}" for k, s in stages[:3])
        print(
            f"{v:18} {r['check_s']:7.3f}s {r['baseline_s']:7.3f}s "
            f"{r['ratio_check_over_baseline']:6.2f}  {top}"
        )


def _print_live(live: dict[str, Any]) -> None:
    t, m = live["per_add"], live["memory"]
    n = m["total_adds"]
    print("3. LiveWindow.add (churn record + output)")
    print(
        f"per add: {t['take_every_10k_dedup_always_on']['median_us']:.2f} us median "
        f"(dedup always on), {t['no_take_dedup_set_full_after_10k']['median_us']:.2f} us "
        f"(dedup set full)"
    )
    print(
        f"take().nbytes(): {m['take_nbytes_after_10k']} B after 10k, "
        f"{m['take_nbytes_after_total']} B after {n:,}; traced growth: "
        f"{m['traced_bytes_after_10k'] / 1024:.0f} KiB after 10k, "
        f"{m['traced_bytes_after_total'] / 1024:.0f} KiB after {n:,} "
        f"(duplicate set {m['duplicate_set_size_at_end']} entries)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 windows, 200,000 rows")
    parser.add_argument(
        "--part",
        action="append",
        choices=PARTS,
        help="run only this part (repeatable); results are merged into an existing --out file",
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/drift.json"))
    args = parser.parse_args()
    n_windows = 20 if args.quick else 100
    n_rows = 200_000 if args.quick else 1_000_000
    parts = args.part or list(PARTS)

    report: dict[str, Any] = {}
    if args.part and args.out.is_file():
        report = json.loads(args.out.read_text())
        if report.get("quick") != args.quick:
            report = {}
    report.update(
        {
            "machine": {
                "platform": platform.platform(),
                "processor": _cpu_model(),
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "numpy": np.__version__,
                "pandas": pd.__version__,
            },
            "quick": args.quick,
        }
    )
    report.setdefault("wall_s", {})
    for part in parts:
        t0 = time.perf_counter()
        if part == "quality":
            report["quality"] = {d: _quality(d, n_windows) for d in ("churn", "fraud")}
        elif part.startswith("speed_"):
            variant = next(v for v in SPEED_VARIANTS if v.startswith(part.removeprefix("speed_")))
            report.setdefault("check_speed", {})[variant] = _speed_variant(
                n_rows, *SPEED_VARIANTS[variant]
            )
        else:
            report["live_window"] = _live(n_rows)
        report["wall_s"][part] = time.perf_counter() - t0
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2))  # after each part

    if "quality" in report:
        _print_quality(report["quality"])
    if "check_speed" in report:
        print()
        _print_speed(report["check_speed"])
    if "live_window" in report:
        print()
        _print_live(report["live_window"])
    print(f"\nwritten to {args.out} ({sum(report['wall_s'].values()):.0f} s over all parts)")


if __name__ == "__main__":
    main()
