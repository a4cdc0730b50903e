"""Data, its moments and the assumption checks of docs/theory.md §1.

Orientation follows the paper: **samples are columns**, ``X`` is (d_x, m) and ``Y`` is
(d_y, m).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mcland._kernels.bundles import Moments
from mcland._kernels.whiten import (
    critical_values_into,
    moments,
    n_critical_values,
    smallest_relative_gap,
    whiten,
)
from mcland.core.errors import MclandError
from mcland.core.tolerances import GAP_RTOL, SXX_RCOND


def as_matrix(a: object, name: str) -> np.ndarray:
    """``a`` as a C-contiguous float64 2-D array with finite entries, or MclandError."""
    raw = np.asarray(a)
    if raw.dtype.kind not in "biuf":
        raise MclandError(f"{name} must hold real numbers, got dtype {raw.dtype}")
    arr = np.ascontiguousarray(raw, dtype=np.float64)
    if arr.ndim != 2:
        raise MclandError(f"{name} must be 2-D, got shape {arr.shape}")
    if arr.size == 0:
        raise MclandError(f"{name} is empty (shape {arr.shape})")
    if not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise MclandError(f"{name} has {bad} NaN or infinite entries")
    return arr


@dataclass(frozen=True, eq=False)
class Problem:
    """Moments and spectral data of a regression problem ``(X, Y)``.

    Attributes
    ----------
    Sxx : ndarray (d_x, d_x)
        ``X X^T``.
    Syx : ndarray (d_y, d_x)
        ``Y X^T``.
    tr_syy : float
        ``tr(Y Y^T)``.
    mu : ndarray (d_x,)
        Eigenvalues of ``Sxx`` in increasing order.
    K, K_inv : ndarray (d_x, d_x)
        ``Sxx^{1/2}`` and its inverse.
    lam : ndarray (d_y,)
        Eigenvalues of ``Sigma = Syx Sxx^{-1} Sxy`` in decreasing order.
    U : ndarray (d_y, d_y)
        Matching eigenvectors (columns ``u_i``).
    Vt : ndarray (d_x, d_x)
        Rows ``v_i^T`` of the whitened SVD ``Syx K^{-1} = U diag(sqrt(lam)) V^T``, then ``V_0``.
    min_rel_gap : float
        ``min(min_i (lam_i - lam_{i+1}), lam_{d_y}) / lam_1``.
    sxx_rcond : float
        Smallest over largest eigenvalue of ``Sxx``.
    """

    Sxx: np.ndarray
    Syx: np.ndarray
    tr_syy: float
    mu: np.ndarray
    K: np.ndarray
    K_inv: np.ndarray
    lam: np.ndarray
    U: np.ndarray
    Vt: np.ndarray
    min_rel_gap: float
    sxx_rcond: float

    @property
    def d_x(self) -> int:
        return self.Sxx.shape[0]

    @property
    def d_y(self) -> int:
        return self.Syx.shape[0]

    @classmethod
    def from_data(
        cls,
        X: object,
        Y: object,
        *,
        gap_rtol: float = GAP_RTOL,
        sxx_rcond: float = SXX_RCOND,
    ) -> Problem:
        """Build the problem from ``X`` (d_x, m) and ``Y`` (d_y, m), checking docs/theory.md §1.

        Raises
        ------
        MclandError
            If the arrays are not finite 2-D arrays with the same number of columns m,
            ``Sxx`` is singular (m < d_x, collinear rows, or reciprocal condition number
            below ``sxx_rcond``), ``d_y > d_x``, or the eigenvalues of ``Sigma`` are not
            distinct and positive up to the relative gap ``gap_rtol``.
        """
        X = as_matrix(X, "X")
        Y = as_matrix(Y, "Y")
        (d_x, m), (d_y, m_y) = X.shape, Y.shape
        if m != m_y:
            raise MclandError(f"X has {m} samples (columns) but Y has {m_y}; samples are columns")
        if d_y > d_x:
            raise MclandError(f"d_y = {d_y} > d_x = {d_x}: the theory needs d_y <= d_x")
        if m < d_x:
            raise MclandError(f"Sxx = X X^T is singular: m = {m} samples < d_x = {d_x} features")
        Sxx, Syx, tr_syy = moments(X, Y)
        if not (np.all(np.isfinite(Sxx)) and np.all(np.isfinite(Syx)) and np.isfinite(tr_syy)):
            raise MclandError("the data's second moments overflow float64: rescale X and Y")
        try:
            mu, K, K_inv, lam, U, Vt = whiten(Sxx, Syx)
        except np.linalg.LinAlgError:  # Sxx numerically zero: K^{-1} is not finite
            raise MclandError("Sxx = X X^T is singular (the data are numerically zero)") from None
        rcond = float(mu[0] / mu[-1]) if mu[-1] > 0 else 0.0
        if not rcond > sxx_rcond:
            raise MclandError(
                f"Sxx = X X^T is singular or too ill-conditioned: reciprocal condition number "
                f"{rcond:.3g} <= {sxx_rcond:g} (collinear or constant features?)"
            )
        gap = float(smallest_relative_gap(lam))
        if not gap > gap_rtol:
            raise MclandError(
                "Sigma = Syx Sxx^-1 Sxy must have distinct positive eigenvalues: smallest "
                f"relative gap {gap:.3g} <= {gap_rtol:g} (eigenvalues {np.array2string(lam, precision=4)})"
            )
        return cls(Sxx, Syx, float(tr_syy), mu, K, K_inv, lam, U, Vt, gap, rcond)

    @property
    def moments(self) -> Moments:
        """The kernels' bundle of this problem (:class:`mcland._kernels.bundles.Moments`)."""
        return Moments(
            self.Sxx, self.Syx, self.tr_syy, self.mu, self.K, self.K_inv, self.lam, self.U,
            self.Vt,
        )  # fmt: skip

    def critical_values(self, r: int) -> np.ndarray:
        """All critical values ``tr(Syy) - sum_{i in S} lam_i`` over ``|S| <= r``, ascending.

        There are ``sum_{k<=r} C(d_y, k)`` index sets; distinct eigenvalues make the values
        distinct except for accidental coincidences.  Only the index sets of size at most
        ``r`` are enumerated (:func:`mcland._kernels.whiten.critical_values_into`).
        """
        out = np.empty(n_critical_values(self.d_y, r))
        count = critical_values_into(self.lam, self.tr_syy, min(r, self.d_y), out)
        return out[:count]
