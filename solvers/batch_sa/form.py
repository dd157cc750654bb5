"""The data of a ``batch-sa`` run: its options, the dense form of a set of neurons that
share one Gram matrix, and the schedule helpers both kernels use."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

# Defaults tuned on the first layer of an MNIST 784-128-10 MLP (16 neurons, int2 and
# int4): 4 reads × 64 sweeps from RTN gave 18–27 % less energy than neal's defaults in
# 1/25 of its time; more sweeps buy a few % more (benchmarks/SOLVERS.md has the runs).
DEFAULT_SWEEPS = 64
DEFAULT_READS = 4


@dataclass(frozen=True)
class BatchSAOptions:
    """Settings of a ``batch-sa`` run (serialisable: they are part of cache keys).

    Attributes:
        num_reads: independent anneals per neuron; the best is kept.
        num_sweeps: sweeps of the schedule (each visits every variable once).
        t_start, t_stop: first and last temperature, as multiples of the neuron's median
            single-flip energy change at the warm start.
        seed: the random streams' seed (< 2**63).
        device: ``"cpu"`` (numba kernel) or ``"cuda"``/``"cuda:N"`` (torch kernel).
    """

    num_reads: int = DEFAULT_READS
    num_sweeps: int = DEFAULT_SWEEPS
    t_start: float = 1.0
    t_stop: float = 0.03
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self):
        for name in ("num_reads", "num_sweeps"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, np.integer))
                or value < (1 if name == "num_reads" else 0)
            ):
                sign = "positive" if name == "num_reads" else "non-negative"
                raise ValueError(f"{name} must be a {sign} integer, got {value!r}")
        if not (self.t_start > 0 and self.t_stop > 0 and self.t_stop <= self.t_start):
            raise ValueError(
                f"temperatures must satisfy 0 < t_stop <= t_start, got "
                f"t_start={self.t_start}, t_stop={self.t_stop}"
            )
        if not 0 <= int(self.seed) < 2**63:
            raise ValueError(f"seed must be in [0, 2**63), got {self.seed}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class LayerForm:
    """The dense form of a set of neurons' QUBOs that share one Gram matrix.

    ``E_p(u) = offset_p + linear_p·u + Σ_jk s_pj s_pk H_jk u_j u_k − Σ_k s_pk² H_kk u_k``
    (the last two terms are ``uᵀ(Q − diag Q)u``); variables with ``free == False`` stay 0.
    """

    H: np.ndarray  # (F, F)
    scales: np.ndarray  # (P, F)
    linear: np.ndarray  # (P, F)
    offset: np.ndarray  # (P,)
    free: np.ndarray  # (P, F) bool

    @classmethod
    def from_layer(cls, lq, neurons=None) -> LayerForm:
        rows = np.arange(lq.n_neurons) if neurons is None else np.asarray(neurons, dtype=int)
        return cls(
            np.ascontiguousarray(lq.gram),
            lq.scales[rows],
            lq.linear[rows],
            lq.offset[rows],
            lq.free[rows],
        )

    @property
    def qdiag(self) -> np.ndarray:
        return self.scales**2 * np.diag(self.H)[None, :]

    def fields(self, U: np.ndarray, who: np.ndarray) -> np.ndarray:
        """``g = Q u`` for states ``U`` (B, F) of problems ``who`` (B,)."""
        d = self.scales[who]
        return d * ((d * U) @ self.H)

    def energies(self, U: np.ndarray, who: np.ndarray | None = None) -> np.ndarray:
        who = np.arange(len(U)) if who is None else who
        G = self.fields(U, who)
        return (
            self.offset[who]
            + np.sum(self.linear[who] * U, axis=1)
            + np.sum(U * G, axis=1)
            - np.sum(self.qdiag[who] * U, axis=1)
        )


def temperature_scale(form: LayerForm, U: np.ndarray, who: np.ndarray, G: np.ndarray) -> np.ndarray:
    """Per problem, the median |ΔE| of a single flip at state ``U`` over free variables."""
    u = U.astype(np.float64)
    delta = np.abs((1 - 2 * u) * (form.linear[who] + 2 * (G - form.qdiag[who] * u)))
    delta = np.where(form.free[who], delta, np.nan)
    with np.errstate(all="ignore"):
        scale = np.nanmedian(delta, axis=1)
    return np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)


def keep_better(
    form: LayerForm, who: np.ndarray, start: np.ndarray, final: np.ndarray
) -> np.ndarray:
    """Per problem, the lower-energy of the descended start and the annealed state, so a
    run never ends above the local minimum its warm start leads to."""
    worse = form.energies(final.astype(np.float64), who) > form.energies(
        start.astype(np.float64), who
    )
    return np.where(worse[:, None], start, final)


def schedule(options: BatchSAOptions) -> np.ndarray:
    """Temperatures of the sweeps (multiples of each problem's scale), hottest first."""
    if options.num_sweeps == 0:
        return np.zeros(0)
    return np.geomspace(options.t_start, options.t_stop, options.num_sweeps)
