"""The dashboard's sampler reads the metrics on a worker thread, never on the event loop:
the read visits every open tenant's store and may wait for a tenant's lock."""

from __future__ import annotations

import asyncio

from magray.server.ui.sampler import Sampler


def test_the_sampler_reads_the_metrics_off_the_event_loop() -> None:
    where: list[str] = []

    def read() -> bytes:
        try:
            asyncio.get_running_loop()
            where.append("event loop")
        except RuntimeError:
            where.append("worker thread")
        return b"magray_http_requests_total 3.0\n"

    sampler = Sampler(read, interval=3600.0)

    async def scenario() -> None:
        task = asyncio.create_task(sampler._loop())  # the background sampling
        while not sampler.samples:
            await asyncio.sleep(0)
        task.cancel()
        points, latest = await sampler.view("default")  # what the health page reads
        assert latest.requests == 3.0 and points == []

    asyncio.run(scenario())
    assert where and set(where) == {"worker thread"}, where
