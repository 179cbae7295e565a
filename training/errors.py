"""User-facing errors: the CLI prints them as one line, without a traceback."""


class DataError(ValueError):
    """Bad input data; the message names the file and the problem."""


class DivergenceError(RuntimeError):
    """Training energies went NaN/inf or exploded; the last good checkpoint is kept."""
