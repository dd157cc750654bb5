"""Several neurons in one QPU anneal: disjoint clique embeddings side by side on the chip.

A neuron of ``n`` variables needs a clique embedding of ``K_n``; on an Advantage (Pegasus
P16) a 65-variable digits neuron uses about 450 of its 5,640 qubits, so most of the chip
idles while it anneals. :class:`CliqueTiles` finds disjoint ``K_n`` embeddings once per
size (minorminer's ``busclique`` on what the previous ones left free), and
:func:`submit_packed` embeds one neuron per tile:

* each neuron's Ising form is scaled to a largest bias of 1 first, so that neurons with
  small coefficients keep their share of the QPU's range when it scales the whole problem;
* its chains get their own strength (uniform torque compensation of that neuron alone);
* a warm start (a reverse anneal) sets each neuron's qubits from its own state;
* the answer is unembedded per neuron (majority vote on broken chains), with that neuron's
  chain-break fraction, and its energy recomputed exactly from its own BQM.
"""

from __future__ import annotations

import time

import dimod
import numpy as np

from annealq.protocol import PendingProblem
from annealq.results import SolveResult, timing
from solvers.cloud import cancel, combine

MAX_TILES = 64


class CliqueTiles:
    """Disjoint clique embeddings on one QPU graph, cached per clique size."""

    def __init__(self, graph):
        self._graph = graph
        self._found: dict[int, list] = {}

    def embeddings(self, n: int) -> list[dict]:
        """Disjoint embeddings ``{0..n-1: chain}`` of ``K_n`` (empty when none fits)."""
        if n not in self._found:
            from minorminer.busclique import find_clique_embedding

            free, found = self._graph.copy(), []
            while len(found) < MAX_TILES:
                embedding = find_clique_embedding(n, free, use_cache=False)
                if not embedding:
                    break
                found.append({int(v): tuple(chain) for v, chain in embedding.items()})
                free.remove_nodes_from([q for chain in embedding.values() for q in chain])
            self._found[n] = found
        return self._found[n]


def plan_tiles(tiles: CliqueTiles, bqms, largest: int) -> list[list[int]]:
    """Groups of positions: the largest neurons first, as many per anneal as ``K_n`` tiles
    of the group's largest size ``n`` fit; a neuron above ``largest`` alone (refused)."""
    order = sorted(range(len(bqms)), key=lambda k: -bqms[k].num_variables)
    groups = []
    while order:
        n = bqms[order[0]].num_variables
        fits = len(tiles.embeddings(n)) if 0 < n <= largest else 1
        groups.append(sorted(order[: max(1, fits)]))
        order = order[max(1, fits) :]
    return groups


def submit_packed(qpu, tiles: CliqueTiles, bqms, parameters: dict, starts, emulation):
    """Send ``bqms`` as one anneal, one neuron per tile; ``starts`` (one ``{label: 0/1}``
    per neuron, or ``None``) makes it a reverse anneal from them."""
    from dwave.embedding import embed_bqm
    from dwave.embedding.chain_strength import uniform_torque_compensation

    n = max(b.num_variables for b in bqms)
    layout = tiles.embeddings(n)[: len(bqms)]
    scaled = []
    for bqm in bqms:
        spin = bqm.change_vartype(dimod.SPIN, inplace=False)
        biases = [*np.abs(list(spin.linear.values())), *np.abs(list(spin.quadratic.values()))]
        spin.scale(1.0 / max(max(biases, default=1.0), 1e-12))
        scaled.append(spin)
    packed, labels = combine(scaled)
    embedding, strength = {}, {}
    for own, tile, spin in zip(labels, layout, scaled):
        chains = {label: tile[t] for t, label in enumerate(own)}
        local = spin.relabel_variables(dict(zip(spin.variables, own)), inplace=False)
        value = uniform_torque_compensation(local, chains)
        embedding.update(chains)
        strength.update({label: value for label in own})
    target = embed_bqm(packed, embedding, qpu.adjacency, chain_strength=strength)
    parameters = dict(parameters)
    if starts is not None:
        state = {}
        for bqm, own, start in zip(bqms, labels, starts):
            for v, label in zip(bqm.variables, own):
                spin = 2 * int(start[v]) - 1 if bqm.vartype is dimod.BINARY else int(start[v])
                state.update({q: spin for q in embedding[label]})
        parameters.update(initial_state={q: state.get(q, 3) for q in target.variables})
    sampleset = qpu.sample(target, **parameters)
    return _PackedPending(sampleset, bqms, scaled, labels, embedding, strength, emulation)


class _PackedPending(PendingProblem):
    def __init__(self, sampleset, bqms, scaled, labels, embedding, strength, emulation):
        self.sampleset, self.bqms, self.scaled, self.labels = sampleset, bqms, scaled, labels
        self.embedding, self.strength, self.emulation = embedding, strength, emulation
        self.size = 0  # the sampler sets the qp payload

    def done(self) -> bool:
        return self.sampleset.done()

    def results(self) -> list:
        from dwave.embedding import majority_vote, unembed_sampleset

        self.sampleset.resolve()
        info = self.sampleset.info
        access = info.get("timing", {}).get("qpu_access_time", 0.0)
        answers = []
        for bqm, spin, own in zip(self.bqms, self.scaled, self.labels):
            chains = {label: self.embedding[label] for label in own}
            local = spin.relabel_variables(dict(zip(spin.variables, own)), inplace=False)
            mine = unembed_sampleset(
                self.sampleset,
                chains,
                local,
                chain_break_method=majority_vote,
                chain_break_fraction=True,
            )
            order = {v: c for c, v in enumerate(mine.variables)}
            spins = mine.record.sample[:, [order[label] for label in own]]
            values = spins if bqm.vartype is dimod.SPIN else (spins + 1) // 2
            energies = bqm.energies((values, list(bqm.variables)))
            best = int(np.argmin(energies))
            lengths = [len(chains[label]) for label in own]
            report = {
                "packed_neurons": len(self.bqms),
                "emulation": self.emulation,
                "problem_id": info.get("problem_id"),
                "qpu_access_time": access / len(self.bqms),
                "chain_strength": self.strength[own[0]] if own else None,
                "chain_length": {
                    "max": int(max(lengths, default=0)),
                    "mean": float(np.mean(lengths)) if lengths else 0.0,
                },
                "chain_break_fraction": float(np.mean(mine.record.chain_break_fraction)),
            }
            seconds = access / 1e6 / len(self.bqms)
            answers.append(
                (
                    SolveResult(
                        dict(zip(bqm.variables, values[best].tolist())),
                        float(energies[best]),
                        timing(report, seconds),
                        seconds,
                    ),
                    None,
                )
            )
        return answers

    def billed_seconds(self) -> float:
        return self.sampleset.info.get("timing", {}).get("qpu_access_time", 0.0) / 1e6

    def uploaded_bytes(self) -> int:
        return self.size

    def cancel(self) -> None:
        cancel(self.sampleset)


def embedding_report(sampleset, emulation: bool, note: str) -> dict:
    """The QPU answer's chains, chain strength and access time, for ``info``."""
    context = sampleset.info.get("embedding_context", {})
    lengths = [len(chain) for chain in context.get("embedding", {}).values()] or [0]
    report = {
        "chain_length": {"max": int(max(lengths)), "mean": float(np.mean(lengths))},
        "chain_strength": context.get("chain_strength"),
        "qpu_access_time": sampleset.info.get("timing", {}).get("qpu_access_time"),
        "emulation": emulation,
    }
    if "chain_break_fraction" in sampleset.record.dtype.names:
        report["chain_break_fraction"] = float(np.mean(sampleset.record.chain_break_fraction))
    if emulation:
        report["note"] = note
    return report


def busclique_retry(call, *args, **kwargs):
    """``call(*args, **kwargs)``, tried again (twice at most) when minorminer's busclique
    cache loses a file to another process: the cache renames its temporary ``.lru~`` after
    releasing its inter-process lock, so two processes filling it at once can see the rename
    fail (``FileNotFoundError``). Nothing was submitted yet, and the cache is then written."""
    from minorminer.busclique import busgraph_cache

    root = str(busgraph_cache.cache_rootdir())
    for attempt in range(3):
        try:
            return call(*args, **kwargs)
        except FileNotFoundError as error:
            if attempt == 2 or not str(error.filename or "").startswith(root):
                raise
            time.sleep(0.05 * (attempt + 1))
