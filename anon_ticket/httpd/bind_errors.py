"""What an operator reads when a listener cannot bind: the variable, the address and the reason.

The kernel's errno (from `Listener.bind`) becomes a sentence that says what to do; an error without
one (a path that is not a socket, refused by the listener itself) is shown as it is.
"""

from __future__ import annotations

import errno

from anon_ticket.errors import AddressInUse

_REASONS = {
    errno.EADDRINUSE: "address already in use: another process listens there; stop it or choose another",
    errno.EACCES: "permission denied (ports below 1024 need privileges; a socket folder needs write access)",
    errno.EADDRNOTAVAIL: "this machine has no such address",
}


def bind_failure(variable: str, address: object, exc: OSError, note: str = "") -> AddressInUse:
    """The error for `variable`=`address` failing to bind with `exc`."""
    reason = _REASONS.get(exc.errno) if exc.errno is not None else None
    message = f"{variable}={address}: cannot bind: {reason or exc}"
    return AddressInUse(message + (f" ({note})" if note else ""))
