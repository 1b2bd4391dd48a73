"""``yunet`` (the default detector): YuNet, shipped inside elim and run by onnxruntime.

The model is ``weights/yunet_n_640_640.onnx`` of this package (W. Wu, H. Peng, S. Yu, "YuNet: A
Tiny Millisecond-level Face Detector", Machine Intelligence Research 2023; from
ShiqiYu/libfacedetection.train, Apache-2.0, licence text in ``weights/LICENSE``). Its SHA-256 is
checked every time it is loaded. The graph is size-agnostic, so its input height and width are
made free in memory (the ``onnx`` package) and each image is fed at its own size, padded to a
multiple of 32 — no letterboxing to 640×640.

Why onnxruntime and not OpenCV's ``cv2.FaceDetectorYN`` (same file, same boxes): measured side
by side on one 640×480 frame with one intra-op thread, onnxruntime ran the graph 3–7× faster
(docs/predict.md), and OpenCV 5's new DNN engine warns that it ignores targets. The
post-processing that ``FaceDetectorYN`` does in C++ is :func:`decode` below.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import numpy as np

from elim.detection.faces import Face, check_image, downscale, to_faces
from elim.errors import ElimError

#: The YuNet file shipped in ``elim/detection/weights/`` and its SHA-256.
YUNET_FILE = "yunet_n_640_640.onnx"
YUNET_SHA256 = "25a606a145a5b6d7271ae138fbd00eba91dad8b83222ae3f2c7ecd0f4a7b0e31"
#: Feature-map strides of YuNet's three heads; inputs are padded to a multiple of the largest.
STRIDES = (8, 16, 32)
#: Default score threshold: on the London photos every face scores ≥ 0.87 (upright or rotated
#: by up to ±45°) and CK+48's 48-px crops ≥ 0.72, while noise and second candidates stay < 0.5.
MIN_SCORE = 0.6
#: Default IoU above which a lower-scoring box is suppressed (as OpenCV's FaceDetectorYN).
NMS_THRESHOLD = 0.3
#: Default longest side an image is shrunk to before detection.
MAX_SIDE = 640

_OUTPUTS = tuple(f"{head}_{s}" for head in ("cls", "obj", "bbox", "kps") for s in STRIDES)


def packaged_weights():
    """The shipped YuNet file (an :mod:`importlib.resources` ``Traversable``)."""
    return resources.files("elim.detection") / "weights" / YUNET_FILE


def _read(source, sha256: str | None) -> bytes:
    try:
        data = source.read_bytes()
    except OSError as err:
        hint = "; reinstall elim" if sha256 else ""
        raise ElimError(f"{source}: cannot read the YuNet model ({err.strerror or err}){hint}") from err
    if sha256 is not None:
        found = hashlib.sha256(data).hexdigest()
        if found != sha256:
            raise ElimError(
                f"{source}: corrupt YuNet model file (sha256 {found[:16]}…, expected "
                f"{sha256[:16]}…); reinstall elim (pip install --force-reinstall elim)"
            )
    return data


def free_size_graph(data: bytes, name: str) -> bytes:
    """The YuNet graph ``data`` with free input height / width (and face counts), serialised.

    ElimError naming ``name`` when ``data`` is not a YuNet ONNX graph (one input; outputs
    ``cls_8 … kps_32``).
    """
    import onnx

    try:
        model = onnx.load_from_string(data)
    except Exception as err:  # protobuf's DecodeError and friends: any parse failure
        raise ElimError(f"{name}: not a usable YuNet ONNX file ({err})") from err
    outputs = {o.name for o in model.graph.output}
    missing = [o for o in _OUTPUTS if o not in outputs]
    if len(model.graph.input) != 1 or missing:
        raise ElimError(
            f"{name}: not a usable YuNet ONNX file (expected one input and outputs "
            f"{', '.join(_OUTPUTS)}; missing {', '.join(missing) or 'none'})"
        )
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_param, dims[3].dim_param = "H", "W"
    for out in model.graph.output:
        out.type.tensor_type.shape.dim[1].dim_param = "N"
    del model.graph.value_info[:]  # fixed intermediate shapes would contradict free inputs
    return model.SerializeToString()


@functools.lru_cache(maxsize=1)
def _packaged_graph() -> bytes:
    source = packaged_weights()
    return free_size_graph(_read(source, YUNET_SHA256), str(source))


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression: indices of the kept ``x0, y0, x1, y1`` boxes, best
    first; a box overlapping a kept one with IoU > ``threshold`` is dropped."""
    order = np.argsort(-scores, kind="stable")
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(best)
        w = np.minimum(boxes[best, 2], boxes[rest, 2]) - np.maximum(boxes[best, 0], boxes[rest, 0])
        h = np.minimum(boxes[best, 3], boxes[rest, 3]) - np.maximum(boxes[best, 1], boxes[rest, 1])
        inter = np.clip(w, 0, None) * np.clip(h, 0, None)
        iou = inter / np.maximum(area[best] + area[rest] - inter, 1e-9)
        order = rest[iou <= threshold]
    return np.array(keep, dtype=np.int64)


def decode(
    outputs: dict[str, np.ndarray], width: int, min_score: float = MIN_SCORE,
    nms_threshold: float = NMS_THRESHOLD,
) -> np.ndarray:
    """YuNet's raw outputs for one padded image of width ``width`` → (N, 15) rows
    ``x0, y0, x1, y1, 5 × (x, y) landmarks, score`` in input pixels, best first.

    Per stride s, anchor k sits at column c, row r (k = r·(width/s) + c); its score is
    sqrt(cls·obj), its box centre ((c, r) + bbox[:2])·s, size exp(bbox[2:])·s, its landmarks
    ((c, r) + kps)·s — as OpenCV's ``FaceDetectorYN`` decodes the same graph.
    """
    rows = []
    for s in STRIDES:
        score = np.sqrt(np.clip(outputs[f"cls_{s}"][0, :, 0], 0, 1)
                        * np.clip(outputs[f"obj_{s}"][0, :, 0], 0, 1))
        k = np.flatnonzero(score >= min_score)
        if not k.size:
            continue
        r, c = np.divmod(k, width // s)
        anchor = np.stack([c, r], axis=1).astype(np.float64)
        bbox = outputs[f"bbox_{s}"][0, k].astype(np.float64)
        centre, size = (anchor + bbox[:, :2]) * s, np.exp(bbox[:, 2:]) * s
        kps = outputs[f"kps_{s}"][0, k].astype(np.float64).reshape(-1, 5, 2)
        points = (anchor[:, None, :] + kps) * s
        rows.append(np.concatenate(
            [centre - size / 2, centre + size / 2, points.reshape(-1, 10), score[k, None]], axis=1
        ))
    if not rows:
        return np.zeros((0, 15))
    found = np.concatenate(rows)
    return found[nms(found[:, :4], found[:, 14], nms_threshold)]


class YuNetDetector:
    """YuNet on onnxruntime (CPU), one image per call at its own size.

    Parameters
    ----------
    weights
        A YuNet ONNX file to use instead of the shipped one (None: the shipped
        :data:`YUNET_FILE`, SHA-256 checked).
    max_side
        Images are shrunk to this longest side before detection (None: never); boxes and
        landmarks are mapped back to source pixels.
    min_score, nms_threshold
        Score threshold and NMS IoU threshold.
    threads
        onnxruntime intra-op threads (one inter-op thread, sequential execution).
    """

    name = "yunet"

    def __init__(
        self,
        weights: str | Path | None = None,
        max_side: int | None = MAX_SIDE,
        min_score: float = MIN_SCORE,
        nms_threshold: float = NMS_THRESHOLD,
        threads: int = 1,
    ) -> None:
        import onnxruntime as ort

        if weights is None:
            graph, self.weights = _packaged_graph(), str(packaged_weights())
        else:
            path = Path(weights)
            if not path.is_file():
                raise ElimError(f"yunet: model file {path} not found; omit --detector-weights "
                                "to use the YuNet model shipped with elim")
            graph, self.weights = free_size_graph(_read(path, None), str(path)), str(path)
        self.max_side = max_side
        self.min_score = float(min_score)
        self.nms_threshold = float(nms_threshold)
        self.threads = int(threads)
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime's own exception types derive from Exception only
            raise ElimError(f"{self.weights}: not a usable YuNet ONNX file ({err})") from err
        self._input = self._session.get_inputs()[0].name

    def detect(self, image: np.ndarray) -> list[Face]:
        image = check_image(image)
        small, scale = downscale(image, self.max_side)
        rows = self.detect_rows(small)
        return to_faces(rows[:, :4], rows[:, 14], rows[:, 4:14].reshape(-1, 5, 2), scale,
                        image.shape[1], image.shape[0])

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        """Image by image (batching YuNet on a CPU measured slower per image than single calls)."""
        return [self.detect(im) for im in images]

    def detect_rows(self, rgb: np.ndarray) -> np.ndarray:
        """(N, 15) rows of :func:`decode` for an RGB image, in its own pixels (no downscaling)."""
        h, w = rgb.shape[:2]
        pad = STRIDES[-1]
        height, width = -(-h // pad) * pad, -(-w // pad) * pad
        blob = np.zeros((1, 3, height, width), np.float32)
        blob[0, :, :h, :w] = rgb[:, :, ::-1].transpose(2, 0, 1)  # YuNet reads BGR, 0-255
        values = self._session.run(list(_OUTPUTS), {self._input: blob})
        return decode(dict(zip(_OUTPUTS, values)), width, self.min_score, self.nms_threshold)
