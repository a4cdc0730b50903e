"""``python -m mcland.cli``: the command line."""

from mcland.cli import main

main()
