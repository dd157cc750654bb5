"""benchmarks/ridge.py: McNemar's exact test, the ridge chosen on validation images only,
and its tables."""

import pytest

from benchmarks.ridge import CHECK_PEERS, PEERS, chosen_ridge, markdown, mcnemar, qubo_label


def test_mcnemar_is_the_exact_two_sided_binomial_test():
    assert mcnemar(0, 0) == 1.0
    assert mcnemar(0, 6) == pytest.approx(2 / 64)
    assert mcnemar(6, 0) == mcnemar(0, 6)
    assert mcnemar(19, 21) == pytest.approx(0.8746, abs=1e-4)
    assert mcnemar(5, 5) == 1.0


def _result(validation, test):
    """Two models; ``validation[r]`` and ``test[r]``: each ridge's output errors."""

    def row(v, t, accuracy=0.97):
        return {
            "layer_errors": [10.0, 5.0],
            "seconds": 1.0,
            "validation_error": v,
            "validation_agreement": 0.99,
            "validation_accuracy": accuracy,
            "test_error": t,
            "test_agreement": 0.99,
            "test_accuracy": accuracy,
            "discordant": {peer: [3, 4] for peer in CHECK_PEERS},
        }

    runs = {label: row(500.0, 500.0) for label in PEERS}
    runs.update({qubo_label(r): row(validation[r], test[r]) for r in validation})
    return {
        "command": "python benchmarks/ridge.py",
        "ridges": list(validation),
        "models": [{"seed": s, "fingerprint": "x", "runs": {"4": runs}} for s in (1, 2)],
    }


def test_the_ridge_is_chosen_on_validation_not_test():
    result = _result({0.0: 300.0, 0.01: 200.0, 0.1: 250.0}, {0.0: 100.0, 0.01: 300.0, 0.1: 50.0})
    assert chosen_ridge(result, "4") == 0.01
    text = markdown(result)
    starred = [line for line in text.splitlines() if line.startswith("| kbest") and "★" in line]
    assert starred == [line for line in starred if line.startswith(f"| {qubo_label(0.01)} ★ |")]
    assert len(starred) == 1
    assert "| 1 | 4 | 0.01 | 97.00 % | +3 / −4 | 1.00 |" in text
