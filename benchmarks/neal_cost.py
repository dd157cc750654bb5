"""What a ``neal`` cell of ``bench paper`` would cost on a large layer, from a few neurons.

``bench paper``'s "QUBO, neal" column solves each neuron's down/up QUBO with ``neal`` at
the paper's setting (1 read, 1,000 sweeps). On the CIFAR-10 MLP's first layer a neuron
has 3,073 variables and 4.7 million couplings, and the cell was left out as too slow. This
times the BQM and the solve of the first ``--neurons`` neurons of the first layer (1,000
calibration images, reference grid) and projects the layer's time:

    ANNEALQ_DATA=../shared/data python benchmarks/neal_cost.py --dataset cifar10 --bits 4
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from annealq.config import QuantizeConfig
from annealq.data.datasets import load_dataset
from annealq.data.models import reference_model
from annealq.problems import layer_problem
from annealq.registry import get_sampler


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--bits", type=int, default=4)
    parser.add_argument("--neurons", type=int, default=2)
    args = parser.parse_args(argv)
    data = load_dataset(args.dataset)
    model, _ = reference_model(data)
    x = data.calibration(1000, seed=0)
    lq = layer_problem(model, x, QuantizeConfig(bits=args.bits), 0).qubo
    sampler = get_sampler("neal", seed=0)
    seconds = []
    for i in range(args.neurons):
        begin = time.perf_counter()
        bqm = lq.bqm(i)
        built = time.perf_counter() - begin
        sampler.sample(bqm, num_reads=1, num_sweeps=1000, seed=0)
        seconds.append(time.perf_counter() - begin)
        print(
            f"neuron {i}: {len(bqm.variables)} variables, {bqm.num_interactions} couplings; "
            f"BQM {built:.1f} s, BQM and neal {seconds[-1]:.1f} s",
            flush=True,
        )
    per = float(np.mean(seconds))
    print(
        f"{args.dataset} first layer, int{args.bits}: {lq.n_neurons} neurons × {per:.1f} s "
        f"= {lq.n_neurons * per / 60:.0f} minutes on one core"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
