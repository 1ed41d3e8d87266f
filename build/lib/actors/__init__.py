"""Pykka actors that own the daemon's state, and the supervisor that keeps them running.

- `storage_writer.StorageWriter`: the only writable database connection.
- `pid_cache.PidCache`: the screen of known payment ids that answers unknown PIDs without SQL.
- `wallet_poller.WalletPoller`: polls monero-wallet-rpc and hands each batch to the writer.
- `abuse_metrics.AbuseMetrics`: request counters, statsd, and the abuse level.
- `supervisor.Supervisor`: starts them in order, restarts a dead one, gives up after a budget.
"""
