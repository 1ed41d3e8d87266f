"""Storage: protocols in `base`, the embedded SQLite backend in `sqlite`, migrations in `migrations`.

`open_store()` in `anon_ticket.storage.factory` picks the backend from `DATABASE_URL`.
"""
