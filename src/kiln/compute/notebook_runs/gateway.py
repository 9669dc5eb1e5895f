"""The execution service (API 1.2's contexts and commands) as a notebook run uses it."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from kiln.driver.notebook import CellOutcome, CellStatus
from kiln.errors import KilnError
from kiln.principal import Principal

if TYPE_CHECKING:
    from kiln.compute.execution.client import DriverRoute
    from kiln.compute.service import Compute

# A user's access to a cluster checked this recently is not checked again for the next
# command (a for_each's iterations run one short command each, back to back). A cluster that
# stopped meanwhile fails the command anyway.
ROUTE_CHECK_SECONDS = 1.0

__all__ = ["ExecutionGateway"]


class ExecutionGateway:
    """Contexts and commands of the clusters' execution service, for notebook runs."""

    def __init__(self, compute: Compute) -> None:
        self.compute = compute
        self._routes: dict[tuple[int, str], tuple[DriverRoute, float]] = {}

    async def _route(self, principal: Principal, cluster_id: str) -> DriverRoute:
        from kiln.compute.execution import command_route

        key = (principal.user_id, cluster_id)
        found = self._routes.get(key)
        if found is not None and time.monotonic() - found[1] < ROUTE_CHECK_SECONDS:
            return found[0]
        route = await command_route(self.compute, principal, cluster_id)
        if len(self._routes) > 1000:
            self._routes.clear()
        self._routes[key] = (route, time.monotonic())
        return route

    async def create(self, principal: Principal, cluster_id: str) -> str:
        """A fresh Python context on a RUNNING cluster, acting as `principal`; its id."""
        from kiln.compute.execution import start_context

        return await start_context(self.compute, principal, cluster_id, "python")

    async def execute(
        self, principal: Principal, cluster_id: str, context_id: str, code: str
    ) -> CellOutcome:
        """Run code and wait for its end; cancelling the wait cancels the command."""
        from kiln.compute.execution import run_command

        route = await self._route(principal, cluster_id)
        try:
            info = await run_command(
                self.compute, principal, cluster_id, context_id, code, "python", route=route
            )
        except KilnError:
            self._routes.pop((principal.user_id, cluster_id), None)
            raise
        outputs = list(info.outputs)
        if info.status == "Cancelled":
            return CellOutcome(CellStatus.CANCELLED, outputs)
        if info.status == "Error":
            # The context's Python died or could not start: not an exception of the cell.
            why = info.error or "The execution context stopped while running the command."
            outputs.append(
                {
                    "output_type": "error",
                    "ename": "ExecutionContextError",
                    "evalue": why,
                    "traceback": [],
                }
            )
            return CellOutcome(CellStatus.ERROR, outputs)
        failed = any(o.get("output_type") == "error" for o in outputs)
        return CellOutcome(CellStatus.ERROR if failed else CellStatus.OK, outputs)

    async def destroy(self, principal: Principal, cluster_id: str, context_id: str) -> None:
        """Destroy the context (nothing if it is already gone)."""
        from kiln.compute.execution import stop_context

        await stop_context(self.compute, principal, cluster_id, context_id)

    async def alive(self, principal: Principal, cluster_id: str, context_id: str) -> bool:
        """Whether the context still runs and takes commands."""
        from kiln.compute.execution import context_status

        try:
            async with self.compute.db.session() as session:
                info = await context_status(
                    session, self.compute, principal, cluster_id, context_id, wait_ms=0
                )
        except KilnError:
            return False
        return info.status == "Running"
