"""The one error hierarchy. Every GlyphgateError is a mistake or a problem a user can act on:
the CLI prints it as one line, the server answers it as a 4xx; anything else is a bug."""


class GlyphgateError(Exception):
    """Base of every user-facing error; the message names the file or value and the problem."""


class DataError(GlyphgateError, ValueError):
    """Bad input data: an unreadable image, a folder of the wrong shape, malformed PAGE-XML."""


class ArtifactsError(GlyphgateError):
    """An artifacts folder that breaks the contract: missing files, a calibration made for another
    model, a model.pt that is not ours."""


class ConfigError(GlyphgateError, ValueError):
    """A setting or command-line value out of range, or an unknown training mode."""


class RequestError(GlyphgateError, ValueError):
    """A request the model cannot answer: a label that is not a class, an image it cannot decode."""


class ExportError(GlyphgateError):
    """An ONNX export that disagrees with torch; nothing is written."""


class DivergenceError(GlyphgateError, RuntimeError):
    """Training energies went NaN/inf or exploded; the last good checkpoint is kept."""
