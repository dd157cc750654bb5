"""Random values for the flags validated at the boundary (solver parameters, group sizes,
worker counts, output names), on digits with ``--dry-run`` so that an example costs a
fraction of a second: exit 0 or 2, one ``annealq: error:`` line on 2, never a traceback,
never a file left behind."""

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from annealq.cli import main

BASE = [
    "quantize",
    "--dataset",
    "digits",
    "--bits",
    "2",
    "--solver",
    "steepest",
    "--calibration",
    "100",
    "--quiet",
    "--dry-run",
    "--no-cache",
]
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=12)
NUMBERS = st.one_of(
    st.integers(-10, 10**13).map(str),
    st.floats().map(repr),
    st.sampled_from(["abc", "nan", "inf", "1e9", "[1, 2]", "True", ""]),
)


@st.composite
def command_lines(draw):
    argv = list(BASE)
    for _ in range(draw(st.integers(0, 2))):
        key = draw(st.sampled_from(["num_reads", "seed", "num_sweeps", "beta_range", "x"]))
        argv += ["--solver-param", f"{key}={draw(NUMBERS)}"]
    for flag in ("--group-size", "--workers", "--max-in-flight", "--retries"):
        if draw(st.booleans()):
            argv += [flag, draw(st.one_of(st.integers(-3, 10**9).map(str), TEXT))]
    if draw(st.booleans()):
        name = draw(st.one_of(TEXT, st.integers(200, 300).map(lambda n: "r" * n)))
        argv += ["--report", "{tmp}/" + name.replace("/", "_")]
    return argv


@settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(argv=command_lines())
def test_random_flag_values_exit_0_or_2_with_one_line(argv, capsys, tmp_path_factory, monkeypatch):
    monkeypatch.setenv("ANNEALQ_MODELS", str(tmp_path_factory.getbasetemp() / "models"))
    work = tmp_path_factory.mktemp("fuzz")
    argv = [a.replace("{tmp}", str(work)) for a in argv]
    code = main(argv)
    out, err = capsys.readouterr()
    assert code in (0, 2), (argv, code, err)
    assert "Traceback" not in err + out, (argv, err)
    errors = [line for line in err.splitlines() if line.startswith("annealq: error:")]
    assert len(errors) == (code == 2), (argv, err)
    assert os.listdir(work) == [], argv  # a dry run writes nothing, a refused run neither
