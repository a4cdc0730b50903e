"""Named bundles passed into and between the kernels.

Kernels take a few named tuples instead of long positional lists, so that a caller and a
kernel agree by field name, not by position.  Numba types a ``collections.namedtuple``
as a tuple whose fields are read by name (``moments.K_inv``) at no run-time cost, and
kernels can build them (``Moments(...)``).  A bundle's field types are part of the
kernel's signature, so callers pass exactly the documented dtypes and layouts (one
compiled specialisation per kernel; see :mod:`mcland._kernels.compile`).

Shapes below use ``n`` for points of a range, ``d_x``, ``d_y`` for the data widths and
``N`` for the number of parameters of a point.
"""

from __future__ import annotations

from collections import namedtuple

Sampler = namedtuple("Sampler", ["seed", "params", "kill_weights", "fixed_x", "fixed_y"])
"""What every draw needs besides the sample id.

``seed`` (int64); ``params`` (P,) float64, the configuration laid out by
:mod:`.params`; ``kill_weights`` (H_max,) float64, weights of drawing 1, 2, ... kill
layers; ``fixed_x`` (d_x, m) and ``fixed_y`` (d_y, m) float64 C-ordered, the user's data
when ``params[P_FIXED_DATA] > 0``, else (0, 0).
"""

Moments = namedtuple("Moments", ["Sxx", "Syx", "tr_syy", "mu", "K", "K_inv", "lam", "U", "Vt"])
"""Everything the kernels need about the data (:func:`.whiten.problem`).

``Sxx = X X^T`` (d_x, d_x), ``Syx = Y X^T`` (d_y, d_x), ``tr_syy = tr(Y Y^T)``; ``mu`` the
ascending eigenvalues of Sxx (d_x,), ``K = Sxx^{1/2}`` and ``K_inv`` (d_x, d_x), ``lam``
the decreasing eigenvalues of ``Sigma = Syx Sxx^{-1} Sxy`` (d_y,), ``U`` its eigenvectors
(d_y, d_y) and ``Vt`` (d_x, d_x) (see :func:`.whiten.whiten`).
"""

DrawnPoint = namedtuple(
    "DrawnPoint",
    [
        "dims",
        "w",
        "X",
        "Y",
        "s_drawn",
        "recipe",
        "kill_mask",
        "scale_x",
        "scale_y",
        "data_ok",
        "moments",
    ],
)
"""One point as the sampler draws it (:func:`.batch.draw_point`).

``dims`` (H+1,) int64 the widths ``d_0 .. d_H``; ``w`` (N,) the flat layers (see
:mod:`.dense`); ``X`` (d_x, m), ``Y`` (d_y, m) the data; ``s_drawn`` (d_y,) bool, the
index set S the point was built for; ``recipe`` the recipe code (:data:`.fields.RECIPE_NAMES`);
``kill_mask`` bit h-1 set when layer h's complement block is zero; ``scale_x``,
``scale_y`` the data's scale factors; ``data_ok`` whether the data passed the assumption
checks; ``moments`` the data's :class:`Moments`.
"""

Thresholds = namedtuple("Thresholds", ["grad_rtol", "c_zero", "c_neg"])
"""The classification's tolerance factors (float64): a point is critical when
``||grad|| <= grad_rtol * gradient_scale``; an eigenvalue is zero above
``-c_zero * floor`` and negative below ``-c_neg * floor`` (docs/numerics.md)."""

GDRun = namedtuple("GDRun", ["eta", "n_steps", "w", "losses"])
"""A batch of plain gradient-descent trajectories on one architecture
(:func:`.gd.descend_range`): ``eta`` float64 the step, ``n_steps`` int64, ``w`` (T, N)
float64 the flat starting weights (advanced in place), ``losses`` (T, n_steps) float64
(output: the loss before every step)."""

PointOutput = namedtuple(
    "PointOutput",
    ["row_float", "row_int", "s_mask", "ranks", "spectrum_w", "spectrum", "escape"],
)
"""Where :func:`.classify.analyze` writes one point's results.

``row_float`` (len(FLOAT_FIELDS),) float64 and ``row_int`` (len(INT_FIELDS),) int64, the
scalar results indexed by :mod:`.fields`; ``s_mask`` (>= d_y,) bool, the S read off the
point; ``ranks`` (>= H(H+1)/2,) int64, the partial products' numerical ranks;
``spectrum_w`` and ``spectrum`` (N,) or (0,) float64, the ascending eigenvalues of the
whitened and original Hessians (written when they have room and were computed);
``escape`` (N,) or (0,) float64, the escape direction of a theory-strict saddle.
"""

RangeOutput = namedtuple(
    "RangeOutput",
    [
        "dims",
        "draw_int",
        "draw_float",
        "row_float",
        "row_int",
        "s_mask",
        "s_drawn",
        "ranks",
        "spectrum_w",
        "spectrum",
        "weights",
        "critical_values",
        "spectrum_zeros",
    ],
)
"""Where :func:`.batch.process_range` writes the records of ``n`` points (row t: point
``ids[t]``); every field is C-ordered.

``dims`` (n, H_max+1) int64, 0-padded; ``draw_int`` (n, len(DRAW_INT_FIELDS)) int64 and
``draw_float`` (n, len(DRAW_FLOAT_FIELDS)) float64, the draw facts of :mod:`.params`;
``row_float``, ``row_int``, ``s_mask``, ``ranks``, ``spectrum_w``, ``spectrum`` as in
:class:`PointOutput`, one row per point (``s_mask`` (n, d_y_max); the spectra (n, N_max)
or (n, 0)); ``s_drawn`` (n, d_y_max) bool; ``weights`` (n, N_max) or (n, 0) the flat
layers; ``critical_values`` (n, 2**d_y_max) or (n, 0), the enumerated critical values,
NaN-padded; ``spectrum_zeros`` (n, 1) int64, the exact zero eigenvalues left out of row t's
spectra (0 when they hold all ``N``; ``N - k`` for a structured row, whose spectra hold the
``k`` eigenvalues of the compressed Hessian K: :func:`.batch.process_range_wide`).  The
spectra then have ``max(N_max_dense, k_max)`` columns instead of ``N_max``.
"""

HessianPaths = namedtuple("HessianPaths", ["structured_all", "dense_max_n", "max_k"])
"""How :func:`.batch.process_range_wide` chooses each point's path: ``structured_all``
(bool) every point by :func:`.structured_classify.analyze_structured`, else the points of
more than ``dense_max_n`` (int64) parameters only (the others by :func:`.classify.analyze`,
exactly as :func:`.batch.process_range`); ``max_k`` (int64) the largest order of K that
may be formed (:class:`StructuredControl`)."""

FlowProblem = namedtuple("FlowProblem", ["dims", "Sxx", "Syx", "tr_syy"])
"""The loss followed by :mod:`.flow`: ``dims`` (H+1,) int64, ``Sxx = X X^T`` (d_x, d_x),
``Syx = Y X^T`` (d_y, d_x) float64 C-ordered, ``tr_syy = tr(Y Y^T)`` float64 (original,
unwhitened coordinates)."""

FlowControl = namedtuple(
    "FlowControl",
    [
        "rtol",
        "atol",
        "h0",
        "h_max",
        "grow",
        "shrink",
        "grad_stop",
        "settle_after_mark",
        "loss_mark",
        "loss_stop",
        "max_evals",
        "t_max",
        "method",
        "w_ref",
    ],
)
"""How :func:`.flow.integrate` steps and stops; every field float64 except ``w_ref`` (N,)
float64, the point the relative tolerance measures displacements from.

``rtol``, ``atol`` the error tolerances; ``h0`` the first step, ``h_max`` the largest;
``grow`` (> 1) and ``shrink`` (< 1) bound the step's change factor; ``grad_stop`` the
gradient norm at which the run has settled (only after the loss crossed ``loss_mark`` when
``settle_after_mark`` is nonzero); ``loss_mark`` the loss level whose first crossing time is
recorded; ``loss_stop`` the loss at which to stop (``-inf``: never); ``max_evals`` the
budget in gradient evaluations, ``t_max`` in flow time; ``method`` the integrator
(:data:`.integrator.EXPLICIT`, :data:`.integrator.ROSENBROCK` or :data:`.integrator.AUTO`,
as a float64).
"""

FlowMonitor = namedtuple("FlowMonitor", ["read", "K", "rate_threshold", "mask", "info", "w_min"])
"""The index sets ``S`` the flow visits, read at every accepted step (:mod:`.visits`).

Inputs: ``read`` (d_y, d_y) ``diag(lambda)^(-1/2) U^T`` and ``K`` (d_x, d_x) ``Sxx^(1/2)``
(original coordinates), so that ``z_i = ||(read W_{H:1} K)_i||`` and ``S = {i : z_i >
1/2}`` (docs/theory.md §2, "Reading S off a point"); ``rate_threshold`` (float64) the
plateau criterion's ``threshold lambda_r`` on ``t ||grad L||^2``.  Outputs, one row per
visited set (at most ``J`` rows): ``mask`` (J,) int64, the set as a bit mask (bit ``i - 1``
for index ``i``); ``info`` (J, :data:`.visits.N_INFO`) float64 (entry and exit times,
plateau range, smallest rate and gradient, ...); ``w_min`` (J, N) the weights at the
accepted step of smallest gradient within the visit.  ``J = 0`` (and ``read`` of shape
(0, 0)) switches the monitor off.
"""

CertifyPoints = namedtuple(
    "CertifyPoints",
    ["dims_flat", "dims_off", "w_flat", "w_off", "row_float", "row_int", "spectrum_w", "dist"],
)
"""The analysed points :func:`.stability.certify_bounds` bounds (``n`` rows, packed as in
:mod:`.given`): ``dims_flat``, ``dims_off`` (n+1,), ``w_off`` (n+1,) int64, ``w_flat``
float64; ``row_float`` (n, len(FLOAT_FIELDS)) float64 and ``row_int`` (n, len(INT_FIELDS))
int64, the analysis' records; ``spectrum_w`` (n, N_max) or (n, 0) float64, the whitened
Hessian spectra (NaN-padded); ``dist`` (n,) float64, a known distance to the critical set
(NaN: unknown)."""

CertifyData = namedtuple(
    "CertifyData",
    ["Sxx", "Syx", "values", "sxx_2", "x_norm", "y_norm", "mu0", "rel", "grad_rtol", "everything"],
)
"""The data and the perturbation for :func:`.stability.certify_bounds`: ``Sxx`` (d_x, d_x),
``Syx`` (d_y, d_x) float64 C-ordered; ``values`` (d_y+1, 2**d_y) float64, row ``r`` the
ascending critical values for rank ``r`` (NaN-padded); scalars (float64) ``sxx_2 =
||Sxx||_2``, ``x_norm = ||X||_F``, ``y_norm = ||Y||_F``, ``mu0`` the smallest eigenvalue
of ``Sxx``, ``rel`` the relative perturbation, ``grad_rtol``; ``everything`` (bool) send
every critical row to the exact evaluation."""

CertifyOutput = namedtuple("CertifyOutput", ["k", "fig", "code"])
"""Where :func:`.stability.certify_bounds` writes (row t, critical rows only): ``k``
(n, H_max) int64 the balancing exponents (0-padded), ``fig`` (n, len(FIG_NAMES)) float64
and ``code`` (n, len(CODE_NAMES)) int64, indexed by the constants of :mod:`.stability`."""

HVPFactors = namedtuple(
    "HVPFactors",
    ["dims", "off", "table", "table_off", "R", "C", "c_off", "G", "GT", "g_off"],
)
"""The small factors of the Hessian's action at one point (:func:`.hvp.hvp_factors`), from
which :func:`.hvp.hvp_into` applies ``nabla^2 L`` in ``O(N d)``: ``dims`` (H+1,) and ``off``
(H+1,) int64 the widths and layer offsets (:func:`.dense.layer_offsets`); ``table``,
``table_off`` the partial products (:func:`.dense.product_table`); ``R = W_{H:1} Sxx - Syx``
(d_y, d_x); ``C`` flat float64, block ``C_{kh} = W_{k-1:1} Sxx W_{h-1:1}^T`` (d_{k-1},
d_{h-1}) row-major at ``c_off[k, h]`` ((H+1, H+1) int64), every ``1 <= k, h <= H``; ``G``
flat float64, block ``G_{kh} = W_{H:k+1}^T R W_{h-1:1}^T`` (d_k, d_{h-1}) at ``g_off[k, h]``
for ``k > h`` (-1 elsewhere), and ``GT`` its transpose (d_{h-1}, d_k) at the same offset."""

StructuredControl = namedtuple("StructuredControl", ["whitened", "max_k"])
"""How :func:`.structured.structured_spectrum` runs: ``whitened`` (bool) the Hessian in
whitened input coordinates ``(W_1 Sxx^{1/2}, W_2, ...)`` (``Sxx = I``, as the
classification uses) rather than the original ones; ``max_k`` (int64) the largest order
of the compressed Hessian K that may be formed (``8 max_k^2`` bytes): a point whose K is
larger returns before allocating it, with ``k`` set and ``ev`` empty."""

StructuredSpectrum = namedtuple(
    "StructuredSpectrum",
    ["ev", "k", "N", "floor", "hess_norm", "e_asm", "e_map", "e_trunc", "e_eig", "info"],
)
"""What :func:`.structured.structured_spectrum` returns for one point.

``ev`` (k,) float64 the ascending eigenvalues of the compressed Hessian K (the Hessian's
spectrum is ``ev`` together with ``N - k`` exact zeros; ``(0,)`` when ``k > max_k`` or the
point is not finite); ``k``, ``N`` int64 the orders of K and of the Hessian; ``floor`` the
noise floor of the eigenvalues (docs/structured.md §5), ``floor = e_asm + e_map + e_trunc
+ e_eig``, with its four terms (float64); ``hess_norm = ||K||_F`` (``= ||∇²L||_F`` up to the
dropped part ``e_trunc``); ``info`` int64: 0 success, > 0 LAPACK did not converge (``ev``
NaN), -1 ``k > max_k`` (nothing decomposed), -2 non-finite products (floor NaN)."""

StiffDense = namedtuple("StiffDense", ["M", "piv", "hu", "counts"])
"""Storage of the dense linearly implicit steps (:mod:`.rosenbrock`; the Hessian itself is
their operator): ``M`` (N, N) float64 the LU factors of ``I + gamma h Hess``, ``piv`` (N,)
int64 their row swaps, ``hu`` (N,) float64 a Hessian product, ``counts`` (2,) int64 the
Hessian-vector products and conjugate-gradient iterations (always 0 here; as in
:class:`StiffKrylov`).  With ``N = 0`` (explicit steps only) every array is empty."""

StiffKrylov = namedtuple(
    "StiffKrylov", ["hu", "r", "p", "ap", "work", "counts", "state", "fraction", "max_iter"]
)
"""Storage and settings of the matrix-free linearly implicit steps (:mod:`.krylov`; their
operator is an :class:`HVPFactors`): ``hu``, ``r``, ``p``, ``ap`` (N,) float64 a Hessian
product and the conjugate-gradient vectors; ``work`` float64, the buffer of
:func:`.hvp.hvp_into` (:func:`.hvp.work_size`); ``counts`` (2,) int64, output: the
Hessian-vector products and conjugate-gradient iterations of the run; ``state`` (2,)
float64, the current attempt's residual tolerance and ``c = gamma h``; ``fraction``
float64, the solve tolerance as a fraction of the step's error tolerance
(docs/dynamics.md, "Matrix-free implicit steps"); ``max_iter`` int64, the iterations per
solve after which it counts as failed."""
