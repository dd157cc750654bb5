"""The dependency graph: every module imports alone, imports go one way, nothing heavy
loads with ``import annealq``."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("annealq", "solvers")
# what each package may not import (the flow runs one way: solvers build on annealq's
# lower stages, never on the pipeline or the CLI; the library never on benchmarks)
FORBIDDEN = {
    "annealq": ("solvers", "benchmarks"),
    "solvers": (
        "annealq.pipeline",
        "annealq.cli",
        "annealq.commands",
        "annealq.config",
        "annealq.quantized",
        "annealq.report",
        "annealq.capture",
        "annealq.data",
        "annealq.baselines",
        "annealq.dispatch",
        "benchmarks",
    ),
}
# imports kept inside a function on purpose: the console entry's import of the CLI (a
# Ctrl-C while torch loads is one line), the optional torch kernel of batch-sa (CUDA runs
# only); the CLI loads a command's module by name when it runs (annealq.cli._runner)
LAZY_ALLOWED = {
    ("annealq.console", "annealq.cli"),
    ("solvers.batch_sa.anneal", "solvers.batch_sa.kernel_torch"),
}


def _modules():
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts), path


MODULES = dict(_modules())


def _imports(name, path):
    """``(imported module, at top level?)`` for the project's own modules."""
    tree = ast.parse(path.read_text())
    top = set(map(id, tree.body))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            submodules = [
                f"{node.module}.{a.name}"
                for a in node.names
                if f"{node.module}.{a.name}" in MODULES
            ]
            # "from package import submodule" depends on the submodule
            targets = submodules if len(submodules) == len(node.names) else [node.module]
        else:
            continue
        for target in targets:
            if target.split(".")[0] in (*PACKAGES, "benchmarks") and (
                target in MODULES or target.startswith("benchmarks")
            ):
                found.append((target, id(node) in top or _under_if(tree, node)))
    return found


def _under_if(tree, node):
    # "if TYPE_CHECKING:" style blocks at module level count as top level
    return any(isinstance(n, ast.If) and node in ast.walk(n) for n in tree.body)


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def test_no_import_circles():
    edges = {name: {t for t, _ in deps if t != name} for name, deps in GRAPH.items()}
    state = {}

    def visit(node, stack):
        state[node] = "open"
        for target in edges.get(node, ()):
            if state.get(target) == "open":
                cycle = stack[stack.index(target) :] + [target]
                pytest.fail("import circle: " + " -> ".join(cycle))
            if target not in state:
                visit(target, stack + [target])
        state[node] = "done"

    for name in edges:
        if name not in state:
            visit(name, [name])


def test_imports_go_one_way_and_sit_at_the_top():
    problems = []
    for name, deps in GRAPH.items():
        forbidden = FORBIDDEN[name.split(".")[0]]
        for target, at_top in deps:
            if target.startswith(forbidden) and (name, target) not in LAZY_ALLOWED:
                problems.append(f"{name} imports {target}")
            if not at_top and (name, target) not in LAZY_ALLOWED:
                problems.append(f"{name} imports {target} inside a function")
    assert problems == []


def test_no_module_is_over_three_hundred_lines():
    paths = [*MODULES.values(), *sorted((ROOT / "benchmarks").rglob("*.py"))]
    long = {
        str(path.relative_to(ROOT)): n
        for path in paths
        if (n := len(path.read_text().splitlines())) > 300
    }
    assert long == {}


# Importing torch, numba and the Ocean stack costs seconds per interpreter; this script
# loads those third-party libraries once, checks that none of the project's modules came
# with them, then imports each project module in a forked child of its own, where no
# project module is loaded yet: what is tested is that every module of the project
# imports alone, whatever the order. It prints one failure per line.
_FORK_EACH = r"""
import importlib, os, sys, traceback
for library in ("numpy", "scipy", "torch", "numba", "dimod", "dwave.samplers",
                "dwave.system", "dwave.cloud", "dwave.optimization", "minorminer",
                "networkx", "hypothesis", "safetensors", "dotenv", "distributed"):
    try:
        importlib.import_module(library)
    except ImportError:
        pass
own = [m for m in sys.modules if m.split(".")[0] in ("annealq", "solvers", "benchmarks")]
assert not own, f"third-party imports loaded project modules: {own}"
for name in sys.argv[1:]:
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        try:
            importlib.import_module(name)
        except BaseException:
            print(name, traceback.format_exc().strip().splitlines()[-1])
            sys.stdout.flush()
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    if status:
        print(name, "exit status", status)
"""


def test_every_module_imports_alone_in_a_fresh_interpreter():
    names = sorted(set(MODULES) - {"annealq.__main__"})  # that one runs the CLI
    result = subprocess.run(
        [sys.executable, "-c", _FORK_EACH, *names],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    failures = sorted(set(result.stdout.splitlines()))
    assert failures == []


def test_the_import_check_catches_a_module_that_needs_another_loaded_first(tmp_path):
    # a module that only works when something else has been imported before it
    (tmp_path / "needs_order.py").write_text("import sys\nsys.modules['annealq.cli']\n")
    result = subprocess.run(
        [sys.executable, "-c", _FORK_EACH, "annealq.grid", "needs_order"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.stdout.split()[:1] == ["needs_order"], result.stdout + result.stderr


def test_import_annealq_pulls_in_neither_torch_nor_the_cloud_client():
    code = (
        "import sys, annealq; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'dwave', 'dimod', 'sklearn')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "[]"


def test_formulation_does_not_import_the_cloud_client():
    code = (
        "import sys; from annealq import formulate_layer; "
        "print([m for m in sys.modules if m.startswith(('dwave.cloud', 'torch'))])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "[]"
