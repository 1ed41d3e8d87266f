"""`conf/torrc.snippet` keeps the shape the Tor tests run (tests/test_tor_e2e.py) and operators paste.

These checks need no tor: they fail fast when an edit to the snippet would make the end-to-end tests
run something other than what the operations guide documents.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.torrc_snippet import SnippetError, exports_circuit_ids, onion_service_lines, read_snippet

HS_DIR = Path("/tmp/t/hs")
SOCKET = Path("/tmp/t/run/public.sock")


def test_the_snippet_publishes_the_unix_socket_with_the_defences_on() -> None:
    config = onion_service_lines(read_snippet(), HS_DIR, SOCKET)
    assert config.lines[0] == f"HiddenServiceDir {HS_DIR}"
    assert f"HiddenServicePort {config.virtual_port} unix:{SOCKET}" in config.lines
    assert config.virtual_port == 80
    for line in (
        "HiddenServicePoWDefensesEnabled 1",
        "HiddenServiceEnableIntroDoSDefense 1",
        "HiddenServiceMaxStreams 200",
        "HiddenServiceMaxStreamsCloseCircuit 1",
    ):
        assert line in config.lines
    # PROXY lines break a daemon that does not expect them: on exactly when the snippet says so.
    exported = [line for line in config.lines if line.startswith("HiddenServiceExportCircuitID")]
    assert exported == (
        ["HiddenServiceExportCircuitID haproxy"] if exports_circuit_ids(read_snippet()) else []
    )
    # The operator's paths never reach the test's torrc.
    assert not any("/var/lib/tor" in line or "/run/anon_ticket" in line for line in config.lines)


def test_the_optional_circuit_export_is_switched_on_as_an_operator_would() -> None:
    config = onion_service_lines(read_snippet(), HS_DIR, SOCKET, enable=("HiddenServiceExportCircuitID",))
    assert config.lines.count("HiddenServiceExportCircuitID haproxy") == 1


def test_an_option_that_is_on_already_stays_as_it_is() -> None:
    snippet = "HiddenServiceDir /a\nHiddenServicePort 80 unix:/x\nHiddenServiceExportCircuitID haproxy\n"
    config = onion_service_lines(snippet, HS_DIR, SOCKET, enable=("HiddenServiceExportCircuitID",))
    assert config.lines[-1] == "HiddenServiceExportCircuitID haproxy"
    assert exports_circuit_ids(snippet)
    assert not exports_circuit_ids(snippet.replace("HiddenServiceExport", "#HiddenServiceExport"))


SNIPPETS_REFUSED = {
    "no directory": "HiddenServicePort 80 unix:/run/x.sock\n",
    "two directories": "HiddenServiceDir /a\nHiddenServicePort 80 unix:/x\nHiddenServiceDir /b\n",
    "TCP only": "HiddenServiceDir /a\nHiddenServicePort 80 127.0.0.1:8080\n",
    "a global option": "SocksPort 0\nHiddenServiceDir /a\nHiddenServicePort 80 unix:/x\n",
    "garbage": "HiddenServiceDir /a\nHiddenServicePort 80 unix:/x\n=oops\n",
}


@pytest.mark.parametrize("case", sorted(SNIPPETS_REFUSED))
def test_a_snippet_of_another_shape_is_refused(case: str) -> None:
    with pytest.raises(SnippetError):
        onion_service_lines(SNIPPETS_REFUSED[case], HS_DIR, SOCKET)


def test_switching_on_an_option_the_snippet_does_not_document_is_refused() -> None:
    with pytest.raises(SnippetError, match="HiddenServiceNumIntroductionPoints"):
        onion_service_lines(read_snippet(), HS_DIR, SOCKET, enable=("HiddenServiceNumIntroductionPoints",))
