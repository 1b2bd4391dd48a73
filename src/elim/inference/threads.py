"""How many threads each stage of prediction gets, so that they never oversubscribe the CPU.

The video pipeline (:mod:`elim.inference.video`) runs decoding, detection and the model at the
same time. :func:`plan_threads` gives the detector one thread (YuNet's onnxruntime intra-op
threads; MTCNN runs on torch), torch the remaining cores (at least one), and OpenCV's own
parallel loops (resizing, colour conversion) one thread; decoding is one more, mostly idle,
thread. On 2 cores: torch 1, detector 1. ``elim predict`` and ``elim bench predict`` apply the
plan (:func:`apply_threads`) and report it.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass


def available_cpus() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class ThreadPlan:
    """Threads per stage: ``torch`` (the model, and MTCNN), ``detector`` (YuNet's
    onnxruntime), ``opencv`` (cv2's parallel loops), out of ``cpus``."""

    torch: int
    detector: int
    opencv: int
    cpus: int

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def plan_threads(torch_threads: int = 0, cpus: int | None = None) -> ThreadPlan:
    """The plan for ``cpus`` cores (default: :func:`available_cpus`); ``torch_threads`` > 0
    overrides torch's share (``--threads``)."""
    cpus = available_cpus() if cpus is None else int(cpus)
    detector = 1
    torch = int(torch_threads) if torch_threads > 0 else max(1, cpus - detector)
    return ThreadPlan(torch=torch, detector=detector, opencv=1, cpus=cpus)


def apply_threads(plan: ThreadPlan) -> ThreadPlan:
    """Set torch's and OpenCV's thread counts (process-wide) to the plan; returns it."""
    import torch

    from elim.deps import cv2

    torch.set_num_threads(plan.torch)
    cv2.setNumThreads(plan.opencv)
    return plan
