"""The bundled typefaces and which character each face uses for each glyph class.

Print faces (PRINT_FACES, 23; fonts/SOURCES.txt says where each file comes from and how it was made):

- Fifteen OFL-1.1 faces of the ANRT "Gotico-Antiqua" project (15th-century gotico-antiqua,
  hybrid and proto-roman types, from Debian's fonts-gotico-antiqua).
- STIX Fraktur, regular and bold (Mathematical Fraktur letters of the STIX fonts matplotlib ships).
- Textura, rotunda and Fraktur/Schwabacher, all OFL-1.1:
  Gamaliel (rotunda/textura after Joan Rosembach's gothic of Barcelona 1496; Debian fonts-gamaliel
  0.1-2; all 42 classes), Blankenburg (textura-like blackletter, a 20th-century design after
  Tannenberg; Debian fonts-blankenburg 0.1-3; lacks the macron vowels ā ē ī ō ū),
  Grenze Gotisch Regular and Bold (textura; npm @fontsource/grenze-gotisch 5.3.0, latin and
  latin-ext merged into one file; all 42 classes), UnifrakturMaguntia (Fraktur) and UnifrakturCook
  Bold (heavy Fraktur/Schwabacher forms) (npm @fontsource/unifrakturmaguntia / unifrakturcook 5.3.0,
  latin subset; both lack ſ and the macron vowels).

A macron vowel a face lacks is drawn as its base letter with a cast macron bar; a face that lacks
any other class (ſ above all: it is never synthesised) simply does not produce it (faces_for).
DejaVu Serif and STIX General serve only the Greek/Cyrillic near-OOD suite. All faces live inside
the package so the corpus is the same on every machine.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

FONT_DIR = Path(__file__).with_name("fonts")

LOWER = list("abcdefghijklmnopqrstuvwxyz")
MACRON = {"ā": "a", "ē": "e", "ī": "ı", "ō": "o", "ū": "u"}
CAPITALS = list("ABCDEIMNPS")
CLASSES: list[str] = LOWER + ["ſ"] + list(MACRON) + CAPITALS  # 42 classes

FOREIGN_CAPITALS = list("FGHKLOQRTUVWXYZ")
DIGITS_PUNCT = list("0123456789.,;:!?&")
GREEK_CYRILLIC = list("αβγδεζηθλμξπσφψωжщыфдилбяюэгц")

GOTICO_FILES = [
    "FustSchoeffer-Durandus-GoticoAntiqua118G.otf",
    "Hamlet-Cicero12.otf",
    "Hamlet-Tertia18.otf",
    "Jessen-Cicero12.otf",
    "Jessen-Mittel14.otf",
    "Parix-Hybrid111R.otf",
    "Ptolemy-GreatPrimer18.otf",
    "Rot-ProtoRoman102R.otf",
    "Rusch-GoticoAntiqua100G.otf",
    "Rusch-R-Bizarre-ProtoRoman103R.otf",
    "SouffletVert-Hybrid106R.otf",
    "Spira-ProtoRoman110R.otf",
    "SweynheimPannartz-ProtoRoman115R.otf",
    "SweynheimPannartz-Subiaco-ProtoRoman120R.otf",
    "Zainer-GoticoAntiqua96G.otf",
]

# Unicode Mathematical Fraktur: a few capitals live in the Letterlike Symbols block.
_FRAKTUR_CAP_EXCEPTIONS = {"C": 0x212D, "H": 0x210C, "I": 0x2111, "R": 0x211C, "Z": 0x2128}


def _fraktur(ch: str, bold: bool) -> str | None:
    if "a" <= ch <= "z":
        return chr((0x1D586 if bold else 0x1D51E) + ord(ch) - ord("a"))
    if "A" <= ch <= "Z":
        if not bold and ch in _FRAKTUR_CAP_EXCEPTIONS:
            return chr(_FRAKTUR_CAP_EXCEPTIONS[ch])
        return chr((0x1D56C if bold else 0x1D504) + ord(ch) - ord("A"))
    return None


@dataclass(frozen=True)
class Face:
    name: str
    file: str
    fraktur: str | None = None  # "regular" / "bold": map letters to Mathematical Fraktur

    @property
    def path(self) -> Path:
        return FONT_DIR / self.file

    @functools.cached_property
    def cmap(self) -> frozenset[int]:
        from fontTools.ttLib import TTFont

        return frozenset(TTFont(self.path).getBestCmap())

    def char_for(self, symbol: str) -> tuple[str, bool] | None:
        """(text to draw, draw a macron bar over it) for `symbol`, or None if the face lacks it."""
        if self.fraktur:
            bold = self.fraktur == "bold"
            if symbol in MACRON:
                base = _fraktur(MACRON[symbol].replace("ı", "i"), bold)
                return (base, True) if base else None
            mapped = _fraktur(symbol, bold)
            if mapped is not None:
                return (mapped, False) if ord(mapped) in self.cmap else None
            return (symbol, False) if ord(symbol) in self.cmap else None
        if ord(symbol) in self.cmap:
            return symbol, False
        if symbol in MACRON:
            base = MACRON[symbol]
            if ord(base) not in self.cmap:
                base = "i" if base == "ı" else base
            return (base, True) if ord(base) in self.cmap else None
        return None


# Textura, rotunda and Fraktur faces (name, file); see the module docstring for what each lacks.
BLACKLETTER_FILES = [
    ("Gamaliel", "Gamaliel.ttf"),
    ("Blankenburg", "Blankenburg_UNZ1A.ttf"),
    ("GrenzeGotisch-Regular", "GrenzeGotisch-Regular.ttf"),
    ("GrenzeGotisch-Bold", "GrenzeGotisch-Bold.ttf"),
    ("UnifrakturMaguntia", "UnifrakturMaguntia.ttf"),
    ("UnifrakturCook-Bold", "UnifrakturCook-Bold.ttf"),
]

PRINT_FACES: list[Face] = (
    [Face(f.split(".")[0], f) for f in GOTICO_FILES]
    + [
        Face("STIX-Fraktur", "STIXGeneral.ttf", fraktur="regular"),
        Face("STIX-Fraktur-Bold", "STIXGeneralBol.ttf", fraktur="bold"),
    ]
    + [Face(name, file) for name, file in BLACKLETTER_FILES]
)
MODERN_FACES: list[Face] = [Face("DejaVuSerif", "DejaVuSerif.ttf"), Face("STIXGeneral", "STIXGeneral.ttf")]


@functools.lru_cache(maxsize=None)
def faces_for(symbol: str, modern: bool = False) -> tuple[Face, ...]:
    faces = MODERN_FACES if modern else PRINT_FACES
    return tuple(f for f in faces if f.char_for(symbol) is not None)
