"""``python -m unas.space_opt``: see :mod:`unas.space_opt.cli`."""
import sys

from unas.space_opt.cli import main

if __name__ == "__main__":
    sys.exit(main())
