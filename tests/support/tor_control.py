"""Tor's control protocol, just what the test network needs: a command, and HS_DESC upload events.

One short connection per command, authenticated with the cookie file tor writes into its data
directory (`CookieAuthentication 1`), on a loopback `ControlPort`. The protocol is tor's
control-spec: replies are lines `250-…` / `250 …` (the last), `250+…` opens a data block ended by a
lone `.`, and asynchronous events arrive as `650 …` lines after `SETEVENTS`.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from pathlib import Path
from typing import Any


class TorControlError(Exception):
    """A control-port answer other than 250."""


class TorControl:
    """Tor's control protocol on a loopback port, one short connection per command, cookie auth."""

    def __init__(self, port: int, cookie_file: Path) -> None:
        self.port = port
        self.cookie_file = cookie_file

    def command(self, line: str, timeout: float = 10.0) -> list[str]:
        """Authenticate, send `line`, return the reply lines without their `250-`/`250 ` prefix."""
        cookie = self.cookie_file.read_bytes().hex()
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as conn:
            stream = conn.makefile("rwb")
            for sent in (f"AUTHENTICATE {cookie}", line):
                stream.write(sent.encode("ascii") + b"\r\n")
                stream.flush()
                reply = self._reply(stream)
            stream.write(b"QUIT\r\n")
            stream.flush()
        return reply

    @staticmethod
    def _reply(stream: Any) -> list[str]:
        lines: list[str] = []
        while True:
            raw = stream.readline()
            if not raw:
                raise TorControlError("the control connection closed")
            text = raw.decode("utf-8", "replace").rstrip("\r\n")
            code, sep, rest = text[:3], text[3:4], text[4:]
            if code != "250":
                raise TorControlError(text)
            if sep == "+":  # a data block, ended by a lone "."
                block = [rest]
                while (data := stream.readline().decode("utf-8", "replace").rstrip("\r\n")) != ".":
                    block.append(data)
                lines.append("\n".join(block))
                continue
            lines.append(rest)
            if sep == " ":
                return lines

    def getinfo(self, key: str) -> str:
        for line in self.command(f"GETINFO {key}"):
            if line.startswith(f"{key}="):
                return line[len(key) + 1 :]
        raise TorControlError(f"no {key} in the answer")


class UploadEvents:
    """`HS_DESC UPLOADED` events of an onion-service tor: which addresses HSDirs accepted, how often.

    One control connection kept open by a reader thread; `close()` ends both.
    """

    def __init__(self, control: TorControl) -> None:
        cookie = control.cookie_file.read_bytes().hex()
        self._conn = socket.create_connection(("127.0.0.1", control.port), timeout=10.0)
        self._stream = self._conn.makefile("rwb")
        for line in (f"AUTHENTICATE {cookie}", "SETEVENTS HS_DESC"):
            self._stream.write(line.encode("ascii") + b"\r\n")
            self._stream.flush()
            TorControl._reply(self._stream)
        self._conn.settimeout(None)
        self._uploads: list[str] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, name="tor-hs-desc-events", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            for raw in self._stream:
                words = raw.decode("utf-8", "replace").split()
                if words[:3] == ["650", "HS_DESC", "UPLOADED"] and len(words) > 3:
                    with self._lock:
                        self._uploads.append(words[3])

    def count(self, address: str) -> int:
        """How many HSDirs accepted a descriptor of `address` (without `.onion`) so far."""
        with self._lock:
            return self._uploads.count(address)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._conn.shutdown(socket.SHUT_RDWR)
        self._conn.close()
        self._thread.join(5.0)
