"""Schema objects for tests that need sessions without training: the shared, boring parts."""

from __future__ import annotations

from tui_lab.schema import Environment, LrScaling, OptimizerConfig, RunConfig, TrainPreset

ENVIRONMENT = Environment(
    python="3.11",
    torch="2",
    platform="linux",
    host="test",
    device="cpu",
    device_name="CPU",
    threads=1,
    bslab="0",
)


def run_config(
    batch: int,
    *,
    optimizer: str = "sgd",
    epochs: int = 4,
    target_accuracy: float = 0.9,
    preset_name: str = "t",
) -> RunConfig:
    """A resolved run of LeNet-5 on the digits at lr 0.05."""
    return RunConfig(
        preset_name=preset_name,
        dataset="digits",
        model="lenet5",
        optimizer=OptimizerConfig(name=optimizer).resolved(),
        batch_size=batch,
        batch_size_requested=batch,
        lr=0.05,
        lr_scaling=LrScaling(),
        epochs=epochs,
        target_accuracy=target_accuracy,
        seed=0,
        device="cpu",
    )


def small_sweep(**changes) -> TrainPreset:
    """A sweep that trains in well under a second: 160 digits, an MLP, two batch sizes, two
    epochs on the cpu; ``changes`` override any field."""
    fields = {
        "name": "tiny",
        "dataset": "digits",
        "train_subset": 160,
        "model": "mlp",
        "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9},
        "batch_sizes": [32, "full"],
        "epochs": 2,
        "device": "cpu",
    }
    return TrainPreset.model_validate({**fields, **changes})
