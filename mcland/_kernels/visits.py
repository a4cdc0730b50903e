"""The index sets ``S`` a gradient-flow run visits, read at every accepted step.

Reading ``S`` off a point (docs/theory.md §2): ``z_i = ||u_i^T W_{H:1} Sxx^(1/2)|| /
sqrt(lambda_i)`` is exactly 0 or 1 at a critical point, and ``i`` is in ``S`` when ``z_i >
1/2`` (the rule of :func:`.theory.read_S`).  Along a run ``z_i`` moves from near 0 to near
1 when mode ``i`` is learned, so ``S(t) = {i : z_i(W(t)) > 1/2}`` is the set of modes the
network has learned at time ``t``.  The *visits* of a run are the maximal time intervals on
which ``S(t)`` is constant, in time order: the sequence of index sets the flow passes, each
with the time it entered and left it.

Resolution.  ``S`` is read at the end of every accepted step (one product ``W_{H:1}``,
``O(d_x sum_h d_h d_{h-1})``, about a third of a gradient evaluation).  When it changed
over a step, the change is located on the step's dense output (the cubic Hermite
interpolant of the weights, :func:`.flow._hermite_weights`): ``S`` is read at
:data:`SCAN` equally spaced points of the step, and each change between two of them is
bisected (:data:`BISECT` halvings, a relative time resolution of ``2^-BISECT / SCAN`` of
the step).  So a set the flow passes for a fraction of a step is still seen.  A change of
more than one index between two points that the bisection cannot separate (they change
within ``2^-BISECT / SCAN`` of a step of each other) is counted as *unresolved*: the
order of the two learned modes is then not known, and the row says so.

Per visit, besides the set and the entry/exit times: the plateau criterion of
:mod:`mcland.plateaus` evaluated at the accepted steps inside it (``t ||grad L||^2 <=
rate_threshold``; the first and last step time on it, the smallest rate), and the accepted
step of smallest gradient (its time, loss, gradient norm, and its weights in ``w_min``),
where the visit is read off as a near-critical point.
"""

from __future__ import annotations

import numpy as np

from mcland._kernels.flow import loss_and_gradient
from mcland._kernels.jit import jit, jit_inline

SCAN = 32  # points per step at which S is read when it changed over the step
BISECT = 30  # halvings of a change between two scan points (2^-30 / 32 of the step)

# columns of FlowMonitor.info
T_ENTER = 0  # entry time (0 for the first visit)
T_LEAVE = 1  # exit time (the end of the run for the last visit)
RATE_MIN = 2  # smallest t ||grad L||^2 at an accepted step inside the visit (0 at t = 0)
T_ON_FIRST = 3  # first accepted-step time inside with rate <= rate_threshold (NaN: none)
T_ON_LAST = 4  # last such time
G_MIN = 5  # smallest ||grad L|| at an accepted step inside (or the entry point)
T_G_MIN = 6  # its time
L_G_MIN = 7  # the loss there
N_STEPS = 8  # accepted steps that ended inside the visit
N_INFO = 9


@jit_inline
def product_into(w, dims, P, tmp):
    """``W_{H:1}`` of the flat weights ``w`` into ``P`` (d_H * d_0,) row-major, using ``tmp``
    (at least ``max_h d_h * d_0``) as scratch; ``O(d_0 sum_h d_h d_{h-1})``."""
    H = dims.size - 1
    d0 = dims[0]
    # A = W_1 (d_1, d_0), then A <- W_h A
    n = dims[1] * d0
    for i in range(n):
        tmp[i] = w[i]
    pos = n
    for h in range(2, H + 1):
        dh = dims[h]
        dp = dims[h - 1]
        for i in range(dh):
            for j in range(d0):
                s = 0.0
                for k in range(dp):
                    s += w[pos + i * dp + k] * tmp[k * d0 + j]
                P[i * d0 + j] = s
        pos += dh * dp
        for i in range(dh * d0):
            tmp[i] = P[i]
    for i in range(dims[H] * d0):
        P[i] = tmp[i]


@jit
def read_mask(w, dims, read, K, P, tmp):
    """The set ``S = {i : z_i > 1/2}`` of the flat weights ``w`` as a bit mask (bit ``i -
    1`` for index ``i``), ``z_i`` the norm of row ``i`` of ``read W_{H:1} K``; ``P`` and
    ``tmp`` scratch (:func:`product_into`)."""
    product_into(w, dims, P, tmp)
    d_y = dims[dims.size - 1]
    d_x = dims[0]
    # tmp <- P K (d_y, d_x)
    for i in range(d_y):
        for j in range(d_x):
            s = 0.0
            for k in range(d_x):
                s += P[i * d_x + k] * K[k, j]
            tmp[i * d_x + j] = s
    mask = 0
    for i in range(d_y):
        z2 = 0.0
        for j in range(d_x):
            s = 0.0
            for k in range(d_y):
                s += read[i, k] * tmp[k * d_x + j]
            z2 += s * s
        if z2 > 0.25:
            mask |= 1 << i
    return mask


@jit_inline
def _popcount(m):
    c = 0
    while m:
        c += m & 1
        m >>= 1
    return c


@jit_inline
def open_visit(monitor, j, mask):
    """Start visit ``j`` (set ``mask``); its first point follows with :func:`note_point`."""
    info = monitor.info
    monitor.mask[j] = mask
    for c in range(N_INFO):
        info[j, c] = np.nan
    info[j, RATE_MIN] = np.inf
    info[j, G_MIN] = np.inf
    info[j, N_STEPS] = 0.0


@jit_inline
def note_point(monitor, j, t, L, g, rate, w, thr, step):
    """An accepted point ``(t, w)`` inside visit ``j``: update its smallest rate and
    gradient (copying ``w`` into ``w_min[j]`` on a new smallest gradient) and its range on
    the plateau criterion; ``step`` counts it as an accepted step."""
    info = monitor.info
    if np.isnan(info[j, T_ENTER]):
        info[j, T_ENTER] = t
    if rate < info[j, RATE_MIN]:
        info[j, RATE_MIN] = rate
    if rate <= thr:
        if np.isnan(info[j, T_ON_FIRST]):
            info[j, T_ON_FIRST] = t
        info[j, T_ON_LAST] = t
    if g < info[j, G_MIN]:
        info[j, G_MIN] = g
        info[j, T_G_MIN] = t
        info[j, L_G_MIN] = L
        for i in range(w.size):
            monitor.w_min[j, i] = w[i]
    if step:
        info[j, N_STEPS] += 1.0


@jit
def _mask_at(theta, w, f0, y_new, f_new, h, dims, monitor, buf, P, tmp):
    """``S`` (bit mask) of the step's Hermite interpolant at ``theta`` in [0, 1]."""
    t2 = theta * theta
    t3 = t2 * theta
    a0 = 2.0 * t3 - 3.0 * t2 + 1.0
    b0 = (t3 - 2.0 * t2 + theta) * h
    a1 = -2.0 * t3 + 3.0 * t2
    b1 = (t3 - t2) * h
    for i in range(w.size):
        buf[i] = a0 * w[i] + b0 * f0[i] + a1 * y_new[i] + b1 * f_new[i]
    return read_mask(buf, dims, monitor.read, monitor.K, P, tmp)


@jit
def locate_changes(problem, t, t_lo, h, w, f0, y_new, f_new, mask_new, monitor, n, buf, grad,
                   P, tmp):  # fmt: skip
    """The visits that start inside an accepted step from ``(t + t_lo, w)`` to ``y_new``
    (whose set ``mask_new`` differs from the open visit's, ``monitor.mask[n - 1]``; ``f0``,
    ``f_new`` the velocities ``-grad L`` at both ends, ``h`` the step): ``S`` is read at
    :data:`SCAN` points of the step's dense output and every change is bisected.  Each new
    visit is opened at the interpolated point where it starts (its loss and gradient
    evaluated there, one gradient evaluation each), closing the previous one.

    Returns ``(n, evals, unresolved, overflow)``: the new number of visits, the gradient
    evaluations spent, the number of changes of more than one index that the bisection
    could not separate, and whether visits were dropped for want of rows (the last row
    then takes the latest set).
    """
    dims = problem.dims
    J = monitor.mask.size
    info = monitor.info
    thr = monitor.rate_threshold
    cur = monitor.mask[n - 1]
    evals = 0
    unresolved = 0
    overflow = False
    lo_theta = 0.0
    for k in range(1, SCAN + 1):
        theta = k / SCAN
        if k == SCAN:
            m = mask_new
        else:
            m = _mask_at(theta, w, f0, y_new, f_new, h, dims, monitor, buf, P, tmp)
        while m != cur:
            # bisect the first change in (lo_theta, theta]: a point whose set differs from cur
            a = lo_theta
            b = theta
            mb = m
            for _ in range(BISECT):
                mid = 0.5 * (a + b)
                mm = _mask_at(mid, w, f0, y_new, f_new, h, dims, monitor, buf, P, tmp)
                if mm == cur:
                    a = mid
                else:
                    b = mid
                    mb = mm
            if _popcount(mb ^ cur) > 1:
                unresolved += 1
            t_enter = t + (t_lo + b * h)
            if n < J:
                info[n - 1, T_LEAVE] = t_enter
                _mask_at(b, w, f0, y_new, f_new, h, dims, monitor, buf, P, tmp)  # buf <- W(b)
                L = loss_and_gradient(problem, buf, grad)
                evals += 1
                g = 0.0
                for i in range(grad.size):
                    g += grad[i] * grad[i]
                open_visit(monitor, n, mb)
                note_point(monitor, n, t_enter, L, np.sqrt(g), t_enter * g, buf, thr, False)
                n += 1
            else:
                overflow = True
                monitor.mask[n - 1] = mb
            cur = mb
            lo_theta = b
        lo_theta = theta
    return n, evals, unresolved, overflow
