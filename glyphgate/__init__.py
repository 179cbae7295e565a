"""glyphgate: the console entry point over the training, calibration and serving packages."""
