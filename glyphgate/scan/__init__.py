"""`glyphgate scan`: a folder, a ZIP or PAGE-XML pages scored locally on ONNX Runtime or through a
running server, with results.csv/json and a contact sheet of what was flagged."""
