"""The access gateway (docs/PROTOCOL.md §13): the third listener, for the operator's reverse proxy.

`/auth` decides whether a request to the operator's service may pass (nginx `auth_request`, Caddy
`forward_auth`, Traefik `forwardAuth`); `/login` lets a browser sign in once and carry a session
cookie. `app.build_access_app` wires it; nothing happens at import.
"""
