"""``elim bench serve --json``: requests/s and latency over HTTP beside the predictor's own."""

from __future__ import annotations

import json

from elim.cli import main


def test_bench_serve_json(capsys):
    assert main(["bench", "serve", "--photos", "2", "--repeat", "1", "--requests", "4",
                 "--clients", "1,2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["predict"]["one_at_a_time"]["requests"] == 2
    assert [(h["clients"], h["requests"]) for h in report["http"]] == [(1, 2), (2, 4)]
    for h in report["http"]:
        assert h["statuses"] == {"200": h["requests"]} and h["requests_per_s"] > 0
        assert 0 < h["p50_ms"] <= h["p95_ms"] <= h["max_ms"]
    assert report["overhead"]["p50_ratio"] > 0 and report["detector"]
    threads = report["threads"]  # elim.inference.threads.plan_threads, applied
    assert threads["torch"] == threads["torch_now"] >= 1 and threads["detector"] == 1
    assert threads["opencv"] == threads["opencv_now"] == 1
