"""Webhook notifications: a real HTTP POST to each destination when a run (or a task) starts,
succeeds or fails.

Databricks names notification destinations by id; Kiln has no destinations API, so a webhook's
`id` is its URL (http:// or https://). Delivery is at most once per event and run (the event
is recorded with the state change that causes it) and never delays the run: each POST is a
background task with a short timeout and two retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

__all__ = ["Notifier", "event_for_result"]

log = logging.getLogger("kiln.jobs.webhooks")

ATTEMPTS = 3
TIMEOUT_SECONDS = 10.0


def event_for_result(result: str | None) -> str:
    """The webhook event of an ended run: on_success, or on_failure."""
    return "on_success" if result in ("SUCCESS", "SUCCESS_WITH_FAILURES") else "on_failure"


class Notifier:
    """Sends webhook notifications in the background."""

    def __init__(self, workspace_id: str = "1") -> None:
        self.workspace_id = workspace_id
        self._client: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def send(
        self,
        hooks: dict[str, list[dict[str, str]]] | None,
        event: str,
        *,
        job_id: int | None,
        job_name: str,
        run_id: int,
        parent_run_id: int | None = None,
        task: dict[str, Any] | None = None,
        state: dict[str, Any] | None = None,
    ) -> None:
        """POST the event to every destination configured for it (returns at once)."""
        destinations = (hooks or {}).get(event) or []
        if not destinations:
            return
        body: dict[str, Any] = {
            "event_type": f"jobs.{event}",
            "workspace_id": self.workspace_id,
            "run": {"run_id": run_id, "parent_run_id": parent_run_id},
            "job": {"job_id": job_id, "name": job_name},
        }
        if task is not None:
            body["task"] = task
        if state is not None:
            body["state"] = state
        for hook in destinations:
            task_ = asyncio.create_task(self._post(hook["id"], body), name="kiln-job-webhook")
            self._tasks.add(task_)
            task_.add_done_callback(self._tasks.discard)

    async def _post(self, url: str, body: dict[str, Any]) -> None:
        import httpx

        if self._client is None:
            self._client = httpx.AsyncClient(timeout=TIMEOUT_SECONDS, follow_redirects=False)
        for attempt in range(ATTEMPTS):
            try:
                response = await self._client.post(url, json=body)
                if response.status_code < 500:
                    if response.status_code >= 400:
                        log.warning("webhook %s answered %s", url, response.status_code)
                    return
            except httpx.HTTPError as exc:
                log.warning("webhook %s failed: %s", url, exc)
            await asyncio.sleep(0.5 * (attempt + 1))

    async def close(self) -> None:
        """Give notifications in flight a moment, then close the client."""
        if self._tasks:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    asyncio.gather(*self._tasks, return_exceptions=True), timeout=5.0
                )
        for task in list(self._tasks):
            task.cancel()
        if self._client is not None:
            await self._client.aclose()
            self._client = None
