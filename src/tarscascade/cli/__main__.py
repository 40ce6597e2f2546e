"""``python -m tarscascade.cli``: the same as the ``tarscascade`` console script."""

from tarscascade.cli import main

main()
