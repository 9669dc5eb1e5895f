"""A command's nbformat outputs as the one `results` object of the Command Execution API 1.2.

Databricks answers a command with a single result: `error` (summary and traceback as
`cause`) when the command raised, `table` (rows, schema, truncated) when it displayed a
DataFrame or ran SQL, `image`/`images` (data URLs) for figures, and otherwise `text`: what it
printed and the value of its last expression. `dbutils.notebook.exit(value)` makes the value
the text, exactly (databricks-sdk's remote dbutils parses it). Pure code.
"""

from __future__ import annotations

from typing import Any

__all__ = ["TABLE_MIME", "command_results"]

TABLE_MIME = "application/vnd.kiln.table+json"
_RICH = ("display_data", "execute_result")


def _error(summary: str, cause: str) -> dict[str, Any]:
    return {"resultType": "error", "summary": summary, "cause": cause}


def _text_of(output: dict[str, Any]) -> str:
    if output.get("output_type") == "stream":
        return str(output.get("text") or "")
    data = output.get("data") or {}
    if "text/plain" in data and output.get("output_type") == "execute_result":
        return str(data["text/plain"])
    # displayHTML shows its HTML; other display_data its plain text.
    for mime in ("text/html", "text/plain"):
        if mime in data:
            return str(data[mime])
    return ""


def _table(bundle: dict[str, Any]) -> dict[str, Any]:
    return {
        "resultType": "table",
        "data": bundle.get("data") or [],
        "schema": bundle.get("schema") or [],
        "truncated": bool(bundle.get("truncated")),
        "isJsonSchema": True,
    }


def command_results(view: dict[str, Any]) -> dict[str, Any] | None:
    """The 1.2 `results` of a driver's command view (None while it has not ended)."""
    status = view.get("status")
    if status in ("Queued", "Running", "Cancelling"):
        return None
    if status == "Error":
        reason = str(view.get("error") or "The command failed.")
        return _error(reason, reason)
    outputs: list[dict[str, Any]] = list(view.get("outputs") or [])
    if status == "Cancelled":
        return _error("Command cancelled", str(view.get("error") or "The command was cancelled."))
    if view.get("exit_value") is not None:
        return {"resultType": "text", "data": str(view["exit_value"])}
    for output in outputs:
        if output.get("output_type") == "error":
            ename, evalue = str(output.get("ename") or ""), str(output.get("evalue") or "")
            summary = f"{ename}: {evalue}" if evalue else ename
            return _error(summary, "".join(output.get("traceback") or []))
    tables = [
        o["data"][TABLE_MIME]
        for o in outputs
        if o.get("output_type") in _RICH and TABLE_MIME in (o.get("data") or {})
    ]
    if tables:
        return _table(tables[-1])
    images = [
        f"data:image/png;base64,{o['data']['image/png']}"
        for o in outputs
        if o.get("output_type") in _RICH and "image/png" in (o.get("data") or {})
    ]
    if len(images) == 1:
        return {"resultType": "image", "fileName": images[0]}
    if images:
        return {"resultType": "images", "fileNames": images}
    text = "".join(
        _text_of(o) if o.get("output_type") == "stream" else _text_of(o) + "\n" for o in outputs
    )
    return {
        "resultType": "text",
        "data": text.rstrip("\n"),
        "truncated": bool(view.get("truncated")),
    }
