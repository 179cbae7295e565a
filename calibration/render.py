"""The Jinja2 environment of the card (Markdown) and the report (HTML), and the cell types their
shared tables hold: a table is built once as data (calibration/view.py) and each format's macros
(templates/macros.md.j2, macros.html.j2) decide how bold, code and met/missed look."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

TEMPLATES = Path(__file__).with_name("templates")


class Strong(str):
    """A cell or phrase set in bold."""


class Code(str):
    """A path, command or name set as code."""


@dataclass(frozen=True)
class Verdict:
    """A figure held against its target: met, or missed (by `gap`, when given); `target`, when
    given, is written before it in the same cell."""

    ok: bool
    gap: str | None = None
    target: str | None = None


@dataclass
class Table:
    header: list
    rows: list[list] = field(default_factory=list)


def fmt(v, digits: int = 4) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def pt(v: float, digits: int = 1) -> str:
    """A change in shares as signed points: +1.5 pt."""
    return f"{100 * v:+.{digits}f} pt"


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        # the HTML report escapes everything it is given; the card is Markdown
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(f=fmt, pt=pt, pct=lambda v, digits=0: f"{v:.{digits}%}")
    env.tests.update(
        strong=lambda c: isinstance(c, Strong),
        code=lambda c: isinstance(c, Code),
        verdict=lambda c: isinstance(c, Verdict),
    )
    return env


ENV = _environment()


def render(template: str, **context) -> str:
    return ENV.get_template(template).render(**context)


def macro(template: str, name: str, *args, **kwargs) -> str:
    """One macro of a template, called from Python (a card section on its own)."""
    return str(getattr(ENV.get_template(template).module, name)(*args, **kwargs))
