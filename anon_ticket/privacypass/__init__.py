"""Privacy Pass token type 2 (RFC 9576-9578): wire formats, the issuer key, blind signing, verification
and the client's side, as plain functions and values.

Nothing here touches storage, actors or HTTP; only `keys.py` reads and writes a file (the key). The
service layer decides who may have a signature and remembers spends; this package only computes.
"""
