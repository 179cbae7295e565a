"""User-facing errors: the CLI prints them as one line, without a traceback."""


class DataError(ValueError):
    """Bad input data; the message names the file and the problem."""
