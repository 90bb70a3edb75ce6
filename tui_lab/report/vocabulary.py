"""The words and styles every screen and table uses for the same things, so that a run's status
reads the same in the headless summary, the compare table and the app."""

from __future__ import annotations

# Rich markup styles, which Textual markup shares: readable on light and dark terminals.
STATUS_STYLES = {
    "pending": "dim",  # in the app: not started yet
    "skipped": "dim",  # in the app: the sweep was cancelled before it started
    "running": "bold",
    "completed": "bold green",
    "interrupted": "bold yellow",
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
    "relative_time": "×fast",
    "epochs_to_target": "ep→t",
    "seconds_to_target": "s→t",
    "best_accuracy": "best",
    "final_accuracy": "final",
}
NOT_REACHED = "never"  # a run that never reached the target accuracy
