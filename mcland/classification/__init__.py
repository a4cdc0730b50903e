"""The ``classify`` kind of run: given points (trained networks, a finder's output)
classified in bulk (:mod:`.classify`, run directories :mod:`.run`), with certificates of the
exact type of the stored floats and of its stability (:mod:`.certify`), and the labelled
ground-truth set with exact inertia (:mod:`.groundtruth`, integer arithmetic :mod:`.exact`)."""
