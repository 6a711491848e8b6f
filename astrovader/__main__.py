"""``python -m astrovader``: the same command line as the ``astrovader`` console script."""

import sys

from astrovader.cli import main

if __name__ == "__main__":
    sys.exit(main())
