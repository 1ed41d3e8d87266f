"""Test support: a fake monero-wallet-rpc for fault injection and a real regtest chain harness.

- `tests.support.fake_wallet.FakeWallet`: a real JSON-RPC HTTP server on a loopback socket whose answers
  have the exact shapes of monero-wallet-rpc 0.18 (checked against the captured samples).
- `tests.support.regtest.RegtestChain`: real `monerod --regtest` plus two real `monero-wallet-rpc`.
- `tests.support.fixtures`: pytest fixtures for both (import them into conftest.py).
"""
