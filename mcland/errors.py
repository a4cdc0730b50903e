"""The exception raised for every kind of bad input."""

from __future__ import annotations


class MclandError(ValueError):
    """Bad input (configuration, data, weights, paths): the message says what and where.

    The command line prints the message on one line of stderr and exits with status 2.
    """
