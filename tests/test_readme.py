"""The README's shell blocks marked ``<!-- runnable -->`` run as written, one command after
another, from a folder laid out like the repository root (``.venv/bin`` is this
interpreter's), and each exits 0."""

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARKER = "<!-- runnable -->"


def runnable_commands(text: str) -> list[str]:
    """The commands of every ``sh`` block right after the marker (continuations joined,
    comments dropped)."""
    commands = []
    for block in re.findall(re.escape(MARKER) + r"\s*```sh\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #")[0].strip()
            if line and not line.startswith("#"):
                commands.append(line)
    return commands


def test_the_readme_marks_its_first_commands_runnable():
    commands = runnable_commands((ROOT / "README.md").read_text())
    assert any(c.startswith(".venv/bin/annealq") for c in commands)
    assert any(c.startswith("annealq quantize") for c in commands)


def test_runnable_readme_commands_run_as_written(tmp_path, tmp_path_factory):
    bin_dir = Path(sys.executable).parent
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "bin").symlink_to(bin_dir)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(ROOT),
        "HOME": str(tmp_path),
        # the reference MLPs trained once per test session, not once per command
        "ANNEALQ_MODELS": str(tmp_path_factory.getbasetemp() / "models"),
    }
    env = {k: v for k, v in env.items() if not k.startswith("DWAVE_")}
    env["DWAVE_CONFIG_FILE"] = str(tmp_path / "missing.conf")
    for command in runnable_commands((ROOT / "README.md").read_text()):
        out = subprocess.run(
            ["bash", "-c", command],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert out.returncode == 0, (command, out.stderr[-2000:])
        assert "Traceback" not in out.stderr, command


def _prose(text: str) -> list[str]:
    """The README's lines outside code blocks and tables."""
    lines, in_code = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and not line.startswith("|"):
            lines.append(line)
    return lines


def test_the_readme_is_a_page_for_users():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 300
    assert [line for line in _prose(text) if len(line) > 200] == []
    # the two commands, as .ci/run and the Makefile know them
    assert "make demo" in text and "make test" in text
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_the_readme_links_to_files_that_exist():
    text = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(((?!https?:)[^)#]+)(?:#[^)]*)?\)", text)
    assert targets and [t for t in targets if not (ROOT / t).exists()] == []
