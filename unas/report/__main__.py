"""``python -m unas.report DIR``: see :mod:`unas.report.cli`."""
import sys

from unas.report.cli import main

if __name__ == "__main__":
    sys.exit(main())
