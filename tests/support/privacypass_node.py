"""The reference Privacy Pass implementation, `@cloudflare/privacypass-ts`, running in node for the tests.

`install_web_packages` installs web/package-lock.json's packages (the buyer page's and the test-only
ones) into a folder with `npm ci --ignore-scripts`, as CI does on a fresh machine: npm checks every
tarball against the lockfile's SHA-512 and runs no package script. `ReferenceImplementation` then
runs tests/support/privacypass_node.mjs, one long-lived node process that answers one JSON command
per line, so that a client's state survives between its request and its finalisation.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from types import TracebackType
from typing import Any

from tests.support.services import need

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "tests" / "support" / "privacypass_node.mjs"
NODE_INSTALL = "Debian packages nodejs and npm; scripts/test installs them as root"


def install_web_packages(folder: Path) -> Path:
    """`npm ci` of web/package-lock.json into `folder`; its node_modules."""
    npm = need("npm", NODE_INSTALL)
    for name in ("package.json", "package-lock.json"):
        shutil.copy2(REPO / "web" / name, folder / name)
    result = subprocess.run(
        [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return folder / "node_modules"


class ReferenceThrew(AssertionError):
    """privacypass-ts threw; the message is its error's."""


class ReferenceImplementation:
    """privacypass-ts as client (request, finalize), issuer, origin (verify) and header codec."""

    def __init__(self, node_modules: Path) -> None:
        node = need("node", NODE_INSTALL)
        self._process = subprocess.Popen(
            [node, str(SCRIPT), str(node_modules)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def __enter__(self) -> ReferenceImplementation:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        for stream in (self._process.stdout, self._process.stderr):
            if stream is not None:
                stream.close()

    def ask(self, op: str, **arguments: Any) -> dict[str, Any]:
        """One command's answer; `ReferenceThrew` when privacypass-ts threw."""
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write(json.dumps({"op": op, **arguments}) + "\n")
        self._process.stdin.flush()
        line = self._process.stdout.readline()
        if not line:
            stderr = self._process.stderr.read() if self._process.stderr else ""
            raise AssertionError(f"the node helper exited: {stderr[-2000:]}")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise ReferenceThrew(answer["error"])
        return answer

    def request(self, challenge: bytes, token_key: bytes) -> tuple[int, bytes]:
        """A client's TokenRequest for `challenge` under `token_key`: (its id, the request bytes)."""
        answer = self.ask("request", challenge=challenge.hex(), token_key=token_key.hex())
        return int(answer["id"]), bytes.fromhex(answer["token_request"])

    def finalize(self, client_id: int, token_response: bytes) -> bytes:
        """That client's Token for the issuer's answer (privacypass-ts verifies it first)."""
        return bytes.fromhex(self.ask("finalize", id=client_id, token_response=token_response.hex())["token"])

    def new_issuer(self) -> tuple[int, bytes]:
        """A privacypass-ts Issuer with a fresh RSA-2048 key: (its id, its token key)."""
        answer = self.ask("issuer")
        return int(answer["issuer"]), bytes.fromhex(answer["token_key"])

    def issue(self, issuer_id: int, token_request: bytes) -> bytes:
        """That issuer's TokenResponse (the blind signature) for `token_request`."""
        return bytes.fromhex(
            self.ask("issue", issuer=issuer_id, token_request=token_request.hex())["token_response"]
        )

    def verify(self, token: bytes, token_key: bytes) -> bool:
        """privacypass-ts' `Origin.verify` of `token` with `token_key` (the signature check)."""
        return bool(self.ask("verify", token=token.hex(), token_key=token_key.hex())["valid"])

    def parse_www_authenticate(self, header: str) -> tuple[bytes, bytes]:
        answer = self.ask("parse_www_authenticate", header=header)
        return bytes.fromhex(answer["challenge"]), bytes.fromhex(answer["token_key"])

    def authorization(self, token: bytes) -> str:
        return str(self.ask("authorization", token=token.hex())["header"])

    def parse_authorization(self, header: str) -> bytes:
        return bytes.fromhex(self.ask("parse_authorization", header=header)["token"])

    def rsa_encryption_spki(self, token_key: bytes) -> bytes:
        """privacypass-ts' `util.convertRSASSAPSSToEnc`: the token key as WebCrypto imports it."""
        return bytes.fromhex(self.ask("spki_to_enc", token_key=token_key.hex())["spki"])

    def version(self) -> str:
        """The version of the privacypass-ts package node loaded."""
        return str(self.ask("version")["version"])
