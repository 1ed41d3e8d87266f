"""Several daemons on one PostgreSQL database (docs/PROTOCOL.md §11), as the multi-node tests start
and stop them: node `index` has a folder of its own, the name `n<index>`, and `?node=<index>` on its
wallet URL so that the fake wallet can tell who polls."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tests.support.daemon import DaemonProcess
from tests.support.fake_wallet import FakeWallet


def cluster_node(
    workdir: Path, database_url: str, wallet: FakeWallet, index: int, internal_token: str, **env: str
) -> DaemonProcess:
    """Node `index`, not started, scanning from height 100; `env` adds to (or overrides) that."""
    return DaemonProcess(
        workdir / f"node{index}",
        wallet_url=f"{wallet.url}?node={index}",
        env={
            "DATABASE_URL": database_url,
            "INTERNAL_API_TOKEN": internal_token,
            "MONITOR_START_HEIGHT": "100",
            "NODE_NAME": f"n{index}",
            **env,
        },
    )


def stop_each(nodes: Iterable[DaemonProcess]) -> None:
    """SIGTERM every node in turn, each killed afterwards in any case (a no-op after a clean stop);
    a stop that fails (the daemon hung) fails the test there."""
    for node in nodes:
        try:
            node.stop()
        finally:
            node.kill()
