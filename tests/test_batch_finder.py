"""The batch-size finder against a fake memory limit: right size, survives failures, log trials."""

import math
import os

import pytest
import torch
from torch import nn

from tui_lab.analysis import batch_finder
from tui_lab.analysis.batch_finder import find_largest_batch, make_training_trial
from tui_lab.analysis.memory import PeakMemory

OOM_ERRORS = [
    lambda: torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
    lambda: RuntimeError("MPS backend out of memory (MPS allocated: 1 GB)"),
    lambda: RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 8 GB"),
]


@pytest.fixture
def memory_frees(monkeypatch) -> list[int]:
    """Counts the finder's calls to free memory (a full gc pass: slow, and proven elsewhere)."""
    calls: list[int] = []
    monkeypatch.setattr(batch_finder, "free_memory", lambda: calls.append(1))
    return calls


def memory_limited_trial(capacity: int, make_error=OOM_ERRORS[0]):
    def trial(batch_size: int) -> float:
        if batch_size > capacity:
            raise make_error()
        return 100.0 * batch_size

    return trial


@pytest.mark.parametrize(
    ("capacity", "make_error"),
    [(c, OOM_ERRORS[0]) for c in (1, 2, 300, 512, 999)] + [(511, e) for e in OOM_ERRORS[1:]],
)
def test_finds_the_largest_batch_that_fits_in_few_trials(capacity, make_error, memory_frees):
    result = find_largest_batch(memory_limited_trial(capacity, make_error), limit=1000)
    assert result.largest_batch_size == capacity
    assert not result.reached_limit
    assert len(result.trials) <= 2 * math.ceil(math.log2(1000)) + 1
    for t in result.trials:
        assert t.fits == (t.batch_size <= capacity)
        assert t.samples_per_second == (100.0 * t.batch_size if t.fits else None)
        assert t.fits or "out of memory" in t.error or "can't allocate" in t.error
    assert len(memory_frees) == sum(not t.fits for t in result.trials)


def test_stops_at_the_training_set_size_when_memory_is_not_the_bound(memory_frees):
    result = find_largest_batch(memory_limited_trial(10_000), limit=100)
    assert result.largest_batch_size == 100 and result.reached_limit
    assert [t.batch_size for t in result.trials] == [1, 2, 4, 8, 16, 32, 64, 100]


def test_nothing_fits_is_a_result_not_a_crash(memory_frees):
    result = find_largest_batch(memory_limited_trial(3), start=8, limit=100)
    assert result.largest_batch_size is None
    assert [(t.batch_size, t.fits) for t in result.trials] == [(8, False)]


def test_errors_other_than_out_of_memory_propagate():
    def broken(batch_size: int) -> float:
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    with pytest.raises(RuntimeError, match="shapes"):
        find_largest_batch(broken, limit=10)


class MemoryLimited(nn.Module):
    """A small net that runs out of 'memory' (raises as CUDA would) on batches above a size."""

    def __init__(self, capacity: int):
        super().__init__()
        self.capacity = capacity
        self.net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)  # part of the graph exists when the allocation "fails"
        if len(x) > self.capacity:
            raise torch.OutOfMemoryError(f"CUDA out of memory for batch {len(x)}")
        return out


def test_real_training_steps_with_a_memory_limit_leave_the_model_untouched():
    torch.manual_seed(0)
    model = MemoryLimited(capacity=45)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = torch.randn(200, 4), torch.randint(0, 3, (200,))
    trial = make_training_trial(model, optimizer, x, y, "cpu", repeats=2)
    result = find_largest_batch(trial, limit=len(y))
    assert result.largest_batch_size == 45
    assert all(t.samples_per_second > 0 for t in result.trials if t.fits)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert optimizer.state_dict()["state"] == {}
    assert all(p.grad is None for p in model.parameters())


def test_peak_memory_on_cpu_is_the_process_peak_in_bytes():
    with open("/proc/self/statm") as statm:  # current resident pages
        resident = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    peak = PeakMemory("cpu")
    peak.reset()  # cannot reset a process high-water mark: a no-op, not an error
    reading = peak.read()
    assert reading is not None and reading.source == "process_peak_rss"
    # Bytes, not KiB; Linux's RSS counters lag by a few pages, hence the slack.
    assert 0.9 * resident <= reading.peak_bytes < 64 * resident
