"""The informer's side of a campaign: extract the watermark of a pirated copy, locate the licensee(s), commit, reveal,
claim.

A pirated copy may be partial (at least the campaign's quorum k of one licensee's segments) or mixed (segments of
several licensees): `prepare_reports` makes one report per licensee with at least k segments in it.

`InformerReport` holds the located watermark and the salt of a commitment; it is saved (0600, as
`report-<campaign>-<commitment>.json`) *before* the commit transaction is sent, so a crash between commit and
reveal loses nothing.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from offchain.campaign.codes import Located, commitment, locate_all
from protocol.campaign.binding import ArgusError, Campaign
from protocol.campaign.storage import save_private, state_dir
from protocol.chain.connection import Tx


def extract_codes(images: list[np.ndarray], wm_key: bytes, secret: bool = False) -> list[bytes]:
    """The watermark codes (`offchain.campaign.codes.CODE_BYTES` each) found in the images (images without one are
    skipped); ``secret``: the secret layer, ``wm_key`` then the owner's secret key. Raises ArgusError if none."""
    from offchain.campaign.watermark import WatermarkNotFound, extract

    out = []
    for img in images:
        try:
            out.append(extract(img, wm_key, secret=secret))
        except WatermarkNotFound:
            continue
    if not out:
        raise ArgusError("no watermark found in the pirated copy")
    return out


@dataclass
class InformerReport:
    """What an informer keeps between commit and reveal (and until it claims)."""

    campaign: str
    informer: str
    id: int
    mask: int
    bits: int
    items: list[bytes]
    proof: list[bytes]
    salt: bytes
    commitment: bytes
    committed_tx: str | None = None
    revealed_tx: str | None = None
    claimed_tx: str | None = None

    @property
    def located(self) -> Located:
        """The report as `offchain.campaign.codes.Located` (what `Campaign.reveal` sends)."""
        return Located(self.id, self.mask, self.bits, self.items, self.proof)

    def path(self) -> Path:
        """Where this report is saved."""
        return state_dir() / f"report-{self.campaign.lower()}-{self.commitment.hex()}.json"

    def save(self) -> Path:
        """Save (0600); returns the path."""
        d = asdict(self)
        d.update(items=[w.hex() for w in self.items], salt=self.salt.hex(), commitment=self.commitment.hex(),
                 proof=[h.hex() for h in self.proof])
        return save_private(self.path(), d)

    @classmethod
    def from_dict(cls, d: dict) -> "InformerReport":
        """The report of the JSON written by `save`."""
        return cls(d["campaign"], d["informer"], d["id"], d["mask"], d["bits"], [bytes.fromhex(w) for w in d["items"]],
                   [bytes.fromhex(h) for h in d["proof"]], bytes.fromhex(d["salt"]),
                   bytes.fromhex(d["commitment"]), d.get("committed_tx"), d.get("revealed_tx"), d.get("claimed_tx"))

    @classmethod
    def all(cls, campaign: str | None = None) -> list["InformerReport"]:
        """Every saved report (of ``campaign`` if given), sorted by file name."""
        pat = f"report-{campaign.lower()}-*.json" if campaign else "report-*.json"
        return [cls.from_dict(json.loads(p.read_text())) for p in sorted(state_dir().glob(pat))]


def report_for(camp: Campaign, loc: Located, informer: str, salt: bytes | None = None) -> InformerReport:
    """The report (fresh salt unless given, and its commitment) of one located licensee."""
    salt = salt or secrets.token_bytes(32)
    return InformerReport(camp.address, informer, loc.id, loc.mask, loc.bits, loc.items, loc.proof, salt,
                          commitment(informer, loc.blob, salt))


def prepare_reports(camp: Campaign, codes: list[bytes], informer: str, every: bool = False) -> list[InformerReport]:
    """Informer: one report per licensee with at least the campaign's quorum k of segments among the extracted
    codes (a mixed copy accuses each of its licensees), each opening k segments (``every``: all found). Raises
    ArgusError if no licensee has k segments in the copy."""
    found = locate_all(codes, camp.code_index(), camp.address, camp.params().quorum, every)
    if not found:
        raise ArgusError(f"the copy holds fewer than {camp.params().quorum} segments (the campaign's quorum) of "
                         "every licensee")
    return [report_for(camp, loc, informer) for loc in found]


def prepare_report(camp: Campaign, codes: list[bytes], informer: str, salt: bytes | None = None,
                   every: bool = False) -> InformerReport:
    """Informer: the report of the licensee with the most segments among the extracted codes (`prepare_reports`).
    Raises ArgusError if none has the quorum."""
    try:
        loc = locate_all(codes, camp.code_index(), camp.address, camp.params().quorum, every)[0]
    except IndexError:
        raise ArgusError(f"the copy holds fewer than {camp.params().quorum} segments (the campaign's quorum) of "
                         "every licensee") from None
    return report_for(camp, loc, informer, salt)


def informer_commit(camp: Campaign, rep: InformerReport) -> Tx:
    """Save the report state (0600) first, then send the commitment; the state records the tx."""
    rep.save()
    tx = camp.commit(rep.commitment, rep.informer)
    rep.committed_tx = tx.hash
    rep.save()
    return tx


def informer_reveal(camp: Campaign, rep: InformerReport) -> Tx:
    """Reveal the report's codes and salt (after the minimum age); the state records the tx."""
    tx = camp.reveal(rep.located, rep.salt, rep.informer)
    rep.revealed_tx = tx.hash
    rep.save()
    return tx


def informer_claim(camp: Campaign, rep: InformerReport) -> Tx:
    """Claim f(n) for the report's licensee (after the collection window); the state records the tx."""
    tx = camp.claim(rep.commitment, rep.informer)
    rep.claimed_tx = tx.hash
    rep.save()
    return tx


def chain_state(camp: Campaign, rep: InformerReport) -> str:
    """Where the report stands on chain, whatever the local file says (`Campaign.commitmentOf`): "committed",
    "revealed", "claimed", or "uncommitted" (no trace: the commit was never mined)."""
    t, stage, _ = camp.commitment_of(rep.informer, rep.commitment)
    return "uncommitted" if t == 0 else ("committed", "revealed", "claimed")[stage]


def reconcile(camp: Campaign, rep: InformerReport) -> str:
    """`chain_state` of the report, written back into its file: a reveal or claim mined before a crash (its tx
    hash never saved) is recorded as ``"on-chain"``, so the next step (claim) is reachable. Returns the state."""
    st = chain_state(camp, rep)
    changed = False
    if st in ("revealed", "claimed") and not rep.revealed_tx:
        rep.revealed_tx, changed = "on-chain", True
    if st == "claimed" and not rep.claimed_tx:
        rep.claimed_tx, changed = "on-chain", True
    if changed:
        rep.save()
    return st


def each_report(camp: Campaign, who: str, stage: str, act) -> tuple[list, list]:
    """Run ``act(rep)`` (-> dict) on each of ``who``'s saved reports of ``camp`` whose on-chain state (`reconcile`,
    which also repairs the file) is "committed" (stage "reveal") or "revealed" (stage "claim"), each on its own: one
    failure never stops the others. Returns (results, error lines)."""
    from offchain.common.errors import PinpointError
    from protocol.chain.connection import ChainError

    want = {"reveal": "committed", "claim": "revealed"}[stage]
    done, errors = [], []
    for rep in InformerReport.all(camp.address):
        if rep.informer.lower() != who.lower():
            continue
        tag = f"report {rep.commitment.hex()[:16]}... (licensee {rep.id})"
        try:
            st = reconcile(camp, rep)
            if st == want:
                done.append(act(rep))
            elif st == "uncommitted" and stage == "reveal":
                errors.append(f"{tag}: its commitment is not on chain (the commit was never mined)")
        except (ChainError, PinpointError) as e:
            errors.append(f"{tag}: {e}")
    return done, errors


def audit_trace(camp: Campaign, secret_key: bytes, images: list[np.ndarray]) -> list[Located]:
    """Anyone, once the owner discloses its secret watermark key: check it against the commitment the campaign
    stored at creation (`Campaign.secretKeyCommitment`, before any licence) and return the licensees whose codes
    the SECRET layer of ``images`` carries (`offchain.campaign.codes.locate_all`, at least the quorum of segments
    each): what the owner's trace of that copy must have found. Raises ArgusError if the key is not the committed
    one, or no watermark is found."""
    from offchain.campaign.secret import opens

    if not opens(camp.params().secret_key_commitment, secret_key):
        raise ArgusError("this key is not the secret key the campaign committed to")
    codes = extract_codes(images, secret_key, secret=True)
    return locate_all(codes, camp.code_index(), camp.address, camp.params().quorum)
