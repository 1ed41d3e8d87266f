"""Addresses captured from the regtest wallets (tests/support/samples: get_address_merchant.json and
the make_integrated_address_*.json answers): the vectors that the client's Python and the buyer's
page JavaScript must both reproduce offline, kept once so the two can never test different things."""

from __future__ import annotations

# The merchant's primary address, and its wallet's make_integrated_address answers by payment id.
PRIMARY = "48cdQyLdVoHhbTBqbFsts2fRPCF4GcDWcgm8UDofy7rpe2uqzK28U8tKRX8LSiRYWf3rPJRePskpS2hZ5eGx6ErKDeBYBFV"
_COMMON = "4JKJRnA874ohbTBqbFsts2fRPCF4GcDWcgm8UDofy7rpe2uqzK28U8tKRX8LSiRYWf3rPJRePskpS2hZ5eGx6ErKK"
WALLET_ANSWERS = {
    "1234567890abcdef": _COMMON + "kEMGiDbfgpTyBSLzT",
    "0d6aab32d5ea2985": _COMMON + "k3pvZdTKoeG1oWxHx",
    "f5e2e6eca5920540": _COMMON + "trnH6cFPkp8FRrrWP",
}
# A subaddress of the merchant's wallet: never a valid base for an integrated address.
SUBADDRESS = "88nXQZ3ijccNjSoypJKsWp1xekDNQJWgRNTTpH83PsyFQkJsofJ566DJXx8FB2bT3qA1auTUchfxxjXNH57KiUg6SVPFonN"
# The payer's primary address: another wallet's, for tests that need two.
PAYER_PRIMARY = (
    "43ETbqLEpYi72jLbmnaGKDjHawMu2Jb4tdyZdQ2i4uDpK5RY11HvyngLpgMPNoGQpgLLNv6wGyAkkSBQzXZAb9xYKxPBdZT"
)
