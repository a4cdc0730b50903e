"""Is that verdict stable? (:func:`stability`)

Whether a componentwise relative perturbation of size ``rel`` of the weights and of the data
(``|dW| <= rel |W|``, ``|dX| <= rel |X|``, ``|dY| <= rel |Y|``), plus, for a point that is
only nearly critical, the distance to the critical set, can change the type, and to what.
The answer is a *bound* (a proof, not a randomised test): the Hessian, gradient and loss are
multilinear in the layers and the moments, so their change is bounded by majorants built
from products of Frobenius norms (``n_h = ||W_h||_F``, ``eps_h = rel n_h + dist`` per
layer), and by Weyl's inequality every eigenvalue of the Hessian moves by at most that bound
``beta``.  A strict verdict whose deciding curvature ``|lambda_min|`` exceeds ``beta`` is
``stable``; a positive semidefinite verdict with zero eigenvalues (every degenerate critical
point) is stable only when ``beta = 0`` (e.g. ``W = 0``: a relative perturbation keeps zeros
zero), otherwise ``strict_saddle`` is possible.  A bound can only show stability; an
``unstable`` answer says the bound cannot exclude the listed types, not that a flip was
observed.  The distance to the critical set is the refinement distance when known, else the
first-order estimate ``||grad|| / sigma_+`` (``sigma_+`` the smallest eigenvalue above
``tol_zero``), which is an estimate, not a bound (``stability_method`` says which).  The
same question is answered for a *normwise* perturbation (every layer moves by
``rel ||w||``, tiny and zero layers too: "within rounding of the weights").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mcland.core.tolerances import EPS

# the triage's constants live beside the kernel (mcland/_kernels/stability.py):
# a PSD verdict is weak when float64's smallest eigenvalue is below -WEAK_PSD * floor: the
# sampler's minimizers and non-strict saddles stay above -0.34 floor (docs/numerics.md)
# ... or when the floor is not small against the Hessian itself (then no eigenvalue is
# resolved, above PSD_VACUOUS = 1e-3): sampler's PSD points have floor / ||Hess_w||_F <=
# 1.5e-13, LM endpoints on tiny layers 0.57 ... 49 (docs/certify.md); grad_rel up to NEAR_EXACT is
# rounding (exact points reach ~1e-15): no distance
CRITICAL_TYPES = ("global_minimizer", "strict_saddle", "non_strict_saddle")


@dataclass
class Stability:
    """Answer to "is that verdict stable?" (module docstring).

    Attributes
    ----------
    stability : str
        ``stable`` (proven by the bound), ``unstable`` (the bound cannot exclude
        ``possible_types``), ``undecided`` (no verdict to perturb).
    possible_types : tuple of str
        Types other than the verdict that the perturbation may reach (empty when stable).
    scale : float
        The curvature that decided the verdict: ``|lambda_min|`` (a lower bound on it) of a
        strict point, 0 for a PSD verdict (its zero eigenvalues).
    beta : float
        Bound on how far any Hessian eigenvalue can move (original coordinates).
    dgrad : float
        Bound on how far the gradient can move (Frobenius norm).
    """

    stability: str
    possible_types: tuple[str, ...]
    scale: float
    beta: float
    dgrad: float


def perturbation_bounds(
    norms: np.ndarray,
    r_norm: float,
    sxx_2: float,
    x_norm: float,
    y_norm: float,
    rel: float,
    dist: float = 0.0,
    data_rel: float | None = None,
) -> tuple[float, float, float]:
    """Bounds ``(beta, dgrad, dloss)`` on the change of the Hessian's eigenvalues
    (spectral norm of its change), of the gradient (Frobenius) and of the loss when every
    layer ``W_h`` moves by ``eps_h = rel * n_h + dist`` in Frobenius norm and ``X``, ``Y``
    entrywise by ``rel`` relative.

    Each quantity is multilinear in the layers and the moments; replacing every factor by
    its norm (submultiplicativity) gives a majorant with nonnegative coefficients, and the
    change is at most the majorant at ``n + eps`` minus the majorant at ``n``.  With
    ``v`` a unit direction split by layer: ``||P1(v)|| <= ||a||_2`` with
    ``a_h = prod_{k != h} n_k``; ``||P2(v, v)|| <= ||B||_F / 2`` with
    ``B_{hk} = prod_{j != h, k} n_j``; ``v^T Hess v = 2 ||P1 X||^2 + 4 <P2, R>``.

    Parameters
    ----------
    norms : ndarray (H,)
        ``||W_h||_F``.
    r_norm : float
        ``||R||_F`` (residual ``W_{H:1} Sxx - Syx``), an upper bound of it.
    sxx_2 : float
        ``||Sxx||_2`` (the largest eigenvalue of ``X X^T``).
    x_norm, y_norm : float
        ``||X||_F``, ``||Y||_F``.
    rel : float
        Componentwise relative perturbation of weights and data.
    dist : float
        Extra normwise move of every layer (the distance to the critical set, or a
        normwise perturbation).
    data_rel : float, optional
        Relative perturbation of the data (default ``rel``).
    """
    b, g, dl = bounds_rows(
        np.asarray(norms, np.float64)[None, :], np.array([r_norm]), sxx_2, x_norm, y_norm, rel,
        np.array([dist]), data_rel,
    )  # fmt: skip
    return float(b[0]), float(g[0]), float(dl[0])


def _others(n: np.ndarray, skip: tuple[int, ...]) -> np.ndarray:
    """Row-wise product of the columns of ``n`` (m, H) other than ``skip``."""
    out = np.ones(n.shape[0])
    for j in range(n.shape[1]):
        if j not in skip:
            out = out * n[:, j]
    return out


def _tele(n: np.ndarray, n2: np.ndarray, e: np.ndarray, skip: tuple[int, ...]) -> np.ndarray:
    """Row-wise ``_others(n2, skip) - _others(n, skip)`` without cancellation:
    ``sum_h (prod_{j<h} n2_j) e_h (prod_{j>h} n_j)``, ``e = n2 - n >= 0`` (m, H)."""
    out = np.zeros(n.shape[0])
    for h in range(n.shape[1]):
        if h in skip:
            continue
        term = e[:, h]
        for j in range(n.shape[1]):
            if j not in skip and j != h:
                term = term * (n2[:, j] if j < h else n[:, j])
        out = out + term
    return out


def bounds_rows(
    norms: np.ndarray,
    r_norm: np.ndarray,
    sxx_2: float,
    x_norm: float,
    y_norm: float,
    rel: float,
    dist: np.ndarray,
    data_rel: float | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`perturbation_bounds` for ``m`` points of one depth at once: ``norms``
    (m, H), ``r_norm`` and ``dist`` (m,); returns ``(beta, dgrad, dloss)``, each (m,).

    Every "majorant at ``n + eps`` minus majorant at ``n``" is evaluated as a sum of
    nonnegative terms (:func:`_tele`, ``p1b^2 - p1^2 = sum_h (a2_h - a_h)(a2_h + a_h)``,
    ``p2b - p2 = (B2 - B) / (2 (sqrt(B2) + sqrt(B)))``), never as a difference of two
    large numbers: the float evaluation is then accurate to a few ``(H + 4)^2`` eps
    relative, and the result is rounded up by that factor."""
    n = np.asarray(norms, dtype=np.float64)
    H = n.shape[1]
    e = rel * n + dist[:, None]
    n2 = n + e
    dr = rel if data_rel is None else data_rel
    c2 = 2.0 * dr + dr * dr  # |d(X X^T)| <= c2 |X| |X|^T
    sxx, syx = sxx_2, x_norm * y_norm  # ||A Sxx||_F <= ||A||_F ||Sxx||_2
    dsxx, dsyx = c2 * x_norm**2, syx * c2  # || |X| |X|^T ||_2 <= ||X||_F^2
    sxx2, syx2 = sxx + dsxx, syx * (1 + c2)
    P, P2n = _others(n, ()), _others(n2, ())
    dP = _tele(n, n2, e, ())
    dR = dP * sxx2 + P * dsxx + dsyx
    s1 = np.zeros(n.shape[0])
    ds1 = np.zeros(n.shape[0])
    sd = np.zeros(n.shape[0])
    for h in range(H):
        a, a2 = _others(n, (h,)), _others(n2, (h,))
        da = _tele(n, n2, e, (h,))
        s1 = s1 + a * a
        ds1 = ds1 + da * (a2 + a)
        g = da * r_norm + a2 * dR
        sd = sd + g * g
    B = np.zeros(n.shape[0])  # ||B||_F^2 counts (h, k) and (k, h)
    B2 = np.zeros(n.shape[0])
    dB = np.zeros(n.shape[0])
    for h in range(H):
        for k in range(h + 1, H):
            o, o2 = _others(n, (h, k)), _others(n2, (h, k))
            B = B + 2.0 * o**2
            B2 = B2 + 2.0 * o2**2
            dB = dB + 2.0 * _tele(n, n2, e, (h, k)) * (o2 + o)
    p1 = np.sqrt(s1)
    p2 = np.sqrt(B) / 2
    den = 2.0 * (np.sqrt(B2) + np.sqrt(B))
    with np.errstate(divide="ignore", invalid="ignore"):
        dp2 = np.where(den > 0, dB / np.where(den > 0, den, 1.0), 0.0)
    beta = 2.0 * (ds1 * sxx2 + p1**2 * dsxx) + 4.0 * (dp2 * (r_norm + dR) + p2 * dR)
    dgrad = 2.0 * np.sqrt(sd)
    dloss = y_norm**2 * c2 + 2.0 * (dP * syx2 + P * dsyx) + (dP * (P2n + P) * sxx2 + P**2 * dsxx)
    inflate = 1.0 + 4.0 * (H + 4) ** 2 * EPS  # the bound's own float evaluation, rounded up
    return beta * inflate, dgrad * inflate, dloss * inflate


def stability(
    verdict: str,
    gap: float,
    grad_norm: float,
    grad_limit: float,
    psd: frozenset[str],
    beta: float,
    dgrad: float,
) -> Stability:
    """Possible types under the perturbation bounded by ``(beta, dgrad)``.

    Parameters
    ----------
    verdict : str
        The type to perturb (certified or float64).
    gap : float
        A lower bound on ``|lambda_min|`` of a strict verdict (original coordinates).
    grad_norm, grad_limit : float
        ``||grad||`` and ``grad_rtol * g_scale``.
    psd : frozenset of str
        The types a PSD Hessian may be read as after the perturbation
        (``global_minimizer`` when the loss may reach the global value, ``non_strict_saddle``
        when it may reach another critical value; see :func:`certify_rows`).
    beta, dgrad : float
        :func:`perturbation_bounds`.
    """
    if verdict not in CRITICAL_TYPES:
        return Stability("undecided", (), math.nan, beta, dgrad)
    possible = set()
    if grad_norm + dgrad > grad_limit:
        possible.add("not_critical")
    psd = set(psd)
    if verdict == "strict_saddle":
        scale = gap
        if not beta < gap:
            possible |= psd
    else:
        scale = 0.0
        if beta > 0:
            possible.add("strict_saddle")
        possible |= psd
    possible.discard(verdict)
    order = [t for t in (*CRITICAL_TYPES, "not_critical") if t in possible]
    return Stability("stable" if not order else "unstable", tuple(order), scale, beta, dgrad)
