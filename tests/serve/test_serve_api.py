"""``POST /v1/predict``, ``GET /v1/model``, ``/healthz``: the rows of ``elim predict``, and
every refusal a JSON ``{"error": ...}`` with its 4xx status."""

from __future__ import annotations

import json
import re
import threading
import time

import numpy as np
import pandas as pd
import pytest
from serve_support import encode, png_header

from elim.cli import main
from elim.inference.table import COLUMNS


def _no_traceback(response) -> dict:
    body = response.json()
    assert set(body) == {"error"} and body["error"], body
    assert "Traceback" not in response.text and "elim-serve-" not in response.text
    return body


class StubPredictor:
    """Stands in for ElimPredictor where the test needs to control time or failures."""

    feature_dim = 2
    run_dir = None

    def __init__(self, action=None) -> None:
        self.action = action
        self.config = {"model": {"backbone": "stub"}, "preprocess": {"image_size": 8}}

    def predict(self, images, detector="stub", return_features=False):
        from elim.inference.table import rows_to_frame

        self.action()
        return rows_to_frame([{"source": "<array 0>", "status": "no_face"}])


def test_health_and_model(client, run_dir, predictor):
    assert client.get("/healthz").json() == {"status": "ok", "workers": 1, "in_progress": 0, "capacity": 17}
    info = client.get("/v1/model").json()
    assert info["run"] == run_dir.name and info["backbone"] == "cnn-small" and info["method"] == "elim"
    assert info["preprocess"]["image_size"] == 64 and info["preprocess"]["margin"] == 0.25
    assert info["feature_dim"] == predictor.feature_dim and info["columns"] == COLUMNS
    assert info["limits"]["max_upload_mb"] == 2 and info["metrics"] is None
    assert info["detector"]  # predict()'s default, whatever it is


def test_model_reports_the_runs_metrics(tmp_path, make_client):
    from elim.benchmarks.predict import make_random_run
    from elim.fileio import write_json
    from elim.inference.predictor import load

    run = make_random_run(tmp_path / "scored")
    write_json(run / "metrics.json", {"test": {"ccc_valence": 0.5}})
    info = make_client(load(run)).get("/v1/model").json()
    assert info["metrics"] == {"test": {"ccc_valence": 0.5}}


def test_rows_are_those_of_elim_predict_json(client, tmp_path, face_png, capsys, run_dir):
    photo = tmp_path / "face.png"
    photo.write_bytes(face_png)
    assert main(["predict", str(photo), "--model", str(run_dir), "--json"]) == 0
    expected = json.loads(capsys.readouterr().out)
    assert any(r["status"] == "ok" for r in expected)  # a face was found: the rows say something
    raw = client.post("/v1/predict", content=face_png, params={"name": "face.png"})
    multipart = client.post("/v1/predict", files={"file": ("dir/face.png", face_png, "image/png")})
    for response in (raw, multipart):
        assert response.status_code == 200 and response.headers["content-type"] == "application/json"
        rows = response.json()
        assert [list(r) for r in rows] == [list(r) for r in expected] == [COLUMNS] * len(rows)
        assert [r["source"] for r in rows] == ["face.png"] * len(rows)
        assert [{**r, "source": None} for r in rows] == [{**r, "source": None} for r in expected]


def test_csv_is_the_table_elim_predict_writes(client, tmp_path, face_png, run_dir, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "face.png").write_bytes(face_png)
    assert main(["predict", "face.png", "--model", str(run_dir), "-o", "out.csv"]) == 0
    response = client.post("/v1/predict", params={"format": "csv"}, files={"file": ("face.png", face_png)})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    assert response.text == (tmp_path / "out.csv").read_text()


def test_several_files_keep_their_order_and_names(client, face_png, face_jpg):
    blank = encode(np.full((40, 50, 3), 90, np.uint8), ".bmp")
    files = [("file", ("b.jpg", face_jpg)), ("file", ("a.png", face_png)), ("other", ("c.bmp", blank))]
    rows = client.post("/v1/predict", files=files).json()
    assert rows[0]["source"] == "b.jpg" and rows[-1]["source"] == "c.bmp"
    assert {r["source"] for r in rows} == {"a.png", "b.jpg", "c.bmp"}
    assert rows[-1]["status"] == "no_face"


def test_features_and_raw_jpeg(client, face_jpg, face, predictor):
    from elim.serve.uploads import decode_image, make_upload

    rows = client.post("/v1/predict?features=true", content=face_jpg,
                       headers={"content-type": "image/jpeg"}).json()
    direct = predictor.predict([decode_image(make_upload(face_jpg, None), 10**8)], return_features=True)
    assert list(rows[0])[: len(COLUMNS)] == COLUMNS and f"f{predictor.feature_dim - 1}" in rows[0]
    served = pd.DataFrame(rows)
    for col in ("valence", "arousal", "x0", "f0"):
        assert served[col].tolist() == pytest.approx(direct[col].tolist(), nan_ok=True)


def test_video_rows_are_those_of_predict_video(client, face_video, predictor):
    data = face_video.read_bytes()
    rows = client.post("/v1/predict", files={"file": ("holiday.mov", data)}).json()
    expected = predictor.predict_video(face_video)
    served = pd.DataFrame(rows)
    assert list(served.columns) == COLUMNS and set(served["source"]) == {"holiday.mov"}
    assert served["frame"].tolist() == expected["frame"].tolist() == [0, 1, 2, 3, 4, 5][: len(served)]
    assert served["valence"].tolist() == pytest.approx(expected["valence"].tolist(), nan_ok=True)
    assert served["timestamp"].tolist() == pytest.approx(expected["timestamp"].tolist())


def test_video_options_every_smooth_and_frame_limit(make_client, face_video):
    client = make_client(max_video_frames=2)
    data = face_video.read_bytes()
    rows = client.post("/v1/predict?every=2&smooth=ema:0.5", content=data).json()
    served = pd.DataFrame(rows)
    assert served["frame"].tolist() == [0, 2] and "valence_raw" in served
    assert set(served["source"]) == {"upload"}


def test_video_that_cannot_be_decoded(client):
    response = client.post("/v1/predict", files={"file": ("x.mp4", b"\x00\x00\x00\x18ftypisom" + b"\x00" * 500)})
    assert response.status_code == 422 and "x.mp4" in _no_traceback(response)["error"]


@pytest.mark.parametrize("request_kwargs, status, words", [
    ({"content": b""}, 400, "empty"),
    ({"content": b"GIF89a not supported"}, 415, "not an image or video"),
    ({"content": b"\xff\xd8\xff\xe0 truncated"}, 422, "not a readable jpeg"),
    ({"content": png_header(3000, 3000)}, 413, "image too large"),
    ({"content": b"\xff" * 2_100_000}, 413, "request too large"),
    ({"files": {"nofile": (None, "just text")}}, 400, "without a file"),
    ({"files": [("file", (f"{i}.png", b"x")) for i in range(20)]}, 400, "Too many files"),
    ({"content": b"x", "params": {"every": 0}}, 422, "every"),
    ({"content": b"x", "params": {"format": "xml"}}, 422, "format"),
    ({"content": b"x", "params": {"smooth": "median"}}, 422, "smooth"),
])
def test_bad_requests_are_4xx_json(client, request_kwargs, status, words):
    response = client.post("/v1/predict", **request_kwargs)
    assert response.status_code == status, response.text
    assert words in _no_traceback(response)["error"]


def test_body_without_length_is_cut_at_the_limit(client):
    def chunks():
        for _ in range(40):
            yield b"\xff\xd8\xff" + b"\0" * 99_997  # 4 MB in all, no Content-Length

    response = client.post("/v1/predict", content=chunks())
    assert response.status_code == 413 and "request too large" in _no_traceback(response)["error"]


def test_unknown_paths_and_methods(client):
    assert client.get("/nope").status_code == 404
    assert _no_traceback(client.get("/nope"))["error"] == "not found: /nope"
    response = client.get("/v1/predict")
    assert response.status_code == 405 and _no_traceback(response)


def test_busy_server_answers_503_with_retry_after(make_client, face_png):
    gate, started = threading.Event(), threading.Event()

    def block():
        started.set()
        gate.wait(10)

    client = make_client(StubPredictor(block), queue=0, retry_after_s=2)
    first = threading.Thread(target=lambda: client.post("/v1/predict", content=face_png))
    first.start()
    assert started.wait(10)
    try:
        response = client.post("/v1/predict", content=face_png)
        assert response.status_code == 503 and response.headers["retry-after"] == "2"
        assert "busy" in _no_traceback(response)["error"]
    finally:
        gate.set()
        first.join(10)


def test_time_limit_answers_504(make_client, face_png):
    client = make_client(StubPredictor(lambda: time.sleep(0.5)), timeout_s=0.1)
    response = client.post("/v1/predict", content=face_png)
    assert response.status_code == 504 and "time limit" in _no_traceback(response)["error"]


def test_internal_errors_are_json_without_traceback(face_png):
    from fastapi.testclient import TestClient

    from elim.serve.app import create_app

    def fail():
        raise RuntimeError("secret internal detail")

    with TestClient(create_app(StubPredictor(fail)), raise_server_exceptions=False) as client:
        response = client.post("/v1/predict", content=face_png)
    assert response.status_code == 500 and "secret" not in response.text
    assert _no_traceback(response)


def test_openapi_and_pages_need_nothing_from_the_internet(client):
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/v1/predict"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in body and "application/octet-stream" in body
    assert {"/v1/model", "/healthz"} <= set(spec["paths"])
    for page in ("/", "/docs", "/redoc"):
        html = client.get(page)
        assert html.status_code == 200
        refs = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)""", html.text)
        assert refs and not [r for r in refs if re.match(r"(https?:)?//", r)], (page, refs)
    for asset in ("/static/app.js", "/static/style.css"):
        text = client.get(asset).text
        assert not re.search(r"https?://", text), asset


def test_every_error_body_is_json_even_for_odd_content_types(client):
    response = client.post("/v1/predict", content=b"abc",
                           headers={"content-type": "multipart/form-data; boundary=zz"})
    assert 400 <= response.status_code < 500 and _no_traceback(response)
