"""A load test on the loopback: 200 requests from 8 concurrent clients, good and bad inputs
mixed, against uvicorn in this process. Every good request is answered with the predictor's
own rows, every bad one with its 4xx, none with a 5xx, and memory stays flat."""

from __future__ import annotations

import gc
import json
import threading

import numpy as np
import pytest
from serve_support import encode, png_header

from elim.benchmarks.predict import rss_mb

REQUESTS, CLIENTS = 200, 8


@pytest.fixture(scope="module")
def cases(face):
    """(name, body, expected status); good photos of three sizes and formats, eight bad kinds."""
    small = np.ascontiguousarray(face[::2, ::2])
    noise = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    return [
        ("face.png", encode(face, ".png"), 200),
        ("face.jpg", encode(face, ".jpg"), 200),
        ("small.jpg", encode(small, ".jpg"), 200),
        ("noise.bmp", encode(noise, ".bmp"), 200),
        ("empty", b"", 400),
        ("text", b"hello, not an image", 415),
        ("gif", b"GIF89a" + b"\0" * 100, 415),
        ("cut.jpg", encode(face, ".jpg")[:64], 422),
        ("bomb.png", png_header(40_000, 40_000), 413),
        ("huge", b"\xff\xd8\xff" + b"\0" * 1_100_000, 413),
        ("bad-query", b"x", 422),
        ("fake.mp4", b"\x00\x00\x00\x18ftypisom" + b"\0" * 300, 422),
    ]


def fire(url: str, cases: list, requests: int, clients: int) -> list[tuple[str, int, object]]:
    """``requests`` requests cycling through ``cases``, sent by ``clients`` threads."""
    from elim.serve.client import Client

    results: list[tuple[str, int, object]] = []
    lock = threading.Lock()
    order = iter(range(requests))

    def client_loop() -> None:
        with Client(url, timeout_s=60) as client:
            while True:
                with lock:
                    i = next(order, None)
                if i is None:
                    return
                name, body, _ = cases[i % len(cases)]
                params = {"every": 0} if name == "bad-query" else {"name": name}
                status, answer = client.predict(body, **params)
                with lock:
                    results.append((name, status, answer))

    threads = [threading.Thread(target=client_loop) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


def test_load_200_requests_8_clients(predictor, cases):
    from elim.serve.app import create_app
    from elim.serve.limits import Limits
    from elim.serve.server import running
    from elim.serve.uploads import decode_image, make_upload

    expected = {}
    for name, body, status in cases:
        if status == 200:
            table = predictor.predict([decode_image(make_upload(body, name), 10**8)])
            table["source"] = name
            expected[name] = json.loads(table.to_json(orient="records"))
    app = create_app(predictor, Limits(max_upload_mb=1, queue=CLIENTS, timeout_s=60))
    with running(app) as url:
        assert url.startswith("http://127.0.0.1:")
        fire(url, cases, REQUESTS // 4, CLIENTS)  # warm-up: allocations settle
        gc.collect()
        before = rss_mb() or 0.0  # None without /proc
        results = fire(url, cases, REQUESTS, CLIENTS)
        gc.collect()
        grown = (rss_mb() or 0.0) - before
    print(f"load test: {REQUESTS} requests, {CLIENTS} clients, RSS {before:.0f} MiB -> {before + grown:.0f} MiB")
    want = {name: status for name, _, status in cases}
    assert len(results) == REQUESTS
    assert not [r for r in results if r[1] >= 500]
    for name, status, answer in results:
        assert status == want[name], (name, status, answer)
        if status == 200:
            assert answer == expected[name]
        else:
            assert set(answer) == {"error"}
    assert grown < 100, f"memory grew by {grown:.0f} MiB over {REQUESTS} requests"
