"""The import graph, read from the source with ast: the shared core is imported by every step
and imports none of them, the steps import one way, and what the Bento ships (serving and the
core) needs neither Lightning nor scikit-learn."""

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PARTS = (
    "glyphgate.core",
    "glyphgate.scan",
    "glyphgate.ocrd",
    "glyphgate.cli",
    "corpus",
    "training",
    "calibration",
    "serving",
)


def part_of(module: str) -> str | None:
    return next((p for p in PARTS if module == p or module.startswith(p + ".")), None)


def import_graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """{part: parts it imports}, {part: top-level third-party modules it imports}."""
    edges, external = defaultdict(set), defaultdict(set)
    for path in ROOT.glob("**/*.py"):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in (".venv", "tests", "bench", "data", "runs", "build"):
            continue
        module = ".".join(rel.with_suffix("").parts).removesuffix(".__init__")
        here = part_of(module)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative: resolve against this module's package
                    base = (
                        module.split(".")[: -node.level]
                        if not path.name == "__init__.py"
                        else module.split(".")
                    )
                    names = [".".join(base + ([node.module] if node.module else []))]
                else:
                    names = [node.module]
            else:
                continue
            for name in names:
                there = part_of(name)
                if there and there != here:
                    edges[here].add(there)
                elif not there and name.split(".")[0] not in (
                    "glyphgate",
                    "corpus",
                    "training",
                    "calibration",
                    "serving",
                ):
                    external[here].add(name.split(".")[0])
    return edges, external


def test_the_core_is_shared_and_imports_nothing_of_the_steps():
    edges, _ = import_graph()
    assert edges["glyphgate.core"] == set()
    for step in ("corpus", "training", "calibration", "serving", "glyphgate.scan"):
        assert "glyphgate.core" in edges[step], step


def test_the_steps_import_one_way():
    edges, _ = import_graph()
    assert edges["corpus"] <= {"glyphgate.core"}
    assert edges["training"] <= {"glyphgate.core", "corpus"}
    assert edges["calibration"] <= {"glyphgate.core", "corpus"}
    assert edges["serving"] <= {"glyphgate.core"}
    assert edges["glyphgate.scan"] <= {"glyphgate.core"}
    assert edges["glyphgate.ocrd"] == {"glyphgate.core"}  # the processor is the core's scorer, no more
    importers_of_cli = [p for p, to in edges.items() if p and "glyphgate.cli" in to]  # None: __main__
    assert importers_of_cli == []


def test_what_the_bento_ships_needs_no_lightning_or_scikit_learn():
    _, external = import_graph()
    for part in ("glyphgate.core", "serving"):
        assert not external[part] & {
            "pytorch_lightning",
            "lightning",
            "sklearn",
            "torchvision",
            "matplotlib",
        }, (
            part,
            sorted(external[part]),
        )


def test_the_core_packages_import_one_way():
    """contract, image, model, pages and scoring: each imports only those below it."""
    below = {
        "image": set(),
        "pages": {"image"},
        "model": {"image"},
        "contract": {"image", "model"},
        "scoring": {"image", "contract"},
    }
    core = ROOT / "glyphgate" / "core"
    for pkg, allowed in below.items():
        for path in (core / pkg).glob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("glyphgate.core."):
                    there = node.module.split(".")[2]
                    assert there in allowed | {pkg, "errors"}, f"{path.name} imports {node.module}"
