"""The owner's side of a campaign: its secrets (`Owner`, saved 0600 as `owner-<campaign>.json`), creation, licensing
and tracing laundered copies.

A work is S segments (images); variant v of segment j for licensee i is the segment watermarked
(`offchain.campaign.watermark.embed`, the campaign's public watermark key) with code ``codes[i][j][v]``, delivered
by oblivious transfer (`offchain.campaign.ot`): the owner never learns which variant a licensee received.

Laundering: a licensee holds the public key, so it can overwrite the public layer of its own copy
(`offchain.campaign.attacks.launder`). With a secret key (``Owner.secret_key``), every variant also carries its
code in a second layer only that key detects; the campaign stores a commitment to the key
(`offchain.campaign.secret.commitment`, fixed at creation, before any licence). `owner_trace` extracts
the secret layer of a suspected copy and makes the ordinary informer reports of it (commit, reveal, claim through
`protocol.campaign.informer`): the owner earns what any informer earns, f(n) per report, and nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from offchain.campaign import ot
from offchain.campaign import secret
from offchain.campaign.codes import CODE_BYTES, code_leaves, new_codes
from protocol.campaign.binding import ArgusError, Campaign, Params, ot_context
from protocol.campaign.storage import load_private, png_bytes, save_private, state_dir
from protocol.chain.connection import Chain, Tx

@dataclass
class Owner:
    """The owner's secrets: OT key, the secret watermark key (None: no secret layer) and every licensee's codes
    (hex in JSON)."""

    key: ot.OwnerKey
    codes: dict[int, list[tuple[bytes, bytes]]] = field(default_factory=dict)
    secret_key: bytes | None = None

    @staticmethod
    def path_for(campaign: str) -> Path:
        """Where the state of ``campaign`` is saved."""
        return state_dir() / f"owner-{campaign.lower()}.json"

    def path(self, campaign: str) -> Path:
        """Where the state of ``campaign`` is saved."""
        return self.path_for(campaign)

    def as_dict(self) -> dict:
        """The JSON of the saved state."""
        return {"a": hex(self.key.a), "A": [hex(v) for v in self.key.A],
                "secret_key": self.secret_key.hex() if self.secret_key is not None else None,
                "codes": {str(i): [[c0.hex(), c1.hex()] for c0, c1 in cs] for i, cs in self.codes.items()}}

    def save(self, campaign: str) -> Path:
        """Save (0600) the keys and codes for ``campaign``; returns the path."""
        return save_private(self.path(campaign), self.as_dict())

    @classmethod
    def from_dict(cls, d: dict) -> "Owner":
        """The owner of the JSON written by `save`. Raises ArgusError if the file is not one, or holds codes of
        another length than `offchain.campaign.codes.CODE_BYTES` (16: files of the 64-bit-code clients belong to
        campaigns on the earlier contract, which this version cannot address)."""
        try:
            key = ot.OwnerKey(int(d["a"], 16), tuple(int(v, 16) for v in d["A"]))
            sk = d.get("secret_key")
            codes = {int(i): [(bytes.fromhex(a), bytes.fromhex(b)) for a, b in cs] for i, cs in d["codes"].items()}
        except (KeyError, ValueError, TypeError, AttributeError) as e:
            raise ArgusError(f"not an owner state file: {type(e).__name__}: {e}") from None
        sizes = {len(c) for cs in codes.values() for pair in cs for c in pair}
        if sizes - {CODE_BYTES}:
            raise ArgusError(f"the owner state holds {8 * min(sizes)}-bit codes; this pinpoint writes and reads "
                             f"{8 * CODE_BYTES}-bit campaign codes only (a campaign deployed by an earlier version "
                             "needs that version's client)")
        return cls(key, codes, bytes.fromhex(sk) if sk else None)

    @classmethod
    def load(cls, campaign: str) -> "Owner":
        """The saved owner state of ``campaign``. Raises ArgusError if none."""
        return cls.from_dict(load_private(cls.path_for(campaign)))

    @property
    def secret_commitment(self) -> bytes:
        """`Campaign.secretKeyCommitment` of this owner: the key's commitment, or 32 zero bytes without a key."""
        return secret.commitment(self.secret_key) if self.secret_key is not None else bytes(32)


def _pending_path(owner: Owner) -> Path:
    """The pending file of an owner whose campaign is not deployed yet (named by its OT key's x, low 64 bits)."""
    return state_dir() / f"owner-pending-{owner.key.A[0] % 2**64:016x}.json"


def owner_create(chain: Chain, params: Params, escrow: int, sender: str, secret_key: bytes | None = None,
                 secret_layer: bool = True) -> tuple[Campaign, Owner, Tx]:
    """Owner: a fresh OT key and (``secret_layer``) a secret watermark key (``secret_key``, or 32 random bytes),
    saved (0600) under a pending name BEFORE the campaign is deployed with the key's commitment in
    ``params.secret_key_commitment``; then saved as the campaign's owner state and the pending file removed (a crash
    in between: `recover_owner` finds it by the campaign's OT key). Returns (campaign, owner, Tx)."""
    if secret_key is not None and not secret_layer:
        raise ArgusError("a secret key was given but the secret layer is off")
    owner = Owner(ot.OwnerKey.generate(),
                  secret_key=(secret_key or secret.new_secret_key()) if secret_layer else None)
    params = replace(params, secret_key_commitment=owner.secret_commitment)
    pending = save_private(_pending_path(owner), owner.as_dict())
    camp, tx = Campaign.create(chain, params, owner.key.A, escrow, sender=sender)
    owner.save(camp.address)
    pending.unlink()
    return camp, owner, tx


def recover_owner(camp: Campaign) -> Owner:
    """The owner state of ``camp``: saved, or a pending file of `owner_create` whose OT key is the campaign's (the
    deployment was mined, the process stopped before renaming it), then saved under the campaign. Raises ArgusError
    if neither exists, or if the saved secret key does not match the campaign's commitment."""
    path = Owner.path_for(camp.address)
    if path.exists():
        owner = Owner.load(camp.address)
    else:
        A = camp.ot_key()
        for p in sorted(state_dir().glob("owner-pending-*.json")):
            cand = Owner.from_dict(load_private(p))
            if tuple(cand.key.A) == tuple(A):
                cand.save(camp.address)
                p.unlink()
                owner = cand
                break
        else:
            raise ArgusError(f"no owner state for campaign {camp.address} (saved or pending)")
    if owner.secret_commitment != camp.params().secret_key_commitment:
        raise ArgusError("the saved secret watermark key does not match the campaign's commitment")
    return owner


def make_variants(segments: list[np.ndarray], codes: list[tuple[bytes, bytes]], wm_key: bytes,
                  secret_key: bytes | None = None) -> list[tuple[bytes, bytes]]:
    """Both watermarked variants of every segment as OT plaintexts (code || PNG); with ``secret_key``, each also
    carries its code in the secret layer (`offchain.campaign.watermark.embed`)."""
    from offchain.campaign.watermark import embed

    return [tuple(c + png_bytes(embed(img, c, wm_key, secret_key=secret_key)) for c in pair)
            for img, pair in zip(segments, codes)]


def owner_license(camp: Campaign, owner: Owner, i: int, segments: list[np.ndarray], sender: str,
                  codes: list[tuple[bytes, bytes]] | None = None, delivery_path: Path | None = None
                  ) -> tuple[list[tuple[bytes, bytes]], Tx]:
    """Owner: fresh codes for licensee ``i``, both variants of every segment (with the secret layer if the owner
    has a secret key), the OT delivery, the on-chain commitment to the code leaves
    (`offchain.campaign.codes.code_leaves`) and the delivery hash. Returns (delivery, Tx); ``codes`` overrides the
    fresh ones. The codes (in ``owner.codes``, saved 0600 with `Owner.save`) and, if ``delivery_path`` is given,
    the delivery file are written BEFORE the transaction is sent: a crash after it is mined loses nothing."""
    from protocol.campaign.storage import save_delivery

    p = camp.params()
    if len(segments) != p.segments:
        raise ArgusError(f"the campaign has {p.segments} segments, {len(segments)} images given")
    codes = codes or new_codes(p.segments)
    owner.codes[i] = codes
    delivery = ot.deliver(owner.key, camp.choice_points(i),
                          make_variants(segments, codes, p.watermark_key, owner.secret_key),
                          ot_context(camp.address, i))
    owner.save(camp.address)
    if delivery_path is not None:
        save_delivery(delivery_path, camp.address, i, delivery)
    tx = camp.license_tx(i, code_leaves(camp.address, i, codes), ot.delivery_hash(delivery), sender)
    return delivery, tx


def owner_trace(camp: Campaign, owner: Owner, images: list[np.ndarray], sender: str, every: bool = False) -> list:
    """Owner: extract the SECRET layer of a suspected copy (e.g. one whose public layer was laundered) and make one
    informer report per licensee with at least the quorum of segments in it (`protocol.campaign.informer`), from
    ``sender``: commit them with `informer_commit`, reveal and claim like any informer. Returns the
    `InformerReport`s (not yet committed). Raises ArgusError without a secret key, or if no licensee is found."""
    from protocol.campaign.informer import extract_codes, prepare_reports

    if owner.secret_key is None:
        raise ArgusError("this campaign has no secret watermark layer (created without a secret key)")
    codes = extract_codes(images, owner.secret_key, secret=True)
    return prepare_reports(camp, codes, sender, every)
