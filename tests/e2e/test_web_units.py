"""Pure pieces of the web workspace: the REPL's partial-output publisher and the static route."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from kiln.driver.repl.executor import Executor
from kiln.driver.repl.outputs import OutputLimits
from kiln.driver.repl.partials import PartialOutputs
from kiln.server.webui.static import WebUiRoute, _owned


def test_partial_outputs_are_published_throttled_and_never_after_the_end() -> None:
    sent: list[dict[str, Any]] = []
    done = threading.Event()
    executor = Executor({}, OutputLimits())
    partials = PartialOutputs(lambda m: (sent.append(m), done.set()), executor.snapshot)
    executor.on_output = partials.changed
    partials.begin("cmd1")
    executor.write("stdout", "nothing runs")  # no command: not collected, not published
    assert sent == []
    # A command's writes are published: the first at once, the rest after the interval.
    runner = threading.Thread(target=lambda: executor.run("import time\ntime.sleep(0.3)"))
    runner.start()
    while not executor.running:
        time.sleep(0.001)
    executor.write("stdout", "first\n")
    assert done.wait(2)
    assert sent[0] == {
        "event": "partial",
        "id": "cmd1",
        "outputs": [{"output_type": "stream", "name": "stdout", "text": "first\n"}],
    }
    executor.write("stdout", "second\n")
    executor.write("stdout", "third\n")
    deadline = time.monotonic() + 2
    while len(sent) < 2 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert sent[-1]["outputs"][0]["text"] == "first\nsecond\nthird\n"
    assert len(sent) == 2  # two writes within the interval: one send
    runner.join()
    partials.end()
    count = len(sent)
    partials.changed()
    assert len(sent) == count


def test_partial_outputs_skip_large_outputs() -> None:
    executor = Executor({}, OutputLimits())
    assert executor.snapshot(10) is None  # no command runs


def test_the_route_owns_only_the_apps_paths(tmp_path: Path) -> None:
    for path in ("/", "/assets/x.js", "/workspace", "/workspace/Users/a", "/jobs/1", "/login"):
        assert _owned(path), path
    for path in ("/api/2.0/workspace/list", "/health", "/driver-proxy/o/0/c/1/", "/jobsx"):
        assert not _owned(path), path
    # Without a build, every app path answers the "not built" page.
    route = WebUiRoute(tmp_path)
    response = route.response("/workspace")
    assert response.status_code == 200 and b"not built" in bytes(response.body)
    (tmp_path / "index.html").write_text("<html>app</html>")
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "a.js").write_text("x")
    (tmp_path.parent / "secret.txt").write_text("s")
    assert route.response("/assets/a.js").status_code == 200
    assert route.response("/assets/../../secret.txt").status_code == 404
    assert route.response("/assets/missing.js").status_code == 404
