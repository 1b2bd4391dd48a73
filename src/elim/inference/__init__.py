"""Inference with a trained run: the predictor (``elim.load``), its prediction table, input
collection, video streams, face tracking, temporal smoothing, annotation and export.

The predictor (:mod:`elim.inference.predictor`) is the one code path from an image, a video
frame or a webcam frame to valence and arousal; ``elim predict`` (:mod:`elim.inference.pipeline`)
runs it over a mixed list of inputs.
"""
