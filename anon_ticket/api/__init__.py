"""The WSGI applications our HTTP server runs: the public API and buyer's page (`public`,
`buyer_page`, `static/`), the operator's internal API (`internal`, `openapi`), and what both share:
one route table (`routing`), strict JSON (`strict_json`) and the WSGI helpers (`wsgi`).

They do the HTTP part only (request checks, authentication, answers); the work is in the services.
"""
