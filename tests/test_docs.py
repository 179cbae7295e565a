"""The examples in the core's docstrings run, and say what they show."""

import doctest
import importlib

import pytest

MODULES = ["image.grid", "scoring.onnx_session", "contract.scores", "contract.settings", "model.sgld"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(f"glyphgate.core.{name}")
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0, result
