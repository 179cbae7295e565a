"""The `ocrd-glyphgate-gate` command: OCR-D's standard processor CLI (--help, -J/--dump-json, -I/-O,
-P/-p parameters, -g page ranges, -m mets, --overwrite) around the processor."""

import sys

try:
    import click
    from ocrd.decorators import ocrd_cli_options, ocrd_cli_wrap_processor
except ImportError as e:  # the console script exists without the extra: say what is missing, once
    sys.exit(f"ocrd-glyphgate-gate: needs OCR-D ({e.name} is missing): pip install 'glyphgate[ocrd]'")

from glyphgate.core.errors import GlyphgateError
from glyphgate.ocrd.processor import GlyphgateGate

# OCR-D's wrapper refuses an output file group that already holds the pages (without --overwrite)
# by a bare Exception with this text
REFUSED_FILE_GRPS = "Invalid input/output file grps"


@click.command()
@ocrd_cli_options
def cli(*args, **kwargs):
    try:
        return ocrd_cli_wrap_processor(GlyphgateGate, *args, **kwargs)
    except GlyphgateError as e:  # a missing model, a bad parameter: one line, as glyphgate's CLI says it
        sys.exit(f"ocrd-glyphgate-gate: error: {e}")
    except Exception as e:
        if not str(e).startswith(REFUSED_FILE_GRPS):
            raise
        reasons = "; ".join(line.strip() for line in str(e).splitlines()[1:])
        sys.exit(f"ocrd-glyphgate-gate: error: {reasons} (pass --overwrite to replace it)")
