"""Small dense linear algebra on row-major buffers: layers, partial products, norms.

A network is stored flat, as in the Parquet records and the fixtures: ``dims`` holds
``(d_0, ..., d_H)`` and ``w`` the layers ``W_1 .. W_H`` one after the other, each
row-major with shape ``(d_h, d_{h-1})``.  Products are written as explicit loops: the
matrices are tiny, the loops are deterministic (no BLAS threading or kernel selection),
and they allocate nothing.

:func:`_as_matrix` builds its views with ``numba.np.arrayobj`` (``make_array``,
``populate_array``), which is not public Numba API.  The public routes were measured
(Numba 0.68.1, 10^6 views of 1..4 x 1..4 taken in a compiled loop, warm, best of 7):

* ``flat[start:start + rows * cols].reshape((rows, cols))``: ``Array(float64, 2, 'C')``,
  33 ns per view (the C helper that re-derives strides), against 0.7 ns for
  :func:`_as_matrix`;
* ``np.lib.stride_tricks.as_strided``: 0.8 ns per view, but typed
  ``Array(float64, 2, 'A')``, and the kernels then run on 'A' arrays: ``matmul_into``
  plus ``matmul_tn_into`` on views of 5 x 6 / 8 x 8 / 14 x 14 took 202 / 378 / 1634 ns
  instead of 172 / 264 / 1068 ns;
* ``numba.carray`` on the view's address: 0.7 ns, C layout, but the array has no
  ``meminfo``, so it does not keep its buffer alive: :func:`.rng.normal_matrix` returns a
  view of a buffer it allocated, which would then be freed under it.

None keeps both the speed and the semantics, so :func:`_as_matrix` stays; nearly every
kernel goes through it, ``tests/test_kernels.py`` checks its type and that it is a view,
and the upper bound on ``numba`` in ``pyproject.toml`` is raised only after the whole suite
passes on a new release.
"""

from __future__ import annotations

import numpy as np
from numba.core import cgutils, types
from numba.core.imputils import impl_ret_borrowed
from numba.extending import intrinsic
from numba.np.arrayobj import make_array, populate_array

from mcland._kernels.jit import jit, jit_inline


@intrinsic
def _as_matrix(typingctx, flat, rows, cols):
    """``flat[:rows * cols].reshape((rows, cols))`` for a C-contiguous 1-D array, as a view
    sharing its memory.  Numba's ``reshape`` calls a C helper that re-derives the strides
    of any layout (about 40 ns); the kernels take thousands of such views of the flat
    weight and product buffers per point, which made this 5-10 % of a small point's time.
    The caller guarantees ``rows * cols <= flat.size`` (as with slicing, nothing checks)."""
    if not (isinstance(flat, types.Array) and flat.ndim == 1 and flat.layout == "C"):
        return None
    retty = flat.copy(ndim=2, layout="C")
    sig = retty(flat, rows, cols)

    def codegen(context, builder, sig, args):
        src = make_array(sig.args[0])(context, builder, args[0])
        intp = context.get_value_type(types.intp)
        r = context.cast(builder, args[1], sig.args[1], types.intp)
        c = context.cast(builder, args[2], sig.args[2], types.intp)
        item = context.get_constant(
            types.intp, context.get_abi_sizeof(context.get_data_type(flat.dtype))
        )
        out = make_array(retty)(context, builder)
        populate_array(
            out,
            data=src.data,
            shape=cgutils.pack_array(builder, [r, c], ty=intp),
            strides=cgutils.pack_array(builder, [builder.mul(c, item), item], ty=intp),
            itemsize=src.itemsize,
            meminfo=src.meminfo,
            parent=src.parent,
        )
        return impl_ret_borrowed(context, builder, retty, out._getvalue())

    return sig, codegen


@jit_inline  # tiny and called from many places, some with a literal start
def as_matrix(flat, start, rows, cols):
    """``flat[start : start + rows * cols].reshape((rows, cols))``, a view (see
    :func:`_as_matrix`)."""
    return _as_matrix(flat[start:], rows, cols)


@jit
def layer_offsets(dims):
    """Offsets of ``W_1 .. W_H`` in the flat weight buffer; ``off[h] .. off[h+1]`` is W_{h+1}."""
    H = dims.size - 1
    off = np.zeros(H + 1, np.int64)
    for h in range(1, H + 1):
        off[h] = off[h - 1] + dims[h] * dims[h - 1]
    return off


@jit_inline
def copy_into(src, dst, start):
    """``dst[start : start + src.size] = src`` for a C-ordered ``src`` of any shape, element
    by element: a slice assignment would compile NumPy's broadcasting checks and their error
    message formatting (about 1.5 s of a first run) for a copy whose shapes always match."""
    flat = src.ravel()
    for i in range(flat.size):
        dst[start + i] = flat[i]


@jit_inline
def copy_block(src, dst, row, col):
    """``dst[row : row + m, col : col + n] = src`` for ``src`` of shape (m, n), element by
    element (see :func:`copy_into`)."""
    for i in range(src.shape[0]):
        for j in range(src.shape[1]):
            dst[row + i, col + j] = src[i, j]


@jit
def bottleneck(dims):
    """``r = min(d_0, ..., d_H)``, the bottleneck width (docs/theory.md §1)."""
    r = dims[0]
    for h in range(1, dims.size):
        r = min(r, dims[h])
    return r


@jit_inline  # tiny, called with literal arguments: no specialisation per literal
def layer(w, dims, off, h):
    """View of ``W_h`` (1-based h), shape ``(d_h, d_{h-1})``."""
    return as_matrix(w, off[h - 1], dims[h], dims[h - 1])


@jit
def matmul_into(A, B, out):
    n, k = A.shape
    m = B.shape[1]
    for i in range(n):
        for j in range(m):
            s = 0.0
            for t in range(k):
                s += A[i, t] * B[t, j]
            out[i, j] = s
    return out


@jit
def matmul(A, B):
    out = np.empty((A.shape[0], B.shape[1]))
    matmul_into(A, B, out)
    return out


@jit
def matmul_tn(A, B):
    """``A.T @ B``."""
    out = np.empty((A.shape[1], B.shape[1]))
    matmul_tn_into(A, B, out)
    return out


@jit
def matmul_tn_into(A, B, out):
    """``out = A.T @ B`` (accumulated over the rows of A, skipping zeros of A)."""
    k, n = A.shape
    m = B.shape[1]
    out[:, :] = 0.0
    for t in range(k):
        for i in range(n):
            a = A[t, i]
            if a != 0.0:
                for j in range(m):
                    out[i, j] += a * B[t, j]
    return out


@jit
def matmul_nt(A, B):
    """``A @ B.T``."""
    out = np.empty((A.shape[0], B.shape[0]))
    matmul_nt_into(A, B, out)
    return out


@jit
def matmul_nt_into(A, B, out):
    """``out = A @ B.T``."""
    n, k = A.shape
    m = B.shape[0]
    for i in range(n):
        for j in range(m):
            s = 0.0
            for t in range(k):
                s += A[i, t] * B[j, t]
            out[i, j] = s
    return out


@jit
def matvec(A, x):
    return matvec_into(A, x, np.empty(A.shape[0]))


@jit
def matvec_into(A, x, out):
    """``out = A @ x``."""
    for i in range(A.shape[0]):
        s = 0.0
        for j in range(A.shape[1]):
            s += A[i, j] * x[j]
        out[i] = s
    return out


@jit
def rmatvec(A, x):
    """``A.T @ x``."""
    return rmatvec_into(A, x, np.empty(A.shape[1]))


@jit
def rmatvec_into(A, x, out):
    """``out = A.T @ x`` (accumulated over the rows of A)."""
    out[:] = 0.0
    for i in range(A.shape[0]):
        xi = x[i]
        for j in range(A.shape[1]):
            out[j] += A[i, j] * xi
    return out


@jit
def dot(x, y):
    s = 0.0
    for i in range(x.size):
        s += x[i] * y[i]
    return s


@jit
def frob(A):
    """Frobenius norm of a 2-D array (entries summed in row-major order)."""
    s = 0.0
    for i in range(A.shape[0]):
        for j in range(A.shape[1]):
            s += A[i, j] * A[i, j]
    return np.sqrt(s)


@jit
def inner(A, B):
    """Frobenius inner product ``tr(A^T B)`` of 2-D arrays (row-major order)."""
    s = 0.0
    for i in range(A.shape[0]):
        for j in range(A.shape[1]):
            s += A[i, j] * B[i, j]
    return s


@jit
def product_table(w, dims, off):
    """All partial products ``W_{a:b}``, 1 <= b <= a+1 <= H+1, in one flat buffer.

    Returns ``(table, table_off)``: ``W_{a:b}`` (shape ``(d_a, d_{b-1})``) starts at
    ``table_off[a, b]``; the empty products ``W_{b-1:b}`` are identities.  Use :func:`prod`.
    """
    H = dims.size - 1
    table_off = np.full((H + 1, H + 2), -1, np.int64)
    total = 0
    for b in range(1, H + 2):
        for a in range(b - 1, H + 1):
            table_off[a, b] = total
            total += dims[a] * dims[b - 1]
    table = np.zeros(total)
    for b in range(1, H + 2):
        n = dims[b - 1]
        ident = as_matrix(table, table_off[b - 1, b], n, n)
        for i in range(n):
            ident[i, i] = 1.0
        for a in range(b, H + 1):
            matmul_into(
                layer(w, dims, off, a),
                prod(table, table_off, dims, a - 1, b),
                prod(table, table_off, dims, a, b),
            )
    return table, table_off


@jit_inline  # tiny, called with literal arguments: no specialisation per literal
def prod(table, table_off, dims, a, b):
    """View of ``W_{a:b}`` inside a :func:`product_table` buffer."""
    start = table_off[a, b]
    return as_matrix(table, start, dims[a], dims[b - 1])


@jit
def norm_products(w, dims, off):
    """``np_[a, b] = prod_{k=b..a} ||W_k||_F`` (1 for empty ranges), the scale that
    bounds ``||W_{a:b}||`` and hence the rounding error of computing it."""
    H = dims.size - 1
    nrm = np.empty(H + 1)
    nrm[0] = 1.0
    for h in range(1, H + 1):
        nrm[h] = frob(layer(w, dims, off, h))
    out = np.ones((H + 2, H + 2))
    for b in range(1, H + 1):
        acc = 1.0
        for a in range(b, H + 1):
            acc *= nrm[a]
            out[a, b] = acc
    return out


# The draw's products at large widths (mcland._kernels.draw).  Same bits as matmul and
# matmul_nt: every entry is the sum from 0.0 of the same products in the same (ascending)
# order; only the loop order around the sums changes, so that the innermost loop runs
# along contiguous rows (vectorised over the columns of the result) instead of down a
# column of B, and the terms of a zero A[i, t] are skipped.  Skipping is exact when B is
# finite: the product is then +-0, and a sum started at +0.0 is never -0.0 (in rounding
# to nearest x + y = -0 only when both are -0), so adding +-0 leaves it unchanged.
ROW_BLOCK = 8  # rows of the result updated per pass over B (B streamed n / 8 times)
COL_BLOCK = 64  # columns of the result per transposed block of B in matmul_nt_rows


@jit
def all_finite(A):
    """Whether every entry of the 2-D array ``A`` is finite."""
    for i in range(A.shape[0]):
        for j in range(A.shape[1]):
            if not np.isfinite(A[i, j]):
                return False
    return True


@jit
def matmul_rows(A, B):
    """``A @ B`` (n, k) x (k, m) with the bits of :func:`matmul` (see above), in
    ``n k m`` multiply-adds less the skipped zeros of A; :func:`matmul` itself when B is
    not finite (then ``0 * B[t, j]`` may be NaN)."""
    if not all_finite(B):
        return matmul(A, B)
    n, k = A.shape
    m = B.shape[1]
    out = np.zeros((n, m))
    for i0 in range(0, n, ROW_BLOCK):
        i1 = min(n, i0 + ROW_BLOCK)
        for t in range(k):
            for i in range(i0, i1):
                a = A[i, t]
                if a != 0.0:
                    for j in range(m):
                        out[i, j] += a * B[t, j]
    return out


@jit
def matmul_nt_rows(A, B):
    """``A @ B.T`` (n, k) x (m, k)^T with the bits of :func:`matmul_nt`: as
    :func:`matmul_rows`, on ``COL_BLOCK`` columns of the result at a time from a transposed
    copy of that many rows of B (the products ``A[i, t] * B[j, t]`` are the same numbers;
    the copy is ``k COL_BLOCK``, not ``k m``: no more memory than :func:`matmul_nt`)."""
    if not all_finite(B):
        return matmul_nt(A, B)
    n, k = A.shape
    m = B.shape[0]
    out = np.zeros((n, m))
    Bt = np.empty((k, min(m, COL_BLOCK)))
    for j0 in range(0, m, COL_BLOCK):
        w = min(m, j0 + COL_BLOCK) - j0
        for t in range(k):
            for jj in range(w):
                Bt[t, jj] = B[j0 + jj, t]
        for i0 in range(0, n, ROW_BLOCK):
            for t in range(k):
                for i in range(i0, min(n, i0 + ROW_BLOCK)):
                    a = A[i, t]
                    if a != 0.0:
                        for jj in range(w):
                            out[i, j0 + jj] += a * Bt[t, jj]
    return out
