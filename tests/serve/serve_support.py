"""Helpers of the serve tests: face photos as bytes, crafted bad inputs, a fake-camera video,
and headless Chromium (Debian's chromium + chromium-driver, driven by selenium)."""

from __future__ import annotations

import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from elim.benchmarks.predict import london_photos, synthetic_face

CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMEDRIVER = ("/usr/bin/chromedriver",)
BROWSER_INSTALL = "apt-get install -y chromium chromium-driver (.ci/run does it when it can)"


def face_photo() -> np.ndarray:
    """A face photo, 480×480 RGB: the first London-set photo (a real face), or a drawn
    synthetic face where ../shared/data is absent."""
    from elim.data.io import read_image
    from elim.deps import cv2

    photos = london_photos(limit=1)
    if not photos:
        return synthetic_face(320, seed=1)
    return cv2.resize(read_image(photos[0]), (480, 480), interpolation=cv2.INTER_AREA)


def encode(image: np.ndarray, ext: str = ".png") -> bytes:
    """RGB array → encoded image bytes (.png, .jpg, .bmp, …)."""
    from elim.deps import cv2

    ok, data = cv2.imencode(ext, np.ascontiguousarray(image[:, :, ::-1]))
    assert ok
    return data.tobytes()


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims width × height pixels but holds almost no data (a
    decompression bomb's header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def write_y4m(path: Path, frames: list[np.ndarray], fps: int = 10) -> Path:
    """A YUV4MPEG2 (4:2:0) file of RGB frames (even sizes): Chromium's fake camera input."""
    from elim.deps import cv2

    h, w = frames[0].shape[:2]
    with open(path, "wb") as out:
        out.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            out.write(b"FRAME\n")
            out.write(cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2YUV_I420).tobytes())
    return path


def moving_face_frames(face: np.ndarray, n: int = 12, size: tuple[int, int] = (640, 480)) -> list[np.ndarray]:
    """``n`` frames of ``face`` on grey, shifted a little from frame to frame."""
    width, height = size
    frames = []
    for t in range(n):
        canvas = np.full((height, width, 3), 120, np.uint8)
        dx = round(40 * np.sin(2 * np.pi * t / n))
        x0 = (width - face.shape[1]) // 2 + dx
        canvas[:, x0 : x0 + face.shape[1]] = face[:height]
        frames.append(canvas)
    return frames


def chromium(download_dir: Path, fake_video: Path | None = None):
    """A headless Chromium (selenium), offline and sandboxed in a fresh profile; skips the
    test with the install command when selenium, chromium or chromedriver is missing."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="pip install selenium (in .[dev])")
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service

    binary = next((p for p in CHROMIUM if Path(p).exists()), shutil.which("chromium"))
    driver_exe = next((p for p in CHROMEDRIVER if Path(p).exists()), shutil.which("chromedriver"))
    if not binary or not driver_exe:
        pytest.skip(f"headless Chromium is not installed ({BROWSER_INSTALL})")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", "--window-size=1280,1000",
        f"--user-data-dir={download_dir / 'profile'}",
    ):
        options.add_argument(flag)
    if fake_video is not None:
        options.add_argument("--use-fake-device-for-media-stream")
        options.add_argument("--use-fake-ui-for-media-stream")
        options.add_argument(f"--use-file-for-fake-video-capture={fake_video}")
    options.add_experimental_option("prefs", {
        "download.default_directory": str(download_dir),
        "download.prompt_for_download": False,
    })
    try:
        return webdriver.Chrome(service=Service(executable_path=driver_exe), options=options)
    except (WebDriverException, OSError) as err:  # a browser that cannot start here: skip, saying why
        pytest.skip(f"headless Chromium did not start ({type(err).__name__}: {str(err)[:200]})")
