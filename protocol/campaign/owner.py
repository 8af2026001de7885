"""The owner's side of a campaign: its secrets (`Owner`, saved 0600 as `owner-<campaign>.json`) and licensing.

A work is S segments (images); variant v of segment j for licensee i is the segment watermarked
(`offchain.campaign.watermark.embed`, the campaign's public watermark key) with code ``codes[i][j][v]``, delivered
by oblivious transfer (`offchain.campaign.ot`): the owner never learns which variant a licensee received.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from offchain.campaign import ot
from offchain.campaign.codes import code_leaves, new_codes
from protocol.campaign.binding import ArgusError, Campaign, ot_context
from protocol.campaign.storage import load_private, png_bytes, save_private, state_dir
from protocol.chain.connection import Tx


@dataclass
class Owner:
    """The owner's secrets: OT key and every licensee's codes (hex in JSON)."""

    key: ot.OwnerKey
    codes: dict[int, list[tuple[bytes, bytes]]] = field(default_factory=dict)

    def path(self, campaign: str) -> Path:
        """Where the state of ``campaign`` is saved."""
        return state_dir() / f"owner-{campaign.lower()}.json"

    def save(self, campaign: str) -> Path:
        """Save (0600) the key and codes for ``campaign``; returns the path."""
        return save_private(self.path(campaign), {
            "a": hex(self.key.a), "A": [hex(v) for v in self.key.A],
            "codes": {str(i): [[c0.hex(), c1.hex()] for c0, c1 in cs] for i, cs in self.codes.items()}})

    @classmethod
    def load(cls, campaign: str) -> "Owner":
        """The saved owner state of ``campaign``. Raises ArgusError if none."""
        d = load_private(state_dir() / f"owner-{campaign.lower()}.json")
        key = ot.OwnerKey(int(d["a"], 16), tuple(int(v, 16) for v in d["A"]))
        return cls(key, {int(i): [(bytes.fromhex(a), bytes.fromhex(b)) for a, b in cs] for i, cs in d["codes"].items()})


def make_variants(segments: list[np.ndarray], codes: list[tuple[bytes, bytes]], wm_key: bytes
                  ) -> list[tuple[bytes, bytes]]:
    """Both watermarked variants of every segment as OT plaintexts (code || PNG)."""
    from offchain.campaign.watermark import embed

    return [tuple(c + png_bytes(embed(img, c, wm_key)) for c in pair) for img, pair in zip(segments, codes)]


def owner_license(camp: Campaign, owner: Owner, i: int, segments: list[np.ndarray], sender: str,
                  codes: list[tuple[bytes, bytes]] | None = None, delivery_path: Path | None = None
                  ) -> tuple[list[tuple[bytes, bytes]], Tx]:
    """Owner: fresh codes for licensee ``i``, both variants of every segment, the OT delivery, the on-chain
    commitment to the code leaves (`offchain.campaign.codes.code_leaves`) and the delivery hash. Returns
    (delivery, Tx); ``codes`` overrides the fresh
    ones. The codes (in ``owner.codes``, saved 0600 with `Owner.save`) and, if ``delivery_path`` is given, the
    delivery file are written BEFORE the transaction is sent: a crash after it is mined loses nothing."""
    from protocol.campaign.storage import save_delivery

    p = camp.params()
    if len(segments) != p.segments:
        raise ArgusError(f"the campaign has {p.segments} segments, {len(segments)} images given")
    codes = codes or new_codes(p.segments)
    owner.codes[i] = codes
    delivery = ot.deliver(owner.key, camp.choice_points(i), make_variants(segments, codes, p.watermark_key),
                          ot_context(camp.address, i))
    owner.save(camp.address)
    if delivery_path is not None:
        save_delivery(delivery_path, camp.address, i, delivery)
    tx = camp.license_tx(i, code_leaves(camp.address, i, codes), ot.delivery_hash(delivery), sender)
    return delivery, tx
