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
from PIL import Image, ImageDraw

from corpus.synth import degrade
from corpus.synth.faces import LOWER, MODERN_FACES, PRINT_FACES
from corpus.synth.handwriting import handwriting
from corpus.synth.marks import blur, grey_scan, mask, pick, smooth
from corpus.synth.render import WORK, get_font


# -- solid shapes: filled discs, squares and rectangles, inked quads, blots at any grey ---------
def solid_shapes(rng, out):
    how = pick(rng, ["disc", "square", "rectangle", "quad", "blot"])
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

    ink = mask(draw)
    if how == "blot":
        ink = blur(ink, rng.uniform(1, 4))
        ink = (ink > rng.uniform(0.3, 0.6)).astype(np.float32)
    return grey_scan(rng, ink, out, 0.25, 1.05)


# -- rules and lines: column rules, underlines, bracket lines, frame edges -----------------------
def rules_lines(rng, out):
    how = pick(rng, ["horizontal", "vertical", "underline", "bracket", "frame", "double"])
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
            sx, sy = pick(rng, [-1, 1]), pick(rng, [-1, 1])
            d.line([(x + sx * 2 * n, y), (x, y), (x, y + sy * 2 * n)], fill=255, width=w)

    return grey_scan(rng, mask(draw), out, 0.5, 1.05)


# -- library stamps and shelfmarks -------------------------------------------------------------
def _small_text(rng, n_chars: int) -> str:
    pool = LOWER + list("ABCDEFGHKLMNRSTV0123456789.")
    return "".join(pick(rng, pool) for _ in range(n_chars))


def stamps(rng, out):
    how = pick(rng, ["ring", "ring", "oval", "shelfmark"])
    face = pick(rng, MODERN_FACES + PRINT_FACES[:4])

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

    return grey_scan(rng, mask(draw), out, 0.3, 0.95)


# -- printers' ornaments, fleurons, woodcut and initial fragments ------------------------------
def ornaments(rng, out):
    how = pick(rng, ["rosette", "fleuron", "woodcut", "initial"])

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
                    [tuple(p) for p in smooth(pts, 12)],
                    fill=255,
                    width=max(1, round(n * rng.uniform(0.03, 0.07))),
                )
        else:  # a fragment of a large initial: white letter on a black block, or a big black letter
            face = pick(rng, PRINT_FACES)
            letter = pick(rng, [c for c in "ABCDEFGHIKLMNOPRSTVW" if face.char_for(c)] or ["A"])
            font = get_font(str(face.path), round(n * rng.uniform(1.2, 2.5)))
            inverse = rng.random() < 0.5
            if inverse:
                d.rectangle([0, 0, n, n], fill=255)
            d.text((cx, cy), letter, font=font, fill=0 if inverse else 255, anchor="mm")

    return grey_scan(rng, mask(draw), out, 0.6, 1.05)


# -- the page around the text: gutter shadow, page edges, bleed-through -----------------------
def page_edges(rng, out):
    """Gutter shadow or the page's edge against the scanner's background."""
    how = pick(rng, ["gutter", "edge", "edge_dark"])
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
        img = blur(img, rng.uniform(0.3, 1.5))
    return degrade.finish(rng, degrade.speckle(rng, np.clip(img, 0, 1).astype(np.float32)), out)


def bleed_through(rng, out):
    """The other side's text showing through: faint, mirrored, blurred, with nothing on top."""
    face = pick(rng, PRINT_FACES)
    size = int(rng.integers(40, 80))
    font = get_font(str(face.path), size)

    def draw(d, s):
        n = WORK * s
        f = get_font(str(face.path), size * s)
        y = n * rng.uniform(0.2, 0.5)
        for _ in range(int(rng.integers(1, 3))):
            text = "".join(
                face.char_for(c)[0] for c in (pick(rng, LOWER) for _ in range(6)) if face.char_for(c)
            )
            d.text((n * rng.uniform(-0.8, 0.1), y), text, font=f, fill=255, anchor="ls")
            y += size * s * rng.uniform(1.0, 1.3)

    del font
    ink = mask(draw)[:, ::-1]
    ink = blur(np.ascontiguousarray(ink), rng.uniform(0.8, 2.0))
    img = degrade.paper(rng, WORK) * (1 - rng.uniform(0.08, 0.3) * ink)
    return degrade.finish(rng, degrade.speckle(rng, img.astype(np.float32)), out)


FAR = ["solid_shapes", "rules_lines", "page_edges"]
NEAR = ["handwriting", "stamps", "ornaments", "bleed_through"]
GENERATORS = {
    "solid_shapes": solid_shapes,
    "rules_lines": rules_lines,
    "page_edges": page_edges,
    "handwriting": handwriting,
    "stamps": stamps,
    "ornaments": ornaments,
    "bleed_through": bleed_through,
}
assert list(GENERATORS) == FAR + NEAR
