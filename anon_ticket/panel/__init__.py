"""The operator's admin panel at `/admin/` on the internal listener (docs/PROTOCOL.md §5).

A CherryPy application (CherryPy's own dispatching, sessions and tools) served by WSGI: the internal
listener hands it every `/admin/` request, and it is never mounted on CherryPy's global tree or
server, so the public listener cannot serve it. `app.build_panel` wires it; nothing happens at import.
"""
