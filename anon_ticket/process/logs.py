"""Logging set-up: plain text or one JSON object per line (LOG_FORMAT), to standard error.

Nothing logged anywhere in the daemon contains a PID or a token; tokens appear as a short digest
prefix at most. Request paths are not logged per request on the public listener at all.
"""

from __future__ import annotations

import json
import logging
import sys
import time


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created)),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # CherryPy's bus logs through these; keep its chatter at warnings. The HTTP servers log nothing
    # per request or per client fault (anon_ticket/httpd/client_faults.py), so they need no such filter.
    for name in ("cherrypy.error", "cherrypy.access"):
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLevelName(level)))
