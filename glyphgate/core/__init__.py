"""The shared core: what training, calibration, serving and scanning all use, and nothing of theirs.

Importing it costs nothing: torch is imported only by the modules that sample (model, sampler,
generate) and by the torch half of `artifacts`, so the scoring workers never load it."""
