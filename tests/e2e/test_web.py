"""The web workspace in a real browser (Debian's Chromium driven by Playwright), and its APIs.

One server and one browser for the module; the notebook acceptance test creates the module's
one single-node cluster from the notebook page, and the jobs test runs its tasks on it.
Screenshots of each page land in the module's pytest tmp dir (`web-screenshots`).
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from compute_support import compute_env, running_compute_server, unique
from databricks.sdk import WorkspaceClient
from databricks.sdk.service.workspace import ImportFormat, Language

from kiln.server.webui import dist_dir
from support import Server, assert_error

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Generous: the machine is shared with Spark tests.
UI_WAIT_MS = 60_000
CLUSTER_WAIT_MS = 480_000

pytestmark = [
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is not installed"),
    pytest.mark.skipif(
        not (dist_dir() / "index.html").is_file(),
        reason="the web UI is not built (scripts/bootstrap.sh, or npm ci && npm run build in web/)",
    ),
]


@pytest.fixture(scope="module")
def compute_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The module's server (compute knobs for tests: the notebook test starts a cluster)."""
    data = tmp_path_factory.mktemp("web") / "data"
    with running_compute_server(data, compute_env()) as srv:
        yield srv


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go (kept as test artifacts)."""
    target = os.environ.get("KILN_TEST_ARTIFACTS")
    if target:
        path = Path(target) / "web-screenshots"
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path_factory.mktemp("web-screenshots")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for the module, closed at its end."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context (its own sessionStorage) and page; dialogs answered in order."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(UI_WAIT_MS)
    answers: list[str] = []
    page.answers = answers

    def on_dialog(dialog: Any) -> None:
        if dialog.type == "prompt":
            dialog.accept(answers.pop(0) if answers else "")
        else:
            dialog.accept()

    page.on("dialog", on_dialog)
    try:
        yield page
    finally:
        context.close()


def sign_in(page: Any, server: Server, token: str | None = None) -> None:
    page.goto(server.url + "/")
    page.fill("input[name=token]", token or server.token)
    page.click("button[type=submit]")
    page.wait_for_selector("[data-testid=current-user]")


def shot(page: Any, shots: Path, name: str) -> None:
    page.screenshot(path=str(shots / f"{name}.png"), full_page=True)


# --- serving -------------------------------------------------------------------------------


def test_the_app_is_served_without_a_token_and_the_api_still_needs_one(
    compute_server: Server, http: httpx.Client
) -> None:
    root = httpx.get(compute_server.url + "/")
    assert root.status_code == 200 and '<div id="root">' in root.text
    assert root.headers["cache-control"] == "no-cache"
    assert "default-src 'self'" in root.headers["content-security-policy"]
    # Client routes answer the same page, which routes in the browser.
    for route in ("/workspace/Users/x", "/jobs/1/runs/2", "/compute", "/settings", "/login"):
        r = httpx.get(compute_server.url + route)
        assert r.status_code == 200 and r.text == root.text, route
    asset = re.search(r'src="(/assets/[^"]+\.js)"', root.text)
    assert asset is not None
    r = httpx.get(compute_server.url + asset.group(1))
    assert r.status_code == 200 and "immutable" in r.headers["cache-control"]
    assert httpx.get(compute_server.url + "/assets/nope.js").status_code == 404
    assert httpx.get(compute_server.url + "/assets/..%2f..%2fstatic.py").status_code == 404
    # The API is untouched: no token, 401; an unknown API path, the API's 404.
    assert_error(
        httpx.get(compute_server.url + "/api/2.0/workspace/list?path=/"), 401, "UNAUTHENTICATED"
    )
    # Only GET/HEAD reach the app: other methods on its paths need a token, then are a 404.
    assert_error(httpx.post(compute_server.url + "/workspace"), 401, "UNAUTHENTICATED")
    assert_error(http.post("/workspace"), 404, "ENDPOINT_NOT_FOUND")
    assert http.get("/api/2.0/no-such-thing").status_code == 404


# --- revisions and the stream: bad input ----------------------------------------------------


def test_revisions_api(compute_server: Server, http: httpx.Client, make_compute_user: Any) -> None:
    home = "/Users/admin"
    me = http.get("/api/2.0/preview/scim/v2/Me").json()["userName"]
    home = f"/Users/{me}"
    path = f"{home}/{unique('rev')}"
    content = base64.b64encode(b"# Databricks notebook source\nprint(1)\n").decode()
    r = http.post(
        "/api/2.0/workspace/import",
        json={"path": path, "format": "SOURCE", "language": "PYTHON", "content": content},
    )
    assert r.status_code == 200, r.text
    assert http.get("/api/2.0/kiln/notebook-revisions/get", params={"path": path}).json() == {}
    cells = [
        {
            "command": "print(1)",
            "outputs": [{"output_type": "stream", "name": "stdout", "text": "1\n"}],
        }
    ]
    first = http.post("/api/2.0/kiln/notebook-revisions/save", json={"path": path, "cells": cells})
    assert first.status_code == 200, first.text
    second = http.post(
        "/api/2.0/kiln/notebook-revisions/save",
        json={"path": path, "cells": [{"command": "print(2)", "outputs": []}]},
    ).json()
    newest = http.get("/api/2.0/kiln/notebook-revisions/get", params={"path": path}).json()
    assert (
        newest["revision_id"] == second["revision_id"]
        and newest["cells"][0]["command"] == "print(2)"
    )
    listed = http.get("/api/2.0/kiln/notebook-revisions/list", params={"path": path}).json()
    assert [r["revision_id"] for r in listed["revisions"]] == [
        second["revision_id"],
        first.json()["revision_id"],
    ]
    old = http.get(
        "/api/2.0/kiln/notebook-revisions/get",
        params={"path": path, "revision_id": first.json()["revision_id"]},
    ).json()
    assert old["cells"] == cells
    # Bad input.
    save = "/api/2.0/kiln/notebook-revisions/save"
    assert_error(http.post(save, json={"cells": []}), 400, "INVALID_PARAMETER_VALUE")
    assert_error(http.post(save, json={"path": path, "cells": "x"}), 400, "INVALID_PARAMETER_VALUE")
    assert_error(
        http.post(save, json={"path": path, "cells": [{"command": 1}]}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert_error(
        http.post(save, json={"path": path, "cells": [{"command": "x", "outputs": [1]}]}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert_error(http.post(save, json={"path": home, "cells": []}), 400, "INVALID_PARAMETER_VALUE")
    assert_error(
        http.post(save, json={"path": f"{home}/missing", "cells": []}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    assert_error(
        http.get(
            "/api/2.0/kiln/notebook-revisions/get", params={"path": path, "revision_id": 10**9}
        ),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    stranger = make_compute_user()
    assert_error(
        stranger.http.get("/api/2.0/kiln/notebook-revisions/list", params={"path": path}),
        403,
        "PERMISSION_DENIED",
    )
    assert_error(
        stranger.http.post(save, json={"path": "/Shared", "cells": []}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    # The stream refuses bad input with a plain error before it starts.
    stream = "/api/2.0/kiln/commands/stream"
    assert_error(http.get(stream), 400, "INVALID_PARAMETER_VALUE")
    assert_error(
        http.get(stream, params={"clusterId": "nope", "contextId": "1", "commandId": "2"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )


# --- the browser ----------------------------------------------------------------------------


def test_sign_in_browse_create_rename_move_delete_and_log_out(
    compute_server: Server, sdk_admin: WorkspaceClient, page: Any, shots: Path
) -> None:
    page.goto(compute_server.url + "/")
    page.fill("input[name=token]", "dapi-not-a-token")
    page.click("button[type=submit]")
    assert "UNAUTHENTICATED" in page.locator("[role=alert]").inner_text()
    shot(page, shots, "login")
    sign_in(page, compute_server)
    me = page.locator("[data-testid=current-user]").inner_text()
    assert page.locator("[data-testid=folder-path]").inner_text() == f"/Users/{me}"
    folder = unique("folder")
    evil = "<img src=x onerror=alert(1)>"
    page.answers.extend([folder])
    page.click("text=New folder")
    page.click(f"[data-testid=object-row] >> text={folder}")
    page.wait_for_selector(f"[data-testid=folder-path]:has-text('{folder}')")
    # A name that is HTML stays text.
    page.answers.extend([evil])
    page.click("text=New notebook")
    page.wait_for_selector("[data-testid=notebook]")
    assert page.locator("[data-testid=notebook-name]").inner_text() == evil
    page.go_back()
    page.wait_for_selector("[data-testid=object-row]")
    assert page.locator("img[src=x]").count() == 0
    base = f"/Users/{me}/{folder}"
    page.answers.extend(["renamed"])
    page.locator(f"[data-path='{base}/{evil}'] >> text=Rename").click()
    page.wait_for_selector(f"[data-path='{base}/renamed']")
    sdk_admin.workspace.mkdirs(f"{base}/sub")
    page.reload()
    page.answers.extend([f"{base}/sub"])
    page.locator(f"[data-path='{base}/renamed'] >> text=Move").click()
    page.wait_for_selector(f"[data-path='{base}/renamed']", state="detached")
    assert sdk_admin.workspace.get_status(f"{base}/sub/renamed").object_type is not None
    # Import a .py source file and export it back.
    source = b"# Databricks notebook source\nprint('imported')\n"
    page.set_input_files(
        "[data-testid=import-file]",
        files=[{"name": "imported.py", "mimeType": "text/x-python", "buffer": source}],
    )
    page.wait_for_selector(f"[data-path='{base}/imported']")
    with page.expect_download() as download:
        page.locator(f"[data-path='{base}/imported'] >> text=JUPYTER").click()
    exported = json.loads(Path(download.value.path()).read_text())
    assert "print('imported')" in "".join(exported["cells"][0]["source"])
    page.locator(f"[data-path='{base}/sub'] >> text=Delete").click()
    page.wait_for_selector(f"[data-path='{base}/sub']", state="detached")
    shot(page, shots, "workspace")
    # A failed call shows Databricks' message.
    page.answers.extend(["imported"])
    page.click("text=New folder")
    assert "RESOURCE_ALREADY_EXISTS" in page.locator("[data-testid=error]").inner_text()
    page.click("text=Log out")
    page.wait_for_selector("input[name=token]")
    assert page.evaluate("sessionStorage.getItem('kiln.token')") is None


@pytest.fixture(scope="module")
def sdk_admin(compute_server: Server) -> WorkspaceClient:
    """databricks-sdk as the module server's admin."""
    return WorkspaceClient(host=compute_server.url, token=compute_server.token, auth_type="pat")


def type_cell(page: Any, index: int, text: str) -> None:
    page.locator("[data-testid=cell] .cm-content").nth(index).click()
    page.keyboard.type(text)


@pytest.mark.slow
def test_notebook_on_a_new_single_node_cluster_keeps_outputs_across_reload(
    compute_server: Server, sdk_admin: WorkspaceClient, page: Any, shots: Path
) -> None:
    sign_in(page, compute_server)
    folder = unique("nb")
    page.answers.extend([folder])
    page.click("text=New folder")
    page.click(f"[data-testid=object-row] >> text={folder}")
    page.wait_for_selector(f"[data-testid=folder-path]:has-text('{folder}')")
    page.answers.extend(["acceptance"])
    page.click("text=New notebook")
    page.wait_for_selector("[data-testid=cell]")
    page.click("[data-testid=new-cluster]")
    # Attached: the cluster's state badge shows beside the selector.
    page.wait_for_selector("[data-testid=cluster-select] + [data-testid=state]")
    type_cell(page, 0, "print(42)")
    page.click("text=+ Add cell")
    type_cell(page, 1, "%sql\nSELECT 1 AS a, 'x' AS b UNION ALL SELECT 2, 'y'")
    page.click("text=+ Add cell")
    type_cell(page, 2, "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.show()")
    page.click("text=+ Add cell")
    type_cell(page, 3, "%md\n# Title <script>alert(1)</script>")
    page.click("[data-testid=run-all]")
    cells = page.locator("[data-testid=cell]")
    cells.nth(0).locator("[data-testid=stream-output]").wait_for(timeout=CLUSTER_WAIT_MS)
    assert cells.nth(0).locator("[data-testid=stream-output]").inner_text().strip() == "42"
    table = cells.nth(1).locator("[data-testid=table-output]")
    table.wait_for(timeout=CLUSTER_WAIT_MS)
    assert table.locator("th").nth(0).inner_text().startswith("a")
    assert table.locator("tbody tr").count() == 2
    table.locator("th").nth(0).click()
    table.locator("th").nth(0).click()  # descending
    assert table.locator("tbody tr").nth(0).locator("td").nth(0).inner_text() == "2"
    cells.nth(2).locator("[data-testid=image-output]").wait_for(timeout=CLUSTER_WAIT_MS)
    src = cells.nth(2).locator("[data-testid=image-output]").get_attribute("src")
    assert src.startswith("data:image/png;base64,iVBOR")
    cells.nth(3).locator("[data-testid=markdown] h1").wait_for()
    assert page.locator("[data-testid=markdown] script").count() == 0
    page.wait_for_selector("[data-testid=save-state]:text-is('saved')")
    shot(page, shots, "notebook")
    # An error shows its traceback; Shift+Enter runs the cell.
    page.click("text=+ Add cell")
    type_cell(page, 4, "1/0")
    page.keyboard.press("Shift+Enter")
    error = cells.nth(4).locator("[data-testid=error-output]")
    error.wait_for()
    assert "ZeroDivisionError" in error.inner_text()
    # Outputs stream in while the cell runs: the first print shows before the cell ends.
    page.click("text=+ Add cell")
    type_cell(page, 5, "import time\nprint('early')\ntime.sleep(4)\nprint('late')")
    cells.nth(5).locator("[data-testid=run-cell]").click()
    cells.nth(5).locator("[data-testid=stream-output]:has-text('early')").wait_for()
    assert "late" not in cells.nth(5).locator("[data-testid=outputs]").inner_text()
    assert cells.nth(5).locator("[data-testid=cell-status]").inner_text() == "Running…"
    cells.nth(5).locator("[data-testid=stream-output]:has-text('late')").wait_for()
    # The widgets bar: a cell's widgets show as inputs; a changed value is the next `get`'s.
    page.click("text=+ Add cell")
    type_cell(
        page,
        6,
        'dbutils.widgets.dropdown("color", "red", ["red", "blue"], "Colour")\n'
        'dbutils.widgets.text("who", "world")\n'
        'dbutils.widgets.multiselect("tags", "a", ["a", "b", "c"])\n'
        'print(dbutils.widgets.get("color"))',
    )
    cells.nth(6).locator("[data-testid=run-cell]").click()
    cells.nth(6).locator("[data-testid=stream-output]:has-text('red')").wait_for()
    bar = page.locator("[data-testid=widgets]")
    bar.locator("[data-widget=color] select").wait_for()
    assert bar.locator("[data-widget=color]").inner_text().startswith("Colour")
    assert bar.locator("[data-widget=who] input").input_value() == "world"
    bar.locator("[data-widget=color] select").select_option("blue")
    bar.locator("[data-widget=tags] select").select_option(["b", "c"])
    bar.locator("[data-widget=who] input").fill("kiln")
    bar.locator("[data-widget=who] input").press("Enter")
    page.click("text=+ Add cell")
    type_cell(
        page,
        7,
        'print(dbutils.widgets.get("color"), dbutils.widgets.get("who"), '
        'dbutils.widgets.get("tags"))',
    )
    cells.nth(7).locator("[data-testid=run-cell]").click()
    out = cells.nth(7).locator("[data-testid=stream-output]")
    out.wait_for()
    assert out.inner_text().strip() == "blue kiln b,c"
    # The internal widget commands left no output in any cell.
    assert cells.nth(6).locator("[data-testid=outputs]").inner_text().strip() == "red"
    shot(page, shots, "notebook-widgets")
    page.wait_for_selector("[data-testid=save-state]:text-is('saved')")
    page.reload()
    page.wait_for_selector("[data-testid=cell]")
    cells = page.locator("[data-testid=cell]")
    assert cells.count() == 8
    assert cells.nth(0).locator("[data-testid=stream-output]").inner_text().strip() == "42"
    assert cells.nth(1).locator("[data-testid=table-output] tbody tr").count() == 2
    assert cells.nth(2).locator("[data-testid=image-output]").count() == 1
    assert cells.nth(3).locator("[data-testid=markdown] h1").count() == 1
    assert "ZeroDivisionError" in cells.nth(4).inner_text()
    # The workspace holds the SOURCE with the cells, magics as MAGIC lines.
    me = page.locator("[data-testid=current-user]").inner_text()
    exported = sdk_admin.workspace.export(f"/Users/{me}/{folder}/acceptance")
    source = base64.b64decode(exported.content or "").decode()
    assert "print(42)" in source and "# MAGIC %sql" in source and "# COMMAND ----------" in source
    shot(page, shots, "notebook-reloaded")


@pytest.fixture(scope="module")
def job_notebooks(sdk_admin: WorkspaceClient) -> tuple[str, str]:
    """Two notebooks for the job's tasks."""
    folder = f"/Shared/{unique('job')}"
    sdk_admin.workspace.mkdirs(folder)
    paths = []
    for name, code in (("first", "x = 1"), ("second", "dbutils.notebook.exit('ok')")):
        path = f"{folder}/{name}"
        sdk_admin.workspace.import_(
            path,
            content=base64.b64encode(f"# Databricks notebook source\n{code}\n".encode()).decode(),
            format=ImportFormat.SOURCE,
            language=Language.PYTHON,
        )
        paths.append(path)
    return paths[0], paths[1]


@pytest.mark.slow
def test_two_task_job_from_the_form_runs_and_its_dag_shows_success(
    compute_server: Server,
    sdk_admin: WorkspaceClient,
    job_notebooks: tuple[str, str],
    page: Any,
    shots: Path,
    running_cluster: str,
) -> None:
    sign_in(page, compute_server)
    page.goto(compute_server.url + "/compute")
    page.wait_for_selector("[data-testid=cluster-row]")
    shot(page, shots, "compute")
    page.goto(compute_server.url + f"/compute/clusters/{running_cluster}")
    page.wait_for_selector("[data-testid=events] tr")
    shot(page, shots, "cluster")
    page.goto(compute_server.url + "/jobs/create")
    name = unique("ui-job")
    page.fill("input[name=job_name]", name)
    page.locator("input[name=task_path]").nth(0).fill(job_notebooks[0])
    page.locator("select[name=task_cluster]").nth(0).select_option(running_cluster)
    page.click("[data-testid=add-task]")
    page.locator("input[name=task_path]").nth(1).fill(job_notebooks[1])
    page.locator("select[name=task_cluster]").nth(1).select_option(running_cluster)
    assert page.locator("input[name=depends_on]").nth(1).input_value() == "task_1"
    shot(page, shots, "job-form")
    page.click("button[type=submit]")
    page.click("[data-testid=run-now]")
    page.wait_for_selector("[data-testid=dag]")
    page.wait_for_selector(
        "[data-testid=run-state] >> text=/SUCCESS|FAILED|CANCELED|TIMEDOUT/",
        timeout=CLUSTER_WAIT_MS,
    )
    tasks = page.locator("[data-testid=dag-task]")
    assert tasks.count() == 2
    assert [tasks.nth(i).get_attribute("data-state") for i in range(2)] == ["SUCCESS", "SUCCESS"]
    assert page.locator("[data-testid=run-state]").inner_text() == "SUCCESS"
    page.locator("[data-testid=dag-task][data-task=task_2]").click()
    page.wait_for_selector("[data-testid=task-output] >> text=ok")
    shot(page, shots, "job-run")
    job = next(j for j in sdk_admin.jobs.list() if j.settings and j.settings.name == name)
    settings = sdk_admin.jobs.get(job.job_id).settings
    assert settings is not None and settings.tasks is not None
    assert [t.task_key for t in settings.tasks] == ["task_1", "task_2"]
    assert settings.tasks[1].depends_on[0].task_key == "task_1"  # type: ignore[index]
    # Edit the job: the form loads its settings; saving resets the job with the changes.
    page.goto(f"{compute_server.url}/jobs/{job.job_id}")
    page.click("[data-testid=edit-job]")
    page.wait_for_selector("[data-testid=job-form] >> text=Edit job")
    assert page.locator("input[name=job_name]").input_value() == name
    assert page.locator("input[name=task_path]").nth(1).input_value() == job_notebooks[1]
    assert page.locator("input[name=depends_on]").nth(1).input_value() == "task_1"
    page.fill("input[name=job_name]", name + "-edited")
    page.locator("input[name=task_key]").nth(1).fill("second")
    page.locator("[data-testid=task-form]").nth(1).locator("textarea").fill("greeting=hi")
    page.click("[data-testid=save-job]")
    page.wait_for_selector(f"[data-testid=job-name]:text-is('{name}-edited')")
    edited = sdk_admin.jobs.get(job.job_id).settings
    assert edited is not None and edited.tasks is not None and edited.name == name + "-edited"
    assert [t.task_key for t in edited.tasks] == ["task_1", "second"]
    second = edited.tasks[1]
    assert second.depends_on is not None and second.depends_on[0].task_key == "task_1"
    assert second.notebook_task is not None
    assert second.notebook_task.notebook_path == job_notebooks[1]
    assert second.notebook_task.base_parameters == {"greeting": "hi"}
    assert second.existing_cluster_id == running_cluster
    # A failed save shows Databricks' message (a dependency on a task that does not exist).
    page.click("[data-testid=edit-job]")
    page.locator("input[name=depends_on]").nth(1).fill("nope")
    page.click("[data-testid=save-job]")
    assert "INVALID_PARAMETER_VALUE" in page.locator("[data-testid=error]").inner_text()
    shot(page, shots, "job-edit")


@pytest.mark.slow
def test_the_spark_ui_link_signs_the_tab_in_for_its_own_path_only(
    compute_server: Server,
    http: httpx.Client,
    make_compute_user: Any,
    running_cluster: str,
    page: Any,
    shots: Path,
) -> None:
    grants = "/api/2.0/kiln/driver-proxy-grants"
    r = http.post(grants, json={"cluster_id": running_cluster})
    assert r.status_code == 200, r.text
    grant = r.json()
    port = grant["port"]
    # The Spark UI's own prefix (its links are under it): the workspace id is the org.
    base = re.sub(r"\?.*", "", grant["url"])
    assert re.fullmatch(rf"/driver-proxy/o/\d+/{running_cluster}/{port}/", base)
    org = base.split("/")[3]
    assert grant["url"].startswith(base + "?kiln_grant=") and grant["expires_at"] > 0
    assert http.post(grants, json={"cluster_id": running_cluster, "port": port}).status_code == 200
    # Only for a caller who may attach; bad input refused.
    stranger = make_compute_user()
    assert_error(
        stranger.http.post(grants, json={"cluster_id": running_cluster}), 403, "PERMISSION_DENIED"
    )
    assert_error(http.post(grants, json={"cluster_id": "nope"}), 400, "INVALID_PARAMETER_VALUE")
    assert_error(http.post(grants, json={}), 400, "INVALID_PARAMETER_VALUE")
    assert_error(
        http.post(grants, json={"cluster_id": running_cluster, "port": "x"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert_error(
        http.post(grants, json={"cluster_id": running_cluster, "port": 1}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert_error(
        httpx.post(compute_server.url + grants, json={"cluster_id": running_cluster}),
        401,
        "UNAUTHENTICATED",
    )
    with httpx.Client(base_url=compute_server.url, timeout=60) as tab:
        # A tampered grant, or one for another path, is refused.
        token = grant["url"].split("kiln_grant=", 1)[1]
        assert_error(tab.get(base + "?kiln_grant=" + token[:-2] + "AA"), 401, "UNAUTHENTICATED")
        assert_error(
            tab.get(f"/driver-proxy/o/{org}/{running_cluster}/{port + 1}/?kiln_grant={token}"),
            401,
            "UNAUTHENTICATED",
        )
        # The grant becomes a cookie for exactly its path, and a redirect without the grant.
        r = tab.get(grant["url"] + "&x=1")
        assert r.status_code == 303 and r.headers["location"] == base + "?x=1"
        cookie = r.headers["set-cookie"]
        for part in (f"Path={base}", "HttpOnly", "SameSite=strict", "Max-Age=3600"):
            assert part.lower() in cookie.lower(), cookie
        ui = tab.get(base + "jobs/")
        assert ui.status_code == 200 and "<html" in ui.text.lower()
        # Used once only.
        assert_error(tab.get(grant["url"]), 401, "UNAUTHENTICATED")
        value = tab.cookies["kiln_proxy"]
    # The cookie works only for its path: not another cluster, port, the API or the REST API.
    jar = {"Cookie": f"kiln_proxy={value}"}
    assert httpx.get(compute_server.url + base + "jobs/", headers=jar).status_code == 200
    for other in (
        f"/driver-proxy/o/{org}/nope/{port}/jobs/",
        f"/driver-proxy/o/{org}/{running_cluster}/{port + 1}/",
        f"/driver-proxy/o/0/{running_cluster}/{port}/jobs/",
        f"/driver-proxy-api/o/{org}/{running_cluster}/{port}/api/v1/applications",
        "/api/2.1/clusters/list",
    ):
        assert_error(httpx.get(compute_server.url + other, headers=jar), 401, "UNAUTHENTICATED")
    assert_error(
        httpx.get(compute_server.url + base, headers={"Cookie": "kiln_proxy=forged"}),
        401,
        "UNAUTHENTICATED",
    )
    # The cluster page's link opens the Spark UI in a new, signed-in tab.
    sign_in(page, compute_server)
    page.goto(f"{compute_server.url}/compute/clusters/{running_cluster}")
    with page.context.expect_page() as opened:
        page.click("[data-testid=spark-ui]")
    spark = opened.value
    spark.wait_for_url(re.compile(re.escape(base)))
    spark.wait_for_selector("text=Spark Jobs")
    assert "kiln_grant" not in spark.url
    # The UI's own links stay signed in (they are under the cookie's path).
    spark.click("a:has-text('Environment')")
    spark.wait_for_selector("text=Spark Properties")
    assert spark.url.startswith(compute_server.url + base + "environment")
    shot(spark, shots, "spark-ui")


@pytest.fixture(scope="module")
def running_cluster(sdk_admin: WorkspaceClient) -> str:
    """The module's running cluster (the notebook test's, or a new one when run alone)."""
    from compute_support import RUNTIME, SINGLE_NODE_CONF, SINGLE_NODE_TAGS, SMALL, WAIT
    from databricks.sdk.service.compute import State

    for c in sdk_admin.clusters.list():
        if c.state in (State.RUNNING, State.PENDING) and c.cluster_id:
            return (
                sdk_admin.clusters.wait_get_cluster_running(c.cluster_id, timeout=WAIT).cluster_id
                or ""
            )
    created = sdk_admin.clusters.create_and_wait(
        cluster_name=unique("web"),
        spark_version=RUNTIME,
        node_type_id=SMALL,
        num_workers=0,
        spark_conf=SINGLE_NODE_CONF,
        custom_tags=SINGLE_NODE_TAGS,
        timeout=WAIT,
    )
    return created.cluster_id or ""


def test_settings_tokens_and_secret_scopes(
    compute_server: Server, page: Any, shots: Path, http: httpx.Client
) -> None:
    sign_in(page, compute_server)
    page.goto(compute_server.url + "/settings")
    page.wait_for_selector("[data-testid=tokens]")
    page.fill("input[placeholder=Comment]", "from the ui")
    page.click("text=Generate new token")
    token = page.locator("[data-testid=new-token] code").inner_text()
    assert token.startswith("dapi")
    page.wait_for_selector("[data-testid=tokens] >> text=from the ui")
    scope = unique("scope")
    page.fill("input[placeholder='Scope name']", scope)
    page.click("text=Create scope")
    page.wait_for_selector(f"[data-testid=scopes] >> text={scope}")
    page.click(f"[data-testid=scopes] >> text={scope}")
    page.fill("input[placeholder=Key]", "k")
    page.fill("input[placeholder=Value]", "v")
    page.click("text=Put secret")
    page.wait_for_selector("[data-testid=scopes] li >> text=k")
    shot(page, shots, "settings")
    listed = http.get("/api/2.0/secrets/list", params={"scope": scope}).json()
    assert [s["key"] for s in listed["secrets"]] == ["k"]
    # The new token signs in.
    page.click("text=Log out")
    sign_in(page, compute_server, token)
    for name, route, marker in (
        ("jobs", "/jobs", "[data-testid=jobs]"),
        ("pools", "/compute/pools", "[data-testid=pools]"),
        ("data-dbfs", "/data/dbfs", "[data-testid=dbfs]"),
    ):
        page.goto(compute_server.url + route)
        page.wait_for_selector(marker)
        shot(page, shots, name)


def test_a_dropped_connection_shows_reconnecting_and_keeps_edits(
    compute_server: Server, page: Any, sdk_admin: WorkspaceClient, shots: Path
) -> None:
    sign_in(page, compute_server)
    me = page.locator("[data-testid=current-user]").inner_text()
    path = f"/Users/{me}/{unique('offline')}"
    sdk_admin.workspace.import_(
        path,
        content=base64.b64encode(b"# Databricks notebook source\nprint(1)\n").decode(),
        format=ImportFormat.SOURCE,
        language=Language.PYTHON,
    )
    page.goto(compute_server.url + "/notebook" + path)
    page.wait_for_selector("[data-testid=cell]")
    page.context.set_offline(True)
    type_cell(page, 0, "\nprint('kept')")
    page.wait_for_selector("[data-testid=reconnecting]")
    shot(page, shots, "reconnecting")
    page.context.set_offline(False)
    page.wait_for_selector("[data-testid=save-state]:text-is('saved')")
    page.wait_for_selector("[data-testid=reconnecting]", state="detached")
    source = base64.b64decode(sdk_admin.workspace.export(path).content or "").decode()
    assert "print('kept')" in source


def test_a_delta_tables_history_and_an_older_versions_rows(
    compute_server: Server, http: httpx.Client, page: Any, shots: Path
) -> None:
    import deltalake
    import pyarrow as pa

    name = unique("trips").replace("-", "_")
    created = http.post(
        "/api/2.1/unity-catalog/tables",
        json={
            "name": name,
            "catalog_name": "main",
            "schema_name": "default",
            "table_type": "MANAGED",
            "data_source_format": "DELTA",
            "columns": [
                {"name": "id", "type_name": "LONG", "type_text": "bigint", "position": 0},
                {"name": "city", "type_name": "STRING", "type_text": "string", "position": 1},
            ],
        },
    )
    assert created.status_code == 200, created.text
    location = created.json()["storage_location"]
    for ids, cities in (([1, 2], ["a", "b"]), ([3], ["<b>c</b>"])):
        deltalake.write_deltalake(
            location, pa.table({"id": pa.array(ids, pa.int64()), "city": cities}), mode="append"
        )
    full_name = f"main.default.{name}"
    history = http.get("/api/2.0/kiln/tables/history", params={"full_name": full_name}).json()
    assert [h["version"] for h in history["history"]] == [2, 1, 0]
    assert history["history"][0]["operation"] == "WRITE"
    old = http.get(
        "/api/2.0/kiln/tables/preview", params={"full_name": full_name, "version": 1}
    ).json()
    assert old["version"] == 1 and old["data"] == [[1, "a"], [2, "b"]]
    assert [f["name"] for f in old["schema"]] == ["id", "city"]
    latest = http.get(
        "/api/2.0/kiln/tables/preview", params={"full_name": full_name, "limit": 2}
    ).json()
    assert latest["version"] == 2 and len(latest["data"]) == 2 and latest["truncated"] is True
    # Bad input.
    preview = "/api/2.0/kiln/tables/preview"
    assert_error(
        http.get(preview, params={"full_name": "main.default.nope"}), 404, "RESOURCE_DOES_NOT_EXIST"
    )
    assert_error(
        http.get(preview, params={"full_name": full_name, "version": -1}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert_error(
        http.get(preview, params={"full_name": full_name, "version": 99}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert_error(
        http.get(preview, params={"full_name": full_name, "limit": 0}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert_error(http.get(preview, params={"full_name": "a.b"}), 400, "INVALID_PARAMETER_VALUE")
    # The table page: schema, sample rows (names escaped), history, an older version's rows.
    sign_in(page, compute_server)
    page.goto(f"{compute_server.url}/data/main/default/{name}")
    page.wait_for_selector("[data-testid=history-row][data-version='0']")
    page.wait_for_selector("[data-testid=preview] >> text=<b>c</b>")
    assert page.locator("[data-testid=columns] tbody tr").count() == 2
    page.click("[data-testid=history-row][data-version='1'] >> button")
    page.wait_for_selector("[data-testid=preview][data-version='1']")
    assert page.locator("[data-testid=preview] tbody tr").count() == 2
    shot(page, shots, "table")
    page.goto(f"{compute_server.url}/data")
    page.wait_for_selector("[data-testid=names] >> text=main")
    shot(page, shots, "catalog")


def test_experiments_and_runs_page(
    compute_server: Server, http: httpx.Client, page: Any, shots: Path
) -> None:
    name = f"/Shared/{unique('exp')}"
    r = http.post("/api/2.0/mlflow/experiments/create", json={"name": name})
    assert r.status_code == 200, r.text
    experiment_id = r.json()["experiment_id"]
    run = http.post(
        "/api/2.0/mlflow/runs/create", json={"experiment_id": experiment_id, "run_name": "r1"}
    ).json()["run"]
    http.post(
        "/api/2.0/mlflow/runs/log-metric",
        json={"run_id": run["info"]["run_id"], "key": "rmse", "value": 0.5, "timestamp": 1},
    ).raise_for_status()
    sign_in(page, compute_server)
    page.goto(compute_server.url + "/ml")
    page.locator("[data-testid=experiments] button", has_text=name).click()
    page.wait_for_selector("[data-testid=runs] >> text=rmse=0.5")
    shot(page, shots, "ml")
