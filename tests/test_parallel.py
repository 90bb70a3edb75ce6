"""Several runs at once: same results as one after another, and every run stops cleanly."""

from __future__ import annotations

from factories import ENVIRONMENT, run_cli, run_config, small_sweep, write

from tui_lab.app.live_sweep import LiveSweep
from tui_lab.core.storage import load_session
from tui_lab.run import process_pool
from tui_lab.run.events import EpochEnded, RunEnded, RunStarted, StepStats, SweepStarted
from tui_lab.run.executor import TEST_FAULTS_ENV, InlineExecutor, RunTask, SweepControl
from tui_lab.run.process_pool import LocalProcesses, capacity, longest_first, machine_slots
from tui_lab.run.sweep import prepare_sweep, run_sweep
from tui_lab.schema.train import MAX_EPOCHS


def losses_by_run(events):
    runs: dict[int, list[tuple[float, float]]] = {}
    for e in events:
        if isinstance(e, EpochEnded):
            runs.setdefault(e.run_index, []).append((e.record.train_loss, e.record.val_loss))
    return runs


def test_concurrent_runs_give_the_same_losses_as_sequential_ones(tmp_path):
    # One thread per run whatever the batch size (small_sweep's), so nothing but the
    # scheduling differs.
    preset = small_sweep(batch_sizes=[8, 32, "full"])
    prepared = prepare_sweep(preset, out_dir=tmp_path / "seq")
    sequential = losses_by_run(run_sweep(prepared, executor=InlineExecutor()))
    prepared = prepare_sweep(preset, out_dir=tmp_path / "par")
    events = list(run_sweep(prepared, executor=LocalProcesses(parallel=2)))
    assert losses_by_run(events) == sequential and len(sequential) == 3
    assert len(list((tmp_path / "par").glob("*.safetensors"))) == 3  # weights came back too


def test_skip_one_run_then_quit_saves_every_running_run_as_interrupted(tmp_path):
    # Neither run can end before the test stops it.
    preset = small_sweep(epochs=MAX_EPOCHS, batch_sizes=[8, 16])
    control = SweepControl()
    stream = run_sweep(prepare_sweep(preset, out_dir=tmp_path), control, LocalProcesses(2))
    started, ended = set(), {}
    for event in stream:
        if isinstance(event, RunStarted):
            started.add(event.run_index)
        if isinstance(event, StepStats) and started == {0, 1} and not ended:
            control.skip(1)  # `n` on the second run's row
        if isinstance(event, RunEnded):
            ended[event.run_index] = event.status
            break
    stream.close()  # quitting: the other run is still training
    assert ended == {1: "interrupted"}
    sessions = [load_session(p) for p in tmp_path.glob("*.json")]
    assert sorted(s.status for s in sessions) == ["interrupted", "interrupted"]


def test_auto_fills_the_cores_and_starts_the_longest_runs_first(monkeypatch):
    monkeypatch.setattr(process_pool, "available_cores", lambda: 2)
    runs = [run_config(b) for b in (512, 1, 8, 32)]
    room = capacity(runs, "auto")
    assert room.slots == 2 and room.total_cores == 2
    tasks = longest_first([RunTask.single(i, c) for i, c in enumerate(runs)], n_train=1437)
    assert [t.runs[0][1].batch_size for t in tasks] == [1, 8, 32, 512]
    assert capacity(runs, 3).slots == 2  # asked for more than the cores: capped to them
    assert capacity(runs[:1], "auto").slots == 1  # one run: trained in this process


def test_several_small_batch_runs_share_each_gpu_of_the_box(monkeypatch):
    monkeypatch.setattr(process_pool, "available_cores", lambda: 16)
    monkeypatch.setattr(process_pool, "sweep_devices", lambda d: ["cuda:0", "cuda:1"])
    small = [run_config(8).updated(device="cuda") for _ in range(2 * process_pool.GPU_SHARE + 2)]
    room = capacity(small, "auto")
    placed = [room.place(c, process_pool.need(c, 16)) for c in small]
    devices = [p[0] if p else None for p in placed]
    assert devices.count("cuda:0") == devices.count("cuda:1") == process_pool.GPU_SHARE
    assert devices[-2:] == [None, None]  # the rest wait for a free share
    big = run_config(4096).updated(device="cuda")
    assert capacity([big], "auto").place(big, process_pool.need(big, 16))[0] == "cuda:0"


def test_on_two_cores_a_large_batch_runs_beside_a_small_one_and_takes_both_cores_last(
    monkeypatch,
):
    monkeypatch.setattr(process_pool, "available_cores", lambda: 2)
    monkeypatch.setattr(
        process_pool, "preferred_threads", lambda config: 1 if config.batch_size < 16 else 2
    )
    small, large, last = run_config(1), run_config(512), run_config(2048)
    room = capacity([small, large, last], "auto")
    assert room.place(small, process_pool.need(small, 2), waiting=2)[1].cores == 1
    # Two single-thread runs beat one run on two threads: the large batch does not wait.
    _, granted = room.place(large, process_pool.need(large, 2), waiting=1)
    assert granted.cores == 1 and room.cores == 0
    room.release("cpu", granted)
    room.release("cpu", process_pool.Need(1, 0))  # both ended: the last run is alone
    assert room.place(last, process_pool.need(last, 2), waiting=0)[1].cores == 2
    pinned = run_config(512).updated(threads=2)  # a preset's threads are kept: it waits
    busy = capacity([small, pinned], "auto")
    busy.place(small, process_pool.need(small, 2), waiting=1)
    assert busy.place(pinned, process_pool.need(pinned, 2)) is None


def test_the_live_sweep_shows_several_running_runs():
    runs = [run_config(b) for b in (1, 8, 32)]
    sweep = LiveSweep()
    sweep.apply(SweepStarted("t", runs))
    for index in (0, 1):
        sweep.apply(RunStarted(index, runs[index], ENVIRONMENT, 100, 20, 100))
    assert [r.status for r in sweep.runs] == ["running", "running", "pending"]
    assert sweep.running_indices() == [0, 1] and sweep.current == 0  # the furthest along
    sweep.apply(RunEnded(0, "interrupted", "stopped"))
    assert sweep.running_indices() == [1] and sweep.current == 1  # the headline follows run 1
    sweep.apply(RunStarted(2, runs[2], ENVIRONMENT, 100, 20, 100))
    assert sweep.current == 1  # until it ends


def test_a_killed_worker_costs_only_its_runs_which_are_retried_once_then_failed(
    tmp_path, monkeypatch, capsys
):
    """SIGKILL of a worker (what the kernel's OOM killer does), at a point the test sets: after
    the first epoch of run 1 (once: its retry lives) and of run 2 (every time: it fails)."""
    faults = tmp_path / "faults"
    faults.mkdir()
    (faults / "kill-run1").write_text("once")
    (faults / "kill-run2").write_text("always")
    monkeypatch.setenv(TEST_FAULTS_ENV, str(faults))  # the workers inherit it
    preset = small_sweep(batch_sizes=[8, 16, 32, "full"], threads=1)
    path = write(tmp_path / "p.json", preset.model_dump_json())
    out = tmp_path / "s"
    code, printed = run_cli(capsys, "--headless", str(path), "--out", str(out), "--parallel", "2")
    assert code == 1, printed  # a run failed
    sessions = {s.config.batch_size: s for s in map(load_session, out.glob("*.json"))}
    assert sorted(sessions) == [8, 16, 32, 160]  # a session for every run
    statuses = {batch: s.status for batch, s in sessions.items()}
    assert statuses == {8: "completed", 16: "completed", 32: "failed", 160: "completed"}
    retried, failed = sessions[16], sessions[32]
    assert "retried once after: worker process" in retried.message
    assert "died (signal 9, SIGKILL)" in retried.message and len(retried.epochs) == 2
    assert (
        failed.message.startswith("worker process") and "died (signal 9, SIGKILL)" in failed.message
    )
    assert "retried once after" in failed.message


def test_asking_for_more_runs_at_once_than_the_machine_holds_is_capped(monkeypatch):
    """By cores, and by memory: a worker process takes WORKER_BYTES."""
    monkeypatch.setattr(process_pool, "available_cores", lambda: 2)
    runs = [run_config(b) for b in (1, 2, 4, 8, 16, 32, 64, 128)]
    assert capacity(runs, 8).slots == 2
    assert capacity(runs, 1).slots == 1
    monkeypatch.setattr(process_pool, "available_cores", lambda: 16)
    monkeypatch.setattr(process_pool, "available_memory", lambda: 3 * process_pool.WORKER_BYTES)
    assert machine_slots(runs) == 3 and capacity(runs, 8).slots == 3
    monkeypatch.setattr(process_pool, "available_memory", lambda: 0)
    assert capacity(runs, 8).slots == 1  # one run always trains


def test_headless_warns_when_asked_for_more_runs_at_once_than_the_machine_holds(
    tmp_path, tiny_preset, capsys, monkeypatch
):
    monkeypatch.setattr(process_pool, "available_cores", lambda: 1)
    preset = write(tmp_path / "p.json", tiny_preset.updated(epochs=1).model_dump_json())
    code, output = run_cli(
        capsys, "--headless", str(preset), "--out", str(tmp_path / "s"), "--parallel", "8"
    )
    assert code == 0, output
    assert "parallel 8: this machine holds 1 run at once" in output
