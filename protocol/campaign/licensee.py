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
from offchain.campaign.codes import CODE_BYTES, choice_hash
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
    def load(cls, campaign: str, i: int) -> "Licensee":
        """The saved choices of licensee ``i``. Raises ArgusError if none."""
        d = load_private(cls.path_for(campaign, i))
        return cls(d["campaign"], d["id"], ot.Choice(d["sigma"], [int(v, 16) for v in d["b"]],
                                                     [(int(x, 16), int(y, 16)) for x, y in d["B"]]))


def licensee_join(camp: Campaign, sender: str, sigma: list[int] | None = None) -> tuple[Licensee, Tx]:
    """Licensee: refuse a campaign outside the safe parameters (`protocol.campaign.safety.require_safe`, raises
    `protocol.campaign.safety.UnsafeCampaign`), then random choice bits (unless given), choice points, `join`
    with the deposit. The choices are saved (0600) under a pending name BEFORE the join is sent (a crash after it is
    mined loses nothing: the file holds the choice points that `Campaign.choice_points` shows on chain), then under
    the licensee id."""
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
    hashes = camp.code_index()[lic.id]
    pts = ot.receive(lic.choice, camp.ot_key(), delivery, hashes, ot_context(camp.address, lic.id))
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


def appeal_segment(lic: Licensee, accused_bits: int) -> int | None:
    """A segment where the reported variant differs from the licensee's choice, or None (no appeal possible)."""
    for j, s in enumerate(lic.choice.sigma):
        if (accused_bits >> j) & 1 != s:
            return j
    return None
