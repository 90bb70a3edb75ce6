"""Sweeps on a Ray cluster (a local one here): the same sessions as on this machine, a worker that
dies retried once and otherwise recorded as failed, Ctrl+C, and clear errors for bad set-ups."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from factories import run_cli, run_config, small_sweep, write

from tui_lab.core.storage import load_session
from tui_lab.core.weights import load_weights
from tui_lab.errors import BadInput
from tui_lab.run.events import EpochEnded, SessionSaved
from tui_lab.run.executor import TEST_FAULTS_ENV
from tui_lab.run.ray_executor import RayExecutor, cluster_device, task_resources
from tui_lab.run.sweep import prepare_sweep, run_sweep
from tui_lab.schema import RayExecutorSettings, Session
from tui_lab.schema.train import MAX_EPOCHS

ray = pytest.importorskip("ray")

# One local Ray per worker process: under pytest-xdist these tests run together, in one worker.
pytestmark = pytest.mark.xdist_group("ray")

ON_RAY = RayExecutorSettings(kind="ray")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# These two come first: they need Ray not yet started in this process.
def test_unreachable_cluster_exits_2_at_once(tmp_path, capsys):
    preset = write(tmp_path / "p.json", small_sweep().model_dump_json())
    start = time.monotonic()
    code, out = run_cli(
        capsys,
        "--headless",
        str(preset),
        "--ray",
        f"127.0.0.1:{closed_port()}",
        "--out",
        str(tmp_path / "s"),
    )
    assert code == 2
    assert "--ray" in out and "cannot be reached" in out and "ray start --head" in out
    assert time.monotonic() - start < 30  # Ray alone would retry for minutes
    assert not list((tmp_path / "s").glob("*.json"))


def test_without_ray_installed_the_flag_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now fails
    preset = {**small_sweep().model_dump(mode="json"), "executor": {"kind": "ray"}}
    path = write(tmp_path / "p.json", preset)
    code, out = run_cli(capsys, "--headless", str(path), "--out", str(tmp_path / "s"))
    assert code == 2
    assert "p.json" in out and "pip install 'tui_lab[ray]'" in out and "Traceback" not in out


@pytest.mark.parametrize(
    ("spec", "gpus", "expected"),
    [("auto", 0, "cpu"), ("auto", 4, "cuda:0"), ("cuda:3", 4, "cuda:0"), ("cpu", 4, "cpu")],
)
def test_the_device_is_chosen_by_what_the_cluster_has(spec, gpus, expected):
    cluster = SimpleNamespace(cluster_resources=lambda: {"CPU": 8, "GPU": gpus})
    assert cluster_device(cluster, spec, source="p.json", field="device") == expected


def test_a_gpu_the_cluster_lacks_is_bad_input_naming_the_field():
    cluster = SimpleNamespace(cluster_resources=lambda: {"CPU": 8})
    with pytest.raises(BadInput, match="not available on the Ray cluster") as error:
        cluster_device(cluster, "cuda", source="p.json", field="device")
    assert error.value.field == "device" and "available: cpu, auto" in error.value.message


def test_each_run_asks_for_the_cpus_it_uses_and_a_gpu_share_by_model_size():
    default = RayExecutorSettings(kind="ray")
    small_batch, large_batch = run_config(8), run_config(64)
    assert task_resources(small_batch, default) == {"num_cpus": 1, "num_gpus": 0}
    assert task_resources(large_batch, default) == {"num_cpus": 2, "num_gpus": 0}
    on_gpu = small_batch.updated(device="cuda:0")
    assert task_resources(on_gpu, default) == {"num_cpus": 1, "num_gpus": 0.25}
    assert task_resources(on_gpu.updated(model="cnn"), default)["num_gpus"] == 1.0
    chosen = RayExecutorSettings(kind="ray", cpus_per_run=3, gpus_per_run=0.5)
    assert task_resources(on_gpu, chosen) == {"num_cpus": 3, "num_gpus": 0.5}
    assert task_resources(large_batch, chosen)["num_cpus"] == 3


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory):
    """A local Ray for this module; workers read fault instructions from the folder it yields."""
    faults = tmp_path_factory.mktemp("faults")
    os.environ[TEST_FAULTS_ENV] = str(faults)  # the workers inherit it when Ray starts them
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield faults
    ray.shutdown()
    del os.environ[TEST_FAULTS_ENV]


def finals(events) -> dict[int, tuple[Path, Session]]:
    """Each run's last saved session, by run index."""
    saved = [e for e in events if isinstance(e, SessionSaved) and e.final]
    return {e.run_index: (e.path, e.session) for e in saved}


def test_a_sweep_on_ray_gives_the_losses_of_a_local_sweep(local_ray, tmp_path):
    preset = small_sweep()
    local = finals(run_sweep(prepare_sweep(preset, out_dir=tmp_path / "local")))
    prepared = prepare_sweep(preset, out_dir=tmp_path / "ray", executor=ON_RAY)
    assert isinstance(prepared.executor, RayExecutor)
    remote = finals(run_sweep(prepared))
    assert sorted(remote) == sorted(local) == [0, 1]
    for index, (path, session) in remote.items():
        local_path, local_session = local[index]
        assert session.status == "completed"
        assert session.config.label() == local_session.config.label()
        for measure in ("train_loss", "val_loss", "val_accuracy"):
            assert [getattr(e, measure) for e in session.epochs] == [
                getattr(e, measure) for e in local_session.epochs
            ]
        assert session.environment.node == ray.util.get_node_ip_address()
        assert local_session.environment.node is None
        weights = load_weights(path.with_name(session.weights_file))
        local_weights = load_weights(local_path.with_name(local_session.weights_file))
        assert all(weights[k].equal(local_weights[k]) for k in local_weights)


def test_every_executor_trains_every_seed_on_the_preset_split(local_ray, tmp_path):
    """The split is the preset's (its seed), not each run's: the same per-seed losses inline, on
    worker processes and on Ray (issue 25)."""
    preset = small_sweep(threads=1, seed=3, replicates=2, batch_sizes=[32], stacking="separate")

    def losses(name, **how):
        sessions = finals(run_sweep(prepare_sweep(preset, out_dir=tmp_path / name, **how)))
        return {s.config.seed: [e.train_loss for e in s.epochs] for _, s in sessions.values()}

    inline = losses("inline")
    assert len(inline) == 2
    assert losses("pool", parallel=2) == inline
    assert losses("ray", executor=ON_RAY) == inline


def test_a_dead_worker_is_retried_once_then_the_run_fails_and_the_sweep_goes_on(
    local_ray, tmp_path
):
    (local_ray / "kill-run0").write_text("once")
    (local_ray / "kill-run1").write_text("always")
    preset = small_sweep(threads=1, batch_sizes=[32, 64, "full"])
    sessions = finals(run_sweep(prepare_sweep(preset, out_dir=tmp_path, executor=ON_RAY)))
    retried, failed, untouched = (sessions[i][1] for i in range(3))
    assert retried.status == "completed" and len(retried.epochs) == 2
    assert "retried once after: WorkerCrashedError" in retried.message
    assert failed.status == "failed" and "WorkerCrashedError" in failed.message
    assert untouched.status == "completed" and untouched.message == ""
    assert len(list(tmp_path.glob("*.json"))) == 3  # a retry writes its run's file again


def test_closing_the_sweep_cancels_the_tasks_and_saves_started_runs_as_interrupted(
    local_ray, tmp_path
):
    # No run can end before the test closes the sweep.
    preset = small_sweep(batch_sizes=[1, 2, 4], epochs=MAX_EPOCHS)
    events = run_sweep(prepare_sweep(preset, out_dir=tmp_path, executor=ON_RAY))
    for event in events:
        if isinstance(event, EpochEnded):
            break
    events.close()  # what Ctrl+C does in headless and quitting does in the app
    statuses = [load_session(p).status for p in tmp_path.glob("*.json")]
    assert statuses and set(statuses) == {"interrupted"}
    deadline = time.monotonic() + 120  # generous: a busy machine slows Ray's cancel, not fails it
    while ray.available_resources().get("CPU", 0) < 2:  # the cancelled tasks gave their CPUs back
        assert time.monotonic() < deadline, "tasks still running after the sweep was closed"
        time.sleep(0.2)


def test_sigterm_ends_a_sweep_on_a_local_ray_like_a_local_sweep(tmp_path):
    """143, runs in flight saved as interrupted, no Ray stack dump, and the local Ray that bslab
    started gone within 10 s (its processes carry the folder given as RAY_TMPDIR)."""
    ray_dir = tempfile.mkdtemp(prefix="bslab-ray-", dir="/tmp")  # short: Ray's socket paths
    long = small_sweep(threads=1, batch_sizes=[1], epochs=500)
    preset = write(tmp_path / "p.json", long.model_dump_json())
    out = tmp_path / "s"
    env = {**os.environ, "RAY_TMPDIR": ray_dir, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "tui_lab", "--headless", str(preset), "--ray", "--out", str(out)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def ray_processes() -> list[str]:
        found = subprocess.run(["pgrep", "-f", ray_dir], capture_output=True, text=True)
        return found.stdout.split()

    try:
        deadline = time.monotonic() + 120
        while not list(out.glob("*.json")):  # the run has started on Ray
            assert proc.poll() is None and time.monotonic() < deadline, "no run started"
            time.sleep(0.2)
        assert ray_processes()  # the check below looks for the right processes
    finally:
        proc.send_signal(signal.SIGTERM)
    output = proc.communicate(timeout=60)[0].decode()
    assert proc.returncode == 143, output
    assert "Stopped by SIGTERM" in output and "Traceback" not in output, output
    assert [load_session(p).status for p in out.glob("*.json")] == ["interrupted"]
    deadline = time.monotonic() + 10
    while ray_processes():
        assert time.monotonic() < deadline, "Ray's processes outlived bslab by 10 s"
        time.sleep(0.2)


def test_ray_workers_rebuild_the_users_model_from_its_spec(local_ray, tmp_path):
    (tmp_path / "nets.py").write_text(
        "from torch import nn\n"
        "def build(shape, classes, width=8):\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear(784, width), nn.ReLU(),"
        " nn.Linear(width, classes))\n"
    )
    model = {"file": str(tmp_path / "nets.py"), "factory": "build", "kwargs": {"width": 6}}
    preset = small_sweep(threads=1, model=model, batch_sizes=[32])
    local = finals(run_sweep(prepare_sweep(preset, out_dir=tmp_path / "local")))
    remote = finals(run_sweep(prepare_sweep(preset, out_dir=tmp_path / "ray", executor=ON_RAY)))
    (_, here), (_, there) = local[0], remote[0]
    assert there.status == "completed" and there.config.model == here.config.model
    assert [e.train_loss for e in there.epochs] == [e.train_loss for e in here.epochs]
