"""The two HTTP listeners: small WSGI applications on our own HTTP server, run by CherryPy's engine.

`public` is what Tor exposes, `internal` is for the operator; each has its own application on its
own server, so neither can ever serve the other's paths (see `server`).
"""
