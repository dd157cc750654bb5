"""benchmarks/heldout.py's tables: the per-model check and the models together."""

from benchmarks.heldout import PEERS, QUBO, _accuracy_above, _errors_within, markdown


def runs(qubo_errors, qubo_accuracy, peer_errors=(100.0, 100.0), peer_accuracy=0.95):
    row = lambda errors, accuracy: {
        "layer_errors": list(errors),
        "layer1_test_error": 1.0,
        "output_test_error": sum(errors),
        "accuracy": accuracy,
        "agreement": 0.99,
        "float_accuracy": 0.96,
        "seconds": 1.0,
    }
    return {
        **{label: row(peer_errors, peer_accuracy) for label in PEERS},
        QUBO: row(qubo_errors, qubo_accuracy),
    }


def test_the_check_needs_both_layers_within_and_accuracy_above_both_peers():
    assert _errors_within(runs((90.0, 80.0), 0.95))
    assert not _errors_within(runs((90.0, 91.0), 0.95))  # 0.91× GPTQ on layer 2
    assert _accuracy_above(runs((50.0, 50.0), 0.95))  # a tie counts
    assert not _accuracy_above(runs((50.0, 50.0), 0.9499))


def test_the_models_together_count_the_models_meeting_each_part():
    models = [
        {
            "seed": seed,
            "float_accuracy": 0.96,
            "fingerprint": "x",
            "runs": {"4": runs((50.0, 50.0), accuracy)},
        }
        for seed, accuracy in ((1, 0.95), (2, 0.94), (3, 0.96))
    ]
    text = markdown({"command": "python benchmarks/heldout.py", "models": models})
    assert text.count("## Seed") == 3
    qubo = next(
        line for line in text.splitlines() if line.startswith(f"| 4 | {QUBO}") and "of 3" in line
    )
    assert qubo.endswith("| 3 of 3 | 2 of 3 |")
    assert "| 95.00 % (94.00–96.00) |" in qubo
    gptq = next(
        line for line in text.splitlines() if line.startswith(f"| 4 | {PEERS[0]}") and "—" in line
    )
    assert "| 0.500 (0.500–0.500) | 0.500 |" in gptq  # output and worst layer, QUBO / GPTQ


def test_one_model_has_no_summary():
    text = markdown(
        {
            "command": "c",
            "models": [
                {"seed": 1, "float_accuracy": 0.96, "runs": {"2": runs((50.0, 50.0), 0.95)}}
            ],
        }
    )
    assert "together" not in text
