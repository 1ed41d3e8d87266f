"""A private Monero regtest chain on loopback, and the one-command demo that runs the shop on it.

`chain` starts real monerod and monero-wallet-rpc processes (the Debian `monero` package) in one
folder; the test suite's end-to-end tests use the same code (tests/support/regtest.py), so the demo a
newcomer runs is the chain the tests prove. Nothing here ever talks to a real Monero network.
"""
