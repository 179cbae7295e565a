"""Glyph data: loaders for every layout, the synthetic corpus, PAGE import, scan augmentation, examples."""
