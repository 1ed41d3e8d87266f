"""`python -m anon_ticket check`: is this deployment right, before the first buyer finds out?

Each module checks one part (the database, the wallet, files and modes, the descriptor limit, the
listeners, tor's configuration) and returns `Finding`s; `command` prints one line each and exits 1
when any is a problem. Nothing here writes: the database is opened read-only, no socket is left open,
no file is created, and the wallet is asked only questions whose answers hold no secret.
"""
