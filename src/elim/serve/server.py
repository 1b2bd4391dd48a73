"""Running the app: ``elim serve`` (uvicorn in the foreground) and a server in a background
thread for tests and benchmarks (:func:`running`), both on the loopback address by default."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from elim.errors import ElimError
from elim.serve.limits import Limits

#: Host names that reach this machine only.
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def exposure_warning(host: str) -> str | None:
    """The warning for a server reachable from other machines (None on the loopback)."""
    if host in LOOPBACK or host.startswith("127."):
        return None
    return (
        f"listening on {host}: every machine that can reach this one can send images to the "
        "model and read its answers (no authentication, no TLS); use the default 127.0.0.1 "
        "unless that is what you want"
    )


def load_predictors(
    run_dir: str | Path,
    workers: int = 1,
    device: str = "cpu",
    margin: float | None = None,
    grayscale: bool | None = None,
) -> list:
    """``workers`` predictors of ``run_dir`` (``elim.load``), each warmed up once (detector
    weights loaded, first allocations done) so that the first request is not the slow one."""
    from elim.inference.predictor import load

    if workers < 1:
        raise ElimError(f"workers (--workers) must be >= 1, got {workers}")
    predictors = [load(run_dir, device=device, margin=margin, grayscale=grayscale) for _ in range(workers)]
    blank = np.full((96, 96, 3), 128, np.uint8)
    for predictor in predictors:
        predictor.predict([blank])
    return predictors


def serve(
    run_dir: str | Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    limits: Limits | None = None,
    workers: int = 1,
    device: str = "cpu",
    margin: float | None = None,
    grayscale: bool | None = None,
) -> None:
    """Serve ``run_dir`` on ``host:port`` until Ctrl-C (``elim serve``)."""
    import uvicorn

    from elim.serve.app import create_app

    app = create_app(load_predictors(run_dir, workers, device, margin, grayscale), limits)
    uvicorn.run(app, host=host, port=port, log_level="info")


@contextmanager
def running(app, host: str = "127.0.0.1", port: int = 0, timeout_s: float = 30.0) -> Iterator[str]:
    """Run ``app`` with uvicorn in a background thread; yields its base URL
    (``http://127.0.0.1:PORT``; ``port=0``: a free port) and stops it on exit."""
    import uvicorn

    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="elim-serve-uvicorn", daemon=True)
    thread.start()
    start = time.monotonic()
    while not server.started:
        if not thread.is_alive() or time.monotonic() - start > timeout_s:
            server.should_exit = True
            raise ElimError(f"the server did not start on {host}:{port}")
        time.sleep(0.02)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout_s)
