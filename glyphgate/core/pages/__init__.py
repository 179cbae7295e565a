"""Page formats (PAGE-XML now) and the glyph cuts of a page."""
