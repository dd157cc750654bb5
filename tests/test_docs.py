"""The code cites only documents in the repository, and docstrings carry no measurements
(those live in benchmarks/, with their commands)."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CODE = sorted(
    [
        *ROOT.glob("annealq/**/*.py"),
        *ROOT.glob("solvers/**/*.py"),
        *ROOT.glob("benchmarks/**/*.py"),
        ROOT / "pyproject.toml",
    ]
)
# a document named by its path (``docs/design.md``) or by its name alone (``REACH.md``)
CITATION = re.compile(r"(?<![\w./-])((?:[\w-]+/)*[\w-]+\.md)\b")
# what a lab measurement looks like in prose
TIMING = re.compile(
    r"median of|at load \d|load average|\d-core machine|this (project's )?machine"
    r"|\btook \d|\d\s?(ms|µs|s)\s\(",
    re.I,
)


def _documents() -> set[str]:
    tracked = [p for p in ROOT.rglob("*.md") if ".venv" not in p.parts and ".git" not in p.parts]
    return {p.relative_to(ROOT).as_posix() for p in tracked} | {p.name for p in tracked}


def citations(text: str) -> list[str]:
    return CITATION.findall(text)


def test_the_code_cites_only_documents_in_the_repository():
    documents = _documents()
    missing = [
        f"{path.relative_to(ROOT)}: {name}"
        for path in CODE
        for name in citations(path.read_text())
        if name not in documents
    ]
    assert missing == []


def test_a_citation_outside_the_repository_is_caught():
    assert citations("the formulation (DESIGN.md §1), see docs/design.md") == [
        "DESIGN.md",
        "docs/design.md",
    ]
    assert "DESIGN.md" not in _documents()


def _docstrings(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            text = ast.get_docstring(node)
            if text:
                yield getattr(node, "name", path.stem), text


def test_no_docstring_carries_a_measurement():
    found = [
        f"{path.relative_to(ROOT)}:{name}: {match.group(0)!r}"
        for path in CODE
        if path.suffix == ".py" and "benchmarks" not in path.parts
        for name, text in _docstrings(path)
        for match in TIMING.finditer(text)
    ]
    assert found == []


def test_a_measurement_in_prose_is_caught():
    assert TIMING.search("Cost: 30 ms (median of 50 runs)")
    assert TIMING.search("a pool of two started in 3.4 s on the 2-core machine at load 9")
    assert not TIMING.search("seconds per layer for the search solvers (default 60 s)")
