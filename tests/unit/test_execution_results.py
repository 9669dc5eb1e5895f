"""A command's nbformat outputs as the Command Execution API 1.2 result, and who may run what."""

from __future__ import annotations

from typing import Any

import pytest

from kiln.compute.execution import CLASSIC, CONNECT, access_mode, command_results
from kiln.compute.execution.access import require_attach, require_runnable
from kiln.driver.repl import TABLE_MIME, display_data, error_output, execute_result, stream
from kiln.errors import InvalidState, PermissionDenied
from kiln.identity import Principal


def finished(*outputs: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"id": "c1", "status": "Finished", "outputs": list(outputs), **extra}


def test_running_commands_have_no_results() -> None:
    for status in ("Queued", "Running", "Cancelling"):
        assert command_results({"id": "c", "status": status}) is None


def test_text_is_printed_output_then_the_value() -> None:
    view = finished(
        stream("stdout", "half 21\n"),
        stream("stderr", "warn\n"),
        execute_result({"text/plain": "42"}, 1),
    )
    assert command_results(view) == {
        "resultType": "text",
        "data": "half 21\nwarn\n42",
        "truncated": False,
    }
    assert command_results(finished())["data"] == ""  # type: ignore[index]
    assert command_results(finished(stream("stdout", "x"), truncated=True))["truncated"] is True  # type: ignore[index]


def test_html_shows_as_its_text() -> None:
    view = finished(display_data({"text/html": "<b>b</b>", "text/plain": "<HTML>"}))
    assert command_results(view) == {"resultType": "text", "data": "<b>b</b>", "truncated": False}


def test_an_error_output_is_an_error_result() -> None:
    view = finished(
        stream("stdout", "before\n"),
        error_output(
            "ValueError", "boom", ["Traceback (most recent call last):\n", "ValueError: boom\n"]
        ),
    )
    assert command_results(view) == {
        "resultType": "error",
        "summary": "ValueError: boom",
        "cause": "Traceback (most recent call last):\nValueError: boom\n",
    }
    bare = command_results(finished(error_output("KeyboardInterrupt", "", [])))
    assert bare is not None and bare["summary"] == "KeyboardInterrupt"


def test_the_last_table_wins_over_text_and_images() -> None:
    schema = [{"name": "id", "type": '"long"', "metadata": "{}"}]
    first = {TABLE_MIME: {"schema": schema, "data": [[1]], "truncated": False}}
    last = {TABLE_MIME: {"schema": schema, "data": [[2], [3]], "truncated": True}}
    view = finished(
        stream("stdout", "x"),
        display_data(first),
        display_data({"image/png": "AAA"}),
        display_data(last),
    )
    assert command_results(view) == {
        "resultType": "table",
        "data": [[2], [3]],
        "schema": schema,
        "truncated": True,
        "isJsonSchema": True,
    }


def test_figures_are_data_urls() -> None:
    one = finished(display_data({"image/png": "iVBOR", "text/plain": "<Figure>"}))
    assert command_results(one) == {
        "resultType": "image",
        "fileName": "data:image/png;base64,iVBOR",
    }
    two = finished(display_data({"image/png": "A"}), display_data({"image/png": "B"}))
    assert command_results(two) == {
        "resultType": "images",
        "fileNames": ["data:image/png;base64,A", "data:image/png;base64,B"],
    }


def test_notebook_exit_is_exactly_its_value() -> None:
    view = finished(stream("stdout", "printed\n"), exit_value='{"a": 1}')
    assert command_results(view) == {"resultType": "text", "data": '{"a": 1}'}


def test_cancelled_and_failed_commands() -> None:
    cancelled = command_results({"id": "c", "status": "Cancelled", "outputs": []})
    assert cancelled is not None and cancelled["resultType"] == "error"
    assert cancelled["summary"] == "Command cancelled"
    died = command_results({"id": "c", "status": "Error", "error": "The Python process exited"})
    assert died == {
        "resultType": "error",
        "summary": "The Python process exited",
        "cause": "The Python process exited",
    }


@pytest.mark.parametrize(
    ("spec", "mode"),
    [
        ({}, CLASSIC),
        ({"data_security_mode": "NONE"}, CLASSIC),
        ({"data_security_mode": "SINGLE_USER", "single_user_name": "a@x"}, CLASSIC),
        ({"data_security_mode": "DATA_SECURITY_MODE_DEDICATED"}, CLASSIC),
        ({"data_security_mode": "USER_ISOLATION"}, CONNECT),
        ({"data_security_mode": "DATA_SECURITY_MODE_STANDARD"}, CONNECT),
        ({"data_security_mode": "DATA_SECURITY_MODE_AUTO"}, CONNECT),
        ({"data_security_mode": "DATA_SECURITY_MODE_AUTO", "single_user_name": "a@x"}, CLASSIC),
    ],
)
def test_access_modes(spec: dict[str, Any], mode: str) -> None:
    assert access_mode(spec) == mode


def test_a_dedicated_cluster_is_its_users_alone() -> None:
    spec = {"data_security_mode": "SINGLE_USER", "single_user_name": "Ada@x.org"}
    require_attach(Principal(2, "ada@x.org", False, ""), "c", spec)
    with pytest.raises(PermissionDenied):
        require_attach(Principal(1, "admin@x.org", True, ""), "c", spec)
    require_attach(Principal(3, "bob@x.org", False, ""), "c", {"data_security_mode": "NONE"})


def test_only_running_clusters_take_commands() -> None:
    require_runnable("c", "RUNNING")
    require_runnable("c", "RESIZING")
    with pytest.raises(InvalidState, match="ClusterNotReadyException"):
        require_runnable("c", "PENDING")
    with pytest.raises(InvalidState, match="TERMINATED"):
        require_runnable("c", "TERMINATED")
