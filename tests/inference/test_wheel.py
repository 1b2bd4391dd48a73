"""The default detector ships in the wheel: build it, install it by unpacking, detect offline."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from elim.detection import YUNET_FILE, YUNET_SHA256

ROOT = Path(__file__).resolve().parents[2]

DETECT = """
import sys, numpy as np, elim
from elim.benchmarks.predict import synthetic_face
from elim.detection import get_detector
detector = get_detector()
faces = detector.detect(synthetic_face(480))
print(elim.__file__)
print(detector.weights)
print(len(faces))
"""


def test_wheel_ships_yunet_and_its_licence(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, project / name)
    shutil.copytree(ROOT / "src", project / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "-q", "-w", str(tmp_path / "dist"), str(project)],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("elim-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        data = archive.read(f"elim/detection/weights/{YUNET_FILE}")
        assert hashlib.sha256(data).hexdigest() == YUNET_SHA256
        assert b"Apache License" in archive.read("elim/detection/weights/LICENSE")
        archive.extractall(tmp_path / "site")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    env.pop("ELIM_YUNET", None)
    ran = subprocess.run([sys.executable, "-c", DETECT], capture_output=True, text=True,
                         env=env, cwd=tmp_path, timeout=300, check=False)
    assert ran.returncode == 0, ran.stderr[-2000:]
    module, weights, n_faces = ran.stdout.split("\n")[:3]
    site = str((tmp_path / "site").resolve())
    assert module.startswith(site) and weights.startswith(site) and weights.endswith(YUNET_FILE)
    assert n_faces == "1"
