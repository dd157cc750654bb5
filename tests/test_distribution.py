"""What ``pip install .`` ships (annealq and solvers, not the benchmarks), and what the
CLI's quick commands load."""

import subprocess
import sys
from pathlib import Path

import tomllib
from setuptools import find_packages

from annealq import cli

ROOT = Path(__file__).resolve().parents[1]


def test_the_distribution_is_the_library_and_the_solvers():
    find = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages = set(find_packages(ROOT, **find["packages"]["find"]))
    assert {"annealq", "annealq.testing", "annealq.testing.leap", "solvers"} <= packages
    assert {p.split(".")[0] for p in packages} == {"annealq", "solvers"}


# the modules a quick command must not load: torch, the Leap emulator, the benchmarks
_LOADED = r"""
import contextlib, io, sys
from annealq.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    main(sys.argv[1:])
print(sorted(m for m in sys.modules if m in ("torch", "annealq.commands")
             or m.startswith(("annealq.testing", "benchmarks"))))
"""


def test_help_and_solvers_load_neither_torch_nor_the_emulator(tmp_path):
    for command in (["--help"], ["solvers"]):
        out = subprocess.run(
            [sys.executable, "-c", _LOADED, *command],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout
        assert out.splitlines()[-1] == "[]", (command, out)


def test_bench_outside_a_checkout_says_where_to_run_it(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(cli, "_checkout", lambda: None)
    assert cli.main(["bench", "paper"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "python -m benchmarks" in err


def test_bench_in_a_checkout_runs_the_harness_module(monkeypatch):
    calls = []
    monkeypatch.setattr(
        cli.subprocess,
        "run",
        lambda command, env: (
            calls.append((command, env)) or subprocess.CompletedProcess(command, 0)
        ),
    )
    assert cli.main(["bench", "bounds", "--datasets", "digits"]) == 0
    ((command, env),) = calls
    assert command == [sys.executable, "-m", "benchmarks", "bounds", "--datasets", "digits"]
    assert str(ROOT) in env["PYTHONPATH"].split(":")


def test_the_harness_parses_its_commands(capsys):
    from benchmarks.__main__ import main

    try:
        main(["paper", "--help"])
    except SystemExit as exc:
        assert exc.code == 0
    assert capsys.readouterr().out.startswith("usage: python -m benchmarks paper")
