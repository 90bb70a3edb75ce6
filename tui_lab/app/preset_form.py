"""Between the Setup form's text fields and a TrainPreset: pydantic does all the checking.

The form holds strings keyed by field name, one per preset field a user edits by hand (seeds,
lr lists and grids, several optimizers, the protocol, stop-at-target, stacking, parallel...).
``preset_from_fields`` hands them to pydantic as they are (lax mode turns "32" into 32), so
the messages the user sees are pydantic's own, and ``errors_by_field`` routes each message back
to the field it is about. A blank field means "the default", which the form shows as the
field's placeholder.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from tui_lab.errors import field_path, readable_message
from tui_lab.schema import (
    OPTIMIZER_DEFAULTS,
    LrScaling,
    OptimizerConfig,
    PresetOptimizer,
    TrainPreset,
)

HYPERPARAMETERS = OptimizerConfig.hyperparameter_fields()
TUPLE_FIELDS = {"betas", "etas", "step_sizes"}
PLAIN_FIELDS = ("name", "device", "dataset", "train_subset", "model")
SWEEP_FIELDS = ("batch_sizes", "epochs", "target_accuracy", "stop_at_target")
SEED_FIELDS = ("seed", "replicates", "seeds")
PROTOCOL_FIELDS = ("protocol",)
MACHINE_FIELDS = ("parallel", "threads", "stacking")
TOP_FIELDS = PLAIN_FIELDS + SWEEP_FIELDS + SEED_FIELDS + PROTOCOL_FIELDS + MACHINE_FIELDS
LIST_FIELDS = {"batch_sizes", "seeds"}
LR_GRID_FIELD = "lr_grid"  # the grid's factors; blank: no grid
MORE_OPTIMIZERS = "more-optimizers"  # every optimizer after the first, as text
HINTS = {  # what a blank field means, where its default says nothing
    "seeds": "blank: seed (or seed, seed+1… for replicates)",
    "replicates": "blank: 1 (or the seeds listed)",
    "threads": "blank: 1 below batch 16, else torch's",
    LR_GRID_FIELD: "blank: no grid · e.g. 0.25, 0.5, 1",
    MORE_OPTIMIZERS: "e.g. adam lr=0.001; rmsprop",
}
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
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, tuple | list):
        return ", ".join(format_value(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def format_optimizer(optimizer: PresetOptimizer) -> str:
    """``rmsprop lr=0.001 alpha=0.9``: the name and the hyper-parameters it was given."""
    given = optimizer.model_dump(exclude={"name"}, exclude_none=True)
    return " ".join([optimizer.name, *(f"{key}={packed(v)}" for key, v in given.items())])


def packed(value: Any) -> str:
    """A value inside one optimizer's text: a list or pair with commas and no spaces."""
    if isinstance(value, list | tuple):
        return ",".join(map(format_value, value))
    return format_value(value)


def parse_optimizers(text: str) -> list[dict[str, Any]]:
    """``adam lr=0.001,0.0003; rmsprop`` as optimizers for pydantic to check: a word without
    '=' starts an optimizer, ``key=value`` gives it a hyper-parameter (a list: commas)."""
    optimizers: list[dict[str, Any]] = []
    for token in re.split(r"[\s;]+", text.strip()):
        key, equals, value = token.partition("=")
        if not equals:
            optimizers += [{"name": name} for name in key.split(",") if name]
        elif not optimizers:
            optimizers.append({"name": "", key: value})  # pydantic names the missing name
        else:
            items = [item for item in value.split(",") if item]
            listed = key in TUPLE_FIELDS or (key == "lr" and len(items) > 1)
            optimizers[-1][key] = items if listed else value.rstrip(",")
    return optimizers


def fields_from_preset(preset: TrainPreset) -> dict[str, str]:
    """The form's text for a preset: every field the form shows."""
    optimizer, *others = preset.optimizer_grid()
    fields = {key: format_value(getattr(preset, key)) for key in TOP_FIELDS}
    fields["optimizer"] = optimizer.name
    for name in HYPERPARAMETERS:
        fields[f"opt-{name}"] = format_value(getattr(optimizer, name))
    fields[MORE_OPTIMIZERS] = "; ".join(map(format_optimizer, others))
    fields[LR_GRID_FIELD] = format_value(preset.lr_grid.factors if preset.lr_grid else None)
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
    if field in HINTS:
        return HINTS[field]
    if field == RAY_FIELD:
        return RAY_PLACEHOLDER
    if field.startswith("lr-"):
        info = LrScaling.model_fields[field[3:]]
        return format_value(info.get_default(call_default_factory=True))
    info = TrainPreset.model_fields[field]
    return format_value(info.get_default(call_default_factory=True))


def preset_from_fields(fields: dict[str, str], base: TrainPreset) -> TrainPreset:
    """The preset the form describes; what the form does not show is kept from ``base``.

    Raises pydantic's ValidationError. The first optimizer is edited field by field, the
    others as one line of text (``MORE_OPTIMIZERS``).
    """
    data = base.model_dump(
        exclude={"optimizer", "optimizers", "lr_scaling", "executor", LR_GRID_FIELD},
        exclude_none=True,
    )
    for key in TOP_FIELDS:
        text = fields.get(key, "").strip()
        if key in ("model", "dataset") and text == format_value(getattr(base, key)):
            continue  # the base's own (perhaps the user's model or data): kept as it is
        if text:
            data[key] = split_list(text) if key in LIST_FIELDS else text
        else:
            data.pop(key, None)
    factors = split_list(fields.get(LR_GRID_FIELD, ""))
    if factors:
        data[LR_GRID_FIELD] = {"factors": factors}
    optimizer = {"name": fields.get("optimizer", "sgd")}
    for name in accepted_hyperparameters(optimizer["name"]):
        text = fields.get(f"opt-{name}", "").strip()
        if text:
            listed = name in TUPLE_FIELDS or (name == "lr" and len(split_list(text)) > 1)
            optimizer[name] = split_list(text) if listed else text
    others = parse_optimizers(fields.get(MORE_OPTIMIZERS, ""))
    if others:
        data["optimizers"] = [optimizer, *others]
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
            return MORE_OPTIMIZERS
        return f"opt-{inner[0]}" if inner and inner[0] in HYPERPARAMETERS else "optimizer"
    if head == "executor":
        return RAY_FIELD
    if head == "lr_scaling":
        return f"lr-{loc[1]}" if len(loc) > 1 else "lr-rule"
    if head in (*TOP_FIELDS, LR_GRID_FIELD):
        return str(head)
    return GENERAL


def field_of_path(path: str) -> str:
    """The form field of a BadInput's field path, e.g. ``optimizers[1].lr`` or
    ``batch_sizes[2]``."""
    parts = re.findall(r"\[(\d+)\]|(\w+)", path)
    return field_of(tuple(int(index) if index else name for index, name in parts))


# Problems of the whole preset, by the field a user would change to fix them.
WHOLE_PRESET_FIELDS = (
    ("'seeds' or 'replicates'", "seeds"),
    ("'seeds' has", "seeds"),
    ("protocol", "protocol"),
    ("lr grid", LR_GRID_FIELD),
    ("'optimizer' or 'optimizers'", MORE_OPTIMIZERS),
)


def errors_by_field(error: ValidationError, fields: dict[str, str]) -> dict[str, str]:
    """First pydantic message per form field, e.g. {"epochs": "Input should be greater than 0"}."""
    found: dict[str, str] = {}
    # "not a number" from a union's other member (an lr given as a list) goes last: the
    # message that says what is wrong with the value as given comes first
    items = sorted(error.errors(include_url=False), key=lambda i: i["type"].endswith("_type"))
    for item in items:
        loc = item["loc"]
        key = field_of(loc)
        message = readable_message(item)
        if key == GENERAL:
            key = next((k for words, k in WHOLE_PRESET_FIELDS if words in message), GENERAL)
        if key in LIST_FIELDS and len(loc) > 1 and isinstance(loc[1], int):
            entered = split_list(fields.get(key, ""))[loc[1]]
            message = f"{entered!r}: {message}" + (" (or 'full')" if key == "batch_sizes" else "")
        if key == MORE_OPTIMIZERS and len(loc) > 1 and isinstance(index := loc[1], int):
            named = parse_optimizers(fields.get(MORE_OPTIMIZERS, ""))[index - 1].get("name")
            keys = tuple(p for p in loc[2:] if str(p).isidentifier())  # not a union's member
            inner = field_path(keys)
            message = (
                f"optimizer {index + 1} ({named or '?'}){f' {inner}' if inner else ''}: {message}"
            )
        found.setdefault(key, message)
    return found
