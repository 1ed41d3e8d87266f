"""The suite's child processes (monerod, wallet-rpc, tor): the package's own helpers, so the demo and
the tests start and stop processes one way (`anon_ticket/demo/processes.py`)."""

from anon_ticket.demo.processes import STOP_GRACE, ProcessGroup, in_parallel, reap, spawn, stop_all, terminate

__all__ = ["STOP_GRACE", "ProcessGroup", "in_parallel", "reap", "spawn", "stop_all", "terminate"]
