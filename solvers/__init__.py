"""annealq's solver backends, one module each, registered through the entry-point group
``annealq.solvers`` (see pyproject.toml). Each module exposes ``SolverSpec`` objects and
imports its heavy dependencies only when a sampler is built."""

from importlib.util import find_spec


def missing_package(module: str, distribution: str) -> str | None:
    """Why a backend cannot run when ``module`` is not importable, else ``None``."""
    try:
        found = find_spec(module) is not None
    except ModuleNotFoundError:
        found = False
    if found:
        return None
    return f"package {distribution} is not installed (pip install {distribution})"
