"""Training presets (what to run) and the runs they expand to (one RunConfig each).

What a run records, its session, is in ``schema.session``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import Discriminator, Field, Tag, ValidationInfo, field_validator, model_validator

from tui_lab.schema.analysis import NoiseScaleSettings
from tui_lab.schema.common import (
    MAX_INT,
    MAX_LIST,
    MAX_LR,
    SCHEMA_VERSION,
    BatchSize,
    BatchSizes,
    Fraction,
    Int,
    Name,
    PositiveFloat,
    PositiveInt,
    Seed,
    StrictModel,
    lr_text,
    no_repeats,
)
from tui_lab.schema.trajectory import TrajectorySettings
from tui_lab.schema.user import MODULE_FACTORY, CheckedModel, UserData, UserModel

DatasetName = Literal["digits", "mnist", "fashion-mnist", "kmnist", "cifar10"]
ModelName = Literal["lenet5", "mlp", "cnn", "resnet9"]


def _builtin_or_user(value: object) -> str:
    """A plain name is a built-in; ``module:factory`` or an object is the user's own."""
    return "builtin" if isinstance(value, str) and ":" not in value else "user"


def _name_or_object(value: object) -> str:
    return "builtin" if isinstance(value, str) else "user"


def _short_form_schema(schema: dict[str, Any]) -> None:
    """Editors validating a preset accept ``"package.module:factory"`` too."""
    schema["oneOf"].append({"type": "string", "pattern": MODULE_FACTORY})


ModelSpec = Annotated[
    Annotated[ModelName, Tag("builtin")] | Annotated[UserModel, Tag("user")],
    Discriminator(_builtin_or_user),
    Field(
        description="A built-in network, or the user's: 'package.module:factory', or "
        '{"file": "nets.py", "factory": "build", "kwargs": {...}} (the file relative to the '
        "preset). Naming code here runs that code.",
        json_schema_extra=_short_form_schema,
    ),
]
RunModel = Annotated[
    Annotated[ModelName, Tag("builtin")] | Annotated[CheckedModel, Tag("user")],
    Discriminator(_name_or_object),
]
DatasetSpec = Annotated[
    Annotated[DatasetName, Tag("builtin")] | Annotated[UserData, Tag("user")],
    Discriminator(_name_or_object),
    Field(
        description="A built-in data set, or the user's: "
        '{"path": "images/"} (an ImageFolder layout) or {"path": "data.npz"} (x and y).'
    ),
]
OptimizerName = Literal[
    "sgd", "momentum", "nesterov", "rprop", "rmsprop", "adagrad", "adadelta", "adam", "adamw"
]
OPTIMIZER_NAMES: tuple[str, ...] = get_args(OptimizerName)  # the order runs are listed in
MAX_EPOCHS = 10_000
MAX_THREADS = 1024
MAX_CURVE_POINTS = 5000


Stacking = Literal["auto", "stacked", "separate"]
CudaGraphs = Literal["auto", "on", "off"]
CUDA_GRAPHS_HELP = (
    "Replay each full training step from a captured CUDA graph: auto where it can be captured "
    "(a CUDA device, no micro-batching or lr warm-up, an optimizer that can be captured), on "
    "(an error where it cannot), off."
)

# Per optimizer: its default learning rate and the hyper-parameters it accepts, with defaults.
# Passing a hyper-parameter an optimizer does not have is an error rather than silently ignored.
OPTIMIZER_DEFAULTS: dict[str, dict[str, object]] = {
    "sgd": {"lr": 0.05, "momentum": 0.0, "weight_decay": 0.0},
    "momentum": {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.0},
    "nesterov": {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.0},
    "rprop": {"lr": 0.001, "etas": (0.5, 1.2), "step_sizes": (1e-6, 50.0)},
    "rmsprop": {"lr": 0.001, "alpha": 0.99, "eps": 1e-8, "momentum": 0.0, "weight_decay": 0.0},
    "adagrad": {"lr": 0.01, "eps": 1e-10, "weight_decay": 0.0},
    "adadelta": {"lr": 1.0, "rho": 0.9, "eps": 1e-6, "weight_decay": 0.0},
    "adam": {"lr": 0.001, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0},
    "adamw": {"lr": 0.001, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.01},
}


LearningRate = Annotated[float, Field(gt=0, le=MAX_LR, allow_inf_nan=False)]


class OptimizerConfig(StrictModel):
    """One optimizer and its hyper-parameters; fields left out take the optimizer's defaults."""

    name: OptimizerName
    lr: LearningRate | None = Field(None, description="Base learning rate (before scaling).")
    momentum: Fraction | None = None
    weight_decay: Annotated[float, Field(ge=0, le=MAX_LR, allow_inf_nan=False)] | None = None
    eps: PositiveFloat | None = None
    alpha: Fraction | None = Field(None, description="RMSprop smoothing constant.")
    rho: Fraction | None = Field(None, description="Adadelta decay.")
    betas: tuple[Fraction, Fraction] | None = Field(None, description="Adam/AdamW betas.")
    etas: tuple[PositiveFloat, PositiveFloat] | None = Field(
        None, description="Rprop (decrease, increase) factors, decrease < 1 < increase."
    )
    step_sizes: tuple[PositiveFloat, PositiveFloat] | None = Field(
        None, description="Rprop (minimum, maximum) step size."
    )

    @model_validator(mode="after")
    def _only_known_hyperparameters(self) -> OptimizerConfig:
        allowed = OPTIMIZER_DEFAULTS[self.name]
        for field in self.hyperparameter_fields():
            if getattr(self, field) is not None and field not in allowed:
                raise ValueError(
                    f"{self.name} has no hyper-parameter {field!r} "
                    f"(it takes: {', '.join(sorted(allowed))})"
                )
        if self.etas is not None and not self.etas[0] < 1 < self.etas[1]:
            raise ValueError("etas must be (decrease < 1, increase > 1)")
        if self.step_sizes is not None and self.step_sizes[0] > self.step_sizes[1]:
            raise ValueError("step_sizes must be (minimum, maximum)")
        return self

    @staticmethod
    def hyperparameter_fields() -> list[str]:
        return [f for f in OptimizerConfig.model_fields if f != "name"]

    def resolved(self) -> OptimizerConfig:
        """A copy with every hyper-parameter the optimizer takes filled in with its default."""
        values = {k: v for k, v in OPTIMIZER_DEFAULTS[self.name].items()}
        values.update({k: v for k, v in self.model_dump(exclude={"name"}).items() if v is not None})
        return OptimizerConfig(name=self.name, **values)

    def label(self) -> str:
        """Short human label, e.g. ``sgd(lr=0.05, m=0.9)``."""
        cfg = self.resolved()
        extra = f", m={cfg.momentum:g}" if cfg.momentum else ""
        return f"{cfg.name}(lr={cfg.lr:g}{extra})"


def as_trained(optimizer: OptimizerConfig) -> dict[str, object]:
    """An optimizer with its defaults filled in: ``sgd`` and ``sgd`` at lr 0.05 train alike."""
    return {**OPTIMIZER_DEFAULTS[optimizer.name], **optimizer.model_dump(exclude_none=True)}


class PresetOptimizer(OptimizerConfig):
    """An optimizer as a preset gives it: ``lr`` may be a list, a grid tried at every batch."""

    lr: (
        LearningRate
        | Annotated[list[LearningRate], Field(min_length=1, max_length=MAX_LIST), no_repeats("lr")]
        | None
    ) = Field(None, description="Base learning rate (before scaling), or a list of them: a grid.")

    @model_validator(mode="before")
    @classmethod
    def _from_optimizer_config(cls, value: object) -> object:
        """An OptimizerConfig (one lr) is a preset optimizer too: code builds presets so."""
        if isinstance(value, OptimizerConfig) and not isinstance(value, PresetOptimizer):
            return value.model_dump(exclude_none=True)
        return value

    def learning_rates(self) -> list[float | None]:
        """The grid's base learning rates (one None: the optimizer's default)."""
        return list(self.lr) if isinstance(self.lr, list) else [self.lr]

    def at_lr(self, lr: float | None) -> OptimizerConfig:
        """One point of the grid, with every hyper-parameter filled in."""
        return OptimizerConfig(**{**self.model_dump(), "lr": lr}).resolved()

    def label(self) -> str:
        return self.at_lr(self.learning_rates()[0]).label()


class LrGrid(StrictModel):
    """Learning rates tried at every batch size: factors times the scaled learning rate."""

    around: Literal["scaled"] = Field(
        "scaled", description="The lr the factors multiply: the optimizer's, after lr_scaling."
    )
    factors: Annotated[
        list[PositiveFloat], Field(min_length=1, max_length=MAX_LIST), no_repeats("factor")
    ] = Field(default_factory=lambda: [0.25, 0.5, 1.0, 2.0, 4.0])


class LrScaling(StrictModel):
    """How the learning rate follows the batch size (Goyal et al. 2017), plus linear warm-up."""

    rule: Literal["none", "linear", "sqrt"] = "none"
    base_batch_size: PositiveInt = Field(
        32, description="Batch size at which the optimizer's lr is used as given."
    )
    warmup_epochs: Annotated[float, Field(ge=0, allow_inf_nan=False)] = Field(
        0.0, description="Epochs over which the lr rises linearly from ~0 to its scaled value."
    )

    def scale(self, lr: float, batch_size: int) -> float:
        ratio = batch_size / self.base_batch_size
        if self.rule == "linear":
            return lr * ratio
        if self.rule == "sqrt":
            return lr * math.sqrt(ratio)
        return lr


class LocalExecutorSettings(StrictModel):
    """Train the runs on this machine."""

    kind: Literal["local"] = "local"


class RayExecutorSettings(StrictModel):
    """Train the runs on a Ray cluster: each run is a Ray task, its events stream back here."""

    kind: Literal["ray"]
    address: str | None = Field(
        None,
        description="The cluster's HOST:PORT (as `ray start --head` prints), 'auto' for the "
        "cluster this machine belongs to, or none to start a local Ray.",
    )
    cpus_per_run: PositiveInt | None = Field(
        None,
        description="CPUs each run asks for, and torch threads it uses (default: 1 for GPU runs "
        "and batches under 16, else 2).",
    )
    gpus_per_run: Annotated[float, Field(gt=0, le=1)] | None = Field(
        None,
        description="Share of a GPU each GPU run asks for (default: a quarter for the small "
        "models mlp and lenet5, a whole GPU for cnn).",
    )


ExecutorSettings = Annotated[
    LocalExecutorSettings | RayExecutorSettings, Field(discriminator="kind")
]


class TrainPreset(StrictModel):
    """A sweep: every (optimizer, batch size) pair is one run, trained from the same seed."""

    schema_version: Literal[1] = SCHEMA_VERSION
    kind: Literal["train"] = "train"
    name: Name = "sweep"
    description: str = ""
    dataset: DatasetSpec = "digits"
    data_dir: Path | None = Field(None, description="Folder with local dataset files.")
    train_subset: PositiveInt | None = Field(
        None, description="Use only this many training samples (fixed by the seed)."
    )
    model: ModelSpec = "lenet5"
    micro_batch_size: PositiveInt | None = Field(
        None,
        description="Split each batch into micro-batches of this size and accumulate their "
        "gradients: an effective batch larger than memory allows.",
    )
    optimizer: PresetOptimizer | None = None
    optimizers: (
        Annotated[
            list[PresetOptimizer],
            no_repeats("optimizer", key=as_trained, label=lambda o: repr(o.name)),
        ]
        | None
    ) = Field(None, min_length=1, max_length=MAX_LIST)
    batch_sizes: BatchSizes = Field(default_factory=lambda: [32], min_length=1, max_length=MAX_LIST)
    epochs: Annotated[PositiveInt, Field(le=MAX_EPOCHS)] = 10
    target_accuracy: Annotated[float, Field(gt=0, le=1)] = 0.95
    stop_at_target: bool = Field(
        False,
        description="End each run after the first epoch that reaches the target accuracy: "
        "steps-to-target studies need no more, and large epoch budgets stay cheap.",
    )
    seed: Seed = Field(
        0, description="Seed of the data split and subset, and of the run when 'seeds' is not set."
    )
    seeds: Annotated[list[Seed], Field(min_length=1, max_length=MAX_LIST)] | None = Field(
        None, description="Train every configuration once per seed (one session per seed)."
    )
    replicates: Annotated[PositiveInt, Field(le=MAX_LIST)] | None = Field(
        None, description="Shorthand for seeds: seed, seed+1, ..., this many of them."
    )
    lr_grid: LrGrid | None = Field(
        None, description="Try several learning rates at every batch size, around the scaled one."
    )
    protocol: Literal["fixed", "best-lr"] = Field(
        "fixed",
        description="best-lr: the analysis takes, per batch size, the lr of the grid that reaches "
        "the target in the fewest steps (median over seeds), as Shallue et al. 2018 did.",
    )
    stacking: Stacking = Field(
        "auto",
        description="Train the seeds (and lrs) of one configuration together as one stacked "
        "model: 'auto' where measured to be faster, 'stacked' wherever possible, 'separate' never.",
    )
    device: Annotated[str, Field(min_length=1, max_length=40)] = "auto"
    threads: Annotated[PositiveInt, Field(le=MAX_THREADS)] | None = Field(
        None,
        description="CPU threads torch may use on the cpu device (default: one for batches "
        "under 16, where splitting tiny operations only adds synchronisation; torch's choice, "
        "one per core, above). 1 is fastest when other programs share the cores.",
    )
    lr_scaling: LrScaling = Field(default_factory=LrScaling)
    parallel: PositiveInt | Literal["auto"] = Field(
        "auto",
        description="Runs trained at once, each in its own process. auto: one slot per core "
        "on the cpu (large batches get several threads), several small-batch runs per GPU, "
        "every GPU of the box with device 'cuda'.",
    )
    cuda_graphs: CudaGraphs = Field("auto", description=CUDA_GRAPHS_HELP)
    curve_points: Annotated[Int, Field(ge=10, le=MAX_CURVE_POINTS)] = Field(
        400, description="Most points kept in a session's step-level loss curve."
    )
    noise_scale: NoiseScaleSettings = Field(default_factory=NoiseScaleSettings)
    trajectory: TrajectorySettings = Field(default_factory=TrajectorySettings)
    executor: ExecutorSettings = Field(
        default_factory=LocalExecutorSettings, description="Where the runs train: here, or on Ray."
    )

    @field_validator("replicates")
    @classmethod
    def _seeds_in_range(cls, replicates: int | None, info: ValidationInfo) -> int | None:
        """seed, seed+1, …: the last must still be a seed."""
        seed = info.data.get("seed", 0)
        if replicates is not None and seed + replicates - 1 > MAX_INT:
            raise ValueError(
                f"seed {seed} plus {replicates} replicates passes the largest seed, {MAX_INT}"
            )
        return replicates

    @model_validator(mode="after")
    def _one_way_to_give_optimizers(self) -> TrainPreset:
        if self.optimizer is not None and self.optimizers is not None:
            raise ValueError("give either 'optimizer' or 'optimizers', not both")
        if self.seeds is not None and self.replicates is not None:
            raise ValueError("give either 'seeds' or 'replicates', not both")
        if self.seeds is not None and len(set(self.seeds)) != len(self.seeds):
            raise ValueError("'seeds' has a seed twice")
        lr_lists = any(len(o.learning_rates()) > 1 for o in self.optimizer_grid())
        if lr_lists and self.lr_grid is not None:
            raise ValueError("give the lr grid either as a list of lrs or as 'lr_grid', not both")
        if self.protocol == "best-lr" and not (lr_lists or self.lr_grid is not None):
            raise ValueError("protocol 'best-lr' needs an lr grid ('lr' as a list, or 'lr_grid')")
        return self

    def optimizer_grid(self) -> list[PresetOptimizer]:
        if self.optimizers is not None:
            return list(self.optimizers)
        return [self.optimizer or PresetOptimizer(name="sgd")]

    def seed_list(self) -> list[int]:
        """The seeds every configuration is trained from."""
        if self.seeds is not None:
            return list(self.seeds)
        return [self.seed + i for i in range(self.replicates or 1)]

    def lr_factors(self) -> list[float | None]:
        """Multipliers of the scaled lr (None: the lr itself, no grid)."""
        return list(self.lr_grid.factors) if self.lr_grid is not None else [None]


class RunConfig(StrictModel):
    """One run, fully resolved: defaults filled, 'full' and the lr scaling rule applied."""

    preset_name: Name
    dataset: DatasetSpec
    data_dir: Path | None = None
    train_subset: PositiveInt | None = None
    model: RunModel
    optimizer: OptimizerConfig
    batch_size: PositiveInt
    batch_size_requested: BatchSize
    micro_batch_size: PositiveInt | None = None
    lr: PositiveFloat = Field(description="Effective learning rate after the scaling rule.")
    lr_scaling: LrScaling
    epochs: Annotated[PositiveInt, Field(le=MAX_EPOCHS)]
    target_accuracy: Annotated[float, Field(gt=0, le=1)]
    stop_at_target: bool = False
    seed: Seed
    device: str
    threads: Annotated[PositiveInt, Field(le=MAX_THREADS)] | None = None
    group_id: str | None = Field(
        None,
        max_length=80,
        description="Shared by the runs of one configuration that differ only in seed.",
    )
    group_size: PositiveInt = Field(1, description="How many seeds the group has.")
    lr_factor: PositiveFloat | None = Field(
        None, description="The lr_grid factor this run's lr is (times the scaled lr)."
    )
    lr_grid_size: PositiveInt = Field(1, description="How many lrs the grid tries at this batch.")
    protocol: Literal["fixed", "best-lr"] = "fixed"
    stacking: Stacking = "auto"
    cuda_graphs: CudaGraphs = "auto"
    curve_points: Annotated[Int, Field(ge=10, le=MAX_CURVE_POINTS)] = 400
    noise_scale: NoiseScaleSettings = Field(default_factory=NoiseScaleSettings)
    trajectory: TrajectorySettings = Field(default_factory=TrajectorySettings)

    def group_label(self) -> str:
        """The configuration, without the seed: ``sgd b=32`` (``sgd b=32 lr=0.1`` in a grid)."""
        batch = "full" if self.batch_size_requested == "full" else str(self.batch_size)
        lr = f" lr={lr_text(self.lr)}" if self.lr_grid_size > 1 else ""
        return f"{self.optimizer.name} b={batch}{lr}"

    def label(self) -> str:
        """The run: its configuration, and its seed when the configuration has several."""
        seed = f" s={self.seed}" if self.group_size > 1 else ""
        return self.group_label() + seed
