"""What an operator reads when a listener cannot bind: the variable, the address and the reason.

cheroot folds the socket error into its own message ("No socket could be created -- (…: [Errno 98]
Address already in use)") without an errno, so the errno is read back from that text.
"""

from __future__ import annotations

import errno
import re

from anon_ticket.errors import AddressInUse

_ERRNO = re.compile(r"\[Errno (\d+)\]")
_REASONS = {
    errno.EADDRINUSE: "address already in use: another process listens there; stop it or choose another",
    errno.EACCES: "permission denied (ports below 1024 need privileges; a socket folder needs write access)",
    errno.EADDRNOTAVAIL: "this machine has no such address",
}


def bind_failure(variable: str, address: object, exc: OSError, note: str = "") -> AddressInUse:
    """The error for `variable`=`address` failing to bind with `exc` (from cheroot or the kernel)."""
    code = exc.errno
    if code is None:
        found = _ERRNO.search(str(exc))
        code = int(found.group(1)) if found else None
    reason = _REASONS.get(code) if code is not None else None
    message = f"{variable}={address}: cannot bind: {reason or exc}"
    return AddressInUse(message + (f" ({note})" if note else ""))
