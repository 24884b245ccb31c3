"""`python -m landscape4d ...`: the same as the `landscape4d` command."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
