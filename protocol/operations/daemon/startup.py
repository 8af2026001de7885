"""Starting a daemon: reach the node (retried with backoff, as a running daemon does, so a node that is down at
start-up is waited for rather than fatal), unlock the account, and find the checked deployment record."""

from __future__ import annotations

import logging
import signal
import time

import requests

from protocol.operations.deployment import find_deployment
from protocol.operations.doctor import require_current_code

from .telemetry import Metrics

MAX_BACKOFF = 10.0  # seconds between attempts at most


def reachable(url: str, timeout: float = 5.0) -> bool:
    """True if a JSON-RPC node answers eth_chainId at ``url``."""
    try:
        r = requests.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
                          timeout=timeout)
        return r.ok and "result" in r.json()
    except (requests.RequestException, ValueError):
        return False


def connect_with_backoff(opts, role: str, logger: logging.Logger, metrics: Metrics,
                         max_seconds: float | None = None):
    """(Network, Chain, deployment record) for the shared options ``opts`` (`protocol.cli.options.ChainOptions`),
    waiting for an unreachable node with exponential backoff (0.5 s doubling to 10 s; each attempt logged as
    "node unreachable"). Returns (net, None, None) if SIGTERM/SIGINT or ``max_seconds`` ends the wait. Raises
    NetworkError / AccountError for what waiting cannot fix: an unknown network, a wrong chain id, a missing or
    stale deployment record, deployed code that is not this checkout's artifacts, a wrong passphrase."""
    from protocol.operations.networks import resolve

    stop = []
    old = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            old[sig] = signal.signal(sig, lambda *_: stop.append(1))
        except ValueError:  # not the main thread
            pass
    try:
        net = resolve(opts.network, opts.rpc_url)
        t_end = None if max_seconds is None else time.monotonic() + max_seconds
        delay, attempts = 0.5, 0
        while not reachable(net.rpc_url):
            attempts += 1
            metrics.up.labels(role).set(0)
            metrics.rpc_errors.labels(role).inc()
            logger.warning("node unreachable", extra={"fields": {"role": role, "rpc_url": net.rpc_url,
                                                                 "attempt": attempts, "retry_in": delay}})
            end = time.monotonic() + delay
            while not stop and time.monotonic() < end:
                time.sleep(0.1)
            if stop or (t_end is not None and time.monotonic() >= t_end):
                logger.info("stopped", extra={"fields": {"role": role}})
                return net, None, None
            delay = min(delay * 2, MAX_BACKOFF)
        net, chain = opts.connect(need_account=True)
        rec = find_deployment(chain, opts.deployments)
        require_current_code(chain, rec)
        return net, chain, rec
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)
