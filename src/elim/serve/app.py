"""The ASGI app of ``elim serve``: the page, ``POST /v1/predict``, ``GET /v1/model``, ``/healthz``.

``POST /v1/predict`` takes one or more images or videos — multipart files (any field name,
``file`` by convention) or the raw bytes of one file as the body — and answers the rows of
``elim predict --json`` (:data:`elim.inference.table.COLUMNS`; ``?format=csv``: the CSV that
``elim predict -o out.csv`` writes). The order of work for a request: the
:class:`~elim.serve.pool.WorkerPool` admits it (503 when full); its body is read up to
``max_upload_mb`` (413 beyond, before reading when ``Content-Length`` says so); every file is
sniffed by content (415) and every image's header checked for its size (413); then the
prediction runs on a worker (504 after ``timeout_s``). Every error is JSON ``{"error": "..."}``
with its status, never a traceback.
OpenAPI: ``/openapi.json``, ``/docs`` and ``/redoc`` (served from the package, no CDN).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from contextlib import asynccontextmanager
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from elim import __version__
from elim.errors import ElimError
from elim.fileio import read_json
from elim.inference.smoothing import parse_smoothing
from elim.inference.table import COLUMNS
from elim.runs.layout import METRICS
from elim.serve.limits import Limits
from elim.serve.pool import WorkerPool
from elim.serve.predict import PredictOptions, default_detector, predict_uploads
from elim.serve.uploads import RequestError, Upload, check_image, make_upload

log = logging.getLogger("elim.serve")

STATIC = files("elim.serve") / "static"


ERROR_SCHEMA = {
    "type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"],
}
ERRORS = {
    status: {"description": text, "content": {"application/json": {"schema": ERROR_SCHEMA}}}
    for status, text in {
        400: "empty or malformed request",
        408: "the request body did not arrive within the time limit",
        413: "upload, image or video frame too large",
        415: "not an image or video (judged by content)",
        422: "an image or video that cannot be decoded, or a bad query parameter",
        503: "server busy (see Retry-After)",
        504: "the request took longer than the time limit",
    }.items()
}

PREDICT_BODY = {
    "requestBody": {
        "required": True,
        "description": "Images or videos as multipart files (field `file`, repeatable), or the "
        "raw bytes of one image or video. The type is judged by content, not by name.",
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": {"type": "array", "items": {"type": "string", "format": "binary"}}
                    },
                    "required": ["file"],
                }
            },
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
            "image/png": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


def create_app(predictors: Any | Sequence[Any], limits: Limits | None = None) -> FastAPI:
    """The app, serving ``predictors`` (one per worker thread, all of the same run).

    Parameters
    ----------
    predictors
        An :class:`~elim.inference.predictor.ElimPredictor` or a list of them (one per
        worker; ``elim serve --workers N`` loads the run N times).
    limits
        The server's :class:`~elim.serve.limits.Limits` (default: its defaults).

    Returns
    -------
    fastapi.FastAPI
    """
    predictors = list(predictors) if isinstance(predictors, (list, tuple)) else [predictors]
    limits = limits or Limits()
    pool = WorkerPool(predictors, limits.queue, limits.retry_after_s)
    info = model_info(predictors[0], limits, len(predictors))

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        pool.close()

    app = FastAPIOffline(
        title="elim serve",
        version=__version__,
        description="Valence and arousal of the faces in images and videos (ELIM).",
        lifespan=lifespan,
        swagger_ui_parameters={"validatorUrl": None},
    )
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    _add_error_handlers(app)
    page = (STATIC / "index.html").read_text(encoding="utf-8")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/healthz", summary="liveness and load")
    async def healthz() -> dict:
        return {
            "status": "ok", "workers": pool.workers, "in_progress": pool.in_progress,
            "capacity": pool.capacity,
        }

    @app.get("/v1/model", summary="the run being served")
    async def model() -> dict:
        return info

    @app.post(
        "/v1/predict",
        summary="valence and arousal of every face in images or videos",
        responses={200: {"description": "one row per face (per frame for videos), the "
                         "columns of `elim predict --json`"}, **ERRORS},
        openapi_extra=PREDICT_BODY,
    )
    async def predict(
        request: Request,
        every: int = Query(1, ge=1, le=1000, description="videos: process one frame in N"),
        smooth: str | None = Query(None, description="videos: ema:0.3 or savgol:9"),
        features: bool = Query(False, description="add the feature z as columns f0…"),
        format: Literal["json", "csv"] = Query("json", description="json rows or the CSV table"),
        name: str | None = Query(None, description="label (source) of a raw-bytes upload"),
    ) -> Response:
        deadline = time.monotonic() + limits.timeout_s
        try:
            parse_smoothing(smooth)
        except ElimError as err:
            raise RequestError(422, f"smooth: {err}") from None
        options = PredictOptions(every=every, smooth=smooth, features=features)
        table = await pool.run(
            lambda predictor, uploads: predict_uploads(predictor, uploads, options, limits),
            limits.timeout_s,
            prepare=lambda: _read_uploads(request, limits, name, deadline),
        )
        if format == "csv":
            return Response(
                table.to_csv(index=False), media_type="text/csv",
                headers={"Content-Disposition": 'attachment; filename="predictions.csv"'},
            )
        return Response(table.to_json(orient="records"), media_type="application/json")

    return app


def model_info(predictor: Any, limits: Limits, workers: int) -> dict:
    """``GET /v1/model``: what the run is (backbone, method, face contract, metrics), the
    detector and columns of its answers, and the server's limits."""
    config = predictor.config
    run_dir = getattr(predictor, "run_dir", None)
    metrics_file = Path(run_dir) / METRICS if run_dir is not None else None
    preprocess = dict(config.get("preprocess", {}))
    for key in ("image_size", "margin", "grayscale"):  # as applied (overrides included)
        if hasattr(predictor, key):
            preprocess[key] = getattr(predictor, key)
    return {
        "run": Path(run_dir).name if run_dir is not None else None,
        "backbone": config.get("model", {}).get("backbone"),
        "method": config.get("train", {}).get("method"),
        "model": config.get("model", {}),
        "preprocess": preprocess,
        "feature_dim": int(predictor.feature_dim),
        "detector": default_detector(predictor),
        "metrics": read_json(metrics_file) if metrics_file is not None and metrics_file.is_file() else None,
        "columns": list(COLUMNS),
        "workers": workers,
        "limits": limits.as_dict(),
        "elim_version": __version__,
    }


async def _read_uploads(
    request: Request, limits: Limits, name: str | None, deadline: float
) -> list[Upload]:
    """The request's files, sniffed and (images) header-checked; RequestError otherwise."""
    try:
        body = await asyncio.wait_for(
            _read_body(request, limits.max_upload_bytes), max(deadline - time.monotonic(), 0.001)
        )
    except asyncio.TimeoutError:
        raise RequestError(408, "the request body did not arrive within the time limit") from None
    if not body:
        raise RequestError(
            400, "empty request; send an image or video as a multipart file or as the raw body"
        )
    if request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        form = await Request(request.scope, _replay(body)).form(
            max_files=limits.max_files, max_fields=limits.max_files
        )
        try:
            parts = [v for _, v in form.multi_items() if isinstance(v, UploadFile)]
            if not parts:
                raise RequestError(400, "multipart request without a file; send it as field `file`")
            uploads = [make_upload(await part.read(), part.filename) for part in parts]
        finally:
            await form.close()
    else:
        uploads = [make_upload(body, name)]
    for upload in uploads:
        if upload.kind == "image":
            check_image(upload, limits.max_pixels)
    return uploads


async def _read_body(request: Request, limit: int) -> bytes:
    too_large = f"request too large (more than {limit / 1e6:g} MB); send a smaller file"
    length = request.headers.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise RequestError(400, f"bad Content-Length: {length!r}")
        if int(length) > limit:
            raise RequestError(413, too_large)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(413, too_large)
        chunks.append(chunk)
    return b"".join(chunks)


def _replay(body: bytes):
    """An ASGI ``receive`` that hands over ``body`` (already read within the limit) once."""
    sent = False

    async def receive() -> dict:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


def _add_error_handlers(app: FastAPI) -> None:
    """Every error as ``{"error": message}`` with its status."""

    def error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status, headers=headers)

    @app.exception_handler(RequestError)
    async def request_error(request: Request, exc: RequestError) -> JSONResponse:
        return error(exc.status, exc.message, exc.headers)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        message = exc.detail if exc.status_code != 404 else f"not found: {request.url.path}"
        return error(exc.status_code, str(message), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        found = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:]) or e['loc'][0]}: {e['msg']}"
            for e in exc.errors()
        )
        return error(422, found or "invalid request")

    @app.exception_handler(ElimError)
    async def elim_error(request: Request, exc: ElimError) -> JSONResponse:
        return error(400, str(exc))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return error(500, "internal error (the server log has the details)")
