"""``python -m strata``: the strata command (strata.cli.main), exiting with its status."""

import sys

from strata.cli import main

if __name__ == "__main__":  # importing this module (pydoc, test collectors) runs nothing
    sys.exit(main())
