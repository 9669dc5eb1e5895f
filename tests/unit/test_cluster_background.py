"""`BackgroundService`: the loop every compute service shares (supervisor, autotermination,
warm pools): wake, keep going after a failing pass, stop."""

from __future__ import annotations

import asyncio
import logging

import pytest

from kiln.compute.background import BackgroundService


class Counter(BackgroundService):
    name = "counter"

    def __init__(self, fail_first: bool = False) -> None:
        super().__init__()
        self.passes = 0
        self.fail_first = fail_first
        self.passed = asyncio.Event()

    @property
    def interval(self) -> float:
        return 3600.0  # only wake() makes it pass

    async def tick(self) -> int:
        self.passes += 1
        self.passed.set()
        if self.fail_first and self.passes == 1:
            raise RuntimeError("first pass fails")
        return self.passes


async def next_pass(service: Counter) -> None:
    service.passed.clear()
    service.wake()
    await asyncio.wait_for(service.passed.wait(), 30)


async def test_wake_passes_and_stop_ends_the_loop() -> None:
    service = Counter()
    assert await service.tick() == 1  # a test may call a pass directly
    await service.start()
    await service.start()  # starting twice runs one loop
    assert service.running
    await next_pass(service)
    await next_pass(service)
    assert service.passes == 3
    await service.stop()
    assert not service.running
    await service.stop()  # stopping twice is harmless


async def test_a_failing_pass_is_logged_and_the_loop_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    service = Counter(fail_first=True)
    with caplog.at_level(logging.ERROR, logger="kiln.compute"):
        await service.start()
        await next_pass(service)
        await next_pass(service)
    await service.stop()
    assert service.passes == 2
    assert any("counter: pass failed" in r.getMessage() for r in caplog.records)
