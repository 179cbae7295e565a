"""The verdicts written back into a copy of an ALTO page (v2, v3 and v4).

Writing (`annotate_alto`): each verdict goes where ALTO keeps such things.
- Each scored glyph gets one OtherTag in Tags (Tags is created after Description and Styles
  when missing). Its ID is "glyphgate_<glyph id>", its TYPE "glyphgate-verdict" and its LABEL
  the model's label. Its DESCRIPTION holds the block that PAGE's Glyph/@custom holds:
  "glyphgate {glyph:<id>; label:..; confidence:..; energy:..; p_value:..; is_ood:..;}". The
  glyph's String names the tag in @TAGREFS, since Glyph has no TAGREFS. Why a tag: Tags are
  ALTO's place for any other characteristic of a String, and TYPE marks them as ours.
  ALTERNATIVE is another spelling of the word, and STYLEREFS names font styles.
- v4: the Glyph's @GC takes the confidence. Any GC it had is kept in the block ("gc:..;") and
  put back before a re-annotation. A String that was split gets Glyph elements, in box order.
  Their @CONTENT is the transcription's grapheme where the split matched it, else the model's
  label ("source:split; content:transcription;" or "content:label;" in the block). A
  re-annotation removes them, and a re-import leaves them out: the String is split again.
- v2 and v3 have no Glyph element. The glyphs of a split String are tags only, each with its
  box in the block ("hpos:..; vpos:..; width:..; height:..;", in the ALTO's units).
So predictions never become ground truth: the reader takes them only as `predicted`. And
annotating an annotated copy gives what annotating the page gives.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from glyphgate.core.pages.alto import (
    OUR_TAG,
    TAG_PREFIX,
    UNKNOWN,
    XLINK,
    element_ids,
    first_page,
    our_tags,
    qualified,
    units_of,
    version_of,
)
from glyphgate.core.pages.model import our_block, verdict_fields


def annotate_alto(
    tree: ET.ElementTree, ns: str, verdicts: dict[str, dict], split: dict[str, list], out
) -> None:
    """A copy of the parsed ALTO with each glyph's verdict to `out` (a path or a binary file);
    `split` = String id -> [(glyph id, box in the ALTO's units, text)], as formats.annotate takes
    it. What an earlier annotation wrote is taken off first."""
    root = tree.getroot()
    q = qualified(ns)
    units = units_of(root, q, Path(), [])
    page_el = first_page(root, q, Path(), [])
    ids = element_ids(page_el, q)
    tags_el = root.find(q("Tags"))
    emptied = _take_off(tags_el, page_el, ids, q)
    new_tags = []
    for string in page_el.iter(q("String")):
        if string in ids:  # a String outside a TextBlock's lines is never read, so never scored
            new_tags += _mark(string, ids, q, verdicts, split.get(ids[string], []), version_of(ns), units)
    if new_tags:  # into the Tags an earlier annotation used, so the copy keeps its place
        if tags_el is None:
            tags_el = ET.Element(q("Tags"))
            after = [i + 1 for i, c in enumerate(root) if c.tag in (q("Description"), q("Styles"))]
            root.insert(max(after, default=0), tags_el)
        tags_el.extend(new_tags)
    elif emptied:
        root.remove(tags_el)
    ET.register_namespace("", ns)
    ET.register_namespace("xlink", XLINK)
    tree.write(out, encoding="utf-8", xml_declaration=True)


def _take_off(tags_el, page_el, ids: dict, q) -> bool:
    """Remove what an earlier annotation wrote: its tags and their references, the Glyphs its word
    split made, and the GC it set (the earlier GC back where there was one). True when that left
    Tags empty."""
    ours = our_tags(tags_el, q)
    if tags_el is not None:
        for t in tags_el.findall(q("OtherTag")):
            if t.get("TYPE") == OUR_TAG:
                tags_el.remove(t)
    for string in page_el.iter(q("String")):
        refs = [r for r in string.get("TAGREFS", "").split() if not r.startswith(TAG_PREFIX)]
        if refs:
            string.set("TAGREFS", " ".join(refs))
        else:
            string.attrib.pop("TAGREFS", None)
        for glyph in string.findall(q("Glyph")):
            fields = ours.get(ids.get(glyph, ""))
            if fields is None:
                continue
            if fields.get("source") == "split":
                string.remove(glyph)
            elif "gc" in fields:
                glyph.set("GC", fields["gc"])
            else:
                glyph.attrib.pop("GC", None)
    return bool(ours) and tags_el is not None and len(tags_el) == 0


def _mark(string, ids: dict, q, verdicts: dict, parts: list, version: str, units: str) -> list:
    """One String's verdicts: GC on its Glyphs, Glyphs (v4) for its split, a tag per glyph."""
    tags = []
    for glyph in string.findall(q("Glyph")):
        gid = ids[glyph]
        v = verdicts.get(gid)
        if v is None:
            continue
        fields = {"glyph": gid, **verdict_fields(v)}
        if "GC" in glyph.attrib:
            fields["gc"] = glyph.get("GC")
        glyph.set("GC", fields["confidence"])
        tags.append(_tag(q, gid, v, fields))
    for gid, box, text in parts:
        v = verdicts.get(gid)
        fields = {"glyph": gid, **verdict_fields(v), "source": "split"}
        if version == "4":
            label = v["label"] if v else None
            content = next((c for c in (text, label) if c and len(c) == 1), UNKNOWN)
            fields["content"] = "transcription" if content == text else "label"
            glyph = ET.SubElement(string, q("Glyph"), {"ID": gid, "CONTENT": content, **_rect(box, units)})
            if v is not None:
                glyph.set("GC", fields["confidence"])
        elif v is None:
            continue  # no Glyph element to mark as ours, and no verdict to tell
        else:
            fields.update({k.lower(): value for k, value in _rect(box, units).items()})
        tags.append(_tag(q, gid, v, fields))
    if tags:
        refs = string.get("TAGREFS", "").split() + [t.get("ID") for t in tags]
        string.set("TAGREFS", " ".join(refs))
    return tags


def _rect(box, units: str) -> dict[str, str]:
    """A (top, bottom, left, right) box with exclusive ends as ALTO's attributes: in pixels to
    the last pixel (as `_box_of` reads them), in other units to the rectangle's far side."""
    t, b, left, r = box
    last = 1 if units == "pixel" else 0
    values = {"HPOS": left, "VPOS": t, "WIDTH": r - last - left, "HEIGHT": b - last - t}
    return {k: str(int(v)) if float(v).is_integer() else f"{v:.2f}" for k, v in values.items()}


def _tag(q, gid: str, v: dict | None, fields: dict[str, str]):
    return ET.Element(
        q("OtherTag"),
        {
            "ID": TAG_PREFIX + gid,
            "TYPE": OUR_TAG,
            "LABEL": v["label"] if v else "",
            "DESCRIPTION": our_block(fields),
        },
    )
