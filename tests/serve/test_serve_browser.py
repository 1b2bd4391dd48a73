"""The page in a real headless Chromium: the Live panel with a fake camera (a y4m made from a
face photo) shows V/A numbers that update and draws the disc; an upload shows the annotated
photo, the table and a CSV download equal to the API's CSV. Screenshots are kept in the test's
temporary folder (or ``$ELIM_TEST_ARTEFACTS``), never committed."""

from __future__ import annotations

import io
import os
import re
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest
from serve_support import chromium, encode, moving_face_frames, write_y4m

TIMEOUT_S = 60


def wait_for(condition, what: str, timeout_s: float = TIMEOUT_S):
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


@pytest.fixture(scope="module")
def artefacts(tmp_path_factory) -> Path:
    folder = os.environ.get("ELIM_TEST_ARTEFACTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("serve-browser")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def server(predictor):
    from elim.serve.app import create_app
    from elim.serve.server import running

    with running(create_app(predictor)) as url:
        yield url


@pytest.fixture(scope="module")
def browser(tmp_path_factory, face):
    folder = tmp_path_factory.mktemp("chromium")
    camera = write_y4m(folder / "camera.y4m", moving_face_frames(face))
    driver = chromium(folder / "downloads", camera)
    driver.set_page_load_timeout(TIMEOUT_S)
    yield driver, folder / "downloads"
    driver.quit()


def test_live_webcam_shows_updating_valence_arousal(browser, server, artefacts):
    driver, _ = browser
    driver.get(server + "/")
    find = driver.find_element
    wait_for(lambda: "cnn-small" in find("id", "model-info").text, "the model line")
    find("id", "live-start").click()
    status = find("id", "live-status")
    wait_for(lambda: int(status.get_attribute("data-frames")) >= 3, "three answered frames")
    number = re.compile(r"^[+-]\d\.\d{3}$")
    valence = wait_for(lambda: number.match(find("id", "live-valence").text) and find("id", "live-valence").text,
                       "a valence number")
    assert number.match(find("id", "live-arousal").text)
    # the numbers follow the frames (a random-weight model moves them only in later decimals)
    seen = {find("id", "live-valence").get_attribute("data-value")}
    wait_for(lambda: seen.add(find("id", "live-valence").get_attribute("data-value")) or len(seen) >= 3,
             "the valence to change")
    assert valence
    disc = find("id", "live-disc")
    assert int(disc.get_attribute("data-points")) >= 2
    # the disc has its point drawn: dark pixels inside the circle
    dark = driver.execute_script(
        "const c = document.getElementById('live-disc'); const d = c.getContext('2d')"
        ".getImageData(0, 0, c.width, c.height).data; let n = 0;"
        "for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0 && d[i] < 80) n++; return n;")
    assert dark > 50
    series = driver.execute_script(
        "const c = document.getElementById('live-series'); const d = c.getContext('2d')"
        ".getImageData(0, 0, c.width, c.height).data; let n = 0;"
        "for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0 && d[i] > 180 && d[i + 2] < 80) n++; return n;")
    assert series > 20  # the valence line (orange) is drawn
    assert driver.save_screenshot(str(artefacts / "serve_live.png"))
    find("id", "live-stop").click()
    fetched = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert fetched and all(name.startswith(server + "/") for name in fetched), fetched  # no CDN


def test_upload_photo_and_video_table_and_csv(browser, server, artefacts, tmp_path, face, face_video):
    driver, downloads = browser
    driver.get(server + "/")
    find = driver.find_element
    find("id", "tab-upload").click()
    photo = tmp_path / "face photo.jpg"
    photo.write_bytes(encode(face, ".jpg"))
    find("id", "upload-files").send_keys(f"{photo}\n{face_video}")
    find("id", "upload-submit").click()
    link = find("id", "upload-csv")
    wait_for(lambda: link.is_displayed(), "the CSV link")
    rows = driver.find_elements("css selector", "#upload-table tbody tr")
    sources = [row.find_elements("css selector", "td")[0].text for row in rows]
    assert sources[0] == "face photo.jpg" and sources[1:] == ["clip.avi"] * 6  # one row a frame
    assert len(driver.find_elements("css selector", "#upload-results canvas.annotated")) == 1
    assert len(driver.find_elements("css selector", "#upload-results canvas.video-chart")) == 1
    link.click()
    csv_file = downloads / "predictions.csv"
    wait_for(lambda: csv_file.is_file() and csv_file.stat().st_size > 0, "the downloaded CSV")
    import httpx

    api = httpx.post(server + "/v1/predict", params={"format": "csv"},
                     files=[("file", ("face photo.jpg", photo.read_bytes())),
                            ("file", ("clip.avi", face_video.read_bytes()))], timeout=TIMEOUT_S)
    pd.testing.assert_frame_equal(pd.read_csv(csv_file), pd.read_csv(io.StringIO(api.text)),
                                  check_dtype=False)
    assert driver.save_screenshot(str(artefacts / "serve_upload.png"))
    shutil.copy(csv_file, artefacts / "predictions.csv")
