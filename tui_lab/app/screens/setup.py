"""Set up a sweep: device, data, model, optimizers, batch sizes, seeds, lr grid and protocol,
the machine's share (parallel runs, threads, stacking).

ctrl+f finds the largest batch that fits for the data, model, optimizer and device chosen here.

Every change is validated by the schema at once and its message is shown under the field it is
about; the sweep cannot start while any is shown. Presets load and save as the same JSON files
that ``bslab --headless`` runs. Below the form: the runs the sweep will train, counted by the
sweep's own expansion (``plan_runs``), and how long they will take, from past runs on this
machine played through the executor's own plan (``run.estimate``), or no estimate.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, get_args

from pydantic import ValidationError
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Button, Footer, Input, Label, Select, Static

from tui_lab.app.preset_form import (
    GENERAL,
    HYPERPARAMETERS,
    LR_GRID_FIELD,
    MORE_OPTIMIZERS,
    accepted_hyperparameters,
    default_text,
    errors_by_field,
    field_of_path,
    fields_from_preset,
    preset_from_fields,
    split_list,
)
from tui_lab.app.screens import screen_css
from tui_lab.app.screens.batch_finder import BatchFinderScreen
from tui_lab.app.screens.preset_file import PresetFileDialog
from tui_lab.app.widgets.run_progress import clock
from tui_lab.app.widgets.setup_batch_picks import BatchPicks, toggled
from tui_lab.core.data import train_size
from tui_lab.core.devices import available_devices, resolve_device
from tui_lab.core.storage import load_preset, load_sessions, save_model
from tui_lab.errors import BadInput
from tui_lab.run.estimate import estimate_sweep
from tui_lab.run.process_pool import capacity
from tui_lab.run.sweep import plan_runs
from tui_lab.schema import (
    CheckedModel,
    DatasetName,
    ModelName,
    OptimizerName,
    RunConfig,
    Session,
    Stacking,
    TrainPreset,
)

LABELS = {
    "name": "Sweep name",
    "device": "Device",
    "dataset": "Dataset",
    "train_subset": "Train subset",
    "model": "Model",
    "ray": "Ray cluster",
    "optimizer": "Optimizer",
    "opt-lr": "Learning rate",
    "opt-momentum": "Momentum",
    "opt-weight_decay": "Weight decay",
    "opt-eps": "Epsilon",
    "opt-alpha": "Alpha",
    "opt-rho": "Rho",
    "opt-betas": "Betas",
    "opt-etas": "Etas (−, +)",
    "opt-step_sizes": "Step sizes",
    MORE_OPTIMIZERS: "More optimizers",
    "batch_sizes": "Batch sizes",
    "epochs": "Epochs",
    "target_accuracy": "Target accuracy",
    "stop_at_target": "Stop at target",
    "seed": "Seed",
    "replicates": "Replicates",
    "seeds": "Seeds",
    LR_GRID_FIELD: "LR grid (×lr)",
    "protocol": "Protocol",
    "lr-rule": "LR scaling",
    "lr-base_batch_size": "Base batch",
    "lr-warmup_epochs": "Warm-up epochs",
    "parallel": "Parallel runs",
    "threads": "Threads",
    "stacking": "Stack seeds",
}
SECTIONS = {
    "Run": ("name", "device", "dataset", "train_subset", "model", "ray"),
    "Optimizers": ("optimizer", *(f"opt-{name}" for name in HYPERPARAMETERS), MORE_OPTIMIZERS),
    "Sweep": ("batch_sizes", "epochs", "target_accuracy", "stop_at_target"),
    "Seeds": ("seed", "replicates", "seeds"),
    "Learning rate per batch size": (
        LR_GRID_FIELD,
        "protocol",
        "lr-rule",
        "lr-base_batch_size",
        "lr-warmup_epochs",
    ),
    "Machine": ("parallel", "threads", "stacking"),
}
CHOICES: dict[str, list[str]] = {
    "dataset": list(get_args(DatasetName)),
    "model": list(get_args(ModelName)),
    "optimizer": list(get_args(OptimizerName)),
    "stop_at_target": ["off", "on"],
    "protocol": list(get_args(TrainPreset.model_fields["protocol"].annotation)),
    "lr-rule": ["none", "linear", "sqrt"],
    "stacking": list(get_args(Stacking)),
}


def device_options() -> list[tuple[str, str]]:
    auto = resolve_device("auto")
    return [(f"auto ({auto})", "auto")] + [
        (f"{d.name}  {d.description}", d.name) for d in available_devices()
    ]


class SetupScreen(Screen):
    """The form; ``start`` asks the app to run the preset it describes."""

    class StartRequested(Message):
        """The form is valid and the user asked to train it (the app owns the Train screen)."""

        def __init__(self, preset: TrainPreset, source: str | None) -> None:
            super().__init__()
            self.preset = preset
            self.source = source

    CSS = screen_css("setup.tcss")
    HORIZONTAL_BREAKPOINTS: ClassVar = [(0, "-narrow"), (120, "-wide")]
    BINDINGS: ClassVar = [
        Binding("ctrl+r", "start", "Start", priority=True, tooltip="start the sweep"),
        Binding("ctrl+o", "load", "Load", tooltip="load a preset file"),
        Binding("ctrl+s", "save", "Save", tooltip="save the setup as a preset file"),
        Binding(
            "ctrl+f",
            "find_batch",
            "Find batch",
            priority=True,
            tooltip="the largest batch that fits in memory, for this data, model and device",
        ),
    ]

    def __init__(self, preset: TrainPreset | None = None, preset_path: Path | None = None):
        super().__init__()
        self.base = preset or TrainPreset()
        self.preset_path = preset_path
        self.preset: TrainPreset | None = self.base  # None while the form has errors
        self.runs: list[RunConfig] = []  # the runs the preset expands to, while it is valid
        self._devices = device_options()
        self._past: list[Session] | None = None  # this machine's saved runs, once read

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="form"):
            for title, keys in SECTIONS.items():
                with Vertical(classes="section") as section:
                    section.border_title = title
                    for key in keys:
                        yield from self._row(key)
        yield Static(id="estimate")
        with Horizontal(id="actions"):
            yield Static(id="verdict")
            yield Button("Start ▶", variant="success", id="start", compact=True)
        yield Footer(compact=True)

    def _row(self, key: str) -> ComposeResult:
        with Horizontal(classes="row", id=f"row-{key}"):
            yield Label(LABELS[key], classes="field-label")
            with Vertical(classes="field"):
                yield self._control(key)
                if key == "batch_sizes":
                    yield BatchPicks(id="batch-picks")
                yield Static(classes="error", id=f"error-{key}")

    def _control(self, key: str) -> Widget:
        if key == "device":
            return Select(self._devices, allow_blank=False, compact=True, id=key)
        if key in CHOICES:
            options = [(choice, choice) for choice in CHOICES[key]]
            return Select(options, allow_blank=False, compact=True, id=key)
        return Input(compact=True, id=key)

    def on_mount(self) -> None:
        self.fill(self.base)
        self.query_one("#name", Input).focus()  # the top of the form: reading order
        self._read_past_runs()

    @work(thread=True, exclusive=True, group="past-runs")
    def _read_past_runs(self) -> None:
        """Read the sessions saved here (the estimate's basis) off the UI thread."""
        folder = Path(getattr(self.app, "out_dir", ""))
        loaded, _ = load_sessions([folder]) if folder.is_dir() else ([], [])
        self.app.call_from_thread(self._past_runs_read, [item.session for item in loaded])

    def _past_runs_read(self, sessions: list[Session]) -> None:
        self._past = sessions
        self._show_estimate()

    def fill(self, preset: TrainPreset) -> None:
        """Show a preset in the form (what the form does not show is kept for saving)."""
        self.base = preset
        for key, text in fields_from_preset(preset).items():
            widget = self.query_one(f"#{key}")
            if isinstance(widget, Select):
                if key == "device" and text not in [value for _, value in self._devices]:
                    self._devices.append((f"{text}  (not available here)", text))
                    widget.set_options(self._devices)
                elif key in CHOICES and text not in CHOICES[key]:  # the user's model or data
                    options = [(choice, choice) for choice in CHOICES[key]]
                    widget.set_options([*options, (f"{text}  (from the preset)", text)])
                widget.value = text
            elif isinstance(widget, Input):
                widget.value = text
        self.validate()

    def fields(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for key in LABELS:
            widget = self.query_one(f"#{key}")
            if isinstance(widget, Select):
                values[key] = "" if widget.value is Select.NULL else str(widget.value)
            elif isinstance(widget, Input):
                values[key] = widget.value
        return values

    def validate(self) -> TrainPreset | None:
        """Check the whole form, show every problem under its field; the preset or None."""
        fields = self.fields()
        errors: dict[str, str] = {}
        try:
            self.preset = preset_from_fields(fields, self.base)
        except ValidationError as error:
            self.preset = None
            errors = errors_by_field(error, fields)
        device = None
        try:
            if not fields["ray"].strip():  # on Ray, the cluster's devices count, not these
                device = resolve_device(fields["device"] or "auto")
        except BadInput as error:
            self.preset = None
            errors["device"] = error.message
        self.runs = []
        if self.preset is not None:
            try:
                self.runs = self._expand(self.preset, device)
            except BadInput as error:
                self.preset = None
                errors[field_of_path(error.field or "")] = error.message
        self._show(fields, errors)
        return self.preset

    @staticmethod
    def _expand(preset: TrainPreset, device: str | None) -> list[RunConfig]:
        """The sweep's runs, by the sweep's own expansion. The user's data and model are
        counted unread and unbuilt: the sweep checks them (and the batch sizes against the
        data) before its first run."""
        numbers = [b for b in preset.batch_sizes if isinstance(b, int)]
        n_train = train_size(preset.dataset, preset.train_subset) or max(numbers, default=1)
        model = preset.model
        if not isinstance(model, str):
            unchecked = "not checked yet"
            model = CheckedModel(**model.model_dump(), parameters=0, stacking_blocker=unchecked)
        return plan_runs(preset, n_train, device or preset.device, model=model)

    def _show(self, fields: dict[str, str], errors: dict[str, str]) -> None:
        optimizer = fields["optimizer"]
        accepted = {f"opt-{name}" for name in accepted_hyperparameters(optimizer)}
        for key in LABELS:
            if key.startswith("opt-"):
                self.query_one(f"#row-{key}").display = key in accepted
            widget = self.query_one(f"#{key}")
            if isinstance(widget, Input):
                widget.placeholder = default_text(key, optimizer)
                widget.set_class(key in errors, "-invalid")
            error = self.query_one(f"#error-{key}", Static)
            error.update(Content(errors.get(key, "")))  # may quote what was typed
            error.display = key in errors
        picks = self.query_one(BatchPicks)
        picks.selected = frozenset(split_list(fields["batch_sizes"]))
        verdict = self.query_one("#verdict", Static)
        if self.preset is not None:
            runs = len(self.runs)
            verdict.update(f"[b]{runs} run{'s' * (runs != 1)}[/b] · ctrl+r starts the sweep")
        else:
            count = len(errors)
            problem = errors.get(GENERAL) or f"{count} field{'s' * (count != 1)} to fix"
            verdict.update(Content.from_markup("[b $error]$problem[/]", problem=problem))
        self.query_one("#start", Button).disabled = self.preset is None
        self._show_estimate()

    def _show_estimate(self) -> None:
        """How long the sweep will take, and what that rests on; or why there is no figure."""
        self.query_one("#estimate", Static).update(self._estimate_text())

    def _estimate_text(self) -> str:
        preset, runs = self.preset, self.runs
        if preset is None or not runs:
            return ""
        if preset.executor.kind == "ray":
            return "No time estimate on a Ray cluster: its machines are not measured here."
        n_train = train_size(preset.dataset, preset.train_subset)
        if self._past is None:
            return "Time: reading the runs saved here…"
        slots = capacity(runs, preset.parallel).slots
        estimate = estimate_sweep(runs, n_train, slots, self._past) if n_train else None
        if estimate is None:
            return (
                f"No time estimate yet: no finished run of {preset.model} on {preset.dataset} "
                f"({runs[0].device}) saved here."
            )
        bound = " at most (runs stop at the target)" if estimate.upper_bound else ""
        return f"Time ≈ {clock(estimate.seconds)}{bound} · {estimate.basis}"

    @on(Input.Changed)
    @on(Select.Changed)
    def _changed(self) -> None:
        self.validate()

    @on(BatchPicks.Toggled)
    def _pick(self, event: BatchPicks.Toggled) -> None:
        field = self.query_one("#batch_sizes", Input)
        field.value = ", ".join(toggled(split_list(field.value), event.pick))

    @on(Button.Pressed, "#start")
    def action_start(self) -> None:
        preset = self.validate()
        if preset is None:
            self.notify("Fix the fields marked in red first.", severity="error")
            return
        source = str(self.preset_path) if self.preset_path else None
        self.post_message(self.StartRequested(preset, source))

    def action_find_batch(self) -> None:
        preset = self.validate()
        if preset is None:
            self.notify("Fix the fields marked in red first.", severity="error")
            return
        self.app.push_screen(BatchFinderScreen(preset), self._add_batch_size)

    def _add_batch_size(self, batch_size: int | None) -> None:
        """Add the size the finder found to the batch sizes, unless it is there already."""
        if batch_size is None:
            return
        field = self.query_one("#batch_sizes", Input)
        sizes = split_list(field.value)
        if str(batch_size) not in sizes:
            field.value = ", ".join([*sizes, str(batch_size)])
        self.notify(f"Batch sizes: {field.value}", markup=False)

    def action_load(self) -> None:
        self.app.push_screen(PresetFileDialog("Load preset", self.preset_path), self._load)

    def _load(self, path: Path | None) -> None:
        if path is None:
            return
        try:
            preset = load_preset(path)
        except BadInput as error:
            self.notify(
                error.describe(), title="Cannot load preset", severity="error", markup=False
            )
            return
        self.preset_path = path
        self.fill(preset)
        self.notify(f"Loaded {path}", markup=False)

    def action_save(self) -> None:
        if self.validate() is None:
            self.notify("Fix the fields marked in red before saving.", severity="error")
            return
        initial = self.preset_path or Path("presets") / f"{self.preset.name}.json"
        self.app.push_screen(PresetFileDialog("Save preset as", initial), self._save)

    def _save(self, path: Path | None) -> None:
        if path is None or self.preset is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            save_model(self.preset, path)
        except OSError as error:
            self.notify(f"{path}: {error.strerror or error}", severity="error", markup=False)
            return
        self.preset_path = path
        self.notify(f"Saved {path}", markup=False)
