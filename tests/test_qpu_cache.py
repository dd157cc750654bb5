"""minorminer's busclique cache renames its temporary files after releasing its lock, so two
processes filling it at once can lose a rename: the QPU sampler tries such a call again,
and only such a call."""

import pytest
from minorminer.busclique import busgraph_cache

from solvers.qpu_pack import busclique_retry


def test_a_lost_rename_in_the_clique_cache_is_tried_again():
    lost = str(busgraph_cache.cache_rootdir()) + "/busclique_7/clique/.lru~"
    calls = []

    def embed():
        calls.append(1)
        if len(calls) < 3:
            raise FileNotFoundError(2, "No such file or directory", lost)
        return {"0": (1, 2)}

    assert busclique_retry(embed) == {"0": (1, 2)} and len(calls) == 3


def test_any_other_missing_file_is_raised_at_once():
    calls = []

    def embed():
        calls.append(1)
        raise FileNotFoundError(2, "No such file or directory", "/elsewhere/model.pt")

    with pytest.raises(FileNotFoundError):
        busclique_retry(embed)
    assert len(calls) == 1
