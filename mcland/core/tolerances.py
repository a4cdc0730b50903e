"""Numerical tolerances of the classification, in one documented place.

Every threshold is relative to a scale computed from the point itself, never absolute:

* **criticality** — ``||grad L||_F <= grad_rtol * g_scale`` where
  ``g_scale = sum_h 2 prod_{k!=h} ||W_k||_F (prod_k ||W_k||_F ||Sxx||_F + ||Syx||_F)`` is the
  size of the terms that cancel at a critical point.  Exact points reach ~1e-15.
* **Hessian noise floor** — computed for the Hessian in whitened input coordinates
  (``W_1 Sxx^{1/2}``, ``Sxx = I``; congruent to the original, same inertia, free of the data's
  scaling): ``floor = E_asm + sqrt(N) eps ||∇²L||_F``.  ``E_asm`` estimates the rounding
  error of the assembled Hessian by first-order propagation of the errors of the computed
  partial products and of the residual ``W_{H:1} Sxx - Syx`` (judged against
  ``||W_{H:1}|| ||Sxx|| + ||Syx||`` because it cancels at critical points);
  ``sqrt(N) eps ||∇²L||`` is the error of a backward-stable symmetric eigensolver.
  Accumulations follow the probabilistic ``sqrt(n) eps`` model (Higham & Mary 2019).  Both
  terms vanish only when the Hessian does exactly.  Measured on 200,000 points of
  ``runs/paper.toml``: minimizers and non-strict saddles have ``eig_min >= -0.34 floor``,
  strict saddles ``eig_min <= -316 floor``.
* an eigenvalue (or certificate curvature) is **zero** when ``>= -c_zero * floor`` and
  **negative** when ``< -c_neg * floor``; in between the point is reported ``ambiguous``.
* **global value** — ``|L - L*| <= 8 eps (sum_h d_h) (tr Syy + 2 ||W_{H:1}|| ||Syx|| + ||W_{H:1}||^2 ||Sxx||)``.
* **data** — ``Sxx`` must have a reciprocal condition number above ``sxx_rcond`` and
  ``Sigma = Syx Sxx^-1 Sxy`` a smallest relative eigen-gap above ``gap_rtol``.

The default values below are the only place they are written: :class:`Tolerances`, the
``[classify]`` section of the configuration (:mod:`mcland.core.config`) and the documentation
(``docs/configuration.md``, generated) take them from here.
"""

from __future__ import annotations

from dataclasses import dataclass

from mcland._kernels.bundles import Thresholds
from mcland._kernels.constants import (
    EPS as EPS,  # unit roundoff of float64 (2**-52), in every floor
)

GRAD_RTOL = 1e-8  # critical: ||grad L|| <= GRAD_RTOL * g_scale
C_ZERO = 1.0  # zero eigenvalue: >= -C_ZERO * floor
C_NEG = 10.0  # negative eigenvalue: < -C_NEG * floor
GAP_RTOL = 1e-8  # data: smallest relative eigen-gap of Sigma must exceed this
SXX_RCOND = 1e-12  # data: reciprocal condition number of Sxx must exceed this


@dataclass(frozen=True)
class Tolerances:
    """Tolerance multipliers of the classification (see the module docstring).

    Parameters
    ----------
    grad_rtol : float
        A point is critical when its gradient norm is at most this fraction of ``g_scale``.
    c_zero : float
        Eigenvalues at or above ``-c_zero * floor`` count as zero.
    c_neg : float
        Eigenvalues below ``-c_neg * floor`` count as negative; ``c_neg >= c_zero``.
    """

    grad_rtol: float = GRAD_RTOL
    c_zero: float = C_ZERO
    c_neg: float = C_NEG

    @property
    def thresholds(self) -> Thresholds:
        """The kernels' bundle of these factors (:class:`mcland._kernels.bundles.Thresholds`)."""
        return Thresholds(float(self.grad_rtol), float(self.c_zero), float(self.c_neg))

    def __post_init__(self) -> None:
        if not (0.0 < self.grad_rtol < 1.0):
            raise ValueError(f"grad_rtol must be in (0, 1), got {self.grad_rtol}")
        if not (0.0 < self.c_zero <= self.c_neg):
            raise ValueError(f"need 0 < c_zero <= c_neg, got {self.c_zero}, {self.c_neg}")
