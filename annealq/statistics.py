"""A layer's calibration set as second moments: everything its exact QUBO needs, accumulated
in chunks of rows, so that the rows (a convolution's patches) never exist all at once.

For a dense layer with inputs ``X̂`` (the quantized network's, ``m × f``) and ``X`` (the
float network's), ``Â = [X̂, 1]`` and the drift ``Δ = X − X̂``, the output residual of a
neuron whose float row ``v = [w, b]`` is replaced by ``q̃`` (dequantized, bias last) is

    r = X w + b − Â q̃ = Δ w + Â (v − q̃)

so its squared norm and ``Âᵀ r`` — the QUBO's offset and linear terms, the baselines'
error and gradient — only need three moments, whatever ``m`` is:

    ‖r‖² = wᵀ(ΔᵀΔ)w + 2 wᵀ(ÂᵀΔ)ᵀ(v − q̃) + (v − q̃)ᵀ(ÂᵀÂ)(v − q̃),
    Âᵀ r = (ÂᵀΔ) w + (ÂᵀÂ)(v − q̃).

The moments are accumulated from ``Δ`` itself (never as differences of large moments), so
the error keeps its precision when ``X̂`` is close to ``X``.

A convolution is a dense layer applied to every patch (:mod:`annealq.conv`): its rows are
all patches of all calibration images, fed here batch by batch.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(40, 3))
    >>> X_hat = X + 0.01 * rng.normal(size=X.shape)
    >>> stats = InputStatistics.from_arrays(X_hat[:25], X[:25]).add(X_hat[25:], X[25:])
    >>> w, b, q = rng.normal(size=(1, 3)), np.array([0.5]), rng.normal(size=(1, 4))
    >>> direct = np.sum((X @ w[0] + b[0] - X_hat @ q[0, :3] - q[0, 3]) ** 2)
    >>> energy, _ = stats.residual(np.column_stack([w, b]), q)
    >>> bool(np.isclose(energy[0], direct, rtol=1e-12))
    True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class InputStatistics:
    """The moments of a layer's calibration rows (see the module docstring).

    Attributes:
        gram: ``ÂᵀÂ`` ``(f+1, f+1)``, ``Â = [X̂, 1]`` (its last entry is the row count).
        cross: ``ÂᵀΔ`` ``(f+1, f)``.
        drift: ``ΔᵀΔ`` ``(f, f)``.
        drifted: whether any row had ``X ≠ X̂`` (else ``cross`` and ``drift`` are 0).
    """

    gram: np.ndarray
    cross: np.ndarray
    drift: np.ndarray
    drifted: bool = False

    @classmethod
    def empty(cls, features: int) -> InputStatistics:
        f = int(features)
        return cls(np.zeros((f + 1, f + 1)), np.zeros((f + 1, f)), np.zeros((f, f)))

    @classmethod
    def from_arrays(cls, inputs, float_inputs=None) -> InputStatistics:
        """The moments of ``X̂ = inputs`` and ``X = float_inputs`` (default ``X̂``)."""
        X_hat = np.asarray(inputs, dtype=np.float64)
        return cls.empty(X_hat.shape[1]).add(X_hat, float_inputs)

    def add(self, inputs, float_inputs=None) -> InputStatistics:
        """These moments plus those of more rows (numpy arrays or torch tensors ``(k, f)``)."""
        X_hat = _float64(inputs)
        f = self.features
        if X_hat.ndim != 2 or X_hat.shape[1] != f:
            raise ValueError(f"rows must have shape (k, {f}), got {X_hat.shape}")
        gram = self.gram.copy()
        gram[:f, :f] += X_hat.T @ X_hat
        sums = X_hat.sum(axis=0)
        gram[:f, f] += sums
        gram[f, :f] += sums
        gram[f, f] += X_hat.shape[0]
        cross, drift, drifted = self.cross, self.drift, self.drifted
        if float_inputs is not None and float_inputs is not inputs:
            delta = _float64(float_inputs) - X_hat
            if delta.shape != X_hat.shape:
                raise ValueError(
                    f"float_inputs has shape {delta.shape}, inputs "
                    f"{X_hat.shape}: they must be the same rows"
                )
            if np.any(delta):
                cross, drift, drifted = cross.copy(), drift + delta.T @ delta, True
                cross[:f] += X_hat.T @ delta
                cross[f] += delta.sum(axis=0)
        return InputStatistics(gram, cross, drift, drifted)

    @property
    def features(self) -> int:
        return self.gram.shape[0] - 1

    @property
    def rows(self) -> int:
        return int(round(self.gram[-1, -1]))

    @property
    def inputs(self) -> StatisticsSide:
        """The quantized network's side, accepted wherever an ``inputs`` array is."""
        return StatisticsSide(self, quantized=True)

    @property
    def float_inputs(self) -> StatisticsSide:
        """The float network's side, accepted wherever a ``float_inputs`` array is."""
        return StatisticsSide(self, quantized=False)

    def residual(self, values, dequantized) -> tuple[np.ndarray, np.ndarray]:
        """Per neuron ``‖r‖²`` ``(n,)`` and ``Âᵀr`` ``(n, f+1)`` when the float rows
        ``values`` ``(n, f+1)`` (weights, then bias) are replaced by ``dequantized``."""
        values = np.asarray(values, dtype=np.float64)
        delta = values - np.asarray(dequantized, dtype=np.float64)  # v − q̃
        projection = delta @ self.gram  # (ÂᵀÂ (v − q̃))ᵀ, the gram is symmetric
        energy = np.einsum("ik,ik->i", projection, delta)
        if self.drifted:
            w = values[:, :-1]
            drift_projection = w @ self.cross.T  # ((ÂᵀΔ) w)ᵀ
            energy += np.einsum("ij,jk,ik->i", w, self.drift, w) + 2.0 * np.einsum(
                "ik,ik->i", drift_projection, delta
            )
            projection = projection + drift_projection
        return np.maximum(energy, 0.0), projection

    def drift_terms(self, weight) -> tuple[np.ndarray, np.ndarray]:
        """``p = Âᵀ Δ w`` ``(n, f+1)`` and ``c = ‖Δ w‖²`` ``(n,)`` of the float rows'
        weights ``(n, f)``: what ``X ≠ X̂`` adds to the baselines' Gram form."""
        w = np.asarray(weight, dtype=np.float64)
        return w @ self.cross.T, np.einsum("ij,jk,ik->i", w, self.drift, w)


@dataclass(frozen=True, eq=False)
class StatisticsSide:
    """One side (quantized or float network) of an :class:`InputStatistics`: what
    :func:`~annealq.formulation.formulate_layer` and the baselines take in place of the
    ``inputs`` and ``float_inputs`` arrays when the rows are too many to hold."""

    statistics: InputStatistics
    quantized: bool = True

    @property
    def shape(self) -> tuple[int, int]:
        return self.statistics.rows, self.statistics.features


def statistics_of(inputs, float_inputs) -> InputStatistics | None:
    """The statistics behind ``inputs`` (a :class:`StatisticsSide`), checking that
    ``float_inputs`` is the other side of the same ones; ``None`` for arrays.

    Raises:
        ValueError: one side given with an array, or sides of different statistics.
    """
    sides = [x for x in (inputs, float_inputs) if isinstance(x, StatisticsSide)]
    if not sides:
        return None
    if not isinstance(inputs, StatisticsSide) or not inputs.quantized:
        raise ValueError(
            "inputs must be the quantized side of the statistics "
            "(InputStatistics.inputs) when float_inputs is a side of them"
        )
    stats = inputs.statistics
    if float_inputs is None and stats.drifted:
        raise ValueError(
            "these statistics hold float inputs that differ from the inputs: "
            "pass their float_inputs side as float_inputs"
        )
    if float_inputs is not None and (
        not isinstance(float_inputs, StatisticsSide) or float_inputs.statistics is not stats
    ):
        raise ValueError(
            "float_inputs must be None or the float side of the same "
            "statistics as inputs (InputStatistics.float_inputs)"
        )
    return stats


def output_error(lq, int_weight, int_bias, inputs, float_inputs=None) -> float:
    """The squared output error ``‖X Wᵀ + b − X̂ Q̃ᵀ − b̃‖²`` of a layer's formulation ``lq``
    (a :class:`~annealq.layer.LayerQUBO`: its float rows and grids) under integers: directly
    from the arrays ``X̂ = inputs`` and ``X = float_inputs`` (default ``X̂``), or from the
    sides of an :class:`InputStatistics`."""
    values = lq.values
    dequantized = np.column_stack(
        [lq.weight_grid.dequantize(int_weight), lq.bias_grid.dequantize(int_bias)]
    )
    stats = statistics_of(inputs, float_inputs)
    if stats is not None:
        return float(stats.residual(values, dequantized)[0].sum())
    X = inputs if float_inputs is None else float_inputs
    target = X @ values[:, :-1].T + values[:, -1]
    output = inputs @ dequantized[:, :-1].T + dequantized[:, -1]
    return float(np.sum((target - output) ** 2))


def _float64(x) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor, without importing torch
        x = x.detach().double().cpu().numpy()
    return np.asarray(x, dtype=np.float64)
