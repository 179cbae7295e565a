"""Non-glyphs that real page segmenters cut out of a page, as OOD generators.

A segmenter that boxes every connected component also boxes what is printed, drawn or stained
on the page besides type: inked quads and spacing material, rules, handwriting, library stamps,
ornaments, the gutter and the page edge, and the text of the other side showing through. Each
generator maps a seeded generator to one uint8 (OUT, OUT) scan through the same paper and ink
degradations as the glyph corpus (corpus/synth/degrade.py), so a detector cannot win by
spotting the synthesis instead of the content.

Likelihood models are known to give simple, low-complexity images a high likelihood (Nalisnick
et al. 2019; Serrà et al. 2020): solid shapes and rules are the cases a gate must not let pass.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from corpus.synth import degrade
from corpus.synth.faces import LOWER, MODERN_FACES, PRINT_FACES
from corpus.synth.render import WORK, get_font


def _pick(rng, seq):
    return seq[int(rng.integers(len(seq)))]


def _mask(draw_fn, size: int = WORK, supersample: int = 2) -> np.ndarray:
    """Ink mask in [0, 1] drawn by `draw_fn(ImageDraw, scale)` at `supersample` x, box-averaged."""
    big = Image.new("L", (size * supersample, size * supersample), 0)
    draw_fn(ImageDraw.Draw(big), supersample)
    return np.asarray(big.resize((size, size), Image.BOX), dtype=np.float32) / 255.0


def _blur(a: np.ndarray, radius: float) -> np.ndarray:
    """Gaussian blur of a [0, 1] float array (through 8 bits: Pillow blurs no float images)."""
    img = Image.fromarray((np.clip(a, 0, 1) * 255 + 0.5).astype(np.uint8)).filter(
        ImageFilter.GaussianBlur(radius)
    )
    return np.asarray(img, dtype=np.float32) / 255.0


def _grey_scan(rng, ink: np.ndarray, out: int, lo: float, hi: float) -> np.ndarray:
    """Scan of `ink` at an ink density drawn from [lo, hi] (1 = the corpus' full black)."""
    return degrade.scan(rng, np.clip(ink * rng.uniform(lo, hi), 0, 1), out)


# -- solid shapes: filled discs, squares and rectangles, inked quads, blots at any grey ---------
def solid_shapes(rng, out):
    how = _pick(rng, ["disc", "square", "rectangle", "quad", "blot"])
    c = WORK / 2 + rng.uniform(-0.15, 0.15, 2) * WORK
    half = rng.uniform(0.15, 0.6) * WORK  # up to larger than the crop: a box cut inside a blob

    def draw(d, s):
        cx, cy = c * s
        h = half * s
        if how == "disc":
            d.ellipse([cx - h, cy - h, cx + h, cy + h], fill=255)
        elif how == "square":
            d.rectangle([cx - h, cy - h, cx + h, cy + h], fill=255)
        elif how == "rectangle":
            aspect = rng.uniform(0.15, 0.8)
            w, hh = (h, h * aspect) if rng.random() < 0.5 else (h * aspect, h)
            d.rectangle([cx - w, cy - hh, cx + w, cy + hh], fill=255)
        elif how == "quad":  # a spacing quad that took ink: a slightly skewed, rounded block
            pts = [
                (cx + sx * h * rng.uniform(0.8, 1.1), cy + sy * h * rng.uniform(0.5, 1.0))
                for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1))
            ]
            d.polygon(pts, fill=255)
        else:  # blot: overlapping discs
            for _ in range(int(rng.integers(3, 9))):
                ox, oy = rng.normal(0, 0.35, 2) * h
                r = h * rng.uniform(0.25, 0.7)
                d.ellipse([cx + ox - r, cy + oy - r, cx + ox + r, cy + oy + r], fill=255)

    ink = _mask(draw)
    if how == "blot":
        ink = _blur(ink, rng.uniform(1, 4))
        ink = (ink > rng.uniform(0.3, 0.6)).astype(np.float32)
    return _grey_scan(rng, ink, out, 0.25, 1.05)


# -- rules and lines: column rules, underlines, bracket lines, frame edges -----------------------
def rules_lines(rng, out):
    how = _pick(rng, ["horizontal", "vertical", "underline", "bracket", "frame", "double"])
    width = float(rng.uniform(1.5, 9.0))
    pos = rng.uniform(0.2, 0.8) * WORK
    tilt = rng.uniform(-0.04, 0.04) * WORK

    def draw(d, s):
        w = max(1, round(width * s))
        n = WORK * s
        p, t = pos * s, tilt * s
        if how in ("horizontal", "underline", "double"):
            y = n * rng.uniform(0.75, 0.92) if how == "underline" else p
            x0, x1 = (
                (n * rng.uniform(0, 0.3), n * rng.uniform(0.7, 1.0)) if how == "underline" else (-n, 2 * n)
            )
            d.line([(x0, y - t), (x1, y + t)], fill=255, width=w)
            if how == "double":
                gap = w + n * rng.uniform(0.04, 0.12)
                d.line([(x0, y - t + gap), (x1, y + t + gap)], fill=255, width=max(1, w // 2))
        elif how == "vertical":
            d.line([(p - t, -n), (p + t, 2 * n)], fill=255, width=w)
        elif how == "bracket":  # a bracket line with its hooks, as set beside verse or a table
            x = p
            hook = n * rng.uniform(0.1, 0.3)
            top, bottom = n * rng.uniform(-0.2, 0.2), n * rng.uniform(0.8, 1.2)
            side = 1 if rng.random() < 0.5 else -1
            d.line(
                [(x + side * hook, top), (x, top), (x, bottom), (x + side * hook, bottom)], fill=255, width=w
            )
        else:  # frame edge: the corner of a rule box
            x, y = p, n * rng.uniform(0.2, 0.8)
            sx, sy = _pick(rng, [-1, 1]), _pick(rng, [-1, 1])
            d.line([(x + sx * 2 * n, y), (x, y), (x, y + sy * 2 * n)], fill=255, width=w)

    return _grey_scan(rng, _mask(draw), out, 0.5, 1.05)


# -- handwriting: a broad-nib pen model ----------------------------------------------------------
# Digits as written by hand: strokes of (x, y) control points in a unit box (y down).
_HAND_DIGITS = {
    "0": [[(0.5, 0), (0.15, 0.3), (0.2, 0.8), (0.5, 1), (0.85, 0.7), (0.8, 0.2), (0.5, 0)]],
    "1": [[(0.3, 0.2), (0.55, 0), (0.5, 1)]],
    "2": [[(0.15, 0.25), (0.5, 0), (0.85, 0.3), (0.15, 1), (0.9, 1)]],
    "3": [[(0.2, 0.1), (0.75, 0.1), (0.4, 0.45), (0.85, 0.7), (0.5, 1), (0.15, 0.85)]],
    "4": [[(0.7, 1), (0.65, 0), (0.1, 0.7), (0.9, 0.7)]],
    "5": [[(0.8, 0), (0.25, 0), (0.2, 0.45), (0.75, 0.5), (0.7, 0.95), (0.15, 0.9)]],
    "6": [[(0.75, 0.05), (0.25, 0.4), (0.25, 0.95), (0.75, 0.85), (0.7, 0.5), (0.25, 0.6)]],
    "7": [[(0.1, 0.05), (0.9, 0.05), (0.4, 1)]],
    "8": [[(0.5, 0.5), (0.2, 0.25), (0.5, 0), (0.8, 0.25), (0.2, 0.75), (0.5, 1), (0.8, 0.75), (0.5, 0.5)]],
    "9": [[(0.75, 0.4), (0.3, 0.45), (0.3, 0.05), (0.75, 0.1), (0.7, 0.6), (0.4, 1)]],
}


def _smooth(points: np.ndarray, n: int = 24) -> np.ndarray:
    """Catmull-Rom spline through `points` (k, 2), `n` samples per segment."""
    p = np.vstack([points[:1], points, points[-1:]])
    t = np.linspace(0, 1, n, endpoint=False)[:, None]
    segs = []
    for i in range(1, len(p) - 2):
        p0, p1, p2, p3 = p[i - 1], p[i], p[i + 1], p[i + 2]
        segs.append(
            0.5
            * (
                (2 * p1)
                + (-p0 + p2) * t
                + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
                + (-p0 + 3 * p1 - 3 * p2 + p3) * t**3
            )
        )
    segs.append(p[-2:-1])
    return np.vstack(segs)


def _pen(d, path: np.ndarray, nib: float, angle: float, thin: float):
    """Broad-nib stroke: the width follows the angle between the stroke and the nib."""
    for a, b in zip(path[:-1], path[1:]):
        direction = np.arctan2(b[1] - a[1], b[0] - a[0])
        w = max(thin, nib * abs(np.sin(direction - angle)))
        d.line([tuple(a), tuple(b)], fill=255, width=max(1, round(w)))
        r = w / 2
        d.ellipse([b[0] - r, b[1] - r, b[0] + r, b[1] + r], fill=255)


def _cursive(rng, n: float) -> np.ndarray:
    """A line of cursive: a forward drift with loops of varying height (a pen-model sketch)."""
    k = int(rng.integers(4, 14))
    t = np.linspace(0, 1, k * 12)
    freq = rng.uniform(2.5, 6.0) * np.pi * 2
    amp = n * rng.uniform(0.08, 0.25) * (1 + 0.6 * np.sin(t * rng.uniform(3, 9) + rng.uniform(0, 6)))
    x = n * (rng.uniform(-0.3, 0.1) + t * rng.uniform(0.9, 1.6)) + n * 0.05 * np.cos(t * freq)
    y = (
        n * rng.uniform(0.3, 0.7)
        + amp * np.sin(t * freq + rng.uniform(0, 6))
        + n * rng.uniform(-0.1, 0.1) * t
    )
    return np.c_[x, y]


def handwriting(rng, out):
    how = _pick(rng, ["marginalia", "underlining", "annotation", "flourish", "digit", "digit"])
    nib, angle = float(rng.uniform(2.0, 7.0)), float(rng.uniform(0.3, 1.2))
    thin = float(rng.uniform(0.8, 2.0))

    def draw(d, s):
        n = WORK * s
        paths = []
        if how == "marginalia":
            paths = [_cursive(rng, n) for _ in range(int(rng.integers(1, 3)))]
            if len(paths) == 2:
                paths[1][:, 1] += n * rng.uniform(0.3, 0.45)
        elif how == "underlining":
            x = np.linspace(-0.1, 1.1, 30) * n
            y = n * rng.uniform(0.3, 0.8) + n * rng.uniform(0.01, 0.06) * np.sin(x / n * rng.uniform(2, 9))
            paths = [np.c_[x, y + np.linspace(0, n * rng.uniform(-0.15, 0.15), 30)]]
        elif how == "annotation":  # a few loose letters: loops and ascenders
            paths = [_cursive(rng, n)[: int(rng.integers(15, 40))]]
            paths[0][:, 0] = paths[0][:, 0] - paths[0][:, 0].min() + n * rng.uniform(0.05, 0.3)
        elif how == "flourish":
            t = np.linspace(0, rng.uniform(2, 5) * np.pi, 120)
            r = n * rng.uniform(0.1, 0.45) * np.linspace(1.0, rng.uniform(0.2, 0.7), len(t))
            cx, cy = n * rng.uniform(0.35, 0.65, 2)
            paths = [np.c_[cx + r * np.cos(t), cy + r * np.sin(t) * rng.uniform(0.4, 1.0)]]
        else:
            digits = [_pick(rng, list(_HAND_DIGITS)) for _ in range(int(rng.integers(1, 3)))]
            h = n * rng.uniform(0.5, 0.8)
            w = h * rng.uniform(0.45, 0.7)
            x0 = (n - w * len(digits)) / 2
            slant = rng.uniform(-0.3, 0.1)
            for i, ch in enumerate(digits):
                for stroke in _HAND_DIGITS[ch]:
                    p = np.asarray(stroke, np.float64) + rng.normal(0, 0.05, (len(stroke), 2))
                    xy = np.c_[
                        x0 + i * w + p[:, 0] * w + slant * (p[:, 1] - 0.5) * h, (n - h) / 2 + p[:, 1] * h
                    ]
                    paths.append(_smooth(xy))
        for p in paths:
            _pen(d, p, nib * s, angle, thin * s)

    # iron-gall and other inks come out in many greys
    return _grey_scan(rng, _mask(draw), out, 0.35, 1.0)


# -- library stamps and shelfmarks -------------------------------------------------------------
def _small_text(rng, n_chars: int) -> str:
    pool = LOWER + list("ABCDEFGHKLMNRSTV0123456789.")
    return "".join(_pick(rng, pool) for _ in range(n_chars))


def stamps(rng, out):
    how = _pick(rng, ["ring", "ring", "oval", "shelfmark"])
    face = _pick(rng, MODERN_FACES + PRINT_FACES[:4])

    def draw(d, s):
        n = WORK * s
        cx, cy = n * rng.uniform(0.3, 0.7, 2)
        if how in ("ring", "oval"):
            r = n * rng.uniform(0.3, 0.75)
            ry = r * (1 if how == "ring" else rng.uniform(0.55, 0.8))
            w = max(1, round(s * rng.uniform(1.5, 4)))
            d.ellipse([cx - r, cy - ry, cx + r, cy + ry], outline=255, width=w)
            if rng.random() < 0.6:
                r2 = r * rng.uniform(0.65, 0.8)
                d.ellipse(
                    [cx - r2, cy - ry * r2 / r, cx + r2, cy + ry * r2 / r], outline=255, width=max(1, w // 2)
                )
            font = get_font(str(face.path), max(6, round(r * rng.uniform(0.18, 0.3))))
            k = int(rng.integers(8, 20))
            for i, ch in enumerate(_small_text(rng, k)):  # letters around the ring
                a = -np.pi / 2 + (i - k / 2) * rng.uniform(0.25, 0.35)
                rr = r * 0.86
                d.text(
                    (cx + rr * np.cos(a), cy + ry / r * rr * np.sin(a)), ch, font=font, fill=255, anchor="mm"
                )
            d.text((cx, cy), _small_text(rng, int(rng.integers(2, 5))), font=font, fill=255, anchor="mm")
        else:  # a shelfmark label: small text in a box
            font = get_font(str(face.path), max(6, round(n * rng.uniform(0.12, 0.2))))
            text = f"{_small_text(rng, int(rng.integers(1, 4)))} {int(rng.integers(1, 9999))}"
            box = d.textbbox((cx, cy), text, font=font, anchor="mm")
            pad = n * 0.05
            d.rectangle(
                [box[0] - pad, box[1] - pad, box[2] + pad, box[3] + pad], outline=255, width=max(1, s)
            )
            d.text((cx, cy), text, font=font, fill=255, anchor="mm")

    return _grey_scan(rng, _mask(draw), out, 0.3, 0.95)


# -- printers' ornaments, fleurons, woodcut and initial fragments ------------------------------
def ornaments(rng, out):
    how = _pick(rng, ["rosette", "fleuron", "woodcut", "initial"])

    def draw(d, s):
        n = WORK * s
        cx, cy = n * rng.uniform(0.35, 0.65, 2)
        if how == "rosette":
            k = int(rng.integers(4, 9))
            t = np.linspace(0, 2 * np.pi, 360)
            r = n * rng.uniform(0.25, 0.5) * (rng.uniform(0.2, 0.5) + np.abs(np.cos(k * t / 2)))
            d.polygon(list(zip(cx + r * np.cos(t), cy + r * np.sin(t))), fill=255)
            c = n * rng.uniform(0.03, 0.08)
            d.ellipse([cx - c, cy - c, cx + c, cy + c], fill=0)
        elif how == "fleuron":  # hedera: a heart-shaped leaf on a curled stem
            t = np.linspace(0, 2 * np.pi, 200)
            sc = n * rng.uniform(0.018, 0.028)
            x = 16 * np.sin(t) ** 3
            y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
            a = rng.uniform(0, 2 * np.pi)
            xr, yr = x * np.cos(a) - y * np.sin(a), x * np.sin(a) + y * np.cos(a)
            d.polygon(list(zip(cx + sc * xr, cy + sc * yr)), fill=255)
            u = np.linspace(0, rng.uniform(2, 4) * np.pi, 80)
            rs = n * 0.2 * np.linspace(1, 0.2, len(u))
            stem = np.c_[cx + rs * np.cos(u + a), cy + rs * np.sin(u + a)]
            d.line([tuple(p) for p in stem], fill=255, width=max(1, round(n * 0.03)))
        elif how == "woodcut":  # hatched shading inside a shape, with bold outlines
            region = Image.new("L", d.im.size, 0)
            rd = ImageDraw.Draw(region)
            for _ in range(int(rng.integers(1, 4))):
                x, y = n * rng.uniform(-0.2, 1.0, 2)
                rd.ellipse([x, y, x + n * rng.uniform(0.3, 0.9), y + n * rng.uniform(0.3, 0.9)], fill=255)
            hatch = Image.new("L", d.im.size, 0)
            hd = ImageDraw.Draw(hatch)
            gap = n * rng.uniform(0.04, 0.09)
            a = rng.uniform(0, np.pi)
            for off in np.arange(-2 * n, 2 * n, gap):
                p0 = (
                    n / 2 + off * np.cos(a + np.pi / 2) - 2 * n * np.cos(a),
                    n / 2 + off * np.sin(a + np.pi / 2) - 2 * n * np.sin(a),
                )
                p1 = (p0[0] + 4 * n * np.cos(a), p0[1] + 4 * n * np.sin(a))
                hd.line([p0, p1], fill=255, width=max(1, round(gap * rng.uniform(0.25, 0.5))))
            ink = np.minimum(np.asarray(hatch), np.asarray(region))
            d.bitmap((0, 0), Image.fromarray(ink.astype(np.uint8)), fill=255)
            for _ in range(int(rng.integers(1, 3))):
                pts = n * rng.uniform(-0.1, 1.1, (4, 2))
                d.line(
                    [tuple(p) for p in _smooth(pts, 12)],
                    fill=255,
                    width=max(1, round(n * rng.uniform(0.03, 0.07))),
                )
        else:  # a fragment of a large initial: white letter on a black block, or a big black letter
            face = _pick(rng, PRINT_FACES)
            letter = _pick(rng, [c for c in "ABCDEFGHIKLMNOPRSTVW" if face.char_for(c)] or ["A"])
            font = get_font(str(face.path), round(n * rng.uniform(1.2, 2.5)))
            inverse = rng.random() < 0.5
            if inverse:
                d.rectangle([0, 0, n, n], fill=255)
            d.text((cx, cy), letter, font=font, fill=0 if inverse else 255, anchor="mm")

    return _grey_scan(rng, _mask(draw), out, 0.6, 1.05)


# -- the page around the text: gutter shadow, page edges, bleed-through -----------------------
def page_edges(rng, out):
    """Gutter shadow or the page's edge against the scanner's background."""
    how = _pick(rng, ["gutter", "edge", "edge_dark"])
    yy, xx = np.mgrid[0:WORK, 0:WORK].astype(np.float32) / WORK
    a = rng.uniform(-0.15, 0.15)
    side = 1 if rng.random() < 0.5 else -1
    u = (xx * np.cos(a) + yy * np.sin(a)) * side + (0 if side > 0 else 1)  # across the edge
    at = rng.uniform(0.2, 0.8)
    paper = degrade.paper(rng, WORK)
    if how == "gutter":  # a smooth dark falloff into the fold
        shade = 1 / (1 + np.exp(-(u - at) / rng.uniform(0.03, 0.15)))
        img = paper * (1 - rng.uniform(0.5, 0.9) * shade)
    else:  # the cut edge of the leaf: paper on one side, the background (dark or lighter) beyond
        wobble = degrade.smooth_field(rng, WORK, 6) * rng.uniform(0.0, 0.05)
        beyond = (u + wobble) > at
        level = rng.uniform(0.02, 0.25) if how == "edge_dark" else rng.uniform(0.3, 0.6)
        img = np.where(beyond, level + rng.normal(0, 0.02, paper.shape), paper)
        img = _blur(img, rng.uniform(0.3, 1.5))
    return degrade.finish(rng, degrade.speckle(rng, np.clip(img, 0, 1).astype(np.float32)), out)


def bleed_through(rng, out):
    """The other side's text showing through: faint, mirrored, blurred, with nothing on top."""
    face = _pick(rng, PRINT_FACES)
    size = int(rng.integers(40, 80))
    font = get_font(str(face.path), size)

    def draw(d, s):
        n = WORK * s
        f = get_font(str(face.path), size * s)
        y = n * rng.uniform(0.2, 0.5)
        for _ in range(int(rng.integers(1, 3))):
            text = "".join(
                face.char_for(c)[0] for c in (_pick(rng, LOWER) for _ in range(6)) if face.char_for(c)
            )
            d.text((n * rng.uniform(-0.8, 0.1), y), text, font=f, fill=255, anchor="ls")
            y += size * s * rng.uniform(1.0, 1.3)

    del font
    ink = _mask(draw)[:, ::-1]
    ink = _blur(np.ascontiguousarray(ink), rng.uniform(0.8, 2.0))
    img = degrade.paper(rng, WORK) * (1 - rng.uniform(0.08, 0.3) * ink)
    return degrade.finish(rng, degrade.speckle(rng, img.astype(np.float32)), out)


FAR = ["solid_shapes", "rules_lines", "page_edges"]
NEAR = ["handwriting", "stamps", "ornaments", "bleed_through"]
GENERATORS = {name: globals()[name] for name in FAR + NEAR}
