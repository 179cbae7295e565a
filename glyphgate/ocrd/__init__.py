"""glyphgate as an OCR-D processor: `ocrd-glyphgate-gate` (install with the `ocrd` extra)."""
