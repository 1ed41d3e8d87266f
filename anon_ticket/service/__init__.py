"""Application services: the use cases the HTTP apps and the admin panel call.

Layers, each importing only from those below it: the pure domain (`domain`, `payments`, `ingest`,
`abuse`, `pid_screen`) < `storage` < `actors` < `service` < `http` and `panel` < `daemon`. A service
combines the calling thread's read-only store with the actors (found through the `ActorLocator`,
every answer awaited with a bound); it knows nothing of HTTP, so the internal API and the panel run
the same code and cannot disagree.
"""
