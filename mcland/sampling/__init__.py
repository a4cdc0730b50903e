"""The ``sample`` kind of run: drawn critical points and their records, in memory or into run
directories (:mod:`.run`)."""
