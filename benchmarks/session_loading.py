"""How long reading a folder of sessions takes, strictly validated (what compare does first).

Usage: python benchmarks/session_loading.py [N] (default 2,000 sessions of 400 curve points).
Prints milliseconds per session for ``load_sessions`` and, interleaved in the same run, for the
two-pass alternative (``json.loads`` then ``validate_python``), min and median of 5 repeats.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from tui_lab.core.storage import SESSION_ADAPTER, load_sessions, save_model
from tui_lab.schema import (
    Environment,
    EpochRecord,
    LossCurve,
    LrScaling,
    OptimizerConfig,
    RunConfig,
    Session,
)

REPEATS = 5


def sample_session(index: int, points: int = 400, epochs: int = 20) -> Session:
    config = RunConfig(
        preset_name="bench",
        dataset="digits",
        model="lenet5",
        optimizer=OptimizerConfig(name="sgd").resolved(),
        batch_size=32,
        batch_size_requested=32,
        lr=0.05,
        lr_scaling=LrScaling(),
        epochs=epochs,
        target_accuracy=0.9,
        seed=0,
        device="cpu",
    )
    environment = Environment(
        python="3", torch="2", platform="linux", host="h", device="cpu", device_name="CPU",
        threads=1, bslab="0",
    )  # fmt: skip
    curve = LossCurve(
        step=list(range(points)),
        epoch=[i / 20 for i in range(points)],
        samples=[32 * i for i in range(points)],
        seconds=[i / 10 for i in range(points)],
        loss=[1 / (i + 1) for i in range(points)],
    )
    records = [
        EpochRecord(
            epoch=e, train_loss=1 / e, val_loss=1 / e, val_accuracy=1 - 1 / (e + 1),
            train_seconds=1.0, eval_seconds=0.1, samples_seen=1000 * e, steps=32 * e, lr=0.05,
        )
        for e in range(1, epochs + 1)
    ]  # fmt: skip
    return Session(
        id=f"s{index}",
        created=datetime.now(timezone.utc),
        config=config,
        environment=environment,
        n_train=1000,
        n_val=100,
        steps_per_epoch=32,
        status="completed",
        epochs=records,
        curve=curve,
    )


def two_pass(folder: Path) -> int:
    return sum(
        1
        for f in folder.glob("*.json")
        if SESSION_ADAPTER.validate_python(json.loads(f.read_text()))
    )


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for i in range(n):
            save_model(sample_session(i), folder / f"s{i:05d}.json")
        size = sum(f.stat().st_size for f in folder.glob("*.json")) / n
        times: dict[str, list[float]] = {"load_sessions": [], "json.loads+validate_python": []}
        for _ in range(REPEATS):
            start = time.perf_counter()
            loaded, warnings = load_sessions([folder])
            times["load_sessions"].append((time.perf_counter() - start) / n * 1e3)
            assert len(loaded) == n and not warnings
            start = time.perf_counter()
            two_pass(folder)
            times["json.loads+validate_python"].append((time.perf_counter() - start) / n * 1e3)
    print(f"{n} sessions of {size / 1024:.0f} KiB each, {REPEATS} repeats, ms per session:")
    for name, values in times.items():
        print(f"  {name:28} min {min(values):.2f}  median {statistics.median(values):.2f}")


if __name__ == "__main__":
    main()
