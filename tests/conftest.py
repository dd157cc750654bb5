import numpy as np
import pytest

from annealq import formulate_layer
from annealq.testing import conformance

# A fake token that must never show up in output or files (not token-shaped on purpose).
CANARY_TOKEN = "canary-token-must-never-leak-7f3a9c"


@pytest.fixture
def small_layer():
    """A real formulation: 3 neurons of 12 inputs (≤ 13 variables each), int2."""
    return conformance.small_layer()


@pytest.fixture
def layer_65():
    """One 65-variable neuron's worth of problem: digits-sized (64 inputs + bias), int4."""
    rng = np.random.default_rng(7)
    W, b, X = rng.normal(size=(2, 64)) * 0.1, rng.normal(size=2) * 0.1, rng.random((200, 64))
    return formulate_layer(W, b, X, bits=4)


@pytest.fixture
def no_token(monkeypatch, tmp_path):
    """No D-Wave token anywhere: not in the environment, no config file, no .env."""
    monkeypatch.delenv("DWAVE_API_TOKEN", raising=False)
    monkeypatch.setenv("DWAVE_CONFIG_FILE", str(tmp_path / "missing-dwave.conf"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def canary_token(no_token, monkeypatch):
    monkeypatch.setenv("DWAVE_API_TOKEN", CANARY_TOKEN)
    return CANARY_TOKEN


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own default cache file, never the user's."""
    path = tmp_path_factory.mktemp("cache") / "cache.sqlite"
    monkeypatch.setenv("ANNEALQ_CACHE", str(path))
    return path


@pytest.fixture
def leap_emulator(monkeypatch, tmp_path):
    """The project's Leap emulator (fast service times), with the real Ocean client pointed
    at it through the environment: an empty config file, its endpoint and its token."""
    from annealq.testing import LeapEmulator

    with LeapEmulator(time_scale=500.0, slots=4) as emulator:
        config = tmp_path / "dwave.conf"
        config.write_text("")
        monkeypatch.setenv("DWAVE_CONFIG_FILE", str(config))
        monkeypatch.setenv("DWAVE_API_ENDPOINT", emulator.endpoint)
        monkeypatch.setenv("DWAVE_API_TOKEN", emulator.token)
        yield emulator
