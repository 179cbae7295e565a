"""The artifacts contract: file names, calibration.json and its schema, model.pt, settings."""
