"""anon_ticket: sell access to a service for Monero, with no accounts.

Importing this package does nothing but define names; `anon_ticket.daemon` wires the process.
"""

__version__ = "0.1.0"
