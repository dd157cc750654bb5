"""The notebooks run offline from top to bottom in their small configuration.

Each runs in a fresh Jupyter kernel (nbclient) with ``ANNEALQ_NOTEBOOK_SCALE=small``, no
D-Wave token in the environment or a config file and ``ANNEALQ_NOTEBOOK_OFFLINE=1`` (so a
developer's ``.env`` cannot send anything to Leap either), under a time limit; the test checks
that no cell errored, that the expected figures (PNG outputs) were drawn, and that the QPU
results are labelled
as an emulation. The kernel inherits this process's environment, so the per-test cache
(``ANNEALQ_CACHE``, from conftest) applies to it too.
"""

import os
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("matplotlib")
pytest.importorskip("ipykernel")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
CELL_TIMEOUT_S = 60
EMULATION = "classical emulation of the QPU (mock)"

# notebook, its time limit in seconds, the figures its small configuration draws at least
CASES = [
    ("qpu_vs_sa_energy_gaps.ipynb", 60, 5),
    ("accuracy_vs_bits.ipynb", 40, 3),
    ("annealers_on_the_strong_problem.ipynb", 45, 3),
]


@pytest.fixture
def offline_small(monkeypatch, tmp_path):
    monkeypatch.setenv("ANNEALQ_NOTEBOOK_SCALE", "small")
    monkeypatch.setenv("ANNEALQ_NOTEBOOK_OFFLINE", "1")
    # no token in the environment or a config file (HOME stays: the trained reference
    # models are cached under it)
    monkeypatch.delenv("DWAVE_API_TOKEN", raising=False)
    monkeypatch.setenv("DWAVE_CONFIG_FILE", str(tmp_path / "missing-dwave.conf"))
    monkeypatch.setenv("ANNEALQ_RESULTS_JSON", str(tmp_path / "absent" / "results.json"))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    if os.environ.get("ANNEALQ_DATA"):  # the kernel runs in notebooks/: make it absolute
        monkeypatch.setenv("ANNEALQ_DATA", str(Path(os.environ["ANNEALQ_DATA"]).resolve()))
    # the notebooks run from a checkout and import the benchmark helpers, which the
    # installed package does not hold: the kernel finds them through the repository root
    path = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, (str(NOTEBOOKS.parent), path))))
    return tmp_path


def outputs(notebook):
    return [
        out
        for cell in notebook.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
    ]


def text_of(notebook) -> str:
    parts = []
    for out in outputs(notebook):
        if out.output_type == "stream":
            parts.append(out.text)
        for kind in ("text/plain", "text/markdown"):
            parts.append(out.get("data", {}).get(kind, ""))
    return "\n".join(parts)


@pytest.mark.parametrize("name, limit_s, figures", CASES)
def test_notebook_runs_offline_in_small_configuration(name, limit_s, figures, offline_small):
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    begin = time.monotonic()
    client.execute()  # raises CellExecutionError naming the cell when one fails
    elapsed = time.monotonic() - begin

    errors = [out for out in outputs(notebook) if out.output_type == "error"]
    assert not errors, errors
    pngs = [out for out in outputs(notebook) if "image/png" in out.get("data", {})]
    assert len(pngs) >= figures, f"{name} drew {len(pngs)} figures, expected {figures}"
    assert elapsed < limit_s, f"{name} took {elapsed:.0f} s (limit {limit_s} s)"
    text = text_of(notebook)
    if name.startswith(("qpu", "annealers")):
        assert "Mode: offline emulation" in text
        assert EMULATION in text
    if name.startswith("qpu"):
        assert "Leap run at this scale" in text  # the cost estimate comes first


def test_the_qpu_notebook_runs_through_the_real_client_against_the_leap_emulator(
    offline_small, monkeypatch
):
    """The one setting that separates offline from Leap: ANNEALQ_NOTEBOOK_LEAP=emulator
    sends the qpu and hybrid cells through dwave-cloud-client to the local emulator."""
    monkeypatch.delenv("ANNEALQ_NOTEBOOK_OFFLINE")
    monkeypatch.setenv("ANNEALQ_NOTEBOOK_LEAP", "emulator")
    (offline_small / "missing-dwave.conf").write_text("")
    notebook = nbformat.read(NOTEBOOKS / "qpu_vs_sa_energy_gaps.ipynb", as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=3 * CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    client.execute()
    assert not [out for out in outputs(notebook) if out.output_type == "error"]
    text = text_of(notebook)
    assert "Mode: Leap emulator" in text and "QPU access time used" in text


def test_committed_notebooks_keep_their_figures():
    """A reader on GitHub sees figures: the committed copies hold a full run's outputs."""
    for name, _, figures in CASES:
        notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
        pngs = [out for out in outputs(notebook) if "image/png" in out.get("data", {})]
        assert len(pngs) >= figures, name
        assert not [out for out in outputs(notebook) if out.output_type == "error"], name
