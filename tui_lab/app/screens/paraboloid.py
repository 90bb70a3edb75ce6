"""The paraboloid lab on screen: change batch size, learning rate, optimizers, conditioning and
noise with single keys and watch the paths over the true contours redraw.

Two weights make every recompute cheap (tenths of a second), so each change starts one at once
in a thread worker; a newer change cancels the older one, which stops at its next path.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

from pydantic import ValidationError
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Input, Label, Static
from textual.worker import get_current_worker

from tui_lab.analysis.paraboloid import run_paraboloid
from tui_lab.app.screens import screen_css
from tui_lab.app.widgets.sketch_plot import SketchPlot
from tui_lab.core.storage import save_paraboloid_session
from tui_lab.errors import from_validation_error
from tui_lab.report.contour import PALETTE
from tui_lab.report.paraboloid import draw_paraboloid
from tui_lab.schema import OptimizerConfig, ParaboloidPreset, ParaboloidSession
from tui_lab.schema.common import BatchSize
from tui_lab.schema.paraboloid import PARABOLOID_LR, ParaboloidPath, batch_size_list
from tui_lab.settings import SESSIONS_DIR

OPTIMIZER_CHOICES = ("sgd", "momentum", "rprop", "rmsprop", "adam")
# Rungs for the step keys: round values that each change the picture visibly.
BATCH_STEPS: tuple[BatchSize, ...] = (1, 4, 16, "full")
CONDITION_STEPS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)
NOISE_STEPS = (0, 0.1, 0.2, 0.5, 1, 2, 5, 10)
EPOCH_STEPS = (1, 2, 5, 10, 20, 40, 80, 160, 320, 640)
LR_FACTOR = 1.5
# plotext's colour names are the 16 ANSI colours; "+" is the bright half.
ANSI_CODES = {"black": 0, "red": 1, "green": 2, "orange": 3, "blue": 4, "magenta": 5, "cyan": 6}


def ladder_step(value: float, ladder: Sequence[float], up: bool) -> float:
    """The next rung above (or below) ``value``; past either end the value stays."""
    rungs = ladder if up else ladder[::-1]
    return next((r for r in rungs if (r > value if up else r < value)), value)


def next_batch_size(current: Sequence[BatchSize], up: bool) -> BatchSize:
    """One batch size after (or before) the first one shown, round the rungs."""
    first = current[0]
    index = BATCH_STEPS.index(first) if first in BATCH_STEPS else -1 if up else 0
    return BATCH_STEPS[(index + (1 if up else -1)) % len(BATCH_STEPS)]


def ansi_style(plotext_color: str) -> str:
    """A plotext colour name as a Rich style, so the readout matches the lines it names."""
    code = ANSI_CODES.get(plotext_color.rstrip("+"), 7) + (8 if plotext_color.endswith("+") else 0)
    return f"color({code})"


def short_label(path: ParaboloidPath, several_batch_sizes: bool) -> str:
    """``sgd 0.5`` (plus ``b=16`` when batch sizes share the plot): the legend fits 80 columns."""
    label = f"{path.optimizer.name} {path.optimizer.lr:.3g}"
    return f"{label} b={path.batch_size}" if several_batch_sizes else label


def run_path_by_path(
    preset: ParaboloidPreset, cancelled: Callable[[], bool]
) -> ParaboloidSession | None:
    """``run_paraboloid`` one path at a time (None once cancelled): a thread cannot be
    interrupted, so this is how a newer request stops an older one within one path's time.
    The problem, start and grid depend only on the rest of the preset, so the pieces agree."""
    parts: list[ParaboloidSession] = []
    for batch_size in preset.batch_sizes:
        for config in preset.optimizers:
            if cancelled():
                return None
            one = preset.model_copy(update={"batch_sizes": [batch_size], "optimizers": [config]})
            parts.append(run_paraboloid(one))
    return parts[0].model_copy(
        update={
            "preset": preset,
            "paths": [path for part in parts for path in part.paths],
            "compute_seconds": sum(part.compute_seconds for part in parts),
        }
    )


class ParaboloidScreen(Screen):
    """The contour sketch fills the screen; a two-line strip below holds every setting."""

    CSS = screen_css("paraboloid.tcss")
    _lr = Binding.Group("lr")
    _kappa = Binding.Group("κ")
    _noise = Binding.Group("noise")
    _epochs = Binding.Group("epochs")
    BINDINGS: ClassVar = [
        *(
            Binding(
                str(number),
                f"toggle_optimizer({number - 1})",
                "Toggle an optimizer",
                key_display="1…5" if number == 1 else None,
                tooltip="1 sgd, 2 momentum, 3 rprop, 4 rmsprop, 5 adam",
                show=False,
            )
            for number in range(1, 10)  # 6…9: optimizers a preset adds to the five
        ),
        Binding("b", "batch_size(True)", "Batch", tooltip="next batch size: 1, 4, 16, full"),
        Binding("B", "batch_size(False)", "Previous batch size", show=False),
        Binding(
            "right_square_bracket",
            "lr(True)",
            "LR ×1.5",
            key_display="]",
            tooltip="every optimizer's learning rate, times 1.5",
            group=_lr,
        ),
        Binding(
            "left_square_bracket",
            "lr(False)",
            "LR ÷1.5",
            key_display="[",
            tooltip="every optimizer's learning rate, divided by 1.5",
            group=_lr,
        ),
        Binding(
            "c",
            "condition(True)",
            "More elongated",
            tooltip="raise the condition number κ: longer ellipses, harder for one lr",
            group=_kappa,
        ),
        Binding(
            "C",
            "condition(False)",
            "Rounder",
            tooltip="lower the condition number κ: rounder contours",
            group=_kappa,
        ),
        Binding(
            "n",
            "noise(True)",
            "More noise",
            tooltip="added to the targets, so samples disagree and small batches wander",
            group=_noise,
        ),
        Binding(
            "N",
            "noise(False)",
            "Less noise",
            tooltip="on the targets: samples agree more",
            group=_noise,
        ),
        Binding("e", "epochs(True)", "More epochs", group=_epochs),
        Binding("E", "epochs(False)", "Fewer epochs", group=_epochs),
        Binding("s", "save", "Save", tooltip="the session, into the sessions folder", show=False),
        Binding("r", "reset", "Reset to the lab's defaults", show=False),
        Binding("escape", "leave", "Back to the sketch / close", show=False),
    ]

    class Computed(Message):
        """A worker finished: posted from its thread (thread-safe, never blocks it)."""

        def __init__(self, session: ParaboloidSession) -> None:
            super().__init__()
            self.session = session

    def __init__(
        self,
        preset: ParaboloidPreset | None = None,
        out_dir: Path | None = None,
        **screen_kwargs: Any,
    ) -> None:
        """``preset``: where to start (default: the lab's, at batch size 1); ``out_dir``: where
        ``s`` saves (default: the app's ``out_dir``, else ``sessions``)."""
        super().__init__(**screen_kwargs)
        self.initial = preset or ParaboloidPreset(kind="paraboloid", batch_sizes=[1])
        self.out_dir = out_dir
        self.session: ParaboloidSession | None = None
        self.start_over(self.initial)

    def start_over(self, preset: ParaboloidPreset) -> None:
        """Take ``preset`` as the lab's state; its optimizers' lrs become the ×1 baseline."""
        given = {c.name: c for c in preset.optimizers}
        self.choices = {
            name: config.model_copy(update={"lr": config.lr or PARABOLOID_LR[name]})
            for name, config in {
                **{name: OptimizerConfig(name=name) for name in OPTIMIZER_CHOICES},
                **given,
            }.items()
        }
        self.enabled = set(given)
        self.lr_scale = 1.0
        self.preset = preset

    def compose(self) -> ComposeResult:
        yield SketchPlot(id="lab-plot")
        yield Static(id="readout")
        yield Static(id="optimizer-toggles")
        with Horizontal(id="lab-inputs"):
            for field, label, kind in (
                ("batch-sizes", "batch", "text"),
                ("lr-scale", "lr ×", "number"),
                ("condition", "κ", "number"),
                ("noise", "noise", "number"),
                ("epochs", "epochs", "integer"),
            ):
                yield Label(label)
                yield Input(id=field, type=kind, select_on_focus=True)
        yield Footer()

    def on_mount(self) -> None:
        plot = self.query_one("#lab-plot", SketchPlot)
        plot.border_title = "linear neuron, squared error: o start, x end, + the minimum"
        plot.focus()
        self.show_settings()
        self.recompute()

    # The settings, shown and changed

    def show_settings(self) -> None:
        """Put the lab's state into the toggles and the inputs (also undoing a rejected edit)."""
        preset = self.preset
        values = {
            "batch-sizes": ", ".join(map(str, preset.batch_sizes)),
            "lr-scale": f"{self.lr_scale:.4g}",
            "condition": f"{preset.condition_number:g}",
            "noise": f"{preset.noise:g}",
            "epochs": str(preset.epochs),
        }
        for field, value in values.items():
            self.query_one(f"#{field}", Input).value = value
        toggles = Text("optimizers ", style="dim")
        for number, name in enumerate(self.choices, 1):
            on = name in self.enabled
            toggles.append(f" {number} ", style="bold")
            toggles.append(f"{'■' if on else '□'} {name}", style="" if on else "dim strike")
        self.query_one("#optimizer-toggles", Static).update(toggles)

    def change(self, **fields: Any) -> None:
        """Apply a validated change and recompute; a rejected one is explained, nothing runs."""
        fields.setdefault("optimizers", self.optimizer_configs())
        data = {**self.preset.model_dump(), **fields}
        try:
            preset = ParaboloidPreset.model_validate(data)
        except ValidationError as error:
            self.notify(
                from_validation_error(error, "", data).describe(), severity="error", markup=False
            )
            self.show_settings()
            return
        if preset != self.preset:
            self.preset = preset
            self.recompute()
        self.show_settings()

    def optimizer_configs(self) -> list[OptimizerConfig]:
        return [
            config.model_copy(update={"lr": config.lr * self.lr_scale})
            for name, config in self.choices.items()
            if name in self.enabled
        ]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """6…9 are on only when a preset brought that many optimizers."""
        if action == "toggle_optimizer":
            index = parameters[0]
            return isinstance(index, int) and index < len(self.choices)
        return True

    def action_toggle_optimizer(self, index: int) -> None:
        names = list(self.choices)
        if index >= len(names):
            return
        name = names[index]
        if self.enabled == {name}:
            self.notify("Keep at least one optimizer.", severity="warning")
            return
        self.enabled ^= {name}
        self.change()

    def action_batch_size(self, up: bool) -> None:
        self.change(batch_sizes=[next_batch_size(self.preset.batch_sizes, up)])

    def action_lr(self, up: bool) -> None:
        self.lr_scale *= LR_FACTOR if up else 1 / LR_FACTOR
        self.change()

    def action_condition(self, up: bool) -> None:
        self.change(condition_number=ladder_step(self.preset.condition_number, CONDITION_STEPS, up))

    def action_noise(self, up: bool) -> None:
        self.change(noise=ladder_step(self.preset.noise, NOISE_STEPS, up))

    def action_epochs(self, up: bool) -> None:
        self.change(epochs=int(ladder_step(self.preset.epochs, EPOCH_STEPS, up)))

    def action_reset(self) -> None:
        self.start_over(self.initial)
        self.show_settings()
        self.recompute()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.apply_input(event.input)
        self.query_one("#lab-plot").focus()  # so that the step keys work again

    def on_input_blurred(self, event: Input.Blurred) -> None:
        self.apply_input(event.input)

    def apply_input(self, field: Input) -> None:
        """A typed value: batch sizes as ``1, 16, full``, the rest as numbers."""
        text = field.value.strip()
        try:
            if field.id == "batch-sizes":
                self.change(batch_sizes=batch_size_list(text))
            elif field.id == "lr-scale":
                scale = float(text)
                if not scale > 0:
                    raise ValueError
                if scale != self.lr_scale:
                    self.lr_scale = scale
                    self.change()
            elif field.id == "condition":
                self.change(condition_number=float(text))
            elif field.id == "noise":
                self.change(noise=float(text))
            elif field.id == "epochs":
                self.change(epochs=int(text))
        except ValueError as error:
            detail = str(error) if field.id == "batch-sizes" else "expected a number > 0"
            self.notify(f"{field.id}: {detail}", severity="error", markup=False)
            self.show_settings()

    def action_leave(self) -> None:
        """Escape leaves a half-typed value (undone) for the sketch, then the screen if pushed."""
        if isinstance(self.focused, Input):
            self.show_settings()
            self.query_one("#lab-plot").focus()
        elif len(self.app.screen_stack) > 1:
            self.dismiss()

    # Computing and drawing

    def recompute(self) -> None:
        self.query_one("#lab-plot", SketchPlot).border_subtitle = "computing…"
        self.compute(self.preset)

    @work(thread=True, exclusive=True, group="paraboloid")
    def compute(self, preset: ParaboloidPreset) -> None:
        worker = get_current_worker()
        session = run_path_by_path(preset, lambda: worker.is_cancelled)
        if session is not None:
            self.post_message(self.Computed(session))

    def on_paraboloid_screen_computed(self, message: Computed) -> None:
        if message.session.preset != self.preset:
            return  # an older request: the newest one is on its way
        self.session = session = message.session
        several = len(session.preset.batch_sizes) > 1
        paths = [p.model_copy(update={"label": short_label(p, several)}) for p in session.paths]
        plot = self.query_one("#lab-plot", SketchPlot)
        plot.show(lambda plt: draw_paraboloid(plt, session, paths))
        plot.border_subtitle = (
            f"κ={self.preset.condition_number:g} · noise {self.preset.noise:g} · "
            f"n={self.preset.n_samples} · {self.preset.epochs} epochs"
        )
        self.query_one("#readout", Static).update(distance_readout(session, paths))

    def action_save(self) -> None:
        if self.session is None or self.session.preset != self.preset:
            self.notify("Still computing: save again in a moment.", severity="warning")
            return
        folder = self.out_dir or getattr(self.app, "out_dir", SESSIONS_DIR)
        try:
            path = save_paraboloid_session(self.session, folder)
        except Exception as error:  # a full disk or a read-only folder: say so, keep the lab
            self.notify(str(error), title="Not saved", severity="error", markup=False)
            return
        self.notify(f"Saved → {path}", markup=False)


def distance_readout(session: ParaboloidSession, paths: Sequence[ParaboloidPath]) -> Text:
    """``distance to the minimum after 40 epochs (start 3.04): sgd 0.41 · …``, each name in its
    line's colour: the numbers behind the picture, in one or two lines."""
    first = session.paths[0]
    start = math.hypot(first.w1[0] - session.minimum[0], first.w2[0] - session.minimum[1])
    text = Text(
        f"distance to the minimum after {session.preset.epochs} epochs (start {start:.2f}): ",
        style="dim",
    )
    for index, (path, shown) in enumerate(zip(session.paths, paths, strict=True)):
        if index:
            text.append(" · ", style="dim")
        text.append(shown.label, style=ansi_style(PALETTE[index % len(PALETTE)]))
        value = "diverged" if path.diverged else f"{path.distance_to_minimum:.3g}"
        text.append(f" {value}", style="bold red" if path.diverged else "bold")
    return text
