"""Argus anti-piracy campaigns on chain: the `Campaign` binding and the owner, licensee and informer flows.

Roles and what each keeps locally (JSON under the state dir, `state_dir()`, files mode 0600):

* owner - `Owner`: the OT secret ``a`` and every licensee's codes (`owner-<campaign>.json`);
* licensee - `Licensee`: its OT choices (sigma_j, b_j) (`licensee-<campaign>-<id>.json`), needed to appeal;
* informer - `InformerReport`: the located watermark and the salt of a commitment
  (`report-<campaign>-<commitment>.json`), written *before* the commit transaction is sent, so a crash between
  commit and reveal loses nothing.

A work is S segments (images); variant v of segment j for licensee i is the segment watermarked
(`offchain.campaign.watermark.embed`, the campaign's public watermark key) with code ``codes[i][j][v]``. Pure computation
lives in `offchain.campaign.codes` and `offchain.campaign.ot`; this module talks to the chain through `protocol.chain.Chain`.
"""

from __future__ import annotations

import io
import json
import os
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from offchain.campaign import ot
from offchain.campaign.codes import (CODE_BYTES, Located, code_hash, code_hashes, commitment, locate, new_codes,
                                  reward)

from protocol.chain.connection import Chain, Tx
from protocol.config import home
from offchain.common.errors import PinpointError

STATUS = ("None", "Joined", "Licensed", "Accused", "Cleared", "Guilty", "Refunded")


class ArgusError(PinpointError, RuntimeError):
    """A flow cannot proceed (missing state, watermark not found, delivery rejected...)."""


# ---------------------------------------------------------------------------------------------------- state dir
def state_dir() -> Path:
    """$PINPOINT_HOME or ~/.pinpoint, with an `argus/` subfolder (created mode 0700)."""
    root = home() / "argus"
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    return root


def save_private(path: Path, obj: dict) -> Path:
    """Write JSON readable by the owner only (0600), atomically (temp file + rename)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path


def load_private(path: Path) -> dict:
    if not path.exists():
        raise ArgusError(f"no saved state at {path}")
    return json.loads(path.read_text())


# ---------------------------------------------------------------------------------------------------- images
def load_image(path: Path) -> np.ndarray:
    """uint8 HxWx3 RGB array of an image file."""
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


def png_bytes(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image, "RGB").save(buf, format="PNG")
    return buf.getvalue()


def image_of_png(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


def image_files(paths: list[Path]) -> list[Path]:
    """Expand directories to their image files (sorted by name); keep files as given."""
    out = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            out += sorted(q for q in p.iterdir() if q.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp", ".webp"))
        else:
            out.append(p)
    if not out:
        raise ArgusError("no image files given")
    return out


# ---------------------------------------------------------------------------------------------------- binding
@dataclass
class Params:
    """Campaign parameters (`Campaign.Params`): wei, seconds, rho = rho_num/rho_den < 1/2."""

    reward: int = 10**17
    rho_num: int = 1
    rho_den: int = 3
    deposit: int = 3 * 10**17
    segments: int = 4
    min_age: int = 60
    collection_window: int = 3600
    appeal_window: int = 3600
    duration: int = 30 * 86400
    watermark_key: bytes = b"argus-demo-watermark-key-0000000"

    def tuple(self, A: ot.Point) -> tuple:
        key = self.watermark_key.ljust(32, b"\0")[:32]
        return (self.reward, self.rho_num, self.rho_den, self.deposit, self.segments, self.min_age,
                self.collection_window, self.appeal_window, self.duration, A[0], A[1], key)

    def f(self, n: int) -> int:
        """f(n) in wei (`offchain.campaign.codes.reward`)."""
        return reward(self.reward, self.rho_num, self.rho_den, n)


@dataclass
class LicenseState:
    id: int
    licensee: str
    status: str
    accused_at: int
    reports: int
    bits: int
    choice_hash: bytes
    code_root: bytes


class Campaign:
    """One deployed `Campaign` contract. Every method that sends returns the `Tx` (gas in ``tx.gas``) and raises
    `protocol.chain.ChainError` with the custom error name in ``.error`` on a revert."""

    def __init__(self, chain: Chain, address: str):
        self.chain = chain
        self.c = chain.contract("Campaign", address)
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
        f = self.fn
        call = self.chain.call
        return Params(call(f.reward()), call(f.rhoNum()), call(f.rhoDen()), call(f.deposit()), call(f.segments()),
                      call(f.minAge()), call(f.collectionWindow()), call(f.appealWindow()), 0,
                      bytes(call(f.watermarkKey())))

    def ot_key(self) -> ot.Point:
        return (self.chain.call(self.fn.otKeyX()), self.chain.call(self.fn.otKeyY()))

    def license(self, i: int) -> LicenseState:
        r = self.chain.call(self.fn.licenseOf(i))
        return LicenseState(i, r[0], STATUS[r[1]], r[2], r[3], r[4], bytes(r[5]), bytes(r[6]))

    def count(self) -> int:
        return self.chain.call(self.fn.licenseeCount())

    def escrow(self) -> int:
        return self.chain.call(self.fn.escrow())

    def credit(self, who: str) -> int:
        return self.chain.call(self.fn.credit(who))

    def reward_for(self, n: int) -> int:
        return self.chain.call(self.fn.rewardFor(n))

    def choice_points(self, i: int) -> list[ot.Point]:
        """The choice points B_j licensee ``i`` published when joining (from its `Joined` event)."""
        logs = self.c.events.Joined().get_logs(from_block=0, argument_filters={"id": i})
        if not logs:
            raise ArgusError(f"licensee {i} has not joined")
        w = list(logs[0]["args"]["choice"])
        return [(w[2 * j], w[2 * j + 1]) for j in range(len(w) // 2)]

    def code_index(self) -> dict[int, list[bytes]]:
        """Licensee id -> its 2*S committed code hashes (from the `Licensed` events): the index informers use."""
        return {int(lg["args"]["id"]): [bytes(h) for h in lg["args"]["codeHashes"]]
                for lg in self.c.events.Licensed().get_logs(from_block=0)}

    def delivery_hash(self, i: int) -> bytes:
        logs = self.c.events.Licensed().get_logs(from_block=0, argument_filters={"id": i})
        if not logs:
            raise ArgusError(f"licensee {i} is not licensed")
        return bytes(logs[0]["args"]["deliveryHash"])

    def status(self) -> dict:
        """Everything public: parameters, escrow, balance, every licensee (JSON-ready)."""
        p = self.params()
        lic = [self.license(i) for i in range(self.count())]
        return {
            "campaign": self.address, "owner": self.chain.call(self.fn.owner()),
            "reward_wei": p.reward, "rho": f"{p.rho_num}/{p.rho_den}", "deposit_wei": p.deposit,
            "segments": p.segments, "min_age_s": p.min_age, "collection_window_s": p.collection_window,
            "appeal_window_s": p.appeal_window, "ends_at": self.chain.call(self.fn.endsAt()),
            "now": self.chain.now(), "escrow_wei": self.escrow(), "balance_wei": self.chain.balance(self.address),
            "licensees": [{"id": l.id, "licensee": l.licensee, "status": l.status, "reports": l.reports,
                           "accused_at": l.accused_at, "bits": l.bits,
                           "reward_per_report_wei": p.f(l.reports) if l.reports else 0} for l in lic],
        }

    # ------------------------------------------------------------------------------------------ transactions
    def join(self, choice: ot.Choice, sender: str) -> tuple[int, Tx]:
        tx = self.chain.send(self.fn.join(choice.words()), sender=sender, value=self.chain.call(self.fn.deposit()))
        ev = self.c.events.Joined().process_receipt(tx.receipt)[0]
        return int(ev["args"]["id"]), tx

    def license_tx(self, i: int, hashes: list[bytes], dhash: bytes, sender: str) -> Tx:
        return self.chain.send(self.fn.license(i, hashes, dhash), sender=sender)

    def commit(self, c: bytes, sender: str) -> Tx:
        return self.chain.send(self.fn.commit(c), sender=sender)

    def reveal(self, loc: Located, salt: bytes, sender: str) -> Tx:
        return self.chain.send(self.fn.reveal(loc.id, loc.codes, loc.bits, loc.other_hashes, salt), sender=sender)

    def claim(self, i: int, sender: str) -> Tx:
        return self.chain.send(self.fn.claimReward(i), sender=sender)

    def appeal(self, i: int, choice: ot.Choice, segment: int, sender: str) -> Tx:
        return self.chain.send(self.fn.appeal(i, choice.words(), segment, choice.b[segment]), sender=sender)

    def set_guilty(self, i: int, sender: str) -> Tx:
        return self.chain.send(self.fn.setGuilty(i), sender=sender)

    def withdraw(self, sender: str) -> Tx:
        return self.chain.send(self.fn.withdraw(), sender=sender)

    def withdraw_escrow(self, sender: str) -> Tx:
        return self.chain.send(self.fn.withdrawEscrow(), sender=sender)

    def refund(self, i: int, sender: str) -> Tx:
        return self.chain.send(self.fn.refundDeposit(i), sender=sender)


# ---------------------------------------------------------------------------------------------------- owner
@dataclass
class Owner:
    """The owner's secrets: OT key and every licensee's codes (hex in JSON)."""

    key: ot.OwnerKey
    codes: dict[int, list[tuple[bytes, bytes]]] = field(default_factory=dict)

    def path(self, campaign: str) -> Path:
        return state_dir() / f"owner-{campaign.lower()}.json"

    def save(self, campaign: str) -> Path:
        return save_private(self.path(campaign), {
            "a": hex(self.key.a), "A": [hex(v) for v in self.key.A],
            "codes": {str(i): [[c0.hex(), c1.hex()] for c0, c1 in cs] for i, cs in self.codes.items()}})

    @classmethod
    def load(cls, campaign: str) -> "Owner":
        d = load_private(state_dir() / f"owner-{campaign.lower()}.json")
        key = ot.OwnerKey(int(d["a"], 16), tuple(int(v, 16) for v in d["A"]))
        return cls(key, {int(i): [(bytes.fromhex(a), bytes.fromhex(b)) for a, b in cs] for i, cs in d["codes"].items()})


def context(campaign: str, i: int) -> bytes:
    """The OT context of licensee ``i`` of a campaign: address (20 bytes) || id (4 bytes)."""
    return bytes.fromhex(campaign[2:]) + i.to_bytes(4, "big")


def make_variants(segments: list[np.ndarray], codes: list[tuple[bytes, bytes]], wm_key: bytes
                  ) -> list[tuple[bytes, bytes]]:
    """Both watermarked variants of every segment as OT plaintexts (code || PNG)."""
    from offchain.campaign.watermark import embed

    return [tuple(c + png_bytes(embed(img, c, wm_key)) for c in pair) for img, pair in zip(segments, codes)]


def owner_license(camp: Campaign, owner: Owner, i: int, segments: list[np.ndarray], sender: str,
                  codes: list[tuple[bytes, bytes]] | None = None) -> tuple[list[tuple[bytes, bytes]], Tx]:
    """Owner: fresh codes for licensee ``i``, both variants of every segment, the OT delivery, the on-chain
    commitment to the code hashes and the delivery hash. Returns (delivery, Tx); ``codes`` overrides the fresh
    ones. The codes are kept in ``owner.codes`` (save the owner state before delivering)."""
    p = camp.params()
    if len(segments) != p.segments:
        raise ArgusError(f"the campaign has {p.segments} segments, {len(segments)} images given")
    codes = codes or new_codes(p.segments)
    owner.codes[i] = codes
    delivery = ot.deliver(owner.key, camp.choice_points(i), make_variants(segments, codes, p.watermark_key),
                          context(camp.address, i))
    tx = camp.license_tx(i, code_hashes(codes), ot.delivery_hash(delivery), sender)
    return delivery, tx


def save_delivery(path: Path, campaign: str, i: int, delivery: list[tuple[bytes, bytes]]) -> Path:
    Path(path).write_text(json.dumps({"campaign": campaign, "id": i,
                                      "ciphertexts": [[a.hex(), b.hex()] for a, b in delivery]}))
    return Path(path)


def load_delivery(path: Path) -> tuple[str, int, list[tuple[bytes, bytes]]]:
    d = json.loads(Path(path).read_text())
    return d["campaign"], int(d["id"]), [(bytes.fromhex(a), bytes.fromhex(b)) for a, b in d["ciphertexts"]]


# ---------------------------------------------------------------------------------------------------- licensee
@dataclass
class Licensee:
    """A licensee's OT choices for one campaign (secret until an appeal)."""

    campaign: str
    id: int
    choice: ot.Choice

    @staticmethod
    def path_for(campaign: str, i: int) -> Path:
        return state_dir() / f"licensee-{campaign.lower()}-{i}.json"

    def save(self) -> Path:
        c = self.choice
        return save_private(self.path_for(self.campaign, self.id), {
            "campaign": self.campaign, "id": self.id, "sigma": c.sigma, "b": [hex(v) for v in c.b],
            "B": [[hex(x), hex(y)] for x, y in c.B]})

    @classmethod
    def load(cls, campaign: str, i: int) -> "Licensee":
        d = load_private(cls.path_for(campaign, i))
        return cls(d["campaign"], d["id"], ot.Choice(d["sigma"], [int(v, 16) for v in d["b"]],
                                                     [(int(x, 16), int(y, 16)) for x, y in d["B"]]))


def licensee_join(camp: Campaign, sender: str, sigma: list[int] | None = None) -> tuple[Licensee, Tx]:
    """Licensee: random choice bits (unless given), choice points, `join` with the deposit; state saved."""
    s = camp.chain.call(camp.fn.segments())
    sigma = sigma if sigma is not None else [secrets.randbelow(2) for _ in range(s)]
    choice = ot.choose(camp.ot_key(), sigma)
    i, tx = camp.join(choice, sender)
    lic = Licensee(camp.address, i, choice)
    lic.save()
    return lic, tx


def licensee_accept(camp: Campaign, lic: Licensee, delivery: list[tuple[bytes, bytes]], check_watermark: bool = True
                    ) -> list[np.ndarray]:
    """Licensee: check the delivery against the on-chain delivery hash, decrypt its variants, check each code
    against the owner's committed hashes and (optionally) that the image carries that code. Returns the images.

    Raises `offchain.campaign.ot.DeliveryError` (make a `ot.prove_cheating` proof) or ArgusError."""
    if ot.delivery_hash(delivery) != camp.delivery_hash(lic.id):
        raise ArgusError("the delivery does not match the owner's on-chain delivery hash")
    hashes = camp.code_index()[lic.id]
    pts = ot.receive(lic.choice, camp.ot_key(), delivery, hashes, context(camp.address, lic.id))
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


# ---------------------------------------------------------------------------------------------------- informer
def extract_codes(images: list[np.ndarray], wm_key: bytes) -> list[bytes]:
    """The watermark codes found in the images (images without one are skipped). Raises ArgusError if none."""
    from offchain.campaign.watermark import WatermarkNotFound, extract

    out = []
    for img in images:
        try:
            out.append(extract(img, wm_key))
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
    codes: bytes
    bits: int
    other_hashes: list[bytes]
    salt: bytes
    commitment: bytes
    committed_tx: str | None = None
    revealed_tx: str | None = None
    claimed_tx: str | None = None

    @property
    def located(self) -> Located:
        return Located(self.id, self.codes, self.bits, self.other_hashes)

    def path(self) -> Path:
        return state_dir() / f"report-{self.campaign.lower()}-{self.commitment.hex()}.json"

    def save(self) -> Path:
        d = asdict(self)
        d.update(codes=self.codes.hex(), salt=self.salt.hex(), commitment=self.commitment.hex(),
                 other_hashes=[h.hex() for h in self.other_hashes])
        return save_private(self.path(), d)

    @classmethod
    def from_dict(cls, d: dict) -> "InformerReport":
        return cls(d["campaign"], d["informer"], d["id"], bytes.fromhex(d["codes"]), d["bits"],
                   [bytes.fromhex(h) for h in d["other_hashes"]], bytes.fromhex(d["salt"]),
                   bytes.fromhex(d["commitment"]), d.get("committed_tx"), d.get("revealed_tx"), d.get("claimed_tx"))

    @classmethod
    def all(cls, campaign: str | None = None) -> list["InformerReport"]:
        pat = f"report-{campaign.lower()}-*.json" if campaign else "report-*.json"
        return [cls.from_dict(json.loads(p.read_text())) for p in sorted(state_dir().glob(pat))]


def prepare_report(camp: Campaign, codes: list[bytes], informer: str, salt: bytes | None = None) -> InformerReport:
    """Informer: locate the extracted codes in the campaign's index and build the commitment (fresh salt)."""
    loc = locate(codes, camp.code_index())
    salt = salt or secrets.token_bytes(32)
    return InformerReport(camp.address, informer, loc.id, loc.codes, loc.bits, loc.other_hashes, salt,
                          commitment(informer, loc.codes, salt))


def informer_commit(camp: Campaign, rep: InformerReport) -> Tx:
    """Save the report state (0600) first, then send the commitment; the state records the tx."""
    rep.save()
    tx = camp.commit(rep.commitment, rep.informer)
    rep.committed_tx = tx.hash
    rep.save()
    return tx


def informer_reveal(camp: Campaign, rep: InformerReport) -> Tx:
    tx = camp.reveal(rep.located, rep.salt, rep.informer)
    rep.revealed_tx = tx.hash
    rep.save()
    return tx


def informer_claim(camp: Campaign, rep: InformerReport) -> Tx:
    tx = camp.claim(rep.id, rep.informer)
    rep.claimed_tx = tx.hash
    rep.save()
    return tx


__all__ = ["ArgusError", "Campaign", "Params", "Owner", "Licensee", "InformerReport", "owner_license",
           "licensee_join", "licensee_accept", "appeal_segment", "extract_codes", "prepare_report",
           "informer_commit", "informer_reveal", "informer_claim", "state_dir", "code_hash"]


# ---------------------------------------------------------------------------------------------------- demo
DEMO_WORK = ("kitten.png", "fish.png", "pelican.jpeg", "bald_eagle.jpeg")


DEMO_SHORT_SIDE = 448


def demo_work() -> list[np.ndarray]:
    """The embedded demo work: four MIT / Apache-2.0 photos (offchain/assets, see ATTRIBUTION.md), each rendered
    with its shorter side at DEMO_SHORT_SIDE pixels (bicubic), as a distributor delivers segments of one size.
    (Two of the photos are 224 x 224: after the pirate's crop and 0.6x resize they would end near 130 px, below
    the ~170 px where the watermark's recovery is no longer reliable; see offchain/watermark.py.)"""
    from importlib import resources

    from PIL import Image

    out = []
    for n in DEMO_WORK:
        img = load_image(Path(str(resources.files("offchain.assets").joinpath(n))))
        h, w = img.shape[:2]
        r = DEMO_SHORT_SIDE / min(h, w)
        pil = Image.fromarray(img).resize((round(w * r), round(h * r)), Image.BICUBIC)
        out.append(np.asarray(pil, dtype=np.uint8))
    return out


def run_demo(rpc_url: str | None = None, log=None) -> dict:
    """The whole Argus story on one chain (in-process by default): a work of 4 photos licensed to three
    licensees by OT; licensee 0 leaks its copy, which is cropped, resized and JPEG re-encoded; informers report
    it (one copies another's commitment, one commits after seeing the first reveal, a Sybil pair); rewards f(n);
    the guilty licensee slashed; licensee 2, framed by the owner, wins its appeal. Returns the steps (gas per
    call) and the balances; ``every_wei_accounted`` checks balance change == received - sent - gas per party."""
    from offchain.campaign.attacks import chain as pirate

    chain = Chain(rpc_url)
    A = chain.accounts
    roles = {"owner": A[0], "licensee0": A[1], "licensee1": A[2], "licensee2": A[3], "alice": A[4],
             "bob": A[5], "sybil1": A[6], "sybil2": A[7], "mallory": A[8], "carol": A[9]}
    name = {v: k for k, v in roles.items()}
    before = {k: chain.balance(a) for k, a in roles.items()}
    spent = {k: 0 for k in roles}
    sent = {k: 0 for k in roles}
    steps = []
    say = log or (lambda *_: None)

    def step(who: str, what: str, tx: Tx | None = None, value: int = 0):
        g = tx.gas if tx is not None else 0
        if tx is not None:
            spent[who] += int(tx.receipt["gasUsed"]) * int(tx.receipt.get("effectiveGasPrice", 0) or 0)
        sent[who] += value
        steps.append({"who": who, "what": what, "gas": g})
        say(f"  [bold]{who:>10}[/] {what:<78} [dim]{(f'{g:>9,} gas' if tx else '')}[/]")

    def refused(who: str, what: str, fn, *args):
        from protocol.chain.connection import ChainError

        try:
            fn(*args)
        except ChainError as e:
            steps.append({"who": who, "what": what, "gas": 0, "reverted": e.error})
            say(f"  [bold]{who:>10}[/] {what:<78} [red]reverts {e.error}[/]")
            return e.error
        raise ArgusError(f"{what}: expected a revert")

    p = Params()
    say(f"[bold]pinpoint demo argus[/] on {chain.kind}: R = {p.reward} wei, rho = {p.rho_num}/{p.rho_den}, "
        f"D_L = {p.deposit} wei, {p.segments} segments, windows {p.min_age}/{p.collection_window}/"
        f"{p.appeal_window} s")
    work = demo_work()
    owner = Owner(ot.OwnerKey.generate())
    escrow = 3 * (p.reward + p.deposit)
    camp, tx = Campaign.create(chain, p, owner.key.A, escrow, sender=roles["owner"])
    step("owner", f"create campaign {camp.address[:10]}... escrow {escrow} wei", tx, escrow)
    owner.save(camp.address)
    lics, copies = [], []
    for i in range(3):
        who = f"licensee{i}"
        lic, tx = licensee_join(camp, roles[who])
        step(who, f"join with deposit {p.deposit} wei and {p.segments} OT choice points", tx, p.deposit)
        delivery, tx = owner_license(camp, owner, lic.id, work, roles["owner"])
        owner.save(camp.address)
        step("owner", f"license {i}: commit {2 * p.segments} code hashes + delivery hash; OT delivery", tx)
        images = licensee_accept(camp, lic, delivery)
        step(who, "accept: decrypt its variants, codes match the commitments and the watermarks", None)
        lics.append(lic)
        copies.append(images)
    # licensee 0 leaks; the pirate crops, resizes, re-encodes
    pirated = [pirate(img, (0.03, 0.02, 0.04, 0.03), 0.6, 60) for img in copies[0]]
    say(f"  licensee0 leaks its copy; pirated: crop 2-4 %, resize x0.6, JPEG q60 "
        f"({copies[0][0].shape[1]}x{copies[0][0].shape[0]} -> {pirated[0].shape[1]}x{pirated[0].shape[0]} ...)")
    import time as _time

    t0 = _time.time()
    codes = extract_codes(pirated, p.watermark_key)
    say(f"  watermark extracted from the pirated copy: {len(codes)} codes in {_time.time() - t0:.1f} s "
        "(every informer below holds this copy)")
    reps = {}
    for who in ("alice", "bob", "sybil1", "sybil2"):
        reps[who] = prepare_report(camp, codes, roles[who])
        step(who, f"commit report {reps[who].commitment.hex()[:12]}... (licensee {reps[who].id})",
             informer_commit(camp, reps[who]))
    step("mallory", "copies alice's commitment", camp.commit(reps["alice"].commitment, roles["mallory"]))
    chain.advance(p.min_age)
    step("alice", "reveal (first reveal: licensee 0 accused)", informer_reveal(camp, reps["alice"]))
    refused("mallory", "reveal alice's commitment with alice's codes and salt", camp.reveal,
            reps["alice"].located, reps["alice"].salt, roles["mallory"])
    late = prepare_report(camp, codes, roles["carol"])
    step("carol", "saw alice's reveal; commits", informer_commit(camp, late))
    for who in ("bob", "sybil1", "sybil2"):
        step(who, "reveal", informer_reveal(camp, reps[who]))
    chain.advance(p.min_age)
    refused("carol", "reveal after the minimum age", informer_reveal, camp, late)
    # the owner frames licensee 2: it builds a copy with variants it guesses (it does not know the choices)
    guess = [secrets.randbelow(2) for _ in range(p.segments)]
    if guess == lics[2].choice.sigma:  # a lucky 1/16 guess would succeed: flip one bit for the demo's story
        guess[0] ^= 1
    framed = [owner.codes[2][j][b] for j, b in enumerate(guess)]
    frame = prepare_report(camp, framed, roles["owner"])
    step("owner", "frames licensee 2: commits a forged copy of guessed variants", informer_commit(camp, frame))
    chain.advance(p.min_age)
    step("owner", "reveals it (licensee 2 accused)", informer_reveal(camp, frame))
    n = camp.license(0).reports
    chain.advance(p.collection_window)
    fn = camp.reward_for(n)
    say(f"  collection windows closed: {n} valid reports of licensee 0's copy, f({n}) = {fn} wei each "
        f"(f(1) = {camp.reward_for(1)}; the Sybil pair gets 2*f({n}) = {2 * fn} < f({n - 1}) = "
        f"{camp.reward_for(n - 1)})")
    for who in ("alice", "bob", "sybil1", "sybil2"):
        step(who, f"claim reward {fn} wei", informer_claim(camp, reps[who]))
    refused("alice", "claim again", camp.claim, 0, roles["alice"])
    refused("licensee0", "appeal (its own variants were reported: no opening exists)", camp.appeal, 0,
            lics[0].choice, 0, roles["licensee0"])
    j = appeal_segment(lics[2], camp.license(2).bits)
    step("licensee2", f"appeal: opens its choice of segment {j} (ecMul + ecAdd)",
         camp.appeal(2, lics[2].choice, j, roles["licensee2"]))
    step("owner", "claims the reward of its own forged report", informer_claim(camp, frame))
    chain.advance(p.appeal_window)
    step("carol", "set licensee 0 guilty (deposit slashed)", camp.set_guilty(0, roles["carol"]))
    for who in ("owner", "licensee2"):
        c = camp.credit(roles[who])
        step(who, f"withdraw {c} wei", camp.withdraw(roles[who]))
    chain.advance(p.duration)
    step("licensee1", "refund deposit after the campaign's end", camp.refund(1, roles["licensee1"]))
    step("licensee1", f"withdraw {camp.credit(roles['licensee1'])} wei", camp.withdraw(roles["licensee1"]))
    e = camp.escrow()
    step("owner", f"withdraw the remaining escrow {e} wei", camp.withdraw_escrow(roles["owner"]))
    after = {k: chain.balance(a) for k, a in roles.items()}
    # what the contract paid each party: read back from the Withdrawn events
    received = {k: 0 for k in roles}
    for lg in camp.c.events.Withdrawn().get_logs(from_block=0):
        received[name[lg["args"]["to"]]] += int(lg["args"]["amount"])
    accounted = all(after[k] - before[k] == received[k] - sent[k] - spent[k] for k in roles) \
        and chain.balance(camp.address) == 0
    say("\n  [bold]balances[/] (wei)        before                     after               paid by campaign      sent")
    for k in roles:
        say(f"  {k:>10} {before[k]:>28,} {after[k]:>28,} {received[k]:>22,} {sent[k]:>22,}")
    say(f"  campaign balance at the end: {chain.balance(camp.address)} wei; every wei accounted for: {accounted}")
    rep_gas = [s["gas"] for s in steps if s["what"].startswith("commit report")][:1] + \
        [s["gas"] for s in steps if s["who"] == "bob" and s["what"] == "reveal"]
    say(f"  one report (commit + reveal): {sum(rep_gas):,} gas (the paper: ~294,000)")
    return {"chain": chain.kind, "campaign": camp.address, "params": {k: (v.hex() if isinstance(v, bytes) else v)
                                                                       for k, v in asdict(p).items()},
            "steps": steps, "reports_of_leak": n, "reward_per_report_wei": fn,
            "balances_before": {k: str(v) for k, v in before.items()},
            "balances_after": {k: str(v) for k, v in after.items()},
            "paid_by_campaign": {k: str(v) for k, v in received.items()},
            "sent_to_campaign": {k: str(v) for k, v in sent.items()},
            "gas_fees_paid": {k: str(v) for k, v in spent.items()},
            "report_gas": sum(rep_gas), "every_wei_accounted": accounted}
