"""Peak memory of a run: what the device's tensors needed at most (cuda) or the process (cpu).

On cuda the allocator's peak counter is reset at the start of a run, so each run gets its own
number (tensors only; the caching allocator and the CUDA context hold more). Elsewhere the best
portable figure is the process's peak resident set size from ``getrusage``: a high-water mark
over the whole life of the process that cannot be reset, so a run after a bigger one in the same
process reports the bigger one's peak. It includes Python, torch and the data set, not just the
run. On mps the same process figure is used (unified memory); on Windows it is unavailable.
"""

from __future__ import annotations

import sys

import torch

from tui_lab.schema.analysis import MemoryPeak

try:
    import resource
except ImportError:  # Windows
    resource = None  # type: ignore[assignment]


class PeakMemory:
    """``reset()`` at the start of a run, ``read()`` at its end (or at any point in between)."""

    def __init__(self, device: torch.device | str):
        self.device = torch.device(device)

    def reset(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        # The process's peak RSS cannot be reset: nothing to do elsewhere.

    def read(self) -> MemoryPeak | None:
        if self.device.type == "cuda":
            peak = torch.cuda.max_memory_allocated(self.device)
            return MemoryPeak(peak_bytes=peak, source="cuda_peak_allocated")
        if resource is None:
            return None
        max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        # Linux reports kibibytes, macOS bytes.
        peak = max_rss if sys.platform == "darwin" else max_rss * 1024
        return MemoryPeak(peak_bytes=peak, source="process_peak_rss")
