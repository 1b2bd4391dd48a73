"""Fixtures of the serve tests: a random-weight run, its predictor, face photos, an app."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason='elim serve needs the serve extra: pip install -e ".[serve]"')
pytest.importorskip("fastapi_offline", reason='pip install -e ".[serve]"')

from serve_support import encode, face_photo

from elim.benchmarks.predict import make_random_run


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory) -> Path:
    """cnn-small run directory with random weights (margin 0.25)."""
    return make_random_run(tmp_path_factory.mktemp("serve-run") / "small", margin=0.25)


@pytest.fixture(scope="session")
def predictor(run_dir):
    from elim.serve.server import load_predictors

    return load_predictors(run_dir)[0]


@pytest.fixture(scope="session")
def face():
    """480×480 RGB face photo."""
    return face_photo()


@pytest.fixture(scope="session")
def face_png(face) -> bytes:
    return encode(face, ".png")


@pytest.fixture(scope="session")
def face_jpg(face) -> bytes:
    return encode(face, ".jpg")


@pytest.fixture(scope="session")
def face_video(tmp_path_factory, face) -> Path:
    """6-frame 320×240 MJPG video of the face photo, moving a little."""
    from elim.benchmarks.predict import make_face_video

    return make_face_video(tmp_path_factory.mktemp("serve-video") / "clip.avi", [face], 6, size=(320, 240))


@pytest.fixture
def make_client(predictor):
    """Factory of TestClients for an app over ``predictor`` (or given predictors) with limits."""
    from fastapi.testclient import TestClient

    from elim.serve.app import create_app
    from elim.serve.limits import Limits

    clients = []

    def make(predictors=None, **limits) -> TestClient:
        client = TestClient(create_app(predictors or predictor, Limits(**limits)))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client):
    return make_client(max_upload_mb=2, max_pixels=4_000_000)
