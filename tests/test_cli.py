import os
import subprocess
import sys

import pytest

from tests.conftest import CANARY_TOKEN


def _annealq(*args, cwd, env_extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DWAVE_")}
    env.update({"HOME": str(cwd), "XDG_CONFIG_HOME": str(cwd),
                "DWAVE_CONFIG_FILE": str(cwd / "missing.conf")})
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "annealq", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def _written_text(folder):
    return "".join(p.read_text(errors="replace") for p in folder.rglob("*") if p.is_file())


def test_solvers_lists_backends_and_token_state(tmp_path):
    out = _annealq("solvers", cwd=tmp_path)
    assert out.returncode == 0
    lines = {line.split()[0]: line for line in out.stdout.splitlines() if line.strip()}
    for name in ("neal", "tabu", "steepest", "exact", "qpu-mock"):
        assert lines[name].split()[1] == "yes"
    assert lines["qpu"].split()[1] == "no" and "no D-Wave API token" in lines["qpu"]
    assert "D-Wave API token: not configured" in out.stdout


@pytest.mark.parametrize("env_file", ["cwd", "variable"])
def test_token_from_dotenv_is_used_and_never_shown(tmp_path, env_file):
    if env_file == "cwd":
        (tmp_path / ".env").write_text(f"DWAVE_API_TOKEN={CANARY_TOKEN}\n")
        extra = {}
    else:
        (tmp_path / "secrets.env").write_text(f"DWAVE_API_TOKEN={CANARY_TOKEN}\n")
        extra = {"ANNEALQ_ENV_FILE": str(tmp_path / "secrets.env")}
    out = _annealq("solvers", cwd=tmp_path, env_extra=extra)
    assert "D-Wave API token: configured" in out.stdout
    lines = {line.split()[0]: line for line in out.stdout.splitlines() if line.strip()}
    assert lines["qpu"].split()[1] == "yes"
    assert CANARY_TOKEN not in out.stdout + out.stderr


def test_cloud_solver_with_unreachable_leap_fails_fast_and_leaks_nothing(tmp_path):
    # The token is set but the network (here: none) cannot reach Leap: a clear error,
    # a non-zero exit within seconds, and the token in no output and no file.
    out = _annealq("demo", "--bits", "2", "--solver", "qpu", cwd=tmp_path,
                   env_extra={"DWAVE_API_TOKEN": CANARY_TOKEN})
    assert out.returncode != 0
    assert "annealq: error:" in out.stderr and "Traceback" not in out.stderr
    assert CANARY_TOKEN not in out.stdout + out.stderr + _written_text(tmp_path)


@pytest.mark.parametrize("args, message", [
    (["demo", "--bits", "9"], "bits must be from 1 to 8, got 9"),
    (["demo", "--solver", "nope"], "unknown solver 'nope'"),
    (["demo", "--solver", "hybrid"], "no D-Wave API token"),
])
def test_bad_input_is_one_clear_line_and_a_nonzero_exit(tmp_path, args, message):
    out = _annealq(*args, cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1].startswith("annealq: error:")
    assert message in out.stderr and "Traceback" not in out.stderr


def test_cache_stats_and_clear(tmp_path):
    import numpy as np

    from annealq import formulate_layer, get_sampler, solve_bqms
    from annealq.cache import CacheStore

    db = tmp_path / "c.sqlite"
    rng = np.random.default_rng(0)
    lq = formulate_layer(rng.normal(size=(4, 5)), rng.normal(size=4), rng.normal(size=(9, 5)),
                         bits=2)
    with CacheStore(db) as store:
        solve_bqms(lq.bqms(), get_sampler("exact"), cache=store, solver_name="exact")
        solve_bqms(lq.bqms(), get_sampler("steepest"), cache=store, solver_name="steepest")
        store.record_run(3, 1)
    out = _annealq("cache", "stats", "--cache", str(db), cwd=tmp_path)
    assert out.returncode == 0
    assert "8 entries" in out.stdout and "last run: 3 hits, 1 misses (75% hits)" in out.stdout
    out = _annealq("cache", "clear", "--cache", str(db), "--solver", "exact", cwd=tmp_path)
    assert out.stdout.strip() == "removed 4 cache entries of solver 'exact'"
    assert "4 entries" in _annealq("cache", "stats", "--cache", str(db), cwd=tmp_path).stdout
    missing = _annealq("cache", "stats", "--cache", str(tmp_path / "nope.sqlite"), cwd=tmp_path)
    assert missing.returncode == 2 and "no cache at" in missing.stderr
