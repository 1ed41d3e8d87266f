"""Our HTTP server: connections and framing on an I/O thread, WSGI on worker threads, run by CherryPy's
engine.

`engine` owns the sockets, `framing` reads a request, `wsgi_bridge` runs the application on a worker,
`proxy_protocol` reads tor's PROXY line, `client_faults` counts clients' mistakes, `incidents` bounds
logging, `listener` attaches one server to the CherryPy bus, `bind_errors` explains a failed bind.
Each listener (public, internal) has its own server and application (`anon_ticket.api`), so neither
can ever serve the other's paths.
"""
