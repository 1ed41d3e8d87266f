"""`python -m anon_ticket`: see `anon_ticket.cli`."""

import sys

from anon_ticket.cli import main

if __name__ == "__main__":
    sys.exit(main())
