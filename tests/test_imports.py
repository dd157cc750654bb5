import subprocess
import sys


def test_import_annealq_pulls_in_neither_torch_nor_the_cloud_client():
    code = ("import sys, annealq; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('torch', 'dwave', 'dimod', 'sklearn')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


def test_formulation_does_not_import_the_cloud_client():
    code = ("import sys; from annealq import formulate_layer; "
            "print([m for m in sys.modules if m.startswith(('dwave.cloud', 'torch'))])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
