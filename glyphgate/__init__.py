"""glyphgate: `glyphgate.core` is the shared core every step imports (preprocessing, the artifacts
contract, the ONNX model, verdicts, PAGE-XML, the sampler); `glyphgate.scan` scores folders and
pages; `glyphgate.cli` is the console command over training, calibration, serving and scan."""
