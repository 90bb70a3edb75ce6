"""The scaling analysis in plain words: optima and whether they are decided, the best lr per
batch size, McCandlish's fit and the noise scale where the runs reached the target.

The groups themselves (``scaling_groups``) and their charts are in ``report.scaling``.
"""

from __future__ import annotations

import statistics

from rich.markup import escape

from tui_lab.analysis.scaling import ScalingRow, Verdict, verdict
from tui_lab.analysis.seeds import Spread
from tui_lab.report.scaling import ScalingGroup
from tui_lab.schema.analysis import ScalingFit
from tui_lab.schema.session import at_chance


def _seeds_text(a: Spread | None, b: Spread | None) -> str:
    """``at 4 seeds``, or ``at 4 and 3 seeds`` when fewer seeds of one reached the target."""
    na, nb = (a.n if a else 0), (b.n if b else 0)
    return f"at {na} seeds" if na == nb else f"at {na} and {nb} seeds"


def _verdict_lines(found: Verdict, measure: str, target: str) -> list[str]:
    """Which batch size is optimal, with its error bar and whether the runner-up is beaten."""
    best, other = found.best, found.runner_up
    if measure == "time":
        what, to_target = "wall time", f" of training to {target}"

        def value(row: ScalingRow) -> str:
            spread = row.seconds
            text = f"{row.seconds_to_target:.1f}" if spread is None else spread.mean_text(".1f")
            return f"{text} s"

        spreads = (best.seconds, other.seconds if other else None)
    else:
        what, to_target = "final accuracy", ""

        def value(row: ScalingRow) -> str:
            spread = row.accuracy
            return f"{row.final_accuracy:.1%}" if spread is None else spread.mean_text(".1%")

        spreads = (best.accuracy, other.accuracy if other else None)
    if found.decided is None or other is None:  # one seed: no error bar, nothing tested
        return [f"  optimal in {what}: batch {best.batch_size}, {value(best)}{to_target}"]
    seeds = _seeds_text(*spreads)
    if found.decided:
        return [
            f"  optimal in {what}: batch {best.batch_size} ({value(best)}{to_target}), "
            f"ahead of batch {other.batch_size} ({value(other)}; decided {seeds})"
        ]
    return [
        f"  optimal in {what}: undecided between batch {best.batch_size} ({value(best)}) "
        f"and {other.batch_size} ({value(other)}) {seeds}"
    ]


def analysis_lines(group: ScalingGroup) -> list[str]:
    """What the group's runs say, one statement a line (Rich markup), its indent its level:
    the terminal wraps them by words (``bslab compare`` to its width)."""
    target = f"{group.target_accuracy:.0%}"
    lines = [f"[bold]{escape(group.label)}[/], target {target} validation accuracy"]
    seeds = max((r.seeds for r in group.rows), default=1)
    if seeds > 1:
        lines.append(
            f"  {seeds} seeds per configuration; steps to target are medians over seeds, "
            "times and accuracies means (decided: Welch's t-test, p < 0.05)"
        )
    fastest = verdict(group.rows, "time")
    if fastest is not None:
        lines += _verdict_lines(fastest, "time", target)
    else:
        lines.append(f"  no run reached {target}: no batch size is optimal in wall time")
    contended = sorted({r.batch_size for r in group.rows if r.contended})
    if contended and fastest is not None:
        lines.append(
            f"    [yellow]~ but batch {', '.join(map(str, contended))} was timed on a busy machine"
            "[/] (other work held the cores): rerun on a quiet one before trusting this"
        )
    accurate = verdict(group.rows, "accuracy")
    if group.stopped_at_target:
        lines.append("  no optimum in final accuracy: runs stopped once they reached the target")
    elif accurate is not None:
        lines += _verdict_lines(accurate, "accuracy", target)
    lines += [_stuck_line(row, seeds) for row in group.rows if not row.learned]
    never = [r for r in group.rows if not r.reached_target and r.learned]
    if never:
        counts = f" (of {seeds} seeds, {', '.join(str(r.reached) for r in never)} did)"
        lines.append(
            f"  never reached {target}: batch {', '.join(str(r.batch_size) for r in never)}"
            + (counts if seeds > 1 else "")
        )
    if group.best_lr:
        lines += _best_lr_lines(group)
    lines += _fit_lines(group.fit)
    if group.noise_scales:
        lines += _noise_lines(group)
    return lines


def _stuck_line(row: ScalingRow, seeds: int) -> str:
    """A configuration that ended at chance: 'did not learn' only if it never left chance."""
    lr = f" at lr {row.lr:.3g}" if row.lr is not None else ""
    if row.peak_accuracy is None or at_chance(row.peak_accuracy):
        return f"  [bold red]batch {row.batch_size} did not learn{lr}[/] (chance accuracy)"
    best = "best seed, " if seeds > 1 else ""
    final = "—" if row.final_accuracy is None else f"{row.final_accuracy:.1%}"
    return (
        f"  [bold red]batch {row.batch_size}{lr} learned to {row.peak_accuracy:.1%} "
        f"({best}epoch {row.peak_epoch}), then collapsed to {final}[/]"
    )


def _noise_lines(group: ScalingGroup) -> list[str]:
    """B_noise where the runs reached the target, against the fitted B_crit (McCandlish et al.
    predict B_crit ≈ B_noise at the same loss level, within a small factor)."""
    values = group.noise_scales
    median = statistics.median(values)
    spread = "" if len(values) == 1 else f" (runs: {min(values):,.0f} to {max(values):,.0f})"
    lines = [f"  gradient noise scale where the runs reached the target: {median:,.0f}{spread}"]
    b_crit = group.fit.b_crit if group.fit is not None else None
    if b_crit is not None and b_crit > 0:
        ratio = max(b_crit, median) / min(b_crit, median)
        verdict = "agree within 2×" if ratio <= 2 else "differ by more than 2×"
        lines.append(
            f"    fitted B_crit {b_crit:,.0f} and B_noise {median:,.0f} {verdict} ({ratio:.1f}×)"
        )
        if ratio > 2 and group.fit is not None:
            lines += _disagreement_lines(group.fit, group.best_lr)
    else:
        lines.append("    (McCandlish et al.: B_crit ≈ B_noise, within a small factor)")
    return lines


GOOD_FIT = 0.9  # R² of log steps above which a fit to three or more sizes is trusted


def _disagreement_lines(fit: ScalingFit, best_lr: bool) -> list[str]:
    """Why B_noise and the fitted B_crit may differ by more than 2×, and which to trust."""
    if not best_lr:
        return [
            "    why: the fit used one lr at every batch, so its B_crit is where that lr",
            "    stops scaling; trust B_noise more (or fit B_crit with protocol best-lr)",
        ]
    if len(fit.batch_sizes) >= 3 and fit.r2 >= GOOD_FIT:
        return [
            "    why: B_noise = tr(Σ)/|G|² ignores curvature, which McCandlish et al. note can",
            "    overstate B_crit; trust the fit, measured with the lr tuned per batch size",
        ]
    return [
        f"    why: the fit rests on {len(fit.batch_sizes)} batch sizes (R² {fit.r2:.2f}) and"
        " B_noise ignores",
        "    curvature; trust neither closely: add batch sizes that reach the target",
    ]


def _best_lr_lines(group: ScalingGroup) -> list[str]:
    """The lr chosen at each batch size (Shallue et al.'s protocol), and where the choice sits
    at the edge of the grid (the best lr may lie beyond it)."""
    grids: dict[int, list[float]] = {}
    for tried in group.tried:
        grids.setdefault(tried.batch_size, []).append(tried.lr or 0.0)
    lines = [
        "  best lr per batch size (fewest median steps to target, "
        f"of {max(map(len, grids.values()))} tried):",
        "    "
        + ", ".join(
            f"{row.batch_size}: "
            + (f"{row.lr or 0.0:.3g}" if row.reached_target else "none reached the target")
            for row in group.rows
        ),
    ]
    edge = [
        str(row.batch_size)
        for row in group.rows
        if row.reached_target
        and len(grids[row.batch_size]) > 2
        and row.lr in (min(grids[row.batch_size]), max(grids[row.batch_size]))
    ]
    if edge:
        lines.append(f"    at the edge of the grid for batch {', '.join(edge)}: widen it there")
    return lines


def _fit_lines(fit: ScalingFit | None) -> list[str]:
    if fit is None:
        return ["  no steps-to-target fit: it needs two batch sizes that reach the target"]
    sizes = ", ".join(map(str, fit.batch_sizes))
    if fit.e_min <= 0:  # the fit's best is a flat line: nothing like a B_crit to read off
        return [
            f"  no McCandlish fit: steps to target did not fall with batch size ({sizes}), "
            "so no critical batch size can be read off at this learning rate "
            "(try an lr scaling rule, or the best-lr protocol with an lr grid)"
        ]
    exact = ", exact for two sizes" if len(fit.batch_sizes) == 2 else ""
    lines = [
        f"  McCandlish fit (S/S_min − 1)(E/E_min − 1) = 1, to batch {sizes} "
        f"(R² of log steps {fit.r2:.2f}{exact}):",
        f"    S_min = {fit.s_min:,.0f} steps, E_min = {fit.e_min:,.0f} samples, "
        + (
            f"B_crit = E_min/S_min ≈ {fit.b_crit:.3g}"
            if fit.b_crit is not None
            else "S_min ≈ 0: perfect scaling"
        ),
    ]
    smallest = min(fit.batch_sizes)
    if fit.b_crit is not None and fit.b_crit < smallest:
        lines.append(
            f"    B_crit is below the smallest batch here ({smallest}): steps did not fall "
            "with batch size at this learning rate (try an lr scaling rule)"
        )
    elif fit.b_crit is not None:
        lines.append(
            "    below B_crit doubling the batch nearly halves the steps; above it the "
            "steps hardly fall and the samples (epochs) needed grow"
        )
    else:
        lines.append("    at every size tried: B_crit lies beyond the largest batch")
    return lines
