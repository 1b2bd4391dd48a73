"""Inference with a trained run: the predictor (``elim.load``) and its pieces, the prediction
table, ``elim predict``'s pipeline, tracking, smoothing, annotation and export.

The predictor (:mod:`elim.inference.predictor`) is a thin facade and the one code path from an
image, a video frame or a webcam frame to valence and arousal: the run's face crop
(:mod:`~elim.inference.crops`), the image and video loops (:mod:`~elim.inference.images`,
:mod:`~elim.inference.video`) and the rows (:mod:`~elim.inference.rows`), with
``elim.models.infer`` as the forward loop. ``elim predict`` (:mod:`elim.inference.pipeline`)
runs it over a mixed list of inputs.
"""
