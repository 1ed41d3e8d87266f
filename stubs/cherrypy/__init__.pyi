# Local stub: CherryPy ships no type information. anon_ticket uses only the process bus.
