"""The command-line options of every command that cuts glyphs from pages (`import-page`, `scan --page`)."""

from glyphgate.core.image.ink import CROPS


def add_page_arguments(parser, note: str = "") -> None:
    """--image, --crop and --rescale, the options of every command that cuts glyphs from PAGE-XML or ALTO
    pages."""
    parser.add_argument(
        "--image",
        default=None,
        help=f"{note}the page image, or a folder of page images matched by page number "
        "(default: Page/@imageFilename next to the XML, any image suffix)",
    )
    parser.add_argument(
        "--crop",
        choices=CROPS,
        default="box",
        help=f"{note}tight: ink box; box: ink box + 15%% margin (default); line: the text line's height",
    )
    parser.add_argument(
        "--rescale",
        action="store_true",
        help=f"{note}the page image is a scaled copy of the one the XML describes: scale the coordinates "
        "to it (without it, an image whose size differs from Page/@imageWidth x @imageHeight is refused)",
    )
