"""Two questions about a classified point, answered separately (docs/certify.md).

**What are these floats, exactly?** (:mod:`.exact_type`)  The type of the point *as given*:
the stored float64 weights and data are rationals and the loss is a polynomial in them, so
its gradient and Hessian at the stored floats are exact rationals, evaluated in integer
arithmetic on dyadic matrices (:mod:`.dyadic`) at the balanced point (:mod:`.balance`).

**Is that verdict stable?** (:mod:`.stability`)  Whether a componentwise relative
perturbation of the weights and data (plus the distance to the critical set) can change the
type: a Weyl bound on how far any Hessian eigenvalue can move, a proof and not a test.

:func:`.rows.certify_rows` answers both for every row of a classify run (the bound in one
compiled kernel, :mod:`mcland._kernels.stability`; the exact evaluation only where needed);
:mod:`.reference` is its plain NumPy reference.
"""
