"""Drawing of the synthetic faces used by :mod:`elim.datasets.synthetic`.

A face is described by an :class:`Appearance` (geometry, colours, hair, accessories) drawn once per
identity. :class:`FaceRenderer` turns it into pre-rendered layers at twice the output resolution
(an *under* layer: background hair, clothes, head, nose, beard; an *over* layer: front hair,
moustache, glasses, hat) and then, for every frame, draws only the expression-dependent parts
(eyes, eyelids, brows, mouth, cheeks, smile folds) from two *display* values:

* ``dv`` (displayed valence) bends the mouth (smile / frown), lifts the lower eyelids and cheeks,
  tilts the eye corners and deepens the smile folds;
* ``da`` (displayed arousal) opens the eyes and the mouth and raises the brows; with negative
  valence it also moves the inner brow ends (up when sad, down when angry).

All coordinates are fractions of the canvas side; polygons are filled anti-aliased with 4
fractional bits and the canvas is downsampled with area interpolation, so that small changes of
the display values change the pixels smoothly. Layers are kept *premultiplied* by their alpha
(drawing on black with ``LINE_AA`` yields exactly that), so compositing and warping are linear.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from elim.deps import cv2

# Centre of the head on the canvas (fractions); poses rotate about this point.
HEAD_CENTRE = (0.5, 0.46)
# Light → dark skin tones (RGB); a tone is a random point on this polyline.
SKIN_ANCHORS = np.array(
    [[255, 226, 200], [236, 188, 150], [198, 140, 100], [150, 98, 66], [88, 56, 40]], float
)
HAIR_COLOURS = np.array(
    [[28, 24, 22], [62, 40, 28], [112, 74, 44], [196, 158, 96], [158, 72, 36],
     [140, 138, 134], [222, 218, 210]], float
)
IRIS_COLOURS = np.array(
    [[78, 50, 28], [44, 30, 22], [72, 112, 162], [82, 122, 72], [124, 98, 54]], float
)
HAIR_STYLES = ("bald", "short", "long", "bangs", "afro")
_SHIFT = 4  # fractional bits of the drawing coordinates
_EYE_WHITE = (238, 236, 230)
_MOUTH_INSIDE = (70, 22, 28)
_TEETH = (236, 232, 220)


@dataclass(frozen=True)
class Appearance:
    """Identity-specific look of a synthetic face (all lengths are fractions of the canvas)."""

    skin: tuple[float, float, float]
    face_w: float  # half width of the head
    face_h: float  # half height of the head
    squareness: float  # superellipse exponent (2 = ellipse, larger = squarer)
    chin_taper: float  # narrowing of the lower half
    eye_y: float  # eye line relative to the head centre (negative = above)
    eye_dx: float  # half distance between the eye centres
    eye_w: float  # half width of an eye
    eye_h: float  # half height of an open eye at rest
    iris: tuple[float, float, float]
    brow_gap: float
    brow_w: float
    brow_t: float
    brow_arch: float
    nose_len: float
    nose_w: float
    mouth_y: float  # mouth line relative to the head centre
    mouth_w: float  # half width of the mouth
    lip_t: float
    lip: tuple[float, float, float]
    hair_style: str
    hair: tuple[float, float, float]
    hairline: float  # height of the hairline as a fraction of face_h above the centre
    glasses: bool
    glasses_round: bool
    glasses_colour: tuple[float, float, float]
    beard: bool
    moustache: bool
    hat: bool
    hat_colour: tuple[float, float, float]
    shirt: tuple[float, float, float]


def _colour(c: np.ndarray) -> tuple[float, float, float]:
    return tuple(float(v) for v in np.clip(c, 0, 255))


def sample_appearance(rng: np.random.Generator) -> Appearance:
    """Draw one identity's look; every draw is independent of every other identity."""
    t = rng.uniform(0, len(SKIN_ANCHORS) - 1)
    k = min(int(t), len(SKIN_ANCHORS) - 2)
    skin = SKIN_ANCHORS[k] + (t - k) * (SKIN_ANCHORS[k + 1] - SKIN_ANCHORS[k])
    skin = skin * rng.uniform(0.95, 1.05, 3)
    face_w = rng.uniform(0.25, 0.32)
    face_h = rng.uniform(0.33, 0.40)
    eye_w = rng.uniform(0.045, 0.06)
    hair = HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))] * rng.uniform(0.9, 1.1)
    style = str(HAIR_STYLES[rng.integers(len(HAIR_STYLES))])
    lip = skin * np.array([0.82, 0.55, 0.55]) + np.array([30, 0, 5])
    hairline = rng.uniform(0.42, 0.55) if style == "bangs" else rng.uniform(0.55, 0.72)
    beard = bool(rng.random() < 0.2)
    return Appearance(
        skin=_colour(skin),
        face_w=face_w,
        face_h=face_h,
        squareness=rng.uniform(2.0, 3.2),
        chin_taper=rng.uniform(0.0, 0.3),
        eye_y=-rng.uniform(0.035, 0.055),
        eye_dx=rng.uniform(0.105, 0.125),
        eye_w=eye_w,
        eye_h=eye_w * rng.uniform(0.38, 0.5),
        iris=_colour(IRIS_COLOURS[rng.integers(len(IRIS_COLOURS))]),
        brow_gap=rng.uniform(0.04, 0.06),
        brow_w=eye_w * rng.uniform(1.1, 1.35),
        brow_t=rng.uniform(0.010, 0.02),
        brow_arch=rng.uniform(0.0, 0.015),
        nose_len=rng.uniform(0.09, 0.14),
        nose_w=rng.uniform(0.025, 0.04),
        mouth_y=rng.uniform(0.165, 0.195),
        mouth_w=rng.uniform(0.07, 0.1),
        lip_t=rng.uniform(0.008, 0.016),
        lip=_colour(lip),
        hair_style=style,
        hair=_colour(hair),
        hairline=hairline,
        glasses=bool(rng.random() < 0.25),
        glasses_round=bool(rng.random() < 0.5),
        glasses_colour=_colour(rng.choice([20.0, 60.0, 120.0]) * rng.uniform(0.6, 1.4, 3)),
        beard=beard,
        moustache=beard or bool(rng.random() < 0.1),
        hat=bool(rng.random() < 0.12),
        hat_colour=_colour(rng.uniform(30, 230, 3)),
        shirt=_colour(rng.uniform(30, 230, 3)),
    )


#: The identity-neutral face (shift strength 0): the middle of every range of
#: :func:`sample_appearance`, short dark-brown hair, no accessories, grey clothes.
_CANONICAL_SKIN = SKIN_ANCHORS[2]
CANONICAL = Appearance(
    skin=_colour(_CANONICAL_SKIN), face_w=0.285, face_h=0.365, squareness=2.6, chin_taper=0.15,
    eye_y=-0.045, eye_dx=0.115, eye_w=0.0525, eye_h=0.0525 * 0.44,
    iris=_colour(IRIS_COLOURS[0]), brow_gap=0.05, brow_w=0.0525 * 1.225, brow_t=0.015,
    brow_arch=0.0075, nose_len=0.115, nose_w=0.0325, mouth_y=0.18, mouth_w=0.085, lip_t=0.012,
    lip=_colour(_CANONICAL_SKIN * np.array([0.82, 0.55, 0.55]) + np.array([30, 0, 5])),
    hair_style="short", hair=_colour(HAIR_COLOURS[1]), hairline=0.635, glasses=False,
    glasses_round=False, glasses_colour=(60.0, 60.0, 60.0), beard=False, moustache=False,
    hat=False, hat_colour=(130.0, 130.0, 130.0), shirt=(130.0, 130.0, 130.0),
)
#: The discrete traits of an :class:`Appearance` that :func:`toward_canonical` keeps or drops.
DISCRETE_TRAITS = ("hair_style", "glasses", "beard", "moustache", "hat")


def toward_canonical(app: Appearance, shift: float, keep: dict[str, float]) -> Appearance:
    """``app`` moved toward :data:`CANONICAL` by the identity-shift strength ``shift`` ∈ [0, 1].

    Every number (lengths, colours) becomes (1 − s)·canonical + s·own, exact at s = 0 and 1.
    A discrete trait of :data:`DISCRETE_TRAITS` (hair style, glasses, beard, moustache, hat)
    keeps the identity's own value when its draw ``keep[name]`` ∈ [0, 1) is below s, and takes
    the canonical one otherwise: the share of identities showing their own trait grows as s, and
    one identity's traits are nested in s (a trait shown at s is shown at every larger s).
    """
    s = float(shift)
    values = {}
    for f in fields(Appearance):
        own, base = getattr(app, f.name), getattr(CANONICAL, f.name)
        if f.name in DISCRETE_TRAITS:
            values[f.name] = own if keep[f.name] < s else base
        elif isinstance(own, tuple):
            values[f.name] = tuple((1 - s) * b + s * o for o, b in zip(own, base))
        elif isinstance(own, bool):  # the glasses' shape follows the glasses
            values[f.name] = own if keep["glasses"] < s else base
        else:
            values[f.name] = (1 - s) * base + s * own
    return Appearance(**values)


def _ellipse(cx: float, cy: float, ax: float, ay: float, n: int = 40) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([cx + ax * np.cos(t), cy + ay * np.sin(t)], axis=1)


def _shade(c: tuple[float, float, float], f: float) -> tuple[float, float, float]:
    return (c[0] * f, c[1] * f, c[2] * f)


def _mix(a, b, w: float) -> tuple[float, float, float]:
    return tuple(float(x + w * (y - x)) for x, y in zip(a, b))


class _Canvas:
    """An RGB canvas (and optionally its alpha) drawn with anti-aliased sub-pixel polygons."""

    def __init__(self, size: int, rgb: np.ndarray | None = None, with_alpha: bool = True):
        self.size = size
        self.rgb = np.zeros((size, size, 3), np.uint8) if rgb is None else rgb
        self.alpha = np.zeros((size, size), np.uint8) if with_alpha else None

    def _pts(self, xy: np.ndarray) -> np.ndarray:
        return np.round(np.asarray(xy) * (self.size * (1 << _SHIFT))).astype(np.int32)

    def fill(self, polys: list[np.ndarray], colour) -> None:
        pts = [self._pts(p) for p in polys]
        cv2.fillPoly(self.rgb, pts, colour, cv2.LINE_AA, _SHIFT)
        if self.alpha is not None:
            cv2.fillPoly(self.alpha, pts, 255, cv2.LINE_AA, _SHIFT)

    def line(self, polys: list[np.ndarray], colour, width: float, closed: bool = False) -> None:
        pts = [self._pts(p) for p in polys]
        th = max(1, round(width * self.size))
        cv2.polylines(self.rgb, pts, closed, colour, th, cv2.LINE_AA, _SHIFT)
        if self.alpha is not None:
            cv2.polylines(self.alpha, pts, closed, 255, th, cv2.LINE_AA, _SHIFT)


def head_outline(app: Appearance, grow: float = 1.0, n: int = 64) -> np.ndarray:
    """Superellipse head contour, narrower towards the chin, scaled by ``grow``."""
    cx, cy = HEAD_CENTRE
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    c, s = np.cos(t), np.sin(t)
    e = 2.0 / app.squareness
    x = np.sign(c) * np.abs(c) ** e
    y = np.sign(s) * np.abs(s) ** e
    x = x * (1.0 - app.chin_taper * np.clip(s, 0, 1) ** 2)
    return np.stack([cx + grow * app.face_w * x, cy + grow * app.face_h * y], axis=1)


def _front_hair(app: Appearance) -> np.ndarray:
    """Hair on top of the head down to a curved hairline (a polygon)."""
    cx, cy = HEAD_CENTRE
    top = head_outline(app, grow=1.06, n=96)
    y_line = cy - app.hairline * app.face_h
    keep = top[top[:, 1] < y_line]
    keep = keep[np.argsort(np.arctan2(keep[:, 1] - cy, keep[:, 0] - cx))]  # left → right over top
    xl, xr = keep[0, 0], keep[-1, 0]
    xs = np.linspace(xr, xl, 15)
    u = (xs - cx) / app.face_w
    depth = 0.02 if app.hair_style == "bangs" else 0.045
    ys = y_line - depth * (1 - u**2)  # hairline recedes in the middle, lower at the temples
    if app.hair_style == "bangs":
        ys = y_line + 0.01 * np.cos(u * 14)  # a ragged fringe
    return np.concatenate([keep, np.stack([xs, ys], axis=1)])


def _draw_under(cv: _Canvas, app: Appearance) -> None:
    cx, cy = HEAD_CENTRE
    fw, fh = app.face_w, app.face_h
    if app.hair_style == "long":
        x0, x1 = cx - fw * 1.22, cx + fw * 1.22
        back = np.concatenate([
            head_outline(app, 1.12, 64)[32:],  # top half of a slightly larger head
            [[x1, cy + fh * 1.35], [x0, cy + fh * 1.35]],
        ])
        cv.fill([back], app.hair)
    elif app.hair_style == "afro":
        cv.fill([_ellipse(cx, cy - 0.08 * fh, fw * 1.5, fh * 1.28, 48)], app.hair)
    elif app.hair_style in ("short", "bangs"):
        cv.fill([head_outline(app, 1.06)[32:]], app.hair)
    # clothes, neck, ears, head
    cv.fill([_ellipse(cx, 1.12, 0.46, 0.26, 48)], app.shirt)
    neck = np.array([[cx - fw * 0.45, cy], [cx + fw * 0.45, cy], [cx + fw * 0.48, 0.95],
                     [cx - fw * 0.48, 0.95]])
    cv.fill([neck], _shade(app.skin, 0.85))
    ey = cy + app.eye_y
    ears = [_ellipse(cx + s * fw * 0.97, ey + 0.03, 0.028, 0.052, 20) for s in (-1, 1)]
    cv.fill(ears, _shade(app.skin, 0.93))
    cv.fill([head_outline(app)], app.skin)
    if app.beard:
        out = head_outline(app, 1.02, 96)
        low = out[out[:, 1] > cy + 0.3 * fh]
        low = low[np.argsort(np.arctan2(low[:, 1] - cy, low[:, 0] - cx))]
        xs = np.linspace(low[-1, 0], low[0, 0], 13)
        ys = cy + 0.38 * fh + 0.04 * (1 - ((xs - cx) / fw) ** 2)
        cv.fill([np.concatenate([low, np.stack([xs, ys], 1)])], _mix(app.hair, app.skin, 0.25))
    # nose: bridge shadow, tip and nostrils
    ny = ey + app.nose_len
    bridge = np.array([[cx + 0.004, ey + 0.02], [cx + 0.008, ny - 0.01]])
    cv.line([bridge], _shade(app.skin, 0.88), 0.008)
    tip = np.array([[cx - app.nose_w, ny], [cx - app.nose_w * 0.5, ny + 0.012], [cx, ny + 0.016],
                    [cx + app.nose_w * 0.5, ny + 0.012], [cx + app.nose_w, ny]])
    cv.line([tip], _shade(app.skin, 0.72), 0.008)
    nostrils = [_ellipse(cx + s * app.nose_w * 0.5, ny + 0.004, 0.009, 0.005, 12) for s in (-1, 1)]
    cv.fill(nostrils, _shade(app.skin, 0.45))


def _draw_over(cv: _Canvas, app: Appearance) -> None:
    cx, cy = HEAD_CENTRE
    fw, fh = app.face_w, app.face_h
    ey = cy + app.eye_y
    if app.hair_style != "bald" and not app.hat:
        cv.fill([_front_hair(app)], app.hair)
    if app.moustache:
        my = cy + app.mouth_y
        xs = np.linspace(-1, 1, 13)
        top = np.stack([cx + xs * app.mouth_w * 1.1, my - 0.035 - 0.008 * (1 - xs**2)], 1)
        bot = np.stack([cx + xs * app.mouth_w * 1.15, my - 0.016 + 0.01 * xs**2], 1)[::-1]
        cv.fill([np.concatenate([top, bot])], _shade(app.hair, 0.9))
    if app.glasses:
        ax, ay = app.eye_w * 1.5, app.eye_w * 1.15
        frames = []
        for s in (-1, 1):
            ex = cx + s * app.eye_dx
            if app.glasses_round:
                frames.append(_ellipse(ex, ey, ax, ay, 36))
            else:
                frames.append(np.array([[ex - ax, ey - ay], [ex + ax, ey - ay],
                                        [ex + ax * 0.9, ey + ay], [ex - ax * 0.9, ey + ay]]))
        cv.line(frames, app.glasses_colour, 0.012, closed=True)
        bridge = np.array([[cx - app.eye_dx + ax, ey - 0.005], [cx, ey - 0.015],
                           [cx + app.eye_dx - ax, ey - 0.005]])
        temples = [np.array([[cx + s * (app.eye_dx + ax), ey - 0.01], [cx + s * fw * 0.98, ey]])
                   for s in (-1, 1)]
        cv.line([bridge, *temples], app.glasses_colour, 0.01)
    if app.hat:
        y_rim = cy - 0.55 * fh
        dome = head_outline(app, 1.1, 96)
        dome = dome[dome[:, 1] < y_rim]
        dome = dome[np.argsort(np.arctan2(dome[:, 1] - cy, dome[:, 0] - cx))]
        cv.fill([dome], app.hat_colour)
        rim = np.array([[cx - fw * 1.12, y_rim - 0.035], [cx + fw * 1.12, y_rim - 0.035],
                        [cx + fw * 1.12, y_rim + 0.01], [cx - fw * 1.12, y_rim + 0.01]])
        cv.fill([rim], _shade(app.hat_colour, 0.75))


@dataclass(frozen=True)
class _Op:
    """One drawing call per frame: ``polys[f]`` (k, n, 2) fixed-point points, filled or stroked."""

    polys: np.ndarray  # (F, k, n, 2) int32
    colours: list  # F colours
    width: int  # 0: fill, else stroke width in canvas pixels
    active: np.ndarray | None = None  # (F,) bool, None = every frame


def _bezier(p0: np.ndarray, ctrl: np.ndarray, p1: np.ndarray, n: int = 8) -> np.ndarray:
    t = np.linspace(0, 1, n)[:, None]
    return (1 - t) ** 2 * p0[..., None, :] + 2 * t * (1 - t) * ctrl[..., None, :] \
        + t**2 * p1[..., None, :]


def expression_ops(app: Appearance, dv: np.ndarray, da: np.ndarray, mouth_share: float,
                   canvas: int) -> list[_Op]:
    """Drawing calls of the expression-dependent parts for F frames of display values.

    ``dv``/``da`` (F,) are displayed valence and arousal; ``mouth_share`` in (0, 1] says how much
    of the valence shows in the mouth rather than in the eyes and cheeks (an identity's style).
    All geometry is computed for all frames at once; only the ``cv2`` calls loop over frames.
    """
    n_frames = len(dv)
    dv = np.asarray(dv, float)[:, None]
    da = np.asarray(da, float)[:, None]
    cx, cy = HEAD_CENTRE
    fw = app.face_w
    ey, my = cy + app.eye_y, cy + app.mouth_y
    pos, neg = np.maximum(dv, 0.0), np.maximum(-dv, 0.0)
    eye_share = 1.4 - mouth_share
    skin = np.asarray(app.skin)
    ops: list[_Op] = []

    def add(polys: list[np.ndarray], colour, width: float = 0.0,
            active: np.ndarray | None = None) -> None:
        pts = np.stack([np.broadcast_to(p, (n_frames,) + p.shape[-2:]) for p in polys], 1)
        pts = np.round(pts * (canvas * (1 << _SHIFT))).astype(np.int32)
        colours = np.broadcast_to(np.clip(np.asarray(colour, float), 0, 255), (n_frames, 3))
        th = 0 if width == 0 else max(1, round(width * canvas))
        ops.append(_Op(pts, colours.tolist(), th, None if active is None else active.ravel()))

    def xy(x, y) -> np.ndarray:
        x, y = np.broadcast_arrays(x, y)
        return np.stack([x, y], -1)

    # cheeks rise and flush with a smile; nasolabial folds deepen
    k = np.minimum(pos, 1.2)
    smiling = pos > 0.05
    t = np.linspace(0, 2 * np.pi, 20, endpoint=False)
    add([xy(cx + s * fw * 0.55 + (0.04 + 0.01 * k) * np.cos(t),
            my - 0.06 - 0.02 * k * eye_share + 0.028 * np.sin(t)) for s in (-1, 1)],
        skin + (np.array([235.0, 120, 120]) - skin) * (0.12 * k * eye_share), active=smiling)
    folds = []
    for s in (-1, 1):
        p0 = np.broadcast_to([cx + s * (app.nose_w + 0.012), ey + app.nose_len - 0.005],
                             (n_frames, 2))
        x1 = cx + s * (app.mouth_w * (1 + 0.12 * k[:, 0]) + 0.015)
        p1 = np.stack([x1, np.full(n_frames, my + 0.01)], 1)
        ctrl = np.stack([x1 + s * 0.01, (p0[:, 1] + p1[:, 1]) / 2], 1)
        folds.append(_bezier(p0, ctrl, p1))
    add(folds, skin * (1 - 0.22 * np.minimum(k, 1.0)), 0.008, active=smiling)

    # eyes: almond between two lid curves; the iris is clipped by redrawing skin around it
    open_f = np.clip(1 + 0.6 * da, 0.12, 1.9)
    squint = np.minimum(0.5 * pos * eye_share, 0.6)
    tilt = app.eye_h * 0.6 * (neg - 0.4 * pos)  # outer corners droop when sad
    xs = np.linspace(-1, 1, 11)
    bulge = (1 - xs**2) ** 0.8
    r_iris = app.eye_h * 1.05
    ring = np.linspace(0, 2 * np.pi, 20, endpoint=False)
    almonds, irises, pupils, covers, uppers, lowers = [], [], [], [], [], []
    for s in (-1, 1):
        ex = cx + s * app.eye_dx
        px = ex + xs * app.eye_w
        corner = tilt * (xs * s + 1) / 2  # 0 at the inner corner, ``tilt`` at the outer one
        up = xy(px, ey + corner - app.eye_h * open_f * bulge)
        lo = xy(px, ey + corner + app.eye_h * 0.75 * open_f * (1 - squint) * bulge)
        almonds.append(np.concatenate([up, lo[:, ::-1]], 1))
        iy = ey + 0.1 * tilt
        irises.append(xy(ex + r_iris * np.cos(ring), iy + r_iris * np.sin(ring)))
        pupils.append(xy(ex + 0.45 * r_iris * np.cos(ring), iy + 0.45 * r_iris * np.sin(ring)))
        wx = np.array([px[-1], px[0]])
        top = xy(wx, np.full((n_frames, 2), ey - r_iris - 0.02))
        bottom = xy(wx, np.broadcast_to(ey + r_iris + 0.02 + tilt, (n_frames, 2)))
        covers += [np.concatenate([up, top], 1), np.concatenate([lo, bottom], 1)]
        uppers.append(up)
        lowers.append(lo)
    add(almonds, _EYE_WHITE)
    add(irises, app.iris)
    add(pupils, (15, 12, 12))
    add(covers, skin)
    add(uppers, (35, 25, 25), 0.011)
    add(lowers, skin * 0.7, 0.006)

    # brows: raised by arousal; inner ends up when sad, down when angry
    inner = 0.03 * neg * np.clip(-da, -1.2, 1.2)
    tb = np.linspace(-1, 1, 9)  # -1 inner, +1 outer
    half = app.brow_t * (1 - 0.35 * (tb + 1) / 2) / 2
    brows = []
    for s in (-1, 1):
        bx = cx + s * (app.eye_dx + tb * app.brow_w * 0.95 + 0.005)
        by = ey - app.brow_gap - 0.035 * da - app.brow_arch * (1 - tb**2) - inner * (1 - tb) / 2
        brows.append(np.concatenate([xy(bx, by - half), xy(bx, by + half)[:, ::-1]], 1))
    add(brows, np.asarray(app.hair) * 0.8 if app.hair_style != "bald" else skin * 0.55)

    # mouth: corners up or down with valence, opened by arousal
    width = app.mouth_w * (1 + 0.2 * pos * mouth_share - 0.08 * neg)
    curve = 0.065 * dv * mouth_share
    opening = 0.06 * np.clip((da + 0.25) / 1.25, 0, 1.3) * (0.6 + 0.4 * mouth_share)
    opening = opening + 0.02 * np.clip(dv - 0.3, 0, 1) * mouth_share  # broad smiles part the lips
    t = np.linspace(-1, 1, 15)
    mid = my - curve * (t**2 - 0.35)
    shape = (1 - t**2) ** 0.7
    u = mid - 0.3 * opening * shape
    lo = mid + opening * shape
    lip = np.sqrt(1 - t**2)
    x = cx + t * width
    add([np.concatenate([xy(x, u - app.lip_t * lip), xy(x, lo + 1.3 * app.lip_t * lip)[:, ::-1]],
                        1)], app.lip)
    add([xy(x, mid)], np.asarray(app.lip) * 0.55, 0.007)
    is_open = opening > 0.004
    add([np.concatenate([xy(x, u), xy(x, lo)[:, ::-1]], 1)], _MOUTH_INSIDE, active=is_open)
    teeth = np.minimum(u + 0.45 * opening * shape + 0.004, lo)
    add([np.concatenate([xy(x, u), xy(x, teeth)[:, ::-1]], 1)], _TEETH,
        active=is_open & (dv > 0.15))
    return ops


class FaceRenderer:
    """Pre-rendered layers of one identity; renders frames for given display values.

    ``render(dv, da)`` returns ``(faces, alpha)``: ``faces`` (F, S, S, 3) float32 premultiplied
    colour in [0, 1] in the canonical (frontal, centred) pose and ``alpha`` (S, S) float32 coverage
    of the figure, shared by all frames.
    """

    def __init__(self, app: Appearance, image_size: int, mouth_share: float = 0.7,
                 supersample: int = 2):
        self.app = app
        self.size = int(image_size)
        self.mouth_share = float(mouth_share)
        self.canvas = self.size * supersample
        under = _Canvas(self.canvas)
        _draw_under(under, app)
        over = _Canvas(self.canvas)
        _draw_over(over, app)
        self._under_rgb = under.rgb
        a_under = self._down(under.alpha)[..., None]
        self.over_rgb = self._down(over.rgb)
        self.over_alpha = self._down(over.alpha)[..., None]
        self.alpha = (self.over_alpha + a_under * (1 - self.over_alpha))[..., 0]
        self.shading = self._shading()

    def _down(self, img: np.ndarray) -> np.ndarray:
        out = cv2.resize(img, (self.size, self.size), interpolation=cv2.INTER_AREA)
        return out.astype(np.float32) / 255.0

    def _shading(self) -> np.ndarray:
        """Soft darkening towards the rim of the head and a little top light (3-D look)."""
        cx, cy = HEAD_CENTRE
        g = (np.arange(self.size, dtype=np.float32) + 0.5) / self.size
        x, y = np.meshgrid(g, g)
        r2 = ((x - cx) / self.app.face_w) ** 2 + ((y - cy) / self.app.face_h) ** 2
        shade = 1.0 - 0.18 * np.clip(r2, 0, 1.5) ** 2 + 0.05 * np.clip((cy - y) / self.app.face_h,
                                                                      -1, 1)
        return shade.astype(np.float32)[..., None]

    def render(self, dv: np.ndarray, da: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Frames for displayed valence ``dv`` and arousal ``da`` (F,): (faces, alpha)."""
        dv = np.asarray(dv, float).ravel()
        da = np.asarray(da, float).ravel()
        ops = expression_ops(self.app, dv, da, self.mouth_share, self.canvas)
        small = np.empty((len(dv), self.size, self.size, 3), np.uint8)
        for f in range(len(dv)):
            rgb = self._under_rgb.copy()
            for op in ops:
                if op.active is not None and not op.active[f]:
                    continue
                if op.width:
                    cv2.polylines(rgb, op.polys[f], False, op.colours[f], op.width, cv2.LINE_AA,
                                  _SHIFT)
                else:
                    cv2.fillPoly(rgb, op.polys[f], op.colours[f], cv2.LINE_AA, _SHIFT)
            small[f] = cv2.resize(rgb, (self.size, self.size), interpolation=cv2.INTER_AREA)
        faces = small.astype(np.float32) * np.float32(1 / 255)
        faces = self.over_rgb + faces * (1 - self.over_alpha)
        faces *= self.shading
        return faces, self.alpha
