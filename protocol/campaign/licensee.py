"""The licensee's side of a campaign: join with OT choice points, accept the delivered copy, appeal a framing.

`Licensee` holds its OT choices (sigma_j, b_j), secret until an appeal opens one of them; saved 0600 as
`licensee-<campaign>-<id>.json`.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from offchain.campaign import ot
from offchain.campaign.codes import CODE_BYTES, choice_hash, code_leaf
from protocol.campaign.binding import ArgusError, Campaign, ot_context
from protocol.campaign.storage import image_of_png, load_private, save_private, state_dir
from protocol.chain.connection import Tx


@dataclass
class Licensee:
    """A licensee's OT choices for one campaign (secret until an appeal)."""

    campaign: str
    id: int
    choice: ot.Choice

    @staticmethod
    def path_for(campaign: str, i: int) -> Path:
        """Where licensee ``i``'s choices for ``campaign`` are saved."""
        return state_dir() / f"licensee-{campaign.lower()}-{i}.json"

    def as_dict(self) -> dict:
        """The JSON of the saved state (scalars and points in hex)."""
        c = self.choice
        return {"campaign": self.campaign, "id": self.id, "sigma": c.sigma, "b": [hex(v) for v in c.b],
                "B": [[hex(x), hex(y)] for x, y in c.B]}

    def save(self) -> Path:
        """Save (0600) the choices; returns the path."""
        return save_private(self.path_for(self.campaign, self.id), self.as_dict())

    @classmethod
    def from_dict(cls, d: dict) -> "Licensee":
        """The licensee of the JSON written by `save` (or a pending file, id -1)."""
        return cls(d["campaign"], d["id"], ot.Choice(d["sigma"], [int(v, 16) for v in d["b"]],
                                                     [(int(x, 16), int(y, 16)) for x, y in d["B"]]))

    @classmethod
    def load(cls, campaign: str, i: int) -> "Licensee":
        """The saved choices of licensee ``i``. Raises ArgusError if none."""
        return cls.from_dict(load_private(cls.path_for(campaign, i)))


def pending_files(campaign: str) -> list[Path]:
    """The choices saved before a `join` whose licensee id is not known locally yet (a crash after sending)."""
    return sorted(state_dir().glob(f"licensee-{campaign.lower()}-pending-*.json"))


def recover(camp: Campaign) -> tuple[list[Licensee], list[Path]]:
    """Reconcile pending choice files with the chain: a pending file whose choice points appear in a `Joined`
    event (the join was mined, the local file never learnt the id) is saved under that id and removed. Returns
    (recovered licensees, pending files whose join is not on chain: never mined, or not yet)."""
    pend = pending_files(camp.address)
    if not pend:
        return [], []
    joined = {tuple(int(w) for w in lg["args"]["choice"]): int(lg["args"]["id"])
              for lg in camp.c.events.Joined().get_logs(from_block=0)}
    done, left = [], []
    for path in pend:
        lic = Licensee.from_dict(load_private(path))
        i = joined.get(tuple(lic.choice.words()))
        if i is None:
            left.append(path)
            continue
        lic = Licensee(camp.address, i, lic.choice)
        lic.save()
        path.unlink()
        done.append(lic)
    return done, left


def load_or_recover(camp: Campaign, i: int) -> Licensee:
    """`Licensee.load`, after reconciling pending files with the chain (`recover`). Raises ArgusError if licensee
    ``i``'s choices are neither saved nor recoverable."""
    if not Licensee.path_for(camp.address, i).exists():
        recover(camp)
    return Licensee.load(camp.address, i)


def licensee_join(camp: Campaign, sender: str, sigma: list[int] | None = None) -> tuple[Licensee, Tx]:
    """Licensee: refuse a campaign outside the safe parameters (`protocol.campaign.safety.require_safe`, raises
    `protocol.campaign.safety.UnsafeCampaign`), then random choice bits (unless given), choice points, `join`
    with the deposit. The choices are saved (0600) under a pending name BEFORE the join is sent (a crash after it is
    mined loses nothing: the file holds the choice points that the `Joined` event shows on chain, and `recover`
    renames it by the id found there), then under the licensee id."""
    from protocol.campaign.safety import require_safe

    p = camp.params()
    require_safe(p, camp.chain.call(camp.fn.endsAt()), camp.chain.now())
    s = p.segments
    sigma = sigma if sigma is not None else [secrets.randbelow(2) for _ in range(s)]
    choice = ot.choose(camp.ot_key(), sigma)
    pending = Licensee(camp.address, -1, choice)
    tag = choice_hash(choice.words()).hex()[:16]
    pending_path = save_private(state_dir() / f"licensee-{camp.address.lower()}-pending-{tag}.json",
                                pending.as_dict())
    i, tx = camp.join(choice, sender)
    lic = Licensee(camp.address, i, choice)
    lic.save()
    pending_path.unlink()
    return lic, tx


def licensee_accept(camp: Campaign, lic: Licensee, delivery: list[tuple[bytes, bytes]], check_watermark: bool = True
                    ) -> list[np.ndarray]:
    """Licensee: check the delivery against the on-chain delivery hash, decrypt its variants, check each code
    against the owner's committed hashes and (optionally) that the image carries that code. Returns the images.

    Raises `offchain.campaign.ot.DeliveryError` (make a `ot.prove_cheating` proof) or ArgusError."""
    if ot.delivery_hash(delivery) != camp.delivery_hash(lic.id):
        raise ArgusError("the delivery does not match the owner's on-chain delivery hash")
    leaves = camp.code_index()[lic.id]

    def leaf(j: int, v: int, code: bytes) -> bytes:
        return code_leaf(camp.address, lic.id, j, v, code)

    pts = ot.receive(lic.choice, camp.ot_key(), delivery, leaves, ot_context(camp.address, lic.id), leaf)
    images = [image_of_png(p[CODE_BYTES:]) for p in pts]
    if check_watermark:
        from offchain.campaign.watermark import WatermarkNotFound, extract

        key = camp.params().watermark_key
        for j, (p, img) in enumerate(zip(pts, images)):
            try:
                got = extract(img, key)
            except WatermarkNotFound:
                got = None
            if got != p[:CODE_BYTES]:
                raise ot.DeliveryError(f"segment {j}: the image does not carry its code", j)
    return images


def appeal_segments(lic: Licensee, accused_bits: int, accused_mask: int, quorum: int = 1) -> list[int] | None:
    """Every reported segment (in ``accused_mask``) whose reported variant differs from the licensee's choice, or
    None if there are fewer than ``quorum`` (the campaign's appeal quorum m): no appeal possible."""
    segs = [j for j, s in enumerate(lic.choice.sigma) if accused_mask >> j & 1 and (accused_bits >> j) & 1 != s]
    return segs if len(segs) >= max(1, quorum) else None
