"""Synthetic valence–arousal face dataset with a controlled identity shift (no download needed).

Every identity is an independent random draw of a face (:mod:`elim.datasets.synthetic_draw`:
geometry, skin, hair, glasses, beard, hat, clothes), of a *camera* (:class:`IdentityCamera`: the
colour cast, light ramp and tint of the place it was filmed in, the same for all its clips) and
of an expression style (:class:`ExpressionStyle`): how strongly it shows valence and arousal
(gain), what it shows at rest (offset) and how the display saturates (exponent), and whether a
smile shows more in the mouth or in the eyes.

Two knobs, never mixed, scale the two kinds of identity effect (both default to 1, the full draw):

* ``shift`` = s ∈ [0, 1], the **identity shift** of the paper's Problem 1 (Sec. 3.1, Eq. 1):
  p^e(z) differs between identities while p(y | z) is shared. It moves every identity's look
  toward one canonical face (:func:`elim.datasets.synthetic_draw.toward_canonical`: numbers
  (1 − s)·canonical + s·own; a hair style, glasses, beard, moustache or hat kept with
  probability s, nested in s) and scales its camera (gain^s, s·tint, s·ramp: a per-identity
  pixel offset and gain). s = 0 is identity-neutral: every identity is the same face, and only
  the per-clip nuisance below remains. s changes nothing about expressions: the label → display
  mapping is the style's (below), the expression is drawn relative to the face's own geometry
  (the same mouth bend, eye opening and brow lift for the same display values), and the labels,
  poses, backgrounds and noise of identity i are the same at every s (their random streams do
  not depend on s). The label is therefore the same function of the expression for every
  identity at every s, and the identity nuisance is drawn independently of the labels, so a
  model that reads the expression and ignores identity reaches the same CCC at every s; what s
  adds is only the look that such a model must learn to ignore (up to a few pixels of mouth
  or brow that a moustache, glasses frame or fringe drawn over the face can hide).
* ``style`` = t ∈ [0, 1], the identity's **expression style**: gains and exponents g^t, offsets
  t·offset, mouth share (1 − t)·0.7 + t·own. With t > 0, p(y | x) differs between identities
  (a person who looks happy at rest): no single-image model can undo an unknown per-person
  offset, so this knob measures something else than the paper's identity shift. t = 0 is the
  neutral style (display = label) for everyone.

Labels come in short clips per identity: a smooth trajectory (a point in the VA disk plus two
sinusoids per axis), with the clip centres of one identity spread around the circle so that every
identity shows several expressions and all four VA quadrants occur. Each clip has its own
background, light direction, head pose (rotation, shift, scale with a slow drift) and pixel noise:
nuisance that does not depend on the identity.

Defaults (``generate()``): 60 identities × 4 clips × 12 frames = 2,880 images of 64×64 (the
``synthetic`` training preset asks for 32×32), enough for a CNN to learn VA from and small enough
for the 3-minute CPU run of ``elim train``; drawing them takes about 1.6 s (0.9 s at 32×32) of
one CPU core.

Because identities are independent draws, any identity-disjoint split (done by
:mod:`elim.data.splits` over ``group``) is a valid train / validation / test split.
:func:`probe_faces` renders the SAME labels (:func:`probe_labels`) for chosen identities, the
measurement of the paper's Fig. 3 (Sec. 5 A1) that only synthetic faces make possible.

With no ``root``, the cache layer (:func:`elim.datasets.open_dataset`) calls :func:`generate`
directly and keeps the images in memory (reader options such as ``shift`` and ``style`` go to
it); the registered reader only reads folders written by :func:`write_synthetic`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from elim.data.records import ReadResult
from elim.datasets import get_reader, register_dataset
from elim.datasets.synthetic_draw import (
    DISCRETE_TRAITS,
    HEAD_CENTRE,
    Appearance,
    FaceRenderer,
    sample_appearance,
    toward_canonical,
)
from elim.deps import cv2
from elim.errors import DataError

LABELS_FILE = "labels.csv"
URI_PREFIX = "synthetic://"
_LABEL_DECIMALS = 6
# Stream ids of numpy's SeedSequence spawn keys: identity look+style, each clip, the identity's
# nuisance (trait draws of the shift and its camera), its probe clip.
_LOOK, _CLIP, _NUISANCE, _PROBE = 0, 1, 2, 3
#: mouth share of the neutral expression style (``style = 0``)
NEUTRAL_MOUTH_SHARE = 0.7
#: The two strengths of identity effects (module docstring), options of :func:`generate`.
Knob = Literal["shift", "style"]


@dataclass(frozen=True)
class ExpressionStyle:
    """How one identity displays a VA label (``display`` maps labels to drawing parameters)."""

    gain_v: float
    gain_a: float
    offset_v: float  # resting valence shown at label 0 (sad- or happy-looking at rest)
    offset_a: float  # resting arousal (sleepy- or surprised-looking at rest)
    gamma_v: float  # exponent < 1: shows weak feelings strongly; > 1: only strong ones
    gamma_a: float
    mouth_share: float  # share of valence shown by the mouth rather than by eyes and cheeks

    def display(self, valence: np.ndarray, arousal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Displayed valence and arousal (unitless drawing drivers, clipped to ±1.3)."""

        def one(x, gain, gamma, offset):
            x = np.asarray(x, float)
            return np.clip(gain * np.sign(x) * np.abs(x) ** gamma + offset, -1.3, 1.3)

        return (one(valence, self.gain_v, self.gamma_v, self.offset_v),
                one(arousal, self.gain_a, self.gamma_a, self.offset_a))


    def scaled(self, strength: float) -> ExpressionStyle:
        """This style at ``strength`` t ∈ [0, 1] (module docstring): t = 0 is the neutral style
        (display = label), t = 1 this style exactly."""
        t = float(strength)
        return ExpressionStyle(
            gain_v=self.gain_v ** t, gain_a=self.gain_a ** t, offset_v=t * self.offset_v,
            offset_a=t * self.offset_a, gamma_v=self.gamma_v ** t, gamma_a=self.gamma_a ** t,
            mouth_share=(1 - t) * NEUTRAL_MOUTH_SHARE + t * self.mouth_share)


def sample_expression_style(rng: np.random.Generator) -> ExpressionStyle:
    """Draw an identity's expression style (gains and exponents log-uniform)."""
    return ExpressionStyle(
        gain_v=float(np.exp(rng.uniform(np.log(0.55), np.log(1.5)))),
        gain_a=float(np.exp(rng.uniform(np.log(0.55), np.log(1.5)))),
        offset_v=float(rng.uniform(-0.35, 0.35)),
        offset_a=float(rng.uniform(-0.35, 0.35)),
        gamma_v=float(np.exp(rng.uniform(np.log(0.65), np.log(1.5)))),
        gamma_a=float(np.exp(rng.uniform(np.log(0.65), np.log(1.5)))),
        mouth_share=float(rng.uniform(0.45, 1.0)),
    )


@dataclass(frozen=True)
class IdentityCamera:
    """Where one identity was filmed: per-channel gain, a light ramp across the frame and an
    additive tint, the same for all of its clips (a per-identity pixel gain and offset)."""

    gain: tuple[float, float, float]  # per RGB channel, log-uniform in [0.7, 1.3]
    tint: tuple[float, float, float]  # per RGB channel, added, in [-0.1, 0.1] (of 1)
    ramp: float  # light ramp amplitude in [0, 0.2] across the frame
    angle: float  # direction of the ramp

    def scaled(self, shift: float) -> IdentityCamera:
        """At shift strength s: gain^s, s·tint, s·ramp (s = 0: no effect; s = 1: this one)."""
        s = float(shift)
        return IdentityCamera(tuple(g ** s for g in self.gain), tuple(s * t for t in self.tint),
                              s * self.ramp, self.angle)

    def apply(self, img: np.ndarray) -> np.ndarray:
        """``img`` (…, S, S, 3) float in [0, 1] (~) filmed with this camera (in place)."""
        size = img.shape[-2]
        g = (np.arange(size, dtype=np.float32) + 0.5) / size - 0.5
        x, y = np.meshgrid(g, g)
        light = 1 + 2 * self.ramp * (x * np.cos(self.angle) + y * np.sin(self.angle))
        img *= (light[..., None] * np.asarray(self.gain, np.float32)).astype(np.float32)
        img += np.asarray(self.tint, np.float32)
        return img


def sample_camera(rng: np.random.Generator) -> IdentityCamera:
    """Draw an identity's camera (see :class:`IdentityCamera` for the ranges)."""
    return IdentityCamera(
        gain=tuple(float(v) for v in np.exp(rng.uniform(np.log(0.7), np.log(1.3), 3))),
        tint=tuple(float(v) for v in rng.uniform(-0.1, 0.1, 3)),
        ramp=float(rng.uniform(0, 0.2)), angle=float(rng.uniform(0, 2 * np.pi)))


def clip_labels(rng: np.random.Generator, n_frames: int, angle: float) -> np.ndarray:
    """A smooth VA trajectory (n_frames, 2) inside the unit disk around direction ``angle``."""
    radius = 0.85 * np.sqrt(rng.uniform(0.05, 1.0))
    centre = radius * np.array([np.cos(angle), np.sin(angle)])
    t = np.arange(n_frames) / max(n_frames, 1)
    amp = rng.uniform(0.04, 0.22, (2, 2))  # (term, axis)
    freq = rng.uniform(0.25, 1.0, (2, 2))  # cycles per clip
    phase = rng.uniform(0, 2 * np.pi, (2, 2))
    wave = (amp[:, None, :] * np.sin(2 * np.pi * freq[:, None, :] * t[None, :, None]
                                     + phase[:, None, :])).sum(0)
    va = centre + wave
    norm = np.linalg.norm(va, axis=1, keepdims=True)
    va = va * np.minimum(1.0, 0.98 / np.maximum(norm, 1e-12))
    return np.round(va, _LABEL_DECIMALS)


@dataclass(frozen=True)
class ClipScene:
    """Nuisance of one clip: background, light, noise and head pose per frame."""

    background: np.ndarray  # (S, S, 3) float32 in [0, 1]
    light: np.ndarray  # (S, S, 1) float32 multiplicative gain
    noise: float  # pixel noise std in [0, 1] units
    poses: np.ndarray  # (T, 2, 3) float32 affine maps (canonical → image pixels)


def clip_scene(rng: np.random.Generator, n_frames: int, size: int) -> ClipScene:
    """Draw one clip's nuisance: two-colour gradient background, light ramp (±15 %) and gain,
    pose (rotation ~2.5° sd, shift ~1.2 % sd, scale ±4 %, plus a slow drift) and noise."""
    g = (np.arange(size, dtype=np.float32) + 0.5) / size - 0.5
    x, y = np.meshgrid(g, g)
    th = rng.uniform(0, 2 * np.pi)
    ramp = (x * np.cos(th) + y * np.sin(th)) * 2  # in [-1.4, 1.4]
    c0, c1 = rng.uniform(0.12, 0.9, 3), rng.uniform(0.12, 0.9, 3)
    w = (ramp[..., None] + 1.4) / 2.8
    background = (c0 + w * (c1 - c0)).astype(np.float32)
    phi = rng.uniform(0, 2 * np.pi)
    light = rng.uniform(0.88, 1.1) * (1 + rng.uniform(0, 0.15) * 2 * (x * np.cos(phi)
                                                                      + y * np.sin(phi)))
    t = np.arange(n_frames) / max(n_frames, 1)
    drift = np.sin(2 * np.pi * rng.uniform(0.2, 1.0) * t + rng.uniform(0, 2 * np.pi))
    angle = np.clip(rng.normal(0, 2.5), -6, 6) + rng.uniform(0, 1.5) * drift
    scale = rng.uniform(0.96, 1.04) * (1 + 0.01 * drift)
    shift = rng.normal(0, 0.012 * size, 2)[None, :] + (0.006 * size) * drift[:, None]
    centre = (HEAD_CENTRE[0] * size, HEAD_CENTRE[1] * size)
    poses = np.stack([cv2.getRotationMatrix2D(centre, float(a), float(s)) for a, s in
                      zip(angle, scale)]).astype(np.float32)
    poses[:, :, 2] += shift
    return ClipScene(background, light.astype(np.float32)[..., None],
                     float(rng.uniform(0.008, 0.025)), poses)


def _identity_name(i: int, n: int) -> str:
    return f"id_{i:0{max(3, len(str(n - 1)))}d}"


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=tuple(key)))


@dataclass(frozen=True)
class Identity:
    """One identity of a dataset at given shift and style strengths."""

    look: Appearance
    style: ExpressionStyle
    camera: IdentityCamera | None  # None: no camera effect (shift 0)
    first_angle: float  # direction of its first clip's labels


def _identity(seed: int, i: int, shift: float = 1.0, style: float = 1.0) -> Identity:
    """Identity ``i`` of dataset ``seed`` (depends on seed, i and the strengths only). The
    look, style and first clip direction are drawn exactly as before the strengths existed;
    the trait draws and the camera come from a stream of their own."""
    rng = _rng(seed, i, _LOOK)
    look, own = sample_appearance(rng), sample_expression_style(rng)
    first = rng.uniform(0, 2 * np.pi)
    nuisance = _rng(seed, i, _NUISANCE)
    keep = dict(zip(DISCRETE_TRAITS, nuisance.random(len(DISCRETE_TRAITS))))
    camera = sample_camera(nuisance).scaled(shift) if shift > 0 else None
    return Identity(toward_canonical(look, shift, keep), own.scaled(style), camera, float(first))


def _check_strength(name: str, value: float) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = float("nan")
    if isinstance(value, bool) or not 0.0 <= v <= 1.0:
        raise DataError(f"synthetic: {name} must be a number in [0, 1], got {value!r}")
    return v


def display_values(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Displayed valence and arousal of every row of a :func:`generate` table (from its style)."""
    style = ExpressionStyle(**{f.name: table[f.name].to_numpy(float)
                               for f in fields(ExpressionStyle)})
    return style.display(table["valence"].to_numpy(float), table["arousal"].to_numpy(float))


def render_identity(identity: int, valence: np.ndarray, arousal: np.ndarray, image_size: int = 64,
                    seed: int = 0, style: ExpressionStyle | None = None) -> np.ndarray:
    """Identity ``identity`` of dataset ``seed`` showing the given labels, frontal, on grey.

    A probe for tests and figures: no pose, light, camera or noise. ``style`` overrides the
    identity's own expression style (e.g. to show the same face with another person's style).
    Returns (len(valence), S, S, 3) uint8.
    """
    ident = _identity(seed, identity)
    style = ident.style if style is None else style
    dv, da = style.display(valence, arousal)
    faces, alpha = FaceRenderer(ident.look, image_size, style.mouth_share).render(dv, da)
    return _to_uint8(faces + 0.5 * (1 - alpha[None, ..., None]))


def probe_labels(n_angles: int = 8, radii: tuple[float, ...] = (0.3, 0.6, 0.9)) -> np.ndarray:
    """The shared labels of :func:`probe_faces`: ``n_angles`` directions × ``radii`` in the VA
    disk (default 24 labels covering the four quadrants), (L, 2) float."""
    angles = 2 * np.pi * (np.arange(n_angles) + 0.5) / n_angles
    return np.array([[r * np.cos(a), r * np.sin(a)] for r in radii for a in angles])


def probe_faces(identities: Sequence[int], image_size: int = 64, seed: int = 0, *,
                shift: float = 1.0, style: float = 1.0, labels: np.ndarray | None = None,
                n_identities: int | None = None) -> tuple[np.ndarray, pd.DataFrame]:
    """The SAME labels shown by each identity: one clip per identity (the paper's Fig. 3 test).

    Identity ``i`` is the one of :func:`generate` (same seed and strengths); its probe clip
    (labels ``labels``, default :func:`probe_labels`, in that order) has a scene of its own
    (background, light, pose drift, noise from a stream of its own), like a fresh video of that
    person. ``n_identities`` (the dataset's, default max(identities) + 1) only sets the width
    of the identity names (``id_007``). Returns images (len(identities)·L, S, S, 3) uint8 and a
    table with identity, group, clip (0), frame, valence, arousal and the effective style.
    """
    shift, style = _check_strength("shift", shift), _check_strength("style", style)
    va = probe_labels() if labels is None else np.asarray(labels, float).reshape(-1, 2)
    size, n = int(image_size), len(va)
    n_names = int(n_identities) if n_identities else max(int(i) for i in identities) + 1
    images = np.empty((len(identities) * n, size, size, 3), np.uint8)
    tables = []
    for pos, i in enumerate(identities):
        ident = _identity(seed, int(i), shift, style)
        r = _rng(seed, int(i), _PROBE)
        faces, alpha = FaceRenderer(ident.look, size, ident.style.mouth_share).render(
            *ident.style.display(va[:, 0], va[:, 1]))
        images[pos * n:(pos + 1) * n] = _film_clip(faces, alpha, clip_scene(r, n, size), r,
                                                   ident.camera)
        name = _identity_name(int(i), n_names)
        tables.append(pd.DataFrame({"identity": name, "group": name, "clip": 0,
                                    "frame": np.arange(n), "valence": va[:, 0],
                                    "arousal": va[:, 1], **asdict(ident.style)}))
    return images, pd.concat(tables, ignore_index=True)


def _to_uint8(img: np.ndarray) -> np.ndarray:
    return np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8)


def _film_clip(faces: np.ndarray, alpha: np.ndarray, scene: ClipScene,
               rng: np.random.Generator, camera: IdentityCamera | None = None) -> np.ndarray:
    """Pose, background, light, the identity's camera and noise for one clip of canonical
    faces → (T, S, S, 3) uint8."""
    size = faces.shape[1]
    rgba = np.concatenate([faces, np.broadcast_to(alpha[None, ..., None], faces.shape[:3] + (1,))],
                          axis=-1)
    warped = np.stack([cv2.warpAffine(f, m, (size, size), flags=cv2.INTER_LINEAR,
                                      borderMode=cv2.BORDER_REPLICATE)
                       for f, m in zip(rgba, scene.poses)])
    img = warped[..., :3] + scene.background * (1 - warped[..., 3:])
    img *= scene.light
    if camera is not None:
        camera.apply(img)
    # uniform pixel noise with std scene.noise (cheaper to draw than Gaussian noise)
    noise = rng.random(img.shape, dtype=np.float32)
    img += np.float32(scene.noise * 12**0.5) * (noise - np.float32(0.5))
    return _to_uint8(img)


def generate(n_identities: int = 60, clips_per_identity: int = 4, frames_per_clip: int = 12,
             image_size: int = 64, seed: int = 0, progress: bool = True, *,
             shift: float = 1.0, style: float = 1.0) -> tuple[np.ndarray, pd.DataFrame]:
    """Draw the dataset: ``images`` (N, S, S, 3) uint8 RGB and the aligned label ``table``.

    N = n_identities · clips_per_identity · frames_per_clip, ordered by identity, clip, frame.
    ``table`` columns: path (virtual ``synthetic://id_007/clip_2/0005.png``), identity, group
    (= identity), clip, frame, valence, arousal and the identity's effective style (gain_v,
    gain_a, offset_v, offset_a, gamma_v, gamma_a, mouth_share). Identity ``i`` depends only on
    (seed, i, shift, style), not on how many identities are drawn; clip ``k`` only on
    (seed, i, k) and the identity; the labels do not depend on ``shift`` or ``style`` at all.
    ``shift`` and ``style`` ∈ [0, 1] are the two strengths of the module docstring.
    """
    for name, v, lo in (("n_identities", n_identities, 1), ("clips_per_identity",
                        clips_per_identity, 1), ("frames_per_clip", frames_per_clip, 1),
                        ("image_size", image_size, 16), ("seed", seed, 0)):
        if isinstance(v, bool) or int(v) != v or v < lo:
            raise DataError(f"synthetic: {name} must be an integer >= {lo}, got {v!r}")
    shift, style = _check_strength("shift", shift), _check_strength("style", style)
    size, n_frames = int(image_size), int(frames_per_clip)
    per_id = int(clips_per_identity) * n_frames
    images = np.empty((int(n_identities) * per_id, size, size, 3), np.uint8)
    tables = []
    for i in tqdm(range(int(n_identities)), desc="synthetic faces", unit="id",
                  disable=None if progress else True):
        ident = _identity(seed, i, shift, style)
        rngs = [_rng(seed, i, _CLIP, k) for k in range(int(clips_per_identity))]
        va = np.concatenate([
            clip_labels(r, n_frames, ident.first_angle
                        + 2 * np.pi * (k + r.uniform(-0.3, 0.3)) / len(rngs))
            for k, r in enumerate(rngs)])
        faces, alpha = FaceRenderer(ident.look, size, ident.style.mouth_share).render(
            *ident.style.display(va[:, 0], va[:, 1]))
        for k, r in enumerate(rngs):
            sl = slice(k * n_frames, (k + 1) * n_frames)
            images[i * per_id + sl.start:i * per_id + sl.stop] = _film_clip(
                faces[sl], alpha, clip_scene(r, n_frames, size), r, ident.camera)
        name = _identity_name(i, int(n_identities))
        clip_idx, frame_idx = np.divmod(np.arange(per_id), n_frames)
        tables.append(pd.DataFrame({
            "path": [f"{URI_PREFIX}{name}/clip_{k}/{f:04d}.png"
                     for k, f in zip(clip_idx, frame_idx)],
            "identity": name, "group": name, "clip": clip_idx, "frame": frame_idx,
            "valence": va[:, 0], "arousal": va[:, 1], **asdict(ident.style)}))
    return images, pd.concat(tables, ignore_index=True)


def write_synthetic(out_dir: str | os.PathLike, progress: bool = True, **generate_kwargs) -> Path:
    """Write :func:`generate` output as PNGs under ``out_dir/images`` plus ``out_dir/labels.csv``.

    ``labels.csv`` (written last, atomically) has path (relative to ``out_dir``), identity,
    valence, arousal, group, clip, frame and the style columns, so that both
    ``--dataset synthetic --root out_dir`` and ``--dataset csv --root out_dir/labels.csv`` read it.
    Returns the path of ``labels.csv``.
    """
    out = Path(out_dir)
    images, table = generate(progress=progress, **generate_kwargs)
    rel = table["path"].str.slice(len(URI_PREFIX)).map(lambda p: f"images/{p}")
    for d in sorted({str(Path(p).parent) for p in rel}):
        (out / d).mkdir(parents=True, exist_ok=True)
    for img, p in tqdm(zip(images, rel), total=len(rel), desc="writing PNGs", unit="img",
                       disable=None if progress else True):
        if not cv2.imwrite(str(out / p), cv2.cvtColor(img, cv2.COLOR_RGB2BGR)):
            raise DataError(f"synthetic: could not write {out / p}; check that the folder is "
                            "writable and has free space")
    table = table.assign(path=rel)
    first = ["path", "identity", "valence", "arousal", "group", "clip", "frame"]
    table = table[first + [c for c in table.columns if c not in first]]
    labels = out / LABELS_FILE
    tmp = labels.with_suffix(".csv.tmp")
    table.to_csv(tmp, index=False)
    os.replace(tmp, labels)
    return labels


@register_dataset("synthetic")
def read(root: str | os.PathLike | None = None, **options) -> ReadResult:
    """Read a folder written by :func:`write_synthetic` (or its ``labels.csv``).

    The generic CSV reader (:mod:`elim.datasets.csv_frames`, which ``options`` go to) reads the
    labels; the clip number and the identity's style columns are added back to the records.
    With ``root=None`` there are no files to read: :func:`elim.datasets.open_dataset` calls
    :func:`generate` itself in that case, so this raises a :class:`DataError` saying so.
    """
    if root is None:
        raise DataError("synthetic: no root given; generated data lives in memory "
                        "(elim.datasets.open_dataset('synthetic', None, image_size)), or write "
                        "it with `elim data synth --out DIR` (or write_synthetic(DIR)) and pass "
                        "--root DIR")
    result = get_reader("csv")(root, **options)
    extra = ["clip", *(f.name for f in fields(ExpressionStyle))]
    try:
        table = pd.read_csv(result.source, usecols=lambda c: c in {"path", *extra})
    except (OSError, ValueError) as err:
        raise DataError(f"{result.source}: cannot read ({err})") from err
    if set(extra) <= set(table.columns):
        base = Path(result.source).parent.absolute()
        table.index = [os.path.normpath(base / p) for p in table["path"]]
        table = table[~table.index.duplicated()]
        # extra columns only: the records validated by the csv reader stay valid
        result.records = result.records.join(table[extra], on="path")
    return result
