"""`python -m anon_ticket`: see `anon_ticket.commands.cli`."""

import os
import sys

from anon_ticket.commands.cli import main

# Like other Unix tools, stop quietly when the reader of our output has gone (`token show - | head`):
# without this Python prints a BrokenPipeError traceback. Standard output is pointed at /dev/null so
# that the interpreter's final flush cannot fail again (the recipe in Python's `signal` docs).
EXIT_BROKEN_PIPE = 1

if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(EXIT_BROKEN_PIPE)
