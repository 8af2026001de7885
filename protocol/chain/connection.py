"""Chain access through web3.py: the in-process chain (eth-tester + py-evm) or any JSON-RPC node.

Everything that talks to a chain goes through `Chain`: loading the shipped artifacts, deploying, sending
transactions (gas measured from receipts), decoding custom errors, reading time and moving it on dev chains. A local anvil node: `protocol.chain.anvil`.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Callable

from eth_utils import keccak as _keccak
from web3 import Web3
from web3.exceptions import ContractCustomError, ContractLogicError, ContractPanicError

from offchain.common.errors import PinpointError

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"

try:  # the in-process chain raises its own exception type for reverts during estimation
    from eth_tester.exceptions import TransactionFailed as _TesterFailed
except ImportError:  # pragma: no cover
    _TesterFailed = ContractLogicError
_REVERTS = (ContractCustomError, ContractLogicError, ContractPanicError, _TesterFailed)


class ChainError(PinpointError, RuntimeError):
    """A transaction or call failed. ``error`` is the decoded custom error name (e.g. ``"NotYourTurn"``) when the
    contract reverted with one, ``args`` its decoded arguments."""

    def __init__(self, message: str, error: str | None = None, args: tuple = ()):
        super().__init__(message)
        self.error = error
        self.error_args = args


@cache
def artifact(name: str) -> dict:
    """The committed artifact of contract ``name`` (abi, bytecode, compiler, sourceHash). Raises FileNotFoundError."""
    return json.loads((ARTIFACTS / f"{name}.json").read_text())


@cache
def _error_table() -> dict[bytes, tuple[str, list[str]]]:
    table = {}
    for p in ARTIFACTS.glob("*.json"):
        for item in json.loads(p.read_text())["abi"]:
            if item.get("type") == "error":
                types = [i["type"] for i in item["inputs"]]
                sel = _keccak(text=f"{item['name']}({','.join(types)})")[:4]
                table[sel] = (item["name"], types)
    return table


def decode_error(data: str | bytes | None) -> tuple[str | None, tuple]:
    """Decode revert data into (custom error name, args); (None, ()) if unknown."""
    if data is None:
        return None, ()
    if isinstance(data, str):
        data = bytes.fromhex(data[2:] if data.startswith("0x") else data)
    entry = _error_table().get(bytes(data[:4]))
    if entry is None:
        return None, ()
    from eth_abi import decode

    name, types = entry
    try:
        return name, tuple(decode(types, bytes(data[4:])))
    except Exception:
        return name, ()


def fee_paid(receipt) -> int:
    """The fee a mined transaction paid, in wei: gasUsed * effectiveGasPrice (0 if the node reports no price)."""
    return int(receipt["gasUsed"]) * int(receipt.get("effectiveGasPrice", 0) or 0)


GWEI = 10**9
BUMP_NUM, BUMP_DEN = 9, 8
"""A replacement pays at least 12.5% more (max fee and priority fee): geth's pool refuses a smaller bump."""


@dataclass
class FeePolicy:
    """EIP-1559 fees of the transactions a `Chain` signs (wei per gas): ``max_fee`` / ``priority_fee`` fixed, or
    (None) the node's suggestion: priority fee ``eth_maxPriorityFeePerGas``, max fee 2 x the latest base fee + the
    priority fee. ``cap`` bounds every max fee, replacements included (None: no cap)."""

    max_fee: int | None = None
    priority_fee: int | None = None
    cap: int | None = None

    def suggest(self, w3) -> tuple[int, int]:
        """The node's suggestion (max fee, priority fee), in wei per gas, before the fixed values and the cap."""
        tip = int(w3.eth.max_priority_fee)
        base = int(w3.eth.get_block("latest").get("baseFeePerGas", 0) or 0)
        return 2 * base + tip, tip

    def fees(self, w3) -> dict:
        """``maxFeePerGas`` and ``maxPriorityFeePerGas`` of a new transaction (wei per gas)."""
        need = self.max_fee is None or self.priority_fee is None
        s_max, s_tip = self.suggest(w3) if need else (0, 0)
        tip = self.priority_fee if self.priority_fee is not None else s_tip
        mx = self.max_fee if self.max_fee is not None else max(s_max, tip)
        if self.cap is not None:
            mx = min(mx, self.cap)
        return {"maxFeePerGas": mx, "maxPriorityFeePerGas": min(tip, mx)}

    def bumped(self, w3, old_max: int, old_tip: int) -> dict:
        """Fees of a replacement of a transaction that paid (``old_max``, ``old_tip``): 12.5% over the old fees and
        over the node's current suggestion. Raises ChainError if ``cap`` leaves no room for a 12.5% bump."""
        s_max, s_tip = self.suggest(w3)
        tip = -(-max(old_tip, s_tip) * BUMP_NUM // BUMP_DEN)
        mx = max(-(-old_max * BUMP_NUM // BUMP_DEN), s_max + tip - s_tip, tip)
        if self.cap is not None and mx > self.cap:
            if self.cap * BUMP_DEN < old_max * BUMP_NUM:
                raise ChainError(f"max fee cap {self.cap} wei/gas leaves no room to replace a transaction paying "
                                 f"{old_max} wei/gas (a replacement pays 12.5% more): raise --max-fee-cap")
            mx = self.cap
        return {"maxFeePerGas": mx, "maxPriorityFeePerGas": min(tip, mx)}


@dataclass
class Tx:
    """A mined transaction: its hash, gas used and the decoded logs of interest."""

    hash: str
    gas: int
    receipt: Any


class Chain:
    """A connection to one chain.

    ``Chain()`` starts the in-process chain (eth-tester on py-evm, 10 funded unlocked accounts);
    ``Chain("http://127.0.0.1:8545")`` connects to a JSON-RPC node and uses its unlocked accounts (anvil's ten
    dev accounts) unless ``keys`` (private keys, hex) are given, which then sign locally.
    """

    def __init__(self, rpc_url: str | None = None, keys: list[str] | None = None, timeout: float = 120):
        if rpc_url is None:
            from eth_tester import EthereumTester, PyEVMBackend
            from web3 import EthereumTesterProvider

            genesis = PyEVMBackend.generate_genesis_params(overrides={"gas_limit": 60_000_000})
            self.tester = EthereumTester(PyEVMBackend(genesis_parameters=genesis))
            self.w3 = Web3(EthereumTesterProvider(self.tester))
            self.kind = "in-process"
        else:
            self.tester = None
            self.w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}))
            if not self.w3.is_connected():
                raise ChainError(f"cannot reach a JSON-RPC node at {rpc_url}")
            self.kind = rpc_url
        self.local_accounts = {}
        if keys:
            from eth_account import Account

            for k in keys:
                acct = Account.from_key(k)
                self.local_accounts[acct.address] = acct
        self.accounts = list(self.local_accounts) or list(self.w3.eth.accounts)

    # ------------------------------------------------------------------------------------------------ contracts
    def contract(self, name: str, address: str):
        return self.w3.eth.contract(address=Web3.to_checksum_address(address), abi=artifact(name)["abi"])

    def deploy(self, name: str, *args, sender: str | None = None) -> tuple[Any, Tx]:
        """Deploy contract ``name`` from its committed artifact; returns (contract, Tx)."""
        a = artifact(name)
        factory = self.w3.eth.contract(abi=a["abi"], bytecode=a["bytecode"])
        tx = self.send(factory.constructor(*args), sender=sender)
        return self.contract(name, tx.receipt["contractAddress"]), tx

    # ------------------------------------------------------------------------------------------------ transactions
    on_sent: Callable[[str], None] | None = None
    """Called with the 0x-hex hash of each locally signed transaction BEFORE it is broadcast (so a caller can
    persist it first); `send` refuses to send from an unlocked node account while it is set."""
    on_mined: Callable[[str, Any], None] | None = None
    """Called with (hash, receipt) once a transaction is mined, before its status is checked."""
    receipt_timeout: float = 300
    fees: FeePolicy | None = None
    """EIP-1559 fees of the transactions `send` makes (None: web3's defaults)."""
    """Seconds `send` waits for a receipt (web3 TimeExhausted after; the transaction may still be mined)."""

    def send(self, fn, sender: str | None = None, value: int = 0, gas: int | None = None) -> Tx:
        """Send a contract call or constructor as a transaction (value in wei; gas estimated x1.2 + 20000 unless
        given) and wait for it, reporting it to the `on_sent` / `on_mined` hooks when set.

        Signs locally when ``sender`` (default: the first account) has a key in ``local_accounts``, else asks the
        node to sign. Raises ChainError with the decoded custom error if it reverts (estimation or execution), or
        if ``on_sent`` is set and ``sender`` has no local key; TimeExhausted after ``receipt_timeout`` seconds."""
        sender = sender or self.accounts[0]
        local = sender in self.local_accounts
        if self.on_sent and not local:
            raise ChainError(f"no key for {sender}: only a locally signed transaction has its hash before broadcast")
        params = {"from": sender, "value": value}
        try:
            if self.fees is not None and self.tester is None:
                params.update(self.fees.fees(self.w3))
            params["gas"] = gas or int(fn.estimate_gas(params) * 1.2) + 20_000
            if local:
                params["nonce"] = self.w3.eth.get_transaction_count(sender, "pending")
                params["chainId"] = self.w3.eth.chain_id
                signed = self.local_accounts[sender].sign_transaction(fn.build_transaction(params))
                h = "0x" + bytes(signed.hash).hex()
                if self.on_sent:
                    self.on_sent(h)
                self.w3.eth.send_raw_transaction(signed.raw_transaction)
            else:
                h = "0x" + bytes(fn.transact(params)).hex()
        except _REVERTS as e:
            raise self._revert(e) from None
        receipt = self.w3.eth.wait_for_transaction_receipt(h, timeout=self.receipt_timeout)
        if self.on_mined:
            self.on_mined(h, receipt)
        if receipt["status"] != 1:
            raise ChainError(f"transaction {h} reverted", None)
        return Tx(h, int(receipt["gasUsed"]), receipt)

    def replace(self, h: str) -> tuple[str, dict]:
        """Re-sign our pending transaction ``h`` with the same nonce and fees bumped by 12.5% (`FeePolicy.bumped`,
        the policy's cap respected) and broadcast it, calling `on_sent` first. Returns (new hash, its fees in wei per
        gas). Raises ChainError if ``h`` is not a pending transaction of a local key, or the cap forbids the bump;
        the node's refusal (e.g. the old one was mined meanwhile) propagates as a web3 exception."""
        tx = self.w3.eth.get_transaction(h)
        if tx.get("blockNumber") is not None:
            raise ChainError(f"transaction {h} is already mined")
        sender = tx["from"]
        if sender not in self.local_accounts:
            raise ChainError(f"no key for {sender}: only a locally signed transaction can be replaced")
        old_max = int(tx.get("maxFeePerGas") or tx["gasPrice"])
        old_tip = int(tx.get("maxPriorityFeePerGas") or tx["gasPrice"])
        fees = (self.fees or FeePolicy()).bumped(self.w3, old_max, old_tip)
        new = {"to": tx["to"], "data": tx["input"], "value": int(tx["value"]), "gas": int(tx["gas"]),
               "nonce": int(tx["nonce"]), "chainId": int(self.w3.eth.chain_id), "type": 2, **fees}
        if new["to"] is None:
            new.pop("to")
        signed = self.local_accounts[sender].sign_transaction(new)
        nh = "0x" + bytes(signed.hash).hex()
        if self.on_sent:
            self.on_sent(nh)
        self.w3.eth.send_raw_transaction(signed.raw_transaction)
        return nh, fees

    def call(self, fn, sender: str | None = None):
        """eth_call; raises ChainError with the decoded custom error on revert."""
        try:
            return fn.call({"from": sender or self.accounts[0]})
        except _REVERTS as e:
            raise self._revert(e) from None

    @staticmethod
    def _revert(e: Exception) -> ChainError:
        data = getattr(e, "data", None)
        if isinstance(data, dict):
            data = data.get("data")
        name, args = decode_error(data if isinstance(data, (str, bytes)) else None)
        first = e.args[0] if e.args else None
        if name is None and isinstance(first, bytes):
            name, args = decode_error(first)
        elif name is None and isinstance(first, str):
            if first.startswith("0x"):
                name, args = decode_error(first)
            elif "b'" in first or 'b"' in first:  # eth-tester: "execution reverted: b'...'"
                try:
                    name, args = decode_error(ast.literal_eval(first[first.index("b"):]))
                except (ValueError, SyntaxError):
                    pass
        msg = f"reverted with {name}{args}" if name else f"reverted: {e}"
        return ChainError(msg, name, args)

    # ------------------------------------------------------------------------------------------------ time
    def now(self) -> int:
        """Timestamp of the latest block (seconds)."""
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def advance(self, seconds: int) -> None:
        """Move a development chain's clock forward by ``seconds`` and mine a block (eth-tester or anvil)."""
        if self.tester is not None:
            self.tester.time_travel(self.now() + seconds)
            self.tester.mine_blocks(1)
        else:
            self.w3.provider.make_request("evm_increaseTime", [seconds])
            self.w3.provider.make_request("evm_mine", [])

    def balance(self, address: str) -> int:
        return int(self.w3.eth.get_balance(address))
