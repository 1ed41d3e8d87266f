"""The pure rules: values and functions that need no thread, socket or database to run.

Parsing and derivations (`domain`), the payment rules (`payments`), the rate limiters (`abuse`), the
screen of known payment ids (`pid_screen`), the rescan's rules (`rescan`), the wallet's health signals
(`wallet_health`) and time formatting (`timefmt`). Every layer above may use them; they import
nothing of the project but `anon_ticket.errors`.
"""
