"""The ``dynamics`` kind of run: gradient flow from drawn critical points (docs/dynamics.md).

:func:`.gradient_flow.gradient_flow` follows the flow from given weights; the experiments
(``escape``: :mod:`.escape`; ``small_init``: :mod:`.small_init`, plateaus :mod:`.plateaus`)
turn one drawn point into records (:mod:`.records`, columns :mod:`.schema`); :mod:`.run`
runs them in memory or into run directories."""
