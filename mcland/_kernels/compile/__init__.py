"""Compiling the kernels on a first run, in processes side by side (:mod:`.sampler`,
:mod:`.flow`; the children's entry point :mod:`.child`; what they share :mod:`.common`)."""
