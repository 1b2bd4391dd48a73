"""``elim serve``: a local web app and HTTP API over one trained run.

The app (:func:`elim.serve.app.create_app`, FastAPI) serves a page at ``/`` (live webcam and
uploads, plain HTML/JS shipped in ``elim/serve/static``) and an API: ``POST /v1/predict``
(images or videos → the rows of ``elim predict --json``), ``GET /v1/model`` and ``GET /healthz``.
Every prediction goes through the same :class:`~elim.inference.predictor.ElimPredictor` as
``elim predict``, run on a bounded pool of worker threads (:mod:`elim.serve.pool`); uploads are
checked by content and size before any decoding (:mod:`elim.serve.uploads`), within the
:class:`~elim.serve.limits.Limits` of the server. :mod:`elim.serve.server` runs it with uvicorn.
Needs the ``serve`` extra: ``pip install "elim[serve]"``.
"""
