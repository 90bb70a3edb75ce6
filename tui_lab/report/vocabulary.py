"""The words and styles every screen and table uses for the same things, so that a run's status
reads the same in the headless summary, the compare table and the app."""

from __future__ import annotations

from tui_lab.schema import RunConfig
from tui_lab.schema.common import lr_text

# Rich markup styles, which Textual markup shares: readable on light and dark terminals.
STATUS_STYLES = {
    "pending": "dim",  # in the app: not started yet
    "skipped": "dim",  # in the app: the sweep was cancelled before it started
    "running": "bold",
    "completed": "bold green",
    "interrupted": "bold yellow",
    "stale": "yellow",  # in bslab watch: running, but its writer has not saved for a while
    "stopped": "yellow",  # saved as running, but its process is gone (killed) or silent
    "diverged": "bold red",
    "out_of_memory": "bold magenta",
    "failed": "bold red",
    "did_not_learn": "bold red",  # completed, never above chance accuracy (comparison.status_key)
    "collapsed": "bold red",  # completed at chance accuracy after learning first
}


def status_word(status: str) -> str:
    """``out_of_memory`` → ``out of memory``: the session's status as a person reads it."""
    return status.replace("_", " ")


def status_markup(status: str) -> str:
    """A status as markup, coloured so that outcomes stand out."""
    return f"[{STATUS_STYLES.get(status, 'bold')}]{status_word(status)}[/]"


# Column labels of every runs table (terminal and app), short enough for 80 columns; the tables'
# captions spell them out.
COLUMN_LABELS = {
    "data_model": "data/model",
    "optimizer": "optim",
    "lr": "lr",
    "batch": "batch",
    "status": "status",
    "seconds_per_epoch": "s/ep",
    "relative_time": "×time",
    "epochs_to_target": "ep→t",
    "seconds_to_target": "s→t",
    "best_accuracy": "best",
    "final_accuracy": "final",
}
NOT_REACHED = "never"  # a run that never reached the target accuracy

# What each short column name means: F1 lists them all, and every table a legend line of its own.
COLUMN_NOTES = {
    "s/ep": "training seconds per epoch",
    "×time": "s/ep over the fastest run's: 1.00 is the fastest, 2.00 takes twice as long",
    "ep→t": "epochs to the target validation accuracy",
    "s→t": "training seconds to the target",
    "→t": "seeds that reached the target, of all seeds",
    "best": "best validation accuracy of any epoch",
    "final": "validation accuracy at the last epoch",
    "~": "after a time: timed on a busy machine (other work held the cores)",
    "★": "the fastest to the target; the most accurate at the end",
    "never": "the run never reached the target",
    "samples/s": "Train: training samples a second, the latest while it runs, its mean once ended",
    "rss": "Train, peak mem on a CPU: the whole process's peak memory, not the run's alone",
}


def columns_legend(labels: list[str]) -> str:
    """One line naming what the symbols among ``labels`` stand for: 's/ep s per epoch · …'."""
    short = {
        "s/ep": "s per epoch",
        "×time": "× the fastest's time",
        "ep→t": "epochs to target",
        "s→t": "s to target",
        "→t": "seeds reaching it",
    }
    return " · ".join(f"{label} {short[label]}" for label in labels if label in short)


def run_text(config: RunConfig) -> str:
    """A run in full: its lr said once (its label names the lr only in an lr grid), and its seed
    even when its configuration has only one: ``sgd b=32 lr=6.25e-4 s=0``."""
    lr = "" if config.lr_grid_size > 1 else f" lr={lr_text(config.lr)}"
    return f"{config.group_label()}{lr} s={config.seed}"
