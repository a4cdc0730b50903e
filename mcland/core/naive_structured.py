"""Plain NumPy reference of the structured Hessian spectrum (docs/structured.md).

The Hessian of ``L(W) = ||W_{H:1} X - Y||^2`` has rank far below its order ``N``: its range
lies in ``T = T_1 x ... x T_H`` with, for layer h (``A_h = W_{H:h+1}``, ``B_h = W_{h-1:1}``,
``E = W_{H:1} Sxx - Syx``),

    T_h = Ra (x) Rb  +  R^{d_h} (x) Rc  +  Rd (x) R^{d_{h-1}},
    Ra = range(A_h^T), Rb = range(B_h), Rc = range(B_h E^T) (in Rb), Rd = range(A_h^T E) (in Ra),

(``P (x) Q`` the matrices whose columns lie in P and rows in Q).  With orthogonal bases
``L_h = [L1 | L2 | L3]`` of ``R^{d_h}`` (Rd, Ra minus Rd, the rest) and ``R_h = [R1 | R2 |
R3]`` of ``R^{d_{h-1}}`` (Rc, Rb minus Rc, the rest), a layer's coordinates
``X_h = L_h^T V_h R_h`` put T_h on a fixed index set ``I_h`` (rows below ``a``, columns
below ``b``; or columns below ``c``; or rows below ``dd``), and the Hessian in these
coordinates is the ordinary Hessian formula with the *transformed factors*

    A^_h = A_h L_h (d_y, d_h),  B^_h = R_h^T B_h (d_{h-1}, d_x),
    M^_{kh} = R_k^T W_{k-1:h+1} L_h (d_{k-1}, d_h),  G^_{kh} = A^_k^T E B^_h^T (d_k, d_{h-1}),

which vanish outside ``[:, :a]``, ``[:b, :]``, ``[:dd, :c]`` (up to rounding).  So the
spectrum is ``eig(K) + {0}^(N - k)`` with ``K`` the Hessian on ``I = I_1 + ... + I_H``,
assembled entry by entry from those small matrices; nothing of size N is formed.

Everything here is written for clarity (Python loops over K's entries); the Numba
kernels of :mod:`mcland._kernels.structured` are tested against it.  Conventions as in
:mod:`mcland.core.naive`: ``weights = [W_1, ..., W_H]``, parameters ordered
``W_1.ravel(), ..., W_H.ravel()`` (row-major).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mcland.core.naive import dims_of, partial_product

EPS = float(np.finfo(np.float64).eps)
PHI_ORTH = 10.0  # a basis of order d is orthogonal to (PHI_ORTH + sqrt(d)) eps (measured)


# ------------------------------------------------------------------ error model


def product_norms(weights):
    """``pn[a, b] = ||W_{a:b}||_F`` and the first-order error ``perr[a, b]`` of computing it
    left to right (as :func:`mcland._kernels.hessian.product_norms`): ``eps sum_{k=b+1..a}
    sqrt(d_{k-1}) ||W_{a:k+1}|| ||W_k|| ||W_{k-1:b}||``.  Arrays (H+2, H+2)."""
    H = len(weights)
    dims = dims_of(weights)
    pn = np.zeros((H + 2, H + 2))
    perr = np.zeros((H + 2, H + 2))
    for b in range(1, H + 2):
        for a in range(b - 1, H + 1):
            pn[a, b] = np.linalg.norm(partial_product(weights, a, b))
    for b in range(1, H + 1):
        for a in range(b + 1, H + 1):
            perr[a, b] = EPS * sum(
                np.sqrt(dims[k - 1]) * pn[a, k + 1] * pn[k, k] * pn[k - 1, b]
                for k in range(b + 1, a + 1)
            )
    return pn, perr


def residual_error(pn, perr, dims, Sxx_n, Syx_n):
    """Error bound of the computed residual ``E = W_{H:1} Sxx - Syx`` (it cancels at
    critical points, so it is judged against ``||W_{H:1}|| ||Sxx|| + ||Syx||``), as in
    :func:`mcland._kernels.hessian.assembly_error`."""
    H = len(dims) - 1
    root = np.sqrt(sum(dims))
    en = pn + perr
    return EPS * root * (en[H, 1] * Sxx_n + Syx_n) + perr[H, 1] * Sxx_n


def assembly_error(pn, perr, dims, Sxx_n, Syx_n, R_n):
    """``E_asm`` of the dense path (:func:`mcland._kernels.hessian.assembly_error`),
    written out again: the rounding error of the Hessian's entries propagated from the
    partial products and the residual."""
    H = len(dims) - 1
    root = np.sqrt(sum(dims))
    en = pn + perr
    err_r = residual_error(pn, perr, dims, Sxx_n, Syx_n)
    total = 0.0
    for h in range(1, H + 1):
        for k in range(1, h + 1):
            Ph, Pk, Qh, Qk = en[H, h + 1], en[H, k + 1], en[h - 1, 1], en[k - 1, 1]
            e = (
                2.0
                * Sxx_n
                * (
                    EPS * root * Ph * Pk * Qh * Qk
                    + (perr[H, h + 1] * Pk + Ph * perr[H, k + 1]) * Qh * Qk
                    + Ph * Pk * (perr[h - 1, 1] * Qk + Qh * perr[k - 1, 1])
                )
            )
            if k < h:
                B = en[h - 1, k + 1]
                e += 2.0 * B * Ph * Qk * (err_r + EPS * root * R_n)
                e += 2.0 * perr[h - 1, k + 1] * Ph * Qk * R_n
            total += (2.0 if k < h else 1.0) * e * e
    return np.sqrt(total)


def rank_tolerances(weights, Sxx, Syx):
    """Absolute thresholds below which a singular value is dropped, per layer h = 1..H:
    ``(delta_A, delta_ZA, delta_B, delta_ZB)``, each the error bound of the computed matrix
    (its rounding error plus the SVD's backward error ``eps sqrt(max dim) ||X||``):

    * ``A_h``: ``perr[H, h+1] + eps sqrt(max(d_y, d_h)) ||A_h||``;
    * ``Z_A = (A_h restricted to Ra)^T E`` (a, d_x): ``en_A err_E + (perr_A + eps
      sqrt(d_y + d_x + d_h) ||A_h||) ||E||``, ``err_E`` the residual's error bound;
    * ``B_h``, ``Z_B = B_h E^T`` alike with ``W_{h-1:1}``.

    Only the cost depends on them: what is dropped is measured afterwards and enters
    the noise floor (``E_trunc``)."""
    H = len(weights)
    dims = dims_of(weights)
    pn, perr = product_norms(weights)
    en = pn + perr
    Sxx_n, Syx_n = np.linalg.norm(Sxx), np.linalg.norm(Syx)
    err_E = residual_error(pn, perr, dims, Sxx_n, Syx_n)
    E = partial_product(weights, H, 1) @ Sxx - Syx
    R_n = np.linalg.norm(E)
    d_x, d_y = dims[0], dims[H]
    out = []
    for h in range(1, H + 1):
        dA = perr[H, h + 1] + EPS * np.sqrt(max(d_y, dims[h])) * pn[H, h + 1]
        dZA = (
            en[H, h + 1] * err_E
            + (perr[H, h + 1] + EPS * np.sqrt(d_y + d_x + dims[h]) * pn[H, h + 1]) * R_n
        )
        dB = perr[h - 1, 1] + EPS * np.sqrt(max(dims[h - 1], d_x)) * pn[h - 1, 1]
        dZB = (
            en[h - 1, 1] * err_E
            + (perr[h - 1, 1] + EPS * np.sqrt(d_y + d_x + dims[h - 1]) * pn[h - 1, 1]) * R_n
        )
        out.append((dA, dZA, dB, dZB))
    return out


# ------------------------------------------------------------------ the bases


@dataclass
class Layer:
    """One layer's bases and ranks: ``L`` (d_h, d_h) and ``R`` (d_{h-1}, d_{h-1})
    orthogonal; ``a = dim Ra``, ``dd = dim Rd``, ``b = dim Rb``, ``c = dim Rc``; ``index``
    the (row, column) pairs of ``I_h`` in K's order."""

    L: np.ndarray
    R: np.ndarray
    a: int
    dd: int
    b: int
    c: int
    index: list


def _rank(s, tol):
    return int(np.sum(s > tol))


def layer_bases(weights, Sxx, Syx, tolerances=None):
    """The orthogonal bases ``L_h = [Rd | Ra - Rd | Ra^perp]`` and ``R_h = [Rc | Rb - Rc |
    Rb^perp]`` of every layer (list of :class:`Layer`), from SVDs of small matrices:
    ``A_h = U S V^T`` gives Ra (the first ``a`` columns of V); Rd is the range of
    ``Z_A = S_a U_a^T E`` in those coordinates; likewise ``B_h`` and ``Z_B = S_b V_b^T E^T``.
    ``tolerances`` as :func:`rank_tolerances` returns (its default)."""
    H = len(weights)
    dims = dims_of(weights)
    if tolerances is None:
        tolerances = rank_tolerances(weights, Sxx, Syx)
    E = partial_product(weights, H, 1) @ Sxx - Syx
    layers = []
    for h in range(1, H + 1):
        dA, dZA, dB, dZB = tolerances[h - 1]
        A = partial_product(weights, H, h + 1)  # (d_y, d_h)
        UA, sA, VAt = np.linalg.svd(A, full_matrices=True)
        a = _rank(sA, dA)
        ZA = sA[:a, None] * UA[:, :a].T @ E  # (a, d_x): A^T E in Ra coordinates
        UZ, sZ, _ = np.linalg.svd(ZA, full_matrices=True)
        dd = _rank(sZ, dZA)
        L = np.hstack([VAt[:a].T @ UZ, VAt[a:].T])
        B = partial_product(weights, h - 1, 1)  # (d_{h-1}, d_x)
        UB, sB, VBt = np.linalg.svd(B, full_matrices=True)
        b = _rank(sB, dB)
        ZB = sB[:b, None] * VBt[:b] @ E.T  # (b, d_y): B E^T in Rb coordinates
        UZB, sZB, _ = np.linalg.svd(ZB, full_matrices=True)
        c = _rank(sZB, dZB)
        R = np.hstack([UB[:, :b] @ UZB, UB[:, b:]])
        dh, dh1 = dims[h], dims[h - 1]
        index = [(r, s) for r in range(a) for s in range(b)]
        index += [(r, s) for r in range(a, dh) for s in range(c)]
        index += [(r, s) for r in range(dd) for s in range(b, dh1)]
        layers.append(Layer(L, R, a, dd, b, c, index))
    return layers


def basis_matrix(weights, layers):
    """The orthonormal basis ``V`` (N, k) of T explicitly (for tests only: N k entries):
    column ``(h, r, s)`` is ``L_h[:, r] R_h[:, s]^T`` raveled into layer h's slot."""
    dims = dims_of(weights)
    size = [dims[h] * dims[h - 1] for h in range(1, len(dims))]
    off = np.concatenate([[0], np.cumsum(size)])
    cols = []
    for h, lay in enumerate(layers, start=1):
        for r, s in lay.index:
            v = np.zeros(off[-1])
            v[off[h - 1] : off[h]] = np.outer(lay.L[:, r], lay.R[:, s]).ravel()
            cols.append(v)
    return np.array(cols).T.reshape(off[-1], len(cols))


# ------------------------------------------------------------------ K from small matrices


@dataclass
class Structured:
    """The compressed Hessian and what its floor needs: ``K`` (k, k); ``N``; ``layers``;
    ``tau_a[h]``, ``tau_b[h]`` (the dropped parts ``||A_h L3||``, ``||R3^T B_h||``),
    ``tau_g[(k, h)]`` (``||G^_{kh}`` outside ``[:dd_k, :c_h]||``)."""

    K: np.ndarray
    N: int
    layers: list
    tau_a: list
    tau_b: list
    tau_g: dict


def structured_hessian(weights, Sxx, Syx, tolerances=None):
    """K = the Hessian on the index sets I_h, assembled from the transformed factors
    (module docstring), entry by entry:

    * Gauss-Newton, rows (h, r, s) and columns (k, t, u) with r < a_h, s < b_h, t < a_k,
      u < b_k: ``2 (A^_h^T A^_k)[r, t] (B^_h Sxx B^_k^T)[s, u]``;
    * second order, h > k (h the upper layer), r < dd_h, u < c_k:
      ``2 G^_{hk}[r, u] M^_{hk}[s, t]``, and its transpose.
    """
    H = len(weights)
    dims = dims_of(weights)
    layers = layer_bases(weights, Sxx, Syx, tolerances)
    E = partial_product(weights, H, 1) @ Sxx - Syx
    Ah, Bh, tau_a, tau_b = [], [], [], []
    for h, lay in enumerate(layers, start=1):
        A = partial_product(weights, H, h + 1) @ lay.L
        B = lay.R.T @ partial_product(weights, h - 1, 1)
        tau_a.append(np.linalg.norm(A[:, lay.a :]))
        tau_b.append(np.linalg.norm(B[lay.b :]))
        Ah.append(A[:, : lay.a])
        Bh.append(B[: lay.b])
    G, M, tau_g = {}, {}, {}
    for h in range(2, H + 1):  # upper layer
        for k in range(1, h):  # lower layer
            full = (partial_product(weights, H, h + 1) @ layers[h - 1].L).T @ E
            full = full @ (layers[k - 1].R.T @ partial_product(weights, k - 1, 1)).T
            G[(h, k)] = full[: layers[h - 1].dd, : layers[k - 1].c].copy()
            full[: layers[h - 1].dd, : layers[k - 1].c] = 0.0
            tau_g[(h, k)] = np.linalg.norm(full)  # what is dropped, measured directly
            M[(h, k)] = layers[h - 1].R.T @ partial_product(weights, h - 1, k + 1) @ layers[k - 1].L
    sizes = [len(lay.index) for lay in layers]
    offs = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    K = np.zeros((offs[-1], offs[-1]))
    for h in range(1, H + 1):
        for k in range(1, H + 1):
            lh, lk = layers[h - 1], layers[k - 1]
            AA = 2.0 * Ah[h - 1].T @ Ah[k - 1]
            BB = Bh[h - 1] @ Sxx @ Bh[k - 1].T
            for i, (r, s) in enumerate(lh.index):
                for j, (t, u) in enumerate(lk.index):
                    v = 0.0
                    if r < lh.a and s < lh.b and t < lk.a and u < lk.b:
                        v += AA[r, t] * BB[s, u]
                    if h > k and r < lh.dd and u < lk.c:
                        v += 2.0 * G[(h, k)][r, u] * M[(h, k)][s, t]
                    if h < k and t < lk.dd and s < lh.c:
                        v += 2.0 * G[(k, h)][t, s] * M[(k, h)][u, r]
                    K[offs[h - 1] + i, offs[k - 1] + j] = v
    N = sum(dims[h] * dims[h - 1] for h in range(1, H + 1))
    return Structured(K, N, layers, tau_a, tau_b, tau_g)


# ------------------------------------------------------------------ floor and spectrum


def truncation_error(weights, st, Sxx):
    """``E_trunc``: Frobenius bound of the Hessian part that the dropped (sub-threshold)
    directions carry, block by block as :func:`assembly_error` (exact, not first order):
    Gauss-Newton block (h, k): ``2 ||Sxx|| [(ta_h ||A_k|| + ||A_h|| ta_k) ||B_h|| ||B_k||
    + ||A_h|| ||A_k|| (tb_h ||B_k|| + ||B_h|| tb_k)]``; second-order block (h > k):
    ``2 tg_{hk} ||W_{h-1:k+1}||``, counted twice."""
    H = len(weights)
    pn, _ = product_norms(weights)
    Sxx_n = np.linalg.norm(Sxx)
    total = 0.0
    for h in range(1, H + 1):
        for k in range(1, h + 1):
            Ph, Pk, Qh, Qk = pn[H, h + 1], pn[H, k + 1], pn[h - 1, 1], pn[k - 1, 1]
            ta_h, ta_k, tb_h, tb_k = (
                st.tau_a[h - 1],
                st.tau_a[k - 1],
                st.tau_b[h - 1],
                st.tau_b[k - 1],
            )
            e = (
                2.0
                * Sxx_n
                * ((ta_h * Pk + Ph * ta_k) * Qh * Qk + Ph * Pk * (tb_h * Qk + Qh * tb_k))
            )
            if k < h:
                e += 2.0 * st.tau_g[(h, k)] * pn[h - 1, k + 1]
            total += (2.0 if k < h else 1.0) * e * e
    return np.sqrt(total)


def transform_error(weights, Sxx, Syx):
    """``E_map``: rounding of the change of coordinates (products with the orthogonal
    bases, inner dimensions d_h, d_{h-1}), per block as :func:`assembly_error`'s
    accumulation term with ``sqrt(d_h) + sqrt(d_{h-1}) + sqrt(d_k) + sqrt(d_{k-1})`` in
    place of ``sqrt(sum_h d_h)``."""
    H = len(weights)
    dims = dims_of(weights)
    pn, perr = product_norms(weights)
    en = pn + perr
    Sxx_n = np.linalg.norm(Sxx)
    R_n = np.linalg.norm(partial_product(weights, H, 1) @ Sxx - Syx)
    total = 0.0
    for h in range(1, H + 1):
        for k in range(1, h + 1):
            root = np.sqrt(dims[h]) + np.sqrt(dims[h - 1]) + np.sqrt(dims[k]) + np.sqrt(dims[k - 1])
            Ph, Pk, Qh, Qk = en[H, h + 1], en[H, k + 1], en[h - 1, 1], en[k - 1, 1]
            e = 2.0 * Sxx_n * EPS * root * Ph * Pk * Qh * Qk
            if k < h:
                e += 2.0 * EPS * root * en[h - 1, k + 1] * Ph * Qk * R_n
            total += (2.0 if k < h else 1.0) * e * e
    return np.sqrt(total)


def floor_terms(weights, Sxx, Syx, st):
    """The four terms of the structured path's noise floor (docs/structured.md §5), a
    dict: ``e_asm`` (the dense path's assembly error), ``e_map`` (:func:`transform_error`),
    ``e_trunc`` (:func:`truncation_error`) and ``e_eig = (sqrt(k) + 2 (PHI_ORTH +
    sqrt(d_max))) eps ||K||_F`` (eigensolver on K and the bases' loss of orthogonality)."""
    H = len(weights)
    dims = dims_of(weights)
    pn, perr = product_norms(weights)
    Sxx_n, Syx_n = np.linalg.norm(Sxx), np.linalg.norm(Syx)
    R_n = np.linalg.norm(partial_product(weights, H, 1) @ Sxx - Syx)
    k = st.K.shape[0]
    return {
        "e_asm": assembly_error(pn, perr, dims, Sxx_n, Syx_n, R_n),
        "e_map": transform_error(weights, Sxx, Syx),
        "e_trunc": truncation_error(weights, st, Sxx),
        "e_eig": (np.sqrt(k) + 2.0 * (PHI_ORTH + np.sqrt(max(dims)))) * EPS * np.linalg.norm(st.K),
    }


def noise_floor(weights, Sxx, Syx, st):
    """The structured path's noise floor: the sum of :func:`floor_terms`."""
    return sum(floor_terms(weights, Sxx, Syx, st).values())


def structured_spectrum(weights, Sxx, Syx, tolerances=None):
    """``(ev, k, N, floor)``: the ascending eigenvalues of K (k,), the order of K, the
    number of parameters and the noise floor.  The Hessian's spectrum is ``ev`` together
    with ``N - k`` zeros."""
    st = structured_hessian(weights, Sxx, Syx, tolerances)
    K = (st.K + st.K.T) / 2
    return np.linalg.eigvalsh(K), K.shape[0], st.N, noise_floor(weights, Sxx, Syx, st)


def full_spectrum(ev, N):
    """The sorted spectrum of order N: ``ev`` with ``N - len(ev)`` zeros."""
    return np.sort(np.concatenate([ev, np.zeros(N - len(ev))]))


def inertia(ev, N, tol_zero, tol_neg):
    """``(n_neg, n_zero, n_pos)`` counted as the dense path counts them
    (:func:`mcland._kernels.classify._spectral`): negative below ``-tol_neg``, zero within
    ``tol_zero``, positive above it; the ``N - k`` exact zeros are zeros."""
    ev = np.asarray(ev)
    return (
        int(np.sum(ev < -tol_neg)),
        int(np.sum(np.abs(ev) <= tol_zero)) + N - len(ev),
        int(np.sum(ev > tol_zero)),
    )
