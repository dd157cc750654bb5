"""The documentation site builds with warnings as errors: a broken link, a stale anchor or
a docstring the API pages cannot parse fails the suite."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_docs_build_strictly(tmp_path):
    site = tmp_path / "site"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--quiet",
            "--config-file",
            str(ROOT / "mkdocs.yml"),
            "--site-dir",
            str(site),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    api = (site / "api" / "index.html").read_text()
    for name in (
        "annealq.pipeline.quantize",
        "annealq.quantized.load",
        "annealq.registry.get_sampler",
        "annealq.config.QuantizeConfig",
        "annealq.testing.conformance.assert_conforms",
    ):
        assert f'id="{name}"' in api, name
