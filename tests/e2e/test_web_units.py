"""Pure pieces of the web workspace: the REPL's partial-output publisher and the static route."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

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


def test_the_widgets_bar_helpers_describe_and_set_values() -> None:
    from kiln.driver.dbutils.errors import ExecutionError, InputWidgetNotDefined
    from kiln.driver.dbutils.widgets import WidgetsUtils

    widgets = WidgetsUtils()
    assert widgets._describe() == []
    widgets.text("t", "a", "Text")
    widgets.dropdown("d", "x", ["x", "y"])
    widgets.combobox("c", "p", ["p", "q"])
    widgets.multiselect("m", "x", ["x", "y", "z"])
    described = widgets._describe()
    assert [w["name"] for w in described] == ["t", "d", "c", "m"]
    assert described[0] == {
        "name": "t",
        "kind": "text",
        "label": "Text",
        "default": "a",
        "choices": [],
        "value": "a",
    }
    assert described[1]["label"] == "d" and described[1]["choices"] == ["x", "y"]
    widgets._set("t", "b")
    widgets._set("d", "y")
    widgets._set("c", "free text")
    after = widgets._set("m", "x,z")
    assert [w["value"] for w in after] == ["b", "y", "free text", "x,z"]
    assert widgets.get("t") == "b" and widgets.getAll()["m"] == "x,z"
    # Bad values and unknown widgets are refused; nothing changes.
    for name, value in (("d", "nope"), ("m", "x,nope"), ("t", 1)):
        with pytest.raises(ExecutionError):
            widgets._set(name, value)
    with pytest.raises(InputWidgetNotDefined):
        widgets._set("missing", "v")
    assert widgets.get("d") == "y"
    # A run's parameters still win; redefining keeps a still-valid value, drops the rest.
    widgets._bind({"t": "param"})
    assert widgets.get("t") == "param"
    widgets._bind({})
    widgets.dropdown("d", "x", ["x", "z"])
    widgets.text("t", "a")
    assert widgets.get("d") == "x" and widgets.get("t") == "b"
    widgets.remove("t")
    widgets.text("t", "a")
    assert widgets.get("t") == "a"
    widgets.removeAll()
    assert widgets._describe() == []


def test_spark_ui_grants_expire_are_bound_and_redeem_once() -> None:
    import time

    from kiln.compute import proxy_grants
    from kiln.errors import Unauthenticated

    sign_in = proxy_grants.ProxySignIn()
    claims = {"kind": "grant", "cluster": "c1", "port": 4040, "user": 7, "nonce": "n"}
    expired = proxy_grants._sign({**claims, "exp": int(time.time()) - 1})
    with pytest.raises(Unauthenticated):
        sign_in.redeem(expired, "c1", 4040)
    valid = proxy_grants._sign({**claims, "exp": int(time.time()) + 60})
    for cluster, port in (("c2", 4040), ("c1", 4041)):
        with pytest.raises(Unauthenticated):
            sign_in.redeem(valid, cluster, port)
    user, cookie = sign_in.redeem(valid, "c1", 4040)
    assert user == 7
    with pytest.raises(Unauthenticated):
        sign_in.redeem(valid, "c1", 4040)
    assert sign_in.check_cookie(cookie, "c1", 4040) == 7
    assert sign_in.check_cookie(cookie, "c1", 4041) is None
    assert sign_in.check_cookie(valid, "c1", 4040) is None  # a grant is not a cookie
    assert sign_in.check_cookie("x.y", "c1", 4040) is None
    assert sign_in.check_cookie("\u00e9", "c1", 4040) is None
    stale = proxy_grants._sign({**claims, "kind": "cookie", "exp": int(time.time()) - 1})
    assert sign_in.check_cookie(stale, "c1", 4040) is None
