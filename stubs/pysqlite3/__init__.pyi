# Local stub: pysqlite3 mirrors the standard sqlite3 module.
