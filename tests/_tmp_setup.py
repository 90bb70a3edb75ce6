from pathlib import Path
import tempfile
from tui_lab.app.app import BslabApp
from tui_lab.schema import OptimizerConfig, TrainPreset
def make():
    preset = TrainPreset(name="tiny", dataset="digits", train_subset=200,
        optimizer=OptimizerConfig(name="sgd", lr=0.05, momentum=0.9),
        batch_sizes=[8, 32], epochs=2, device="cpu")
    return BslabApp(preset=preset, out_dir=Path(tempfile.mkdtemp()), worker_mode="thread")
