"""``elim bench serve``: requests per second and latency of ``POST /v1/predict`` for photos,
side by side with the predictor that ``elim predict`` runs, on the same photos.

The photos are London-set JPEGs (../shared/data/london_faces; drawn synthetic faces encoded
as JPEG when it is absent); the model a ``cnn-small`` run with random weights (or ``--model
RUN_DIR``). The server runs in this process on 127.0.0.1 (a free port). Each photo goes
through :meth:`ElimPredictor.predict` (``elim predict``'s predictor, from the file) and then
through ``POST /v1/predict`` (one client), alternately, so that both meet the same load;
``overhead`` is HTTP p50 / predictor p50, what the HTTP path adds. Then ``--clients``
concurrent clients, and the predictor given all photos at once (a folder).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from elim.benchmarks.predict import _ints, london_photos, make_random_run, synthetic_face


def bench_photos(folder: Path, count: int) -> tuple[list[Path], str]:
    """``count`` JPEG photos (London photos cycled, or synthetic faces) and what they are."""
    photos = london_photos()
    if photos:
        return [photos[i % len(photos)] for i in range(count)], "london_faces JPEGs"
    from elim.deps import cv2

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(count):
        path = folder / f"synthetic_{i}.jpg"
        cv2.imwrite(str(path), np.ascontiguousarray(synthetic_face(320, seed=i)[:, :, ::-1]))
        out.append(path)
    return out, "synthetic faces (320x320 JPEG)"


def latency_summary(seconds: list[float], wall: float) -> dict:
    """Requests per second over ``wall`` and p50 / p95 / max latency in milliseconds."""
    ms = np.asarray(seconds) * 1000.0
    return {
        "requests": len(seconds),
        "requests_per_s": round(len(seconds) / wall, 2),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p95_ms": round(float(np.percentile(ms, 95)), 2),
        "max_ms": round(float(ms.max()), 2),
    }


def measure_side_by_side(predictor, url: str, photos: list[Path], repeat: int) -> tuple[dict, dict]:
    """Each photo through ``elim predict``'s predictor (from its file) and then through
    ``POST /v1/predict`` (its bytes, one client), alternating, so that both paths meet the
    same load on a shared machine. Returns (predictor summary, HTTP summary)."""
    from elim.serve.client import Client

    direct, http = [], []
    direct_wall = http_wall = 0.0
    with Client(url) as client:
        for _ in range(repeat):
            for photo in photos:
                t0 = time.perf_counter()
                predictor.predict([photo])
                t1 = time.perf_counter()
                status, _ = client.predict(photo.read_bytes(), "image/jpeg")
                t2 = time.perf_counter()
                if status != 200:
                    raise RuntimeError(f"{photo.name}: the server answered {status}")
                direct.append(t1 - t0)
                http.append(t2 - t1)
                direct_wall += t1 - t0
                http_wall += t2 - t1
    sequential = {"clients": 1, **latency_summary(http, http_wall), "statuses": {"200": len(http)}}
    return latency_summary(direct, direct_wall), sequential


def measure_batched(predictor, photos: list[Path], repeat: int) -> float:
    """Photos per second of ``elim predict``'s predictor given all photos at once (a folder)."""
    start = time.perf_counter()
    for _ in range(repeat):
        predictor.predict(photos)
    return round(len(photos) * repeat / (time.perf_counter() - start), 2)


def measure_http(url: str, bodies: list[bytes], requests: int, clients: int) -> dict:
    """``requests`` photos sent by ``clients`` concurrent clients (each its own connection)."""
    from elim.serve.client import Client

    seconds: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    counter = iter(range(requests))

    def client_loop() -> None:
        with Client(url) as client:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                t0 = time.perf_counter()
                status, _ = client.predict(bodies[i % len(bodies)], "image/jpeg")
                elapsed = time.perf_counter() - t0
                with lock:
                    seconds.append(elapsed)
                    statuses[status] = statuses.get(status, 0) + 1

    threads = [threading.Thread(target=client_loop) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    report = {"clients": clients, **latency_summary(seconds, time.perf_counter() - start)}
    report["statuses"] = {str(k): v for k, v in sorted(statuses.items())}
    return report


def run(args: argparse.Namespace) -> int:
    import torch

    from elim.deps import cv2
    from elim.inference.predictor import load
    from elim.inference.threads import apply_threads, plan_threads
    from elim.serve.app import create_app
    from elim.serve.limits import Limits
    from elim.serve.predict import default_detector
    from elim.serve.server import load_predictors, running

    plan = apply_threads(plan_threads(args.threads))
    with tempfile.TemporaryDirectory(prefix="elim-bench-serve-") as tmp:
        run_dir = Path(args.model) if args.model else make_random_run(Path(tmp) / "run", args.backbone)
        photos, what = bench_photos(Path(tmp) / "photos", args.photos)
        bodies = [p.read_bytes() for p in photos]
        predictor = load(run_dir)
        predictor.predict(photos[:1])  # warm-up (detector weights, allocations)
        requests = args.requests or len(photos) * args.repeat
        app = create_app(load_predictors(run_dir, args.workers), Limits(queue=max(args.clients) * 2))
        with running(app) as url:
            measure_http(url, bodies, min(4, requests), 1)  # warm-up
            one, sequential = measure_side_by_side(predictor, url, photos, args.repeat)
            http = [sequential] + [measure_http(url, bodies, requests, c) for c in args.clients if c > 1]
        batched = measure_batched(predictor, photos, args.repeat)
    report = {
        "photos": f"{len(photos)} photos ({what}), mean {np.mean([len(b) for b in bodies]) / 1e3:.0f} kB",
        "model": str(args.model) if args.model else f"{args.backbone} (random weights)",
        "detector": default_detector(predictor),
        "workers": args.workers,
        "threads": {**plan.to_dict(), "torch_now": torch.get_num_threads(),
                    "opencv_now": cv2.getNumThreads()},
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "predict": {"one_at_a_time": one, "batched_photos_per_s": batched},
        "http": http,
        "overhead": {
            "p50_ratio": round(sequential["p50_ms"] / one["p50_ms"], 3),
            "p50_added_ms": round(sequential["p50_ms"] - one["p50_ms"], 2),
            "throughput_ratio": round(sequential["requests_per_s"] / one["requests_per_s"], 3),
        },
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{report['photos']}; model {report['model']}; detector {report['detector']}; "
          f"threads torch {plan.torch}, detector {plan.detector}, opencv {plan.opencv} "
          f"of {plan.cpus} CPUs")
    print(f"{'path':>28} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8}")
    print(f"{'elim predict, one photo':>28} {one['requests_per_s']:>8} {one['p50_ms']:>8} {one['p95_ms']:>8}")
    print(f"{'elim predict, all photos':>28} {batched:>8}")
    for h in http:
        label = f"HTTP, {h['clients']} client(s)"
        print(f"{label:>28} {h['requests_per_s']:>8} {h['p50_ms']:>8} {h['p95_ms']:>8}")
    o = report["overhead"]
    print(f"HTTP overhead: p50 x{o['p50_ratio']} (+{o['p50_added_ms']} ms), throughput x{o['throughput_ratio']}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="requests/s and latency of the HTTP API, against elim predict on the same photos",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    p.add_argument("--model", metavar="RUN_DIR", help="run directory (default: cnn-small with random weights)")
    p.add_argument("--backbone", default="cnn-small", help="backbone of the random run (default cnn-small)")
    p.add_argument("--photos", type=int, default=8, help="distinct photos (default 8)")
    p.add_argument("--repeat", type=int, default=3, help="passes over the photos, each through both paths (default 3)")
    p.add_argument("--requests", type=int, default=0, help="HTTP requests per concurrent setting (default photos × repeat)")
    p.add_argument("--clients", type=_ints, default=[1, 4], metavar="C[,C…]", help="concurrent clients to compare (default 1,4)")
    p.add_argument("--workers", type=int, default=1, help="server workers (default 1)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default 0: the thread plan decides, all cores but the detector's one)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)
