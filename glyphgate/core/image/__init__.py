"""Images: strict decoding with the pixel cap, the one preprocessing, ink and crop conventions, grids."""
