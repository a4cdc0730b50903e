"""What every kind of run computes per point: one point's analysis (:mod:`.inspect`, behind
:func:`mcland.inspect_point`; without a spectrum, shared with ``classify``:
:mod:`.matrix_free`), its record (:mod:`.records`), and the job that draws points
and computes their records (:mod:`.plan`)."""
