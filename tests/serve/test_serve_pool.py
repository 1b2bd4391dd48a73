"""The worker pool: bounded capacity (503 + Retry-After), time limit (504), true load count."""

from __future__ import annotations

import asyncio
import threading

import pytest

from elim.serve.pool import WorkerPool
from elim.serve.uploads import RequestError


def test_full_pool_refuses_at_once_and_frees_when_work_ends():
    gate = threading.Event()

    async def scenario():
        pool = WorkerPool(["p0"], queue=1, retry_after_s=3)
        running = asyncio.ensure_future(pool.run(lambda p, _: gate.wait(5) and p, 10))
        waiting = asyncio.ensure_future(pool.run(lambda p, _: p + "!", 10))
        await asyncio.sleep(0.05)
        assert pool.in_progress == 2
        with pytest.raises(RequestError) as err:
            await pool.run(lambda p, _: p, 10)
        assert err.value.status == 503 and err.value.headers == {"Retry-After": "3"}
        gate.set()
        assert await running == "p0" and await waiting == "p0!"
        await asyncio.sleep(0.01)
        assert pool.in_progress == 0
        pool.close()

    asyncio.run(scenario())


def test_timed_out_work_keeps_its_place_until_it_ends():
    gate = threading.Event()

    async def scenario():
        pool = WorkerPool(["p0"], queue=0)
        with pytest.raises(RequestError) as err:
            await pool.run(lambda p, _: gate.wait(5), 0.05)
        assert err.value.status == 504
        assert pool.in_progress == 1  # still running: the count is the true load
        with pytest.raises(RequestError) as err:
            await pool.run(lambda p, _: p, 1)
        assert err.value.status == 503
        gate.set()
        for _ in range(100):
            await asyncio.sleep(0.01)
            if pool.in_progress == 0:
                break
        assert pool.in_progress == 0
        assert await pool.run(lambda p, _: p, 1) == "p0"
        pool.close()

    asyncio.run(scenario())


def test_each_worker_owns_one_predictor():
    seen: list[tuple[str, str]] = []
    barrier = threading.Barrier(2, timeout=5)

    def job(p, _):
        barrier.wait()  # both workers busy at once
        seen.append((threading.current_thread().name, p))
        return p

    async def scenario():
        pool = WorkerPool(["a", "b"], queue=0)
        got = await asyncio.gather(pool.run(job, 10), pool.run(job, 10))
        pool.close()
        return got

    assert sorted(asyncio.run(scenario())) == ["a", "b"]
    assert len({thread for thread, _ in seen}) == 2


def test_admission_comes_before_preparing_and_a_failed_preparation_frees_its_place():
    async def scenario():
        pool = WorkerPool(["p0"], queue=0)
        reading = asyncio.Event()

        async def slow_body():
            reading.set()
            await asyncio.sleep(0.2)
            return "body"

        first = asyncio.ensure_future(pool.run(lambda p, body: (p, body), 5, prepare=slow_body))
        await reading.wait()
        with pytest.raises(RequestError) as err:  # full while the first body is still read
            await pool.run(lambda p, _: p, 5)
        assert err.value.status == 503
        assert await first == ("p0", "body")

        async def bad_body():
            raise RequestError(415, "not an image")

        with pytest.raises(RequestError) as err:
            await pool.run(lambda p, _: p, 5, prepare=bad_body)
        assert err.value.status == 415
        await asyncio.sleep(0.01)
        assert pool.in_progress == 0
        pool.close()

    asyncio.run(scenario())
