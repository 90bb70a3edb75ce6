"""``bslab screenshots``: one picture per screen, each showing that screen, from a real sweep."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
from factories import small_sweep

from tui_lab.cli import screenshots
from tui_lab.cli.main import main
from tui_lab.schema import TrainPreset
from tui_lab.schema.trajectory import TrajectorySettings

# Text each picture must show: the screen's own title, headline or hint.
EXPECTED = {
    "setup": "Batch sizes",
    "train-live": "training loss",
    "train-done": "Sweep completed",
    "compare": "s sorts · ×time",
    "sketches": "o start · x end",
    "paraboloid": "linear neuron, squared error",
    "help": "bslab help",
}


def tiny_preset() -> TrainPreset:
    return small_sweep(
        train_subset=100,
        optimizer={"name": "sgd", "lr": 0.05},
        batch_sizes=["full", 10],
        epochs=1,
        trajectory=TrajectorySettings(grid_resolution=5, eval_samples=32),
    )


def shown_text(svg: Path) -> str:
    """The SVG's text as a terminal would show it (Textual writes spaces as &#160;)."""
    return html.unescape(svg.read_text(encoding="utf-8")).replace("\xa0", " ")


def test_writes_one_svg_per_screen_showing_that_screen(tmp_path, monkeypatch):
    monkeypatch.setattr(screenshots, "screenshot_preset", tiny_preset)
    monkeypatch.setattr(screenshots, "WORKER_MODE", "thread")  # no child process to start
    monkeypatch.setattr(screenshots, "REDRAW_SECONDS", 0.2)  # tiny charts redraw at once
    out = tmp_path / "shots"
    here = Path.cwd()

    assert main(["screenshots", "--out", str(out), "--size", "80x24", "--no-png"]) == 0

    assert sorted(p.name for p in out.iterdir()) == sorted(f"{name}.svg" for name in EXPECTED)
    for name, text in EXPECTED.items():
        assert text in shown_text(out / f"{name}.svg"), name
    assert Path.cwd() == here


def test_a_size_too_small_is_bad_input(tmp_path, capsys):
    assert main(["screenshots", "--out", str(tmp_path), "--size", "60x20"]) == 2
    assert "--size" in capsys.readouterr().err


@pytest.mark.parametrize("text", ["⠒⠒⠒ ⠉", "a&b<c"])
def test_png_text_is_placed_cell_by_cell(text):
    """Converters ignore textLength: each character gets its own cell's x instead."""
    escaped = html.escape(text, quote=False)
    run = (
        f'<text class="r1" x="10" y="20" textLength="{12.2 * len(text):.1f}" '
        f'clip-path="url(#line-0)">{escaped}</text>'
    )
    expected = [(round(10 + 12.2 * i, 1), c) for i, c in enumerate(text) if not c.isspace()]
    assert placed_glyphs(screenshots.one_glyph_per_cell(run)) == expected


def placed_glyphs(svg: str) -> list[tuple[float, str]]:
    """(x, character) of each text element."""
    found = re.findall(r'x="([\d.]+)"[^>]*>([^<]*)</text>', svg)
    return [(round(float(x), 1), html.unescape(text)) for x, text in found]
