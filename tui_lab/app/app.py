"""The bslab app: four screens (Setup, Train, Compare, Paraboloid lab) on F2-F5, help on F1.

Each screen is an app mode, so each keeps its state while another is shown. The Train screen
owns the sweep in progress; quitting while it runs asks first, then saves the run as interrupted.
"""

from __future__ import annotations

import asyncio
import functools
import signal
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import on
from textual.actions import parse as parse_action
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.driver import Driver
from textual.screen import Screen

from tui_lab.app.screens.compare import CompareScreen
from tui_lab.app.screens.confirm import QUIT, Confirm
from tui_lab.app.screens.help import HelpScreen
from tui_lab.app.terminal import TerminalClosed, hang_up_safe
from tui_lab.errors import EXIT_OK
from tui_lab.run.signals import TERMINATING, detach_from_hung_up_terminal
from tui_lab.schema import TrainPreset
from tui_lab.settings import SESSIONS_DIR

if TYPE_CHECKING:  # imported where first shown: they bring torch, a second or more to load
    from tui_lab.app.screens.setup import SetupScreen
    from tui_lab.app.screens.train import TrainScreen
    from tui_lab.app.worker import WorkerMode


class BslabApp(App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "bslab"
    SUB_TITLE = "the batch-size lab"
    BINDINGS: ClassVar = [
        Binding("ctrl+q", "quit", "Quit", priority=True),
        Binding("f1,question_mark", "help", "Help"),
        # Off the footer, so that each screen's own keys fit 80 columns: F1 and ctrl+p list them.
        Binding("f2", "switch_mode('setup')", "Setup", show=False),
        Binding("f3", "switch_mode('train')", "Train", show=False),
        Binding("f4", "switch_mode('compare')", "Compare", show=False),
        Binding("f5", "switch_mode('paraboloid')", "Paraboloid", show=False),
    ]

    def __init__(
        self,
        *,
        preset: TrainPreset | None = None,
        preset_path: Path | None = None,
        start: bool = False,
        out_dir: Path = SESSIONS_DIR,
        device: str | None = None,
        data_dir: Path | None = None,
        compare_paths: list[Path] | None = None,
        worker_mode: WorkerMode | None = None,
    ) -> None:
        """``worker_mode``: how the Train screen runs sweeps (None: its default).

        Setup, Train and the paraboloid lab are built when first shown, so that ``compare
        --tui`` shows its table without waiting for torch."""
        super().__init__()
        overrides = {"device": device, "data_dir": data_dir}
        if any(overrides.values()):  # command-line flags win over the preset, as in headless
            preset = (preset or TrainPreset()).updated(
                **{key: value for key, value in overrides.items() if value}
            )
        self.out_dir = Path(out_dir)
        self.start_at_once = start and preset is not None
        self.preset, self.preset_path, self.worker_mode = preset, preset_path, worker_mode
        self.add_mode("setup", lambda: self.setup_screen)
        self.add_mode("train", lambda: self.train_screen)
        self.add_mode("compare", lambda: CompareScreen(compare_paths or [self.out_dir]))
        self.add_mode("paraboloid", self.paraboloid_screen)
        self.first_mode = "compare" if compare_paths else "setup"
        self.ending = False  # a terminating signal or hang-up is being handled

    @functools.cached_property
    def setup_screen(self) -> SetupScreen:
        from tui_lab.app.screens.setup import SetupScreen

        return SetupScreen(self.preset, self.preset_path)

    @functools.cached_property
    def train_screen(self) -> TrainScreen:
        from tui_lab.app.screens.train import TrainScreen

        return TrainScreen() if self.worker_mode is None else TrainScreen(self.worker_mode)

    @property
    def sweep_running(self) -> bool:
        """Whether a sweep trains now (only the Train screen, once built, can have one)."""
        train = self.__dict__.get("train_screen")
        return train is not None and train.running

    def paraboloid_screen(self) -> Screen:
        from tui_lab.app.screens.paraboloid import ParaboloidScreen

        return ParaboloidScreen(out_dir=self.out_dir)

    def on_mount(self) -> None:
        self.switch_mode(self.first_mode)
        if self.start_at_once:
            self.call_after_refresh(self.setup_screen.action_start)
        loop = asyncio.get_running_loop()
        for signum in TERMINATING:  # kill, a scheduler's time limit, an SSH hang-up
            if signal.getsignal(signum) is not signal.SIG_IGN:
                loop.add_signal_handler(signum, self.terminated, signum)

    @on(TerminalClosed)
    def _terminal_closed(self) -> None:
        """A pty closed without a SIGHUP (no controlling terminal): end as a hang-up would."""
        self.terminated(signal.SIGHUP)

    def terminated(self, signum: int) -> None:
        """SIGTERM or SIGHUP: save the run in progress as interrupted, exit 128 + signum."""
        if self.ending:
            return
        self.ending = True
        if signum == signal.SIGHUP:
            detach_from_hung_up_terminal()
        self.run_worker(self.stop_and_exit(128 + signum), group="exit", exclusive=True)

    def get_driver_class(self) -> type[Driver]:
        return hang_up_safe(super().get_driver_class())

    async def stop_and_exit(self, code: int) -> None:
        """Exit once the sweep in progress (if any) has saved its run as interrupted."""
        if self.sweep_running:
            self.notify("Saving the current run as interrupted…")
            await self.train_screen.stop_and_wait()
        self.exit(code, message=self.farewell)

    @property
    def farewell(self) -> Text | None:
        """Printed once the app's screen is gone: what the sweep saved, and where, if one was
        started (TrainScreen.saved_text; plain text: a folder's name is not markup)."""
        train = self.__dict__.get("train_screen")
        text = None if train is None else train.saved_text
        return None if text is None else Text(text)

    def on_setup_screen_start_requested(self, request: SetupScreen.StartRequested) -> None:
        """Train Setup's preset (already valid) on the Train screen."""
        from tui_lab.app.worker import SweepRequest

        self.switch_mode("train")
        request = SweepRequest(request.preset, self.out_dir, source=request.source)
        self.call_after_refresh(self.train_screen.start, request)

    async def action_quit(self) -> None:
        if not self.sweep_running:
            self.exit(0, message=self.farewell)
            return

        async def answered(quit_app: bool | None) -> None:
            if quit_app:
                await self.stop_and_exit(EXIT_OK)

        await self.push_screen(Confirm(*QUIT), answered)

    def action_toggle_maximize(self) -> None:
        """``m`` on any screen: the focused chart or table fills the screen, or goes back."""
        if self.screen.maximized is not None:
            self.screen.minimize()
            return
        self.screen.action_maximize()
        if self.screen.maximized is None:  # nothing focused, or nothing that can fill it
            self.notify("m fills the screen with the focused chart or table: tab to one first")

    async def action_switch_mode(self, mode: str) -> None:
        """F2…F5: that screen, or a word that it is the one shown (else the key does nothing)."""
        if mode == self.current_mode:
            self.notify(f"This is the {mode.title()} screen already.")
            return
        await super().action_switch_mode(mode)

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """The screens, the sweep's actions, and every action of the screen below the palette
        (from its key bindings, so a new key is searchable at once)."""
        yield from super().get_system_commands(screen)
        yield from screen_commands(screen)
        yield SystemCommand("Setup", "Set up a sweep (F2)", lambda: self.switch_mode("setup"))
        yield SystemCommand("Train", "Watch the sweep (F3)", lambda: self.switch_mode("train"))
        yield SystemCommand(
            "Compare", "Compare saved sessions (F4)", lambda: self.switch_mode("compare")
        )
        yield SystemCommand(
            "Paraboloid lab",
            "Optimizers on a linear neuron's error surface (F5)",
            lambda: self.switch_mode("paraboloid"),
        )
        yield SystemCommand("Help", "Keys and ideas (F1)", self.action_help)
        if screen is self.__dict__.get("setup_screen"):
            return  # its own actions are listed above
        yield SystemCommand(
            "Start sweep",
            "Train the sweep set up on Setup",
            lambda: self.setup_screen.action_start(),
        )
        yield SystemCommand("Load preset", "Read a preset file into Setup", self._on_setup("load"))
        yield SystemCommand("Save preset", "Write Setup to a preset file", self._on_setup("save"))
        yield SystemCommand(
            "Find largest batch",
            "Largest batch that fits in memory, for Setup's data, model and device",
            self._on_setup("find_batch"),
        )

    def _on_setup(self, action: str):  # type: ignore[no-untyped-def]
        """A callback that shows Setup, then runs one of its actions there."""

        def callback() -> None:
            self.switch_mode("setup")
            self.call_after_refresh(getattr(self.setup_screen, f"action_{action}"))

        return callback


def screen_commands(screen: Screen) -> Iterable[SystemCommand]:
    """One palette command per key binding of ``screen`` that is available now."""
    seen: set[str] = set()
    for binding in type(screen).BINDINGS:
        if not isinstance(binding, Binding) or not binding.description:
            continue
        _, name, params = parse_action(binding.action)
        if binding.description in seen or screen.check_action(name, params) is not True:
            continue
        seen.add(binding.description)
        key = binding.key_display or binding.key.split(",")[0]
        help_text = f"{binding.tooltip} ({key})" if binding.tooltip else f"key: {key}"
        yield SystemCommand(
            binding.description,
            help_text,
            lambda action=binding.action: screen.run_action(action),  # type: ignore[misc]
        )


def run_app(**options: Any) -> int:
    """Run the app (``BslabApp``'s keyword options) until the user quits; the exit code."""
    app = BslabApp(**options)
    result = app.run()
    return result if isinstance(result, int) else (app.return_code or 0)
