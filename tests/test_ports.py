"""The ports the suite and the demo start processes on: below the kernel's ephemeral range, free.

A port from bind(0) can be taken by any outgoing connection before the daemon binds it (seen: the
access gateway's start failing with "address already in use" right after a siege's thousands of
connections); ports below the ephemeral range are never handed to connections.
"""

from __future__ import annotations

import contextlib
import random
import socket
from pathlib import Path

from anon_ticket.demo.ports import free_ports


def ephemeral_low() -> int:
    return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])


def test_ports_are_distinct_below_the_ephemeral_range_and_bindable() -> None:
    ports = free_ports(50)
    assert len(set(ports)) == 50
    assert all(10000 <= port < ephemeral_low() for port in ports)
    with contextlib.ExitStack() as stack:
        for port in ports:
            sock = stack.enter_context(socket.create_server(("127.0.0.1", port)))
            assert sock.getsockname()[1] == port


def test_a_port_someone_listens_on_is_never_chosen() -> None:
    taken = set()
    with contextlib.ExitStack() as stack:
        for port in random.sample(range(10000, ephemeral_low()), 3000):
            try:
                stack.enter_context(socket.create_server(("127.0.0.1", port)))
            except OSError:
                continue
            taken.add(port)
        assert len(taken) > 2500
        assert not taken & set(free_ports(300))
