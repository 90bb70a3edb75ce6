"""A sessions folder that other processes write, read as the event stream of its newest sweep.

``bslab watch`` never writes to the folder: it only lists it, reads the files that changed since
the last look (by size and modification time) and rebuilds the followed sweep's events, which
the Train screen applies as if the sweep ran in the app. Kept free of widgets so that it can be
tested without a terminal.
"""

from __future__ import annotations

import math
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

from tui_lab.core.storage import (
    STALE_SECONDS,
    load_any_session,
    load_plan,
    process_alive,
    settle_status,
)
from tui_lab.errors import BadInput
from tui_lab.run.events import (
    Event,
    RunEnded,
    RunStarted,
    SessionSaved,
    StepStats,
    SweepEnded,
    SweepStarted,
)
from tui_lab.schema import Session
from tui_lab.schema.plan import PLAN_SUFFIX, SweepPlan

SESSION_SUFFIX = ".json"
# A live run saves every few seconds (recorder.LIVE_SAVE_SECONDS); silent this long, it is shown
# as stale (its writer may be evaluating, or hung); after storage.STALE_SECONDS it is stopped.
STALE_AFTER_SECONDS = 30.0
MAX_UNPLANNED_RUNS = 100  # a sweep without a plan shows its newest runs (old sessions: a preset's)


def sweep_key(session: Session) -> str:
    """The sweep a run belongs to: the id its group ids start with, else its preset's name."""
    group = session.config.group_id
    return group.split("/")[0] if group else f"preset:{session.config.preset_name}"


def run_key(session: Session) -> tuple[str | None, int]:
    """A run of a plan: its configuration's group and its seed are unique within the sweep."""
    return session.config.group_id, session.config.seed


@dataclass
class FolderSnapshot:
    """Every plan and training session of the folder as last read, and what could not be read."""

    folder: Path
    sessions: dict[Path, Session] = field(default_factory=dict)
    plans: dict[Path, SweepPlan] = field(default_factory=dict)
    warnings: dict[Path, str] = field(default_factory=dict)
    others: set[Path] = field(default_factory=set)  # other kinds of session: passed over
    stamps: dict[Path, tuple[int, int]] = field(default_factory=dict)  # (mtime_ns, size)

    def changed_files(self) -> list[Path]:
        """Plans and sessions new or changed since last read, newest first (the newest sweep's
        files come first); files gone are forgotten."""
        found: dict[Path, tuple[int, int]] = {}
        try:
            entries = list(os.scandir(self.folder))
        except OSError as error:  # removed, unmounted, permissions changed: say so, keep looking
            self.warnings[self.folder] = f"{self.folder}: cannot read: {error.strerror or error}"
            return []
        self.warnings.pop(self.folder, None)
        for entry in entries:
            if entry.name.startswith(".") or not entry.name.endswith((SESSION_SUFFIX, PLAN_SUFFIX)):
                continue
            try:
                stat = entry.stat()
            except OSError:  # removed meanwhile
                continue
            found[Path(entry.path)] = (stat.st_mtime_ns, stat.st_size)
        for gone in set(self.stamps) - set(found):
            for table in (self.sessions, self.plans, self.warnings, self.stamps):
                table.pop(gone, None)  # type: ignore[attr-defined]
            self.others.discard(gone)
        changed = [path for path, stamp in found.items() if self.stamps.get(path) != stamp]
        changed.sort(key=lambda path: found[path][0], reverse=True)
        for path in changed:
            self.stamps[path] = found[path]
        return changed

    def read(self, path: Path) -> None:
        """Read one file again; a broken one becomes a warning (shown once per version)."""
        self.sessions.pop(path, None)
        self.plans.pop(path, None)
        self.warnings.pop(path, None)
        try:
            if path.name.endswith(PLAN_SUFFIX):
                self.plans[path] = load_plan(path)
                return
            session = load_any_session(path)
        except BadInput as error:
            self.warnings[path] = error.describe()
            return
        if isinstance(session, Session):
            self.sessions[path] = session
        else:
            self.others.add(path)


@dataclass
class FollowedSweep:
    """The sweep the Train view follows: its plan (if it wrote one) and its runs' sessions."""

    key: str
    name: str
    plan: SweepPlan | None
    sessions: list[tuple[Path, Session]]


def newest_sweep(snapshot: FolderSnapshot) -> FollowedSweep | None:
    """The sweep that started last: by its plan, or by its newest session if it wrote none."""
    plans = {plan.id: plan for plan in snapshot.plans.values()}
    starts: dict[str, datetime] = {key: plan.created for key, plan in plans.items()}
    for session in snapshot.sessions.values():
        key = sweep_key(session)
        starts[key] = min(starts.get(key, session.created), session.created)
    if not starts:
        return None
    key = max(starts, key=lambda k: starts[k])
    runs = [(p, s) for p, s in snapshot.sessions.items() if sweep_key(s) == key]
    runs.sort(key=lambda item: item[1].created)
    plan = plans.get(key)
    if plan is None:
        runs = runs[-MAX_UNPLANNED_RUNS:]
    name = plan.preset_name if plan else runs[0][1].config.preset_name
    return FollowedSweep(key, name, plan, runs)


def latest_report(run_index: int, session: Session) -> StepStats | None:
    """The run's last saved curve point as a progress report: how far it is, its loss, and its
    speed over the last stretch of the curve (None with fewer than two points)."""
    curve = session.curve
    if len(curve.step) < 2:
        return None
    position = curve.epoch[-1]  # epochs done: 2.0 is the end of the second, 2.3 in the third
    epoch = max(1, math.ceil(position))
    seconds = curve.seconds[-1] - curve.seconds[-2]
    speed = (curve.samples[-1] - curve.samples[-2]) / seconds if seconds > 0 else 0.0
    lr = session.epochs[-1].lr if session.epochs else session.config.lr
    return StepStats(
        run_index, epoch, curve.step[-1], position - (epoch - 1), curve.samples[-1],
        curve.seconds[-1], curve.loss[-1], lr, speed,
    )  # fmt: skip


def without_last_point(session: Session) -> Session:
    """The session less its curve's last point, which ``latest_report`` then adds back."""
    c = session.curve
    curve = c.model_copy(
        update={k: getattr(c, k)[:-1] for k in ("step", "epoch", "samples", "seconds", "loss")}
    )
    return session.model_copy(update={"curve": curve})


def silent_seconds(session: Session, now: datetime) -> float:
    beat = session.heartbeat or session.created
    if beat.tzinfo is None:
        beat = beat.replace(tzinfo=timezone.utc)
    return (now - beat).total_seconds()


def run_events(index: int, path: Path, session: Session, now: datetime) -> list[Event]:
    """One run as events: a live run starts and reports; a silent one is shown stale; any other
    is saved as it ended (a run whose writer died reads back as stopped)."""
    session = settle_status(session.model_copy(), now)  # since it was read, its writer may be gone
    if session.status != "running":
        return [SessionSaved(index, path, session, final=True)]
    started = RunStarted(
        index, session.config, session.environment, session.n_train, session.n_val,
        session.steps_per_epoch, session.stacked,
    )  # fmt: skip
    report = latest_report(index, session)
    saved = SessionSaved(index, path, without_last_point(session) if report else session, False)
    events: list[Event] = [started, saved, *([report] if report else [])]
    silent = silent_seconds(session, now)
    if silent > STALE_AFTER_SECONDS:
        events.append(RunEnded(index, "stale", f"no save for {silent:.0f} s"))  # type: ignore[arg-type]
    return events


def sweep_writer_gone(sweep: FollowedSweep, now: datetime) -> bool:
    """Whether the process driving a planned sweep has ended: gone from this host, or, on
    another host, no run of it has saved for storage's STALE_SECONDS."""
    plan = sweep.plan
    if plan is None:
        return False
    if plan.host == socket.gethostname():
        return not process_alive(plan.pid)
    latest = max(
        (silent_seconds(s, now) for _, s in sweep.sessions),
        default=(now - plan.created).total_seconds(),
    )
    return latest > STALE_SECONDS


def sweep_events(sweep: FollowedSweep, now: datetime | None = None) -> list[Event]:
    """The followed sweep as the event stream a sweep in the app would have produced so far.

    With a plan, runs not started yet are pending; a sweep whose writer is gone ends (its runs
    never started are skipped). Without one, the runs are those saved so far, in start order.
    """
    now = now or datetime.now(timezone.utc)
    planned = sweep.plan.runs if sweep.plan else [s.config for _, s in sweep.sessions]
    index_of = {(c.group_id, c.seed): i for i, c in enumerate(planned)}
    plan = sweep.plan
    slots, tasks = (plan.slots or 0, tuple(map(tuple, plan.tasks or []))) if plan else (0, ())
    events: list[Event] = [SweepStarted(sweep.name, list(planned), slots, tasks)]
    seen: set[int] = set()
    for path, session in sweep.sessions:
        index = index_of.get(run_key(session)) if sweep.plan else len(seen)
        if index is None or index in seen:  # not in the plan, or retried: the newest stays
            continue
        seen.add(index)
        events += run_events(index, path, session, now)
    finished = [e for e in events if isinstance(e, SessionSaved) and e.final]
    if sweep.plan is not None and len(finished) == len(planned):
        events.append(SweepEnded(False, [e.path for e in finished]))
    elif sweep_writer_gone(sweep, now):
        events.append(SweepEnded(True, [e.path for e in finished]))
    return events


@dataclass(frozen=True)
class FolderView:
    """What the watcher shows after a look at the folder."""

    events: list[Event]
    sweep: FollowedSweep | None
    sessions: int
    warnings: dict[Path, str]
    changed: int = 0  # files read again in this look
    reading: tuple[int, int] | None = None  # (done, total) while many files are read

    @property
    def moving(self) -> bool:
        """Whether the view can change with time alone: a run trains (it may fall silent) or a
        planned sweep is under way (its process may end)."""
        if any(isinstance(event, RunStarted) for event in self.events):
            return True
        return (
            self.sweep is not None
            and self.sweep.plan is not None
            and not any(isinstance(event, SweepEnded) for event in self.events)
        )


class FolderWatcher:
    """Reads the folder's changes and builds the view; ``look`` after every change or tick."""

    def __init__(self, folder: Path) -> None:
        self.snapshot = FolderSnapshot(Path(folder))

    def look(self, show: Callable[[FolderView], None], progress_seconds: float = 0.5) -> FolderView:
        """Read what changed, calling ``show`` with partial views every ``progress_seconds``
        while many files are read (newest first: the newest sweep shows at once); returns the
        full view."""
        changed = self.snapshot.changed_files()
        last = time.monotonic()
        for done, path in enumerate(changed, 1):
            self.snapshot.read(path)
            if time.monotonic() - last >= progress_seconds and done < len(changed):
                show(replace(self.view(), changed=done, reading=(done, len(changed))))
                last = time.monotonic()
        return replace(self.view(), changed=len(changed))

    def view(self) -> FolderView:
        sweep = newest_sweep(self.snapshot)
        events = sweep_events(sweep) if sweep else []
        return FolderView(events, sweep, len(self.snapshot.sessions), dict(self.snapshot.warnings))
