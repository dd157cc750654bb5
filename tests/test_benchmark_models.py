"""The reference weights in benchmarks/models are the models the benchmark tables measured:
every fingerprint recorded in results.json, heldout.json and ridge.json is the fingerprint of the
committed file for that dataset and seed, so ``ANNEALQ_MODELS=benchmarks/models`` reruns
the tables on the same models on any machine."""

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from annealq.data.models import model_fingerprint

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
MODELS = BENCHMARKS / "models"


def committed(dataset: str, seed: int = 0) -> str:
    """The fingerprint of the committed reference MLP of ``dataset`` and ``seed``."""
    [path] = MODELS.glob(f"{dataset}-mlp*-seed{seed}-v1.pt")
    stored = torch.load(path, map_location="cpu", weights_only=True)
    assert stored["dataset"] == dataset and stored["seed"] == seed
    return model_fingerprint(SimpleNamespace(state_dict=lambda: stored["state_dict"]))


def recorded_cells():
    results = json.loads((BENCHMARKS / "results.json").read_text())
    for section in ("cells", "bounds"):
        for key, cell in results.get(section, {}).items():
            if isinstance(cell, dict) and "model" in cell:
                yield section, key, cell["model"]


@pytest.mark.parametrize("section, key, fingerprint", list(recorded_cells()))
def test_every_results_cell_was_measured_on_the_committed_weights(section, key, fingerprint):
    assert committed(key.split("|")[0]) == fingerprint, f"{section} {key}"


@pytest.mark.parametrize("name", ["heldout.json", "ridge.json"])
def test_every_heldout_model_is_committed(name):
    heldout = json.loads((BENCHMARKS / name).read_text())
    assert heldout["models"]
    for entry in heldout["models"]:
        assert committed("mnist", entry["seed"]) == entry["fingerprint"]


def test_a_changed_weight_changes_the_fingerprint():
    [path] = MODELS.glob("digits-mlp*-seed0-v1.pt")
    state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    before = model_fingerprint(SimpleNamespace(state_dict=lambda: state))
    first = next(iter(state))
    state[first] = state[first].clone()
    state[first].view(-1)[0] += 1e-7
    assert model_fingerprint(SimpleNamespace(state_dict=lambda: state)) != before
