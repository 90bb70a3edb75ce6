"""Between the Setup form's text fields and a TrainPreset: pydantic does all the checking.

The form holds strings keyed by field name. ``preset_from_fields`` hands them to pydantic as they
are (lax mode turns "32" into 32), so the messages the user sees are pydantic's own, and
``errors_by_field`` routes each message back to the field it is about. A blank field means
"the default", which the form shows as the field's placeholder.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from tui_lab.errors import readable_message
from tui_lab.schema import OPTIMIZER_DEFAULTS, LrScaling, OptimizerConfig, TrainPreset

HYPERPARAMETERS = OptimizerConfig.hyperparameter_fields()
TUPLE_FIELDS = {"betas", "etas", "step_sizes"}
PLAIN_FIELDS = ("name", "device", "dataset", "train_subset", "model")
SWEEP_FIELDS = ("batch_sizes", "epochs", "target_accuracy")
LR_SCALING_FIELDS = ("rule", "base_batch_size", "warmup_epochs")
GENERAL = "form"  # errors that belong to no single field
RAY_FIELD = "ray"  # blank: train here; "local": on a local Ray; else the cluster's address
RAY_LOCAL = "local"
RAY_PLACEHOLDER = "blank: this machine · local: a local Ray · HOST:PORT: a Ray cluster"
POWERS_OF_TWO = tuple(2**k for k in range(11))


def split_list(text: str) -> list[str]:
    """ "1, 8 32,full" -> ["1", "8", "32", "full"]: commas or spaces, whichever the user types."""
    return [item for item in re.split(r"[\s,;]+", text.strip()) if item]


def format_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, tuple | list):
        return ", ".join(format_value(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def fields_from_preset(preset: TrainPreset) -> dict[str, str]:
    """The form's text for a preset (its first optimizer; the form edits one)."""
    optimizer = preset.optimizer_grid()[0]
    fields = {key: format_value(getattr(preset, key)) for key in PLAIN_FIELDS + SWEEP_FIELDS}
    fields["optimizer"] = optimizer.name
    for name in HYPERPARAMETERS:
        fields[f"opt-{name}"] = format_value(getattr(optimizer, name))
    for name in LR_SCALING_FIELDS:
        fields[f"lr-{name}"] = format_value(getattr(preset.lr_scaling, name))
    executor = preset.executor
    fields[RAY_FIELD] = "" if executor.kind == "local" else executor.address or RAY_LOCAL
    return fields


def accepted_hyperparameters(optimizer: str) -> list[str]:
    """The hyper-parameters this optimizer takes, in the schema's order."""
    allowed = OPTIMIZER_DEFAULTS.get(optimizer, {})
    return [name for name in HYPERPARAMETERS if name in allowed]


def default_text(field: str, optimizer: str) -> str:
    """What a blank field stands for, shown as its placeholder."""
    if field.startswith("opt-"):
        return format_value(OPTIMIZER_DEFAULTS.get(optimizer, {}).get(field[4:]))
    if field == RAY_FIELD:
        return RAY_PLACEHOLDER
    if field.startswith("lr-"):
        info = LrScaling.model_fields[field[3:]]
        return format_value(info.get_default(call_default_factory=True))
    info = TrainPreset.model_fields[field]
    return format_value(info.get_default(call_default_factory=True))


def preset_from_fields(fields: dict[str, str], base: TrainPreset) -> TrainPreset:
    """The preset the form describes; what the form does not show is kept from ``base``.

    Raises pydantic's ValidationError. A base preset with several optimizers keeps the others:
    the form edits the first.
    """
    data = base.model_dump(
        exclude={"optimizer", "optimizers", "lr_scaling", "executor"}, exclude_none=True
    )
    for key in PLAIN_FIELDS + SWEEP_FIELDS:
        text = fields.get(key, "").strip()
        if key in ("model", "dataset") and text == format_value(getattr(base, key)):
            continue  # the base's own (perhaps the user's model or data): kept as it is
        if text:
            data[key] = split_list(text) if key == "batch_sizes" else text
        else:
            data.pop(key, None)
    optimizer = {"name": fields.get("optimizer", "sgd")}
    for name in accepted_hyperparameters(optimizer["name"]):
        text = fields.get(f"opt-{name}", "").strip()
        if text:
            listed = name in TUPLE_FIELDS or (name == "lr" and len(split_list(text)) > 1)
            optimizer[name] = split_list(text) if listed else text
    others = base.optimizer_grid()[1:]
    if others:
        data["optimizers"] = [optimizer, *(o.model_dump(exclude_none=True) for o in others)]
    else:
        data["optimizer"] = optimizer
    data["lr_scaling"] = {
        name: fields[f"lr-{name}"].strip()
        for name in LR_SCALING_FIELDS
        if fields.get(f"lr-{name}", "").strip()
    }
    data["executor"] = executor_from_field(fields.get(RAY_FIELD, ""), base)
    return TrainPreset.model_validate(data)


def executor_from_field(text: str, base: TrainPreset) -> dict[str, Any]:
    """The Ray field as executor settings; a Ray base keeps its per-run resources."""
    text = text.strip()
    if not text:
        return {"kind": "local"}
    settings = base.executor.model_dump() if base.executor.kind == "ray" else {"kind": "ray"}
    return {**settings, "address": None if text == RAY_LOCAL else text}


def field_of(loc: tuple[int | str, ...]) -> str:
    """The form field a pydantic error location points at."""
    head = loc[0] if loc else GENERAL
    if head in ("optimizer", "optimizers"):
        inner = loc[1:] if head == "optimizer" else loc[2:]
        if head == "optimizers" and loc[1:2] != (0,):
            return "optimizer"
        return f"opt-{inner[0]}" if inner and inner[0] in HYPERPARAMETERS else "optimizer"
    if head == "executor":
        return RAY_FIELD
    if head == "lr_scaling":
        return f"lr-{loc[1]}" if len(loc) > 1 else "lr-rule"
    if head in PLAIN_FIELDS + SWEEP_FIELDS:
        return str(head)
    return GENERAL


def errors_by_field(error: ValidationError, fields: dict[str, str]) -> dict[str, str]:
    """First pydantic message per form field, e.g. {"epochs": "Input should be greater than 0"}."""
    found: dict[str, str] = {}
    for item in error.errors(include_url=False):
        loc = item["loc"]
        key = field_of(loc)
        message = readable_message(item)
        if key == "batch_sizes" and len(loc) > 1 and isinstance(loc[1], int):
            entered = split_list(fields.get("batch_sizes", ""))[loc[1]]
            message = f"{entered!r}: {message} (or 'full')"
        found.setdefault(key, message)
    return found
