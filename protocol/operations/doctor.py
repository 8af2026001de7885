"""`pinpoint doctor` and the daemons' start-up check: is the node reachable and on the expected chain, does the
deployment record match the node, is the code on chain the code of the local artifacts (the ABI and table formats
this checkout speaks), and can the accounts pay for what they will do."""

from __future__ import annotations

from protocol.chain.connection import Chain
from protocol.inference.types import decode_task
from protocol.operations.deployment import check_code, find_deployment, genesis_hash
from protocol.operations.networks import Network, NetworkError


def code_mismatches(chain: Chain, record: dict) -> list[str]:
    """For each contract of ``record`` whose code on chain is not the local artifact's (deployed with the recorded
    constructor arguments), the reason; empty if all match."""
    out = []
    for name, entry in record["contracts"].items():
        code = bytes(chain.w3.eth.get_code(chain.w3.to_checksum_address(entry["address"])))
        args = [int(a) if str(a).isdigit() else a for a in entry.get("args", [])]
        why = check_code(name, code, args)
        if why:
            out.append(f"{name} at {entry['address']}: {why}")
    return out


def require_current_code(chain: Chain, record: dict) -> None:
    """Raise NetworkError if the deployed code is not that of the local artifacts (a daemon refuses to play a
    contract whose ABI or table formats it does not speak)."""
    bad = code_mismatches(chain, record)
    if bad:
        raise NetworkError("the deployed contracts are not those of this checkout's artifacts: " + "; ".join(bad) +
                           " (update the checkout, or run `pinpoint deploy`)")


def diagnose(net: Network, chain: Chain, deployments=None, accounts: dict[str, str] | None = None) -> list[dict]:
    """The checks as [{check, ok, detail}]: node, deployment record, code against artifacts, and per account its
    balance and credit (wei), not ok when the balance cannot post the largest bond of the last 20 tasks."""
    checks = [{"check": "node", "ok": True,
               "detail": f"{net.rpc_url}: chain id {int(chain.w3.eth.chain_id)}, genesis {genesis_hash(chain)}, "
                         f"block {int(chain.w3.eth.block_number)}"}]
    try:
        rec = find_deployment(chain, deployments)
        checks.append({"check": "deployment", "ok": True, "detail": f"Pinpoint at "
                       f"{rec['contracts']['Pinpoint']['address']} (block {rec['contracts']['Pinpoint'].get('block')})"})
    except NetworkError as e:
        return checks + [{"check": "deployment", "ok": False, "detail": str(e)}]
    bad = code_mismatches(chain, rec)
    checks.append({"check": "code", "ok": not bad, "detail": "; ".join(bad) or "code on chain = local artifacts"})
    pp = chain.contract("Pinpoint", rec["contracts"]["Pinpoint"]["address"])
    n = int(pp.functions.taskCount().call())
    bond = max((decode_task(pp, pp.functions.task(i).call()).bond for i in range(max(0, n - 20), n)), default=0)
    for alias, address in (accounts or {}).items():
        bal = chain.balance(address)
        credit = int(pp.functions.credit(address).call())
        checks.append({"check": f"account {alias}", "ok": bal > bond,
                       "detail": f"{address}: balance {bal} wei, credit {credit} wei"
                                 + (f", recent bond {bond} wei" if bond else "")})
    return checks
