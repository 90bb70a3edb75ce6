"""``bslab serve``: the app in a web browser, on localhost unless told (loudly) otherwise.

The browser test runs the real thing: ``bslab serve`` on a free port of 127.0.0.1, headless
Chromium (the system's: ``apt-get install chromium``) driven by Playwright opens the page, sees
the Setup screen, starts a tiny sweep with ctrl+r and sees its loss chart. The terminal is drawn
on a canvas, so what the page shows is read from the stream the server sends it. Where no
Chromium is installed, or it cannot start, the test is skipped with the reason.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from factories import small_sweep

from tui_lab.cli.main import main
from tui_lab.schema.trajectory import TrajectorySettings

REPO = Path(__file__).resolve().parent.parent
ANSI = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[PX^_][^\x1b]*\x1b\\|.)")
BRAILLE = re.compile("[\u2801-\u28ff]")  # the charts' dots (plotext's braille marker)
BROWSER_SECONDS = 180  # the whole browser test, start to end, on a busy machine


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def served(monkeypatch) -> list:
    """Servers the command would start, recorded instead of run."""
    from textual_serve.server import Server

    started: list[Server] = []
    monkeypatch.setattr(Server, "serve", lambda self, debug=False: started.append(self))
    return started


def test_serve_listens_on_localhost_and_runs_the_app_with_its_arguments(served, capsys):
    port = free_port()
    assert main(["serve", "--port", str(port), "--", "--out", "runs"]) == 0
    (server,) = served
    assert (server.host, server.port) == ("127.0.0.1", port)
    assert server.command.endswith("-m tui_lab.cli.main --out runs")
    assert "WARNING" not in capsys.readouterr().err


def test_serving_beyond_localhost_says_so_loudly(served, capsys):
    assert main(["serve", "--host", "0.0.0.0", "--port", str(free_port())]) == 0
    err = capsys.readouterr().err
    assert "WARNING: bslab serve listens on 0.0.0.0" in err and "no password" in err
    assert "ssh -L" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--", "--headless"], "--headless: the browser shows the app"),
        (["--port", "0"], "--port: 0 is not a port"),
        (["--", "missing.json"], "missing.json: file not found"),
    ],
)
def test_bad_app_arguments_fail_before_serving(served, capsys, argv, message):
    assert main(["serve", *argv]) == 2
    assert message in capsys.readouterr().err
    assert not served


def test_a_port_in_use_is_named(served, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
    assert f"--port: cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


def chromium_or_skip() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no Chromium on this machine (apt-get install chromium) for the browser test")


def wait_for_port(port: int, server: subprocess.Popen, deadline: float) -> None:
    while time.monotonic() < deadline:
        assert server.poll() is None, "bslab serve exited"
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssertionError("bslab serve did not listen in time")


def test_the_app_in_a_browser_starts_a_sweep_and_draws_its_chart(tmp_path):
    pytest.importorskip("textual_serve")
    playwright_api = pytest.importorskip("playwright.sync_api")
    executable = chromium_or_skip()
    deadline = time.monotonic() + BROWSER_SECONDS
    preset = small_sweep(
        name="browser", batch_sizes=[32], epochs=3, trajectory=TrajectorySettings(enabled=False)
    )
    preset_path = tmp_path / "browser.json"
    preset_path.write_text(preset.model_dump_json())
    out, port = tmp_path / "sessions", free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "BSLAB_OFFLINE": "1"}
    server = subprocess.Popen(
        [sys.executable, "-m", "tui_lab.cli.main", "serve", "--port", str(port), "--",
         str(preset_path), "--out", str(out)],
        env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True,  # its app processes end with it (the group is signalled)
    )  # fmt: skip
    screen: list[str] = []  # what the server sent the page's terminal, as text

    def received(payload: str | bytes) -> None:
        text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload
        screen.append(ANSI.sub("", text))

    def wait_for(condition, what: str) -> None:
        while not condition():
            assert time.monotonic() < deadline, f"the page never showed {what}"
            page.wait_for_timeout(200)

    try:
        wait_for_port(port, server, deadline)
        with playwright_api.sync_playwright() as playwright:
            try:
                browser = playwright.chromium.launch(
                    executable_path=executable, headless=True, args=["--no-sandbox"]
                )
            except playwright_api.Error as error:
                pytest.skip(f"Chromium cannot start here: {str(error).splitlines()[0]}")
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.on("websocket", lambda ws: ws.on("framereceived", received))
            page.goto(f"http://127.0.0.1:{port}/", timeout=30_000)
            page.wait_for_selector("body.-first-byte", timeout=60_000)  # the terminal drew
            wait_for(lambda: "Start" in "".join(screen) and "browser" in "".join(screen),
                     "the Setup screen")  # fmt: skip
            page.locator(".textual-terminal").click()
            setup_seen = len(screen)
            page.keyboard.press("Control+r")
            wait_for(lambda: BRAILLE.search("".join(screen[setup_seen:])), "a chart")
            wait_for(lambda: any(json.loads(p.read_text())["status"] == "completed"
                                 for p in out.glob("*.json")), "the run saved")  # fmt: skip
            page.screenshot(path=str(tmp_path / "browser.png"))
            browser.close()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
