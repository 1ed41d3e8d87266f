"""Pykka actors that own the daemon's state, and the supervisor that keeps them running.

- `storage_writer.StorageWriter`: the only writable database connection.
- `pid_cache.PidCache`: the screen of known payment ids that answers unknown PIDs without SQL.
- `wallet_poller.WalletPoller`: polls monero-wallet-rpc, puts each batch's payment ids on the PID
  screen and hands the batch to the writer.
- `abuse_metrics.AbuseMetrics`: request counters, statsd, and the abuse level.
- `supervisor.Supervisor`: starts them in order, restarts a dead one, gives up after a budget.
- `locator.ActorLocator`: where callers find the current actors; `published.PublishedState`: what
  actors publish for lock-free reads; `fatal.FatalSignal`: an actor's request to stop the daemon.
"""
