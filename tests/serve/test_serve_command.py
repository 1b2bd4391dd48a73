"""``elim serve``: the command starts a real server on the loopback; other hosts warn."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

from child_support import popen_taking_ctrl_c

from elim.cli import build_parser, main
from elim.serve.server import exposure_warning


def test_loopback_is_quiet_other_hosts_warn():
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        assert exposure_warning(host) is None
    assert "every machine" in exposure_warning("0.0.0.0")
    assert exposure_warning("192.168.1.5")


def test_serve_flags_reach_the_server(monkeypatch, capsys, run_dir):
    seen = {}
    monkeypatch.setattr("elim.serve.server.serve", lambda *a, **k: seen.update(args=a, kwargs=k))
    assert main(["serve", "--model", str(run_dir), "--port", "9", "--queue", "3", "--timeout", "5",
                 "--max-upload-mb", "2", "--workers", "2"]) == 0
    run, host, port, limits = seen["args"]
    assert (str(run), host, port) == (str(run_dir), "127.0.0.1", 9)
    assert (limits.queue, limits.timeout_s, limits.max_upload_mb) == (3, 5.0, 2.0)
    assert seen["kwargs"]["workers"] == 2
    assert "warning" not in capsys.readouterr().err
    assert main(["serve", "--model", str(run_dir), "--host", "0.0.0.0"]) == 0
    assert "elim serve: warning: listening on 0.0.0.0" in capsys.readouterr().err


def test_serve_threads_follow_the_plan(monkeypatch, capsys, run_dir):
    import torch

    from elim.inference.threads import plan_threads

    monkeypatch.setattr("elim.serve.server.serve", lambda *a, **k: None)
    assert main(["serve", "--model", str(run_dir), "--threads", "2"]) == 0
    assert torch.get_num_threads() == 2
    assert "elim serve: threads torch 2, detector 1, opencv 1 of" in capsys.readouterr().err
    assert main(["serve", "--model", str(run_dir)]) == 0  # 0: the plan decides
    assert torch.get_num_threads() == plan_threads().torch
    assert main(["serve", "--model", str(run_dir), "--threads", "-1"]) == 2
    assert "threads (--threads) must be >= 0, got -1" in capsys.readouterr().err


def test_bad_limits_and_a_missing_extra_are_one_line_errors(monkeypatch, capsys, run_dir):
    assert main(["serve", "--model", str(run_dir), "--timeout", "0"]) == 2
    assert "serve limit timeout_s must be > 0, got 0" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    assert main(["serve", "--model", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert 'pip install "elim[serve]"' in err and "Traceback" not in err


def test_building_the_cli_does_not_import_the_web_stack():
    code = ("import sys, elim.cli; elim.cli.build_parser(); "
            "print(sorted(m for m in ('fastapi', 'uvicorn', 'elim.serve.app') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert "serve" in next(a for a in build_parser()._actions if a.dest == "command").choices


def test_elim_serve_runs_answers_and_stops_on_ctrl_c(run_dir, face_png):
    from elim.serve.client import Client

    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = popen_taking_ctrl_c(
        [sys.executable, "-m", "elim.cli", "serve", "--model", str(run_dir), "--port", "0"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env,
    )
    try:
        lines, start = [], time.monotonic()
        while time.monotonic() - start < 120:
            line = proc.stderr.readline()
            if not line:
                break
            lines.append(line)
            found = re.search(r"Uvicorn running on http://127\.0\.0\.1:(\d+)", line)
            if found:
                break
        assert found, "".join(lines)
        with Client(f"http://127.0.0.1:{found.group(1)}") as client:
            assert client.request("GET", "/healthz")[0] == 200
            status, rows = client.predict(face_png, "image/png", name="face.png")
            assert status == 200 and rows[0]["source"] == "face.png"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
