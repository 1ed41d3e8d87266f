# Local stub: pysqlite3.dbapi2 has the standard sqlite3 module's interface.
from sqlite3 import *  # noqa: F403
