"""Application services: the use cases the HTTP apps and the admin panel call.

A service combines the calling thread's read-only store with the actors (found through the
`ActorLocator`, every answer awaited with a bound); it knows nothing of HTTP, so the internal API and
the panel run the same code and cannot disagree. The apps reach the actors only through here
(`metrics` for counting and the abuse history, `info` for what the wallet poller published). The
layers, and where this one sits, are in docs/ARCHITECTURE.md and tests/test_layers.py.
"""
