"""The `Campaign` contract binding (`contracts/campaign/Campaign.sol`): parameters, typed license state, calls.

`Params` mirrors `Campaign.Params`; `License` is `Campaign.License` decoded by ABI field name
(`protocol.chain.bindings.decode`) with its `LicenseStatus`; `Campaign` wraps one deployed contract: views, events
and one method per transaction (each returns the mined `Tx`, gas in ``tx.gas``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum

from offchain.campaign import ot
from offchain.campaign.codes import (Located, code_pairs, framing_probability, leaves_of_pairs, repudiation_work,
                                     reward)
from offchain.common.errors import PinpointError
from protocol.campaign.safety import BOUNDS, violations
from protocol.chain.bindings import decode
from protocol.chain.connection import Chain, Tx


class ArgusError(PinpointError, RuntimeError):
    """A flow cannot proceed (missing state, watermark not found, delivery rejected...)."""


@dataclass
class Params:
    """Campaign parameters (`Campaign.Params`): wei, seconds, rho = rho_num/rho_den in [1/10, 1/2). The contract
    rejects values outside `contracts/campaign/Bounds.sol` (Python copy: `protocol.campaign.safety.BOUNDS`)."""

    reward: int = 10**17
    rho_num: int = 1
    rho_den: int = 3
    deposit: int = 3 * 10**17
    segments: int = 4
    min_age: int = 60
    collection_window: int = 3600
    appeal_window: int = 86400
    duration: int = 30 * 86400
    watermark_key: bytes = b"argus-demo-watermark-key-0000000"
    quorum: int = 3  # k: segments a report opens (framing by guessing succeeds with 2^-k * sum_{i<m} C(k, i))
    appeal_quorum: int = 1  # m: differing segments an appeal opens (repudiation: about m * 2^128 keccaks)
    secret_key_commitment: bytes = bytes(32)  # `offchain.campaign.secret.commitment` of the owner's secret key; 0: none

    def tuple(self, A: ot.Point) -> tuple:
        """The constructor's `Campaign.Params` tuple with the owner's OT key ``A`` (watermark key padded to 32
        bytes). Raises ArgusError unless the secret-key commitment is 32 bytes."""
        if len(self.secret_key_commitment) != 32:
            raise ArgusError("the secret-key commitment is 32 bytes")
        key = self.watermark_key.ljust(32, b"\0")[:32]
        return (self.reward, self.rho_num, self.rho_den, self.deposit, self.segments, self.min_age,
                self.collection_window, self.appeal_window, self.duration, A[0], A[1], key, self.quorum,
                self.appeal_quorum, bytes(self.secret_key_commitment))

    def f(self, n: int) -> int:
        """f(n) in wei (`offchain.campaign.codes.reward`)."""
        return reward(self.reward, self.rho_num, self.rho_den, n)


class LicenseStatus(IntEnum):
    """`Campaign.Status`: the life of a licence."""

    NONE = 0
    JOINED = 1    # deposit paid, OT choices published, waiting for the owner's code commitment
    LICENSED = 2  # code hashes committed, copy delivered by OT
    ACCUSED = 3   # a leaked copy was revealed: collection, then appeal window
    CLEARED = 4   # appeal won: framed by the owner
    GUILTY = 5    # appeal window passed: deposit slashed
    REFUNDED = 6  # left (never licensed, or not accused by the campaign's end): deposit returned

    @property
    def label(self) -> str:
        """The Solidity name ("Accused"), as printed by the CLI."""
        return self.name.capitalize()


@dataclass(frozen=True)
class License:
    """`Campaign.License`. accused_at in seconds (time of the first reveal, 0 if never accused); reports the valid
    reports n of the leaked copy; bit j of ``mask`` set if segment j was reported, bit j of ``bits`` its reported
    variant; licensed_at in seconds (0 before `Campaign.license`); hashes 32 bytes."""

    CONVERTERS = {"status": LicenseStatus}

    status: LicenseStatus
    accused_at: int
    reports: int
    bits: int
    mask: int
    licensed_at: int
    licensee: str
    choice_hash: bytes
    code_root: bytes


def ot_context(campaign: str, i: int) -> bytes:
    """The OT context of licensee ``i`` of a campaign (0x address): address (20 bytes) || id (4 bytes)."""
    return bytes.fromhex(campaign[2:]) + i.to_bytes(4, "big")


class Campaign:
    """One deployed `Campaign` contract. Every method that sends returns the `Tx` (gas in ``tx.gas``) and raises
    `protocol.chain.connection.ChainError` with the custom error name in ``.error`` on a revert."""

    def __init__(self, chain: Chain, address: str):
        """The campaign at ``address`` (0x hex) on ``chain``. Raises ArgusError if it is not an address."""
        self.chain = chain
        try:
            self.c = chain.contract("Campaign", address)
        except (ValueError, TypeError):
            raise ArgusError(f"not a contract address: {address!r}") from None
        self.address = self.c.address
        self.fn = self.c.functions

    # ------------------------------------------------------------------------------------------ deploy
    @classmethod
    def create(cls, chain: Chain, params: Params, A: ot.Point, escrow: int, sender: str | None = None
               ) -> tuple["Campaign", Tx]:
        """Deploy a campaign with ``escrow`` wei (>= reward + deposit)."""
        from protocol.chain.connection import artifact

        a = artifact("Campaign")
        factory = chain.w3.eth.contract(abi=a["abi"], bytecode=a["bytecode"])
        tx = chain.send(factory.constructor(params.tuple(A)), sender=sender, value=escrow)
        return cls(chain, tx.receipt["contractAddress"]), tx

    # ------------------------------------------------------------------------------------------ views
    def params(self) -> Params:
        """The deployed parameters (``duration`` not stored on chain: 0; see ``endsAt``)."""
        f = self.fn
        call = self.chain.call
        return Params(call(f.reward()), call(f.rhoNum()), call(f.rhoDen()), call(f.deposit()), call(f.segments()),
                      call(f.minAge()), call(f.collectionWindow()), call(f.appealWindow()), 0,
                      bytes(call(f.watermarkKey())), call(f.quorum()), call(f.appealQuorum()),
                      bytes(call(f.secretKeyCommitment())))

    def ot_key(self) -> ot.Point:
        """The owner's OT public key A (affine alt_bn128 point)."""
        return (self.chain.call(self.fn.otKeyX()), self.chain.call(self.fn.otKeyY()))

    def license(self, i: int) -> License:
        """Licensee ``i``'s on-chain `License` (decoded by field name)."""
        return decode(License, self.c, "licenseOf", self.chain.call(self.fn.licenseOf(i)))

    def count(self) -> int:
        """Number of licensees that joined (ids 0..count-1)."""
        return self.chain.call(self.fn.licenseeCount())

    def escrow(self) -> int:
        """Unreserved escrow, wei."""
        return self.chain.call(self.fn.escrow())

    def burned(self) -> int:
        """Wei locked in the contract for ever (the unpaid R - n*f(n) of resolved licences)."""
        return self.chain.call(self.fn.burned())

    def credit(self, who: str) -> int:
        """Wei ``who`` may withdraw."""
        return self.chain.call(self.fn.credit(who))

    def reward_for(self, n: int) -> int:
        """f(n) in wei, computed by the contract (`Rewards.sol`)."""
        return self.chain.call(self.fn.rewardFor(n))

    def choice_points(self, i: int) -> list[ot.Point]:
        """The choice points B_j licensee ``i`` published when joining (from its `Joined` event)."""
        logs = self.c.events.Joined().get_logs(from_block=0, argument_filters={"id": i})
        if not logs:
            raise ArgusError(f"licensee {i} has not joined")
        w = list(logs[0]["args"]["choice"])
        return [(w[2 * j], w[2 * j + 1]) for j in range(len(w) // 2)]

    def code_index(self) -> dict[int, list[bytes]]:
        """Licensee id -> its 2*S committed 16-byte code leaves (the pair words of the `Licensed` events, split): the
        index informers use."""
        return {int(lg["args"]["id"]): leaves_of_pairs([bytes(w) for w in lg["args"]["codePairs"]])
                for lg in self.c.events.Licensed().get_logs(from_block=0)}

    def delivery_hash(self, i: int) -> bytes:
        """The delivery hash the owner committed for licensee ``i`` (32 bytes). Raises ArgusError if not licensed."""
        logs = self.c.events.Licensed().get_logs(from_block=0, argument_filters={"id": i})
        if not logs:
            raise ArgusError(f"licensee {i} is not licensed")
        return bytes(logs[0]["args"]["deliveryHash"])

    def reveals_close(self) -> int:
        """Seconds: no first reveal from then on (endsAt + minAge + collectionWindow); licensed deposits are
        refundable from then."""
        return self.chain.call(self.fn.revealsClose())

    def status(self) -> dict:
        """Everything public: parameters, their bounds and any violation (`protocol.campaign.safety`), escrow,
        burned wei, balance, every licensee with the seconds left in its collection and appeal windows (JSON)."""
        p = self.params()
        now, ends = self.chain.now(), self.chain.call(self.fn.endsAt())
        lic = [self.license(i) for i in range(self.count())]

        def left(t: int) -> int:
            return max(0, t - now)

        def windows(l: License) -> dict:
            if not l.accused_at:
                return {}
            ce = l.accused_at + p.collection_window
            return {"collection_ends_at": ce, "collection_left_s": left(ce),
                    "appeal_ends_at": ce + p.appeal_window, "appeal_left_s": left(ce + p.appeal_window)}

        return {
            "campaign": self.address, "owner": self.chain.call(self.fn.owner()),
            "reward_wei": p.reward, "rho": f"{p.rho_num}/{p.rho_den}", "deposit_wei": p.deposit,
            "segments": p.segments, "quorum": p.quorum, "appeal_quorum": p.appeal_quorum,
            "framing_probability": float(framing_probability(p.quorum, p.appeal_quorum)),
            "repudiation_keccaks_log2": round(math.log2(repudiation_work(p.appeal_quorum)), 2),
            "secret_key_commitment": "0x" + p.secret_key_commitment.hex(),
            "min_age_s": p.min_age, "collection_window_s": p.collection_window,
            "appeal_window_s": p.appeal_window, "ends_at": ends, "ends_in_s": left(ends),
            "reveals_close": self.reveals_close(), "reveals_close_in_s": left(self.reveals_close()),
            "now": now, "escrow_wei": self.escrow(), "burned_wei": self.chain.call(self.fn.burned()),
            "balance_wei": self.chain.balance(self.address),
            "bounds": BOUNDS.__dict__, "chain_bounds": list(self.chain.call(self.fn.bounds())),
            "violations": violations(p, ends, now),
            "licensees": [{"id": i, "licensee": l.licensee, "status": l.status.label, "reports": l.reports,
                           "accused_at": l.accused_at, "bits": l.bits, "mask": l.mask, **windows(l),
                           "reward_per_report_wei": p.f(l.reports) if l.reports else 0} for i, l in enumerate(lic)],
        }

    # ------------------------------------------------------------------------------------------ transactions
    def join(self, choice: ot.Choice, sender: str) -> tuple[int, Tx]:
        """Join with the choice points and the deposit; returns (licensee id, Tx)."""
        tx = self.chain.send(self.fn.join(choice.words()), sender=sender, value=self.chain.call(self.fn.deposit()))
        ev = self.c.events.Joined().process_receipt(tx.receipt)[0]
        return int(ev["args"]["id"]), tx

    def license_tx(self, i: int, hashes: list[bytes], dhash: bytes, sender: str) -> Tx:
        """Owner: commit the 2*S code leaves (`offchain.campaign.codes.code_leaves`, sent as their S pair words) and
        the delivery hash of licensee ``i``."""
        return self.chain.send(self.fn.license(i, code_pairs(hashes), dhash), sender=sender)

    def commit(self, c: bytes, sender: str) -> Tx:
        """Informer: commit to a report (32-byte commitment)."""
        return self.chain.send(self.fn.commit(c), sender=sender)

    def reveal(self, loc: Located, salt: bytes, sender: str) -> Tx:
        """Informer: reveal the located segments (items, bits, multiproof) and the salt of its commitment."""
        return self.chain.send(self.fn.reveal(loc.id, loc.mask, loc.bits, loc.items, loc.proof, salt), sender=sender)

    def claim(self, commitment: bytes, sender: str) -> Tx:
        """Informer: claim the reward of its revealed report ``commitment`` (32 bytes)."""
        return self.chain.send(self.fn.claimReward(commitment), sender=sender)

    def commitment_of(self, informer: str, commitment: bytes) -> tuple[int, int, int]:
        """(time made in seconds, stage 0 committed / 1 revealed / 2 claimed, licensee id) of an informer's
        commitment; (0, 0, 0) if none."""
        t, stage, i = self.chain.call(self.fn.commitmentOf(informer, commitment))
        return int(t), int(stage), int(i)

    def appeal(self, i: int, choice: ot.Choice, segments: int | list[int], sender: str) -> Tx:
        """Licensee ``i``: open its OT choices (b_j) of ``segments`` (ascending; at least the appeal quorum) to show
        the reported variants are not its own."""
        segs = [segments] if isinstance(segments, int) else sorted(segments)
        return self.chain.send(self.fn.appeal(i, choice.words(), segs, [choice.b[j] for j in segs]), sender=sender)

    def set_guilty(self, i: int, sender: str) -> Tx:
        """Anyone: slash accused licensee ``i`` once its appeal window has passed."""
        return self.chain.send(self.fn.setGuilty(i), sender=sender)

    def withdraw(self, sender: str) -> Tx:
        """Withdraw ``sender``'s credit."""
        return self.chain.send(self.fn.withdraw(), sender=sender)

    def withdraw_escrow(self, sender: str) -> Tx:
        """Owner: withdraw the unreserved escrow after the campaign's end."""
        return self.chain.send(self.fn.withdrawEscrow(), sender=sender)

    def refund(self, i: int, sender: str) -> Tx:
        """Refund licensee ``i``'s deposit (never licensed, or not accused by the end)."""
        return self.chain.send(self.fn.refundDeposit(i), sender=sender)
