"""Inference plumbing behind :mod:`elim.predict`: input collection, video streams, face
tracking, temporal smoothing and annotation."""
