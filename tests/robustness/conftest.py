"""Builders of hostile inputs (broken image files, crafted pickles, tiny labelled datasets) and of
`elim` child processes (``procs``; ``ddp_reference``: one uninterrupted two-process run)."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from child_support import popen_taking_ctrl_c

from elim.deps import cv2


def write_png(path: Path, seed: int = 0, size: int = 24) -> Path:
    """A small valid PNG of random pixels."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    assert cv2.imwrite(str(path), rgb)
    return path


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims ``width``×``height`` but holds almost no pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
                     + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))
    return path


class MarkerPayload:
    """Unpickling this object opens (creates) ``marker`` — a stand-in for arbitrary code."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def hostile_files(root: Path) -> dict[str, Path]:
    """Valid and broken image files in ``root``; keys name the case."""
    root.mkdir(parents=True, exist_ok=True)
    good_png = write_png(root / "good.png", 1)
    good_jpg = root / "good.jpg"
    assert cv2.imwrite(str(good_jpg), cv2.imread(str(good_png)))
    png, jpg = good_png.read_bytes(), good_jpg.read_bytes()
    files = {"good_png": good_png, "good_jpg": good_jpg}
    for name, data in {
        "zero_bytes": b"",
        "truncated_png": png[: len(png) // 2],
        "truncated_jpg": jpg[: len(jpg) // 2],
        "header_only_png": png[:30],
        "random_bytes": np.random.default_rng(0).integers(0, 256, 600, np.uint8).tobytes(),
        "text_as_jpg": b"this is not an image",
    }.items():
        suffix = ".jpg" if name.endswith("jpg") else ".png"
        files[name] = root / f"{name}{suffix}"
        files[name].write_bytes(data)
    files["enormous_64mpx"] = png_header_only(root / "enormous.png", 8000, 8000)
    files["bomb_10gpx"] = png_header_only(root / "bomb.png", 100_000, 100_000)
    return files


@pytest.fixture
def hostile():
    return SimpleNamespace(write_png=write_png, png_header_only=png_header_only,
                           MarkerPayload=MarkerPayload, hostile_files=hostile_files)


# ------------------------------------------------------------------ elim in child processes
def cli_env(**extra: str) -> dict[str, str]:
    """The environment of an `elim` child process (unbuffered, no inherited run folder)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **extra}
    env.pop("ELIM_TRAIN_RUN_DIR", None)
    return env


def start_elim(args: list[str], env: dict[str, str] | None = None, **popen) -> subprocess.Popen:
    """``python -m elim.cli ARGS`` as a child process (text mode)."""
    return popen_taking_ctrl_c([sys.executable, "-m", "elim.cli", *args], env=env or cli_env(),
                               text=True, **popen)


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 300) -> None:
    """Until ``path`` exists; fails when ``proc`` exits first or after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, f"exited ({proc.returncode}) before {path} appeared"
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.01)


DDP_ARGS = ["--devices", "2", "--strategy", "ddp", "--accelerator", "cpu", "--epochs", "3"]


@pytest.fixture
def procs():
    """Helpers for tests that run `elim` in child processes; ``ddp_args`` are the flags of the
    ``ddp_reference`` run."""
    return SimpleNamespace(env=cli_env, start=start_elim, wait_for=wait_for, ddp_args=DDP_ARGS)


@pytest.fixture(scope="session")
def ddp_reference(tmp_path_factory, tiny_yaml):
    """An uninterrupted two-process (gloo) run of the tiny configuration (``DDP_ARGS``):
    ``(run_dir, printed metrics)``; the multi-process tests compare with it."""
    run = tmp_path_factory.mktemp("ddp-reference") / "run"
    proc = subprocess.run([sys.executable, "-m", "elim.cli", "train", "--config", str(tiny_yaml),
                           *DDP_ARGS, "--out", str(run), "--json"],
                          capture_output=True, text=True, timeout=900, env=cli_env(), check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run, json.loads(proc.stdout)["metrics"]  # one report: only process 0 prints
