"""``annealq leap-trial`` against the project's Leap emulator: the record a token holder
sends back (solver properties, problem ids, billed seconds, energies beside kbest's),
within its budget, marked as an emulation; without a token, one line and exit 2."""

import json

from annealq.cli import main
from annealq.leap_trial import leap_trial


def test_a_trial_records_problems_within_its_budget(leap_emulator, monkeypatch):
    # one run here (the qpu path is test_cloud's); a token holder's trial runs four. What is
    # checked is the record, not kbest's quality: a narrow kbest start keeps the test cheap
    monkeypatch.setattr("annealq.starts.KBEST_START", {"reduced": False, "width": 4})
    record = leap_trial(60.0, runs=(("hybrid-nl", 2, {}),), calibration_size=200)
    assert record["emulation"] and set(record["solvers"]) == {"hybrid-nl"}
    billed = 0.0
    for run in record["runs"]:
        assert "skipped" not in run, run
        assert all(layer["problem_ids"] for layer in run["layers"])
        billed += run["cloud"]["billed_seconds"]
    assert 0 < billed <= 60.0
    assert leap_emulator.token not in json.dumps(record)


def test_without_a_token_the_trial_is_one_line(no_token, tmp_path, capsys):
    code = main(["leap-trial", "--max-cloud-seconds", "60", "--out", str(tmp_path / "t.json")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("annealq: error: leap-trial runs on Leap")
    assert not (tmp_path / "t.json").exists()
