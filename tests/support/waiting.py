"""Waiting for real processes: the package's one loop (`anon_ticket/demo/waiting.py`), for every harness
and end-to-end test."""

from anon_ticket.demo.waiting import wait_for

__all__ = ["wait_for"]
