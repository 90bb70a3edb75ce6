import sys; sys.path.insert(0, "tests")
from pathlib import Path
import tempfile
from test_app_compare import CompareHost, SWEEP, OLD_RUN
from tui_lab.storage import save_model
def make():
    folder = Path(tempfile.mkdtemp()) / "sessions"; folder.mkdir()
    for s in [*SWEEP, OLD_RUN]:
        save_model(s, folder / f"{s.id}.json")
    app = CompareHost([folder])
    return app
