"""Storage: what callers may ask in `protocols`, what both backends share in `backend_rules`, the
embedded SQLite backend in `sqlite`, PostgreSQL in `postgres`, migrations in `migrations`.

`Database` (in `database`) picks the backend from `DATABASE_URL` and holds its connections and lock.
"""
