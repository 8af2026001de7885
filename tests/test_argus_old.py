"""Issue 11's attacks replayed against the PREVIOUS campaign contracts (their artifacts read from git history), to
show each attack test of tests/test_argus_attacks.py, test_argus_payoffs.py and test_argus_partial.py fails there
for the reason it names: the contract of d3ab9eb (before items 1, 2, 6, 8: unsafe parameters, owner payoff growing
with n, escrow griefing, a commitment made in time shut out, forged OT proofs), the one of 74de19f (before items
3, 4, 9: no partial or mixed copies, one flipped segment wins an appeal, 214k gas per report at 64 segments) and the
one of e65b302 (64-bit codes: one 2^64 preimage search cleared a guilty licensee). The old contracts take 8-byte
codes. Skipped outside a git checkout that holds those commits."""

from __future__ import annotations

import importlib.util
import json
import secrets
import subprocess
import sys

import pytest

from offchain.campaign import ot
from offchain.campaign.codes import CodeError, code_hash, commitment, new_codes, report_of, repudiation_work, reward
from offchain.common.hashing import keccak
from protocol.campaign.binding import Params
from protocol.chain.connection import Chain, ChainError
from protocol.config import PROJECT

BEFORE_ITEMS_1_2_6 = "d3ab9eb"
BEFORE_ITEMS_3_4_9 = "74de19f"
BEFORE_128_BIT_CODES = "e65b302"
OLD_CODE_BYTES = 8
P = Params()
R, D = P.reward, P.deposit


def _old_module(commit: str, path: str, name: str, tmp_path):
    """The Python module ``path`` as of ``commit``, imported under ``name``."""
    src = tmp_path / f"{name}.py"
    src.write_text(_git_show(commit, path))
    spec = importlib.util.spec_from_file_location(name, src)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def _git_show(commit: str, path: str) -> str:
    try:
        return subprocess.run(["git", "show", f"{commit}:{path}"], cwd=PROJECT, capture_output=True, text=True,
                              check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip(f"no git history with {commit}:{path}")


class Old:
    """A campaign deployed from the artifact of ``commit``, driven through its own (old) ABI: full-watermark
    reveals against keccak(code) hashes, one-segment appeals."""

    def __init__(self, commit: str, p: Params = P, escrow: int = 10 * (R + D), ch: Chain | None = None):
        art = json.loads(_git_show(commit, "protocol/chain/artifacts/Campaign.json"))
        self.ch = ch or Chain()
        self.A = self.ch.accounts
        self.key = ot.OwnerKey.generate()
        self.p = p
        factory = self.ch.w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
        key = p.watermark_key.ljust(32, b"\0")[:32]
        params = (p.reward, p.rho_num, p.rho_den, p.deposit, p.segments, p.min_age, p.collection_window,
                  p.appeal_window, p.duration, *self.key.A, key)
        tx = self.ch.send(factory.constructor(params), sender=self.A[0], value=escrow)
        self.c = self.ch.w3.eth.contract(address=tx.receipt["contractAddress"], abi=art["abi"])
        self.fn = self.c.functions
        self.choices, self.codes = [], []

    def licensee(self, acct: str) -> int:
        """Join and be licensed with fresh codes; returns the id."""
        choice = ot.choose(self.key.A, [secrets.randbelow(2) for _ in range(self.p.segments)])
        tx = self.ch.send(self.fn.join(choice.words()), sender=acct, value=self.p.deposit)
        i = int(self.c.events.Joined().process_receipt(tx.receipt)[0]["args"]["id"])
        codes = new_codes(self.p.segments, code_bytes=OLD_CODE_BYTES)
        self.ch.send(self.fn.license(i, [keccak(c) for pair in codes for c in pair], b"\1" * 32),
                     sender=self.A[0])
        self.choices.append(choice)
        self.codes.append(codes)
        return i

    def report(self, informer: str, i: int, bits: list[int], codes: list[bytes] | None = None):
        """Commit a report of licensee i's watermark with variants ``bits`` (codes given, or the owner's); returns
        the reveal call, to send later."""
        codes = codes or [self.codes[i][j][b] for j, b in enumerate(bits)]
        other = [keccak(self.codes[i][j][1 - b]) for j, b in enumerate(bits)]
        salt = secrets.token_bytes(32)
        blob = b"".join(codes)
        self.ch.send(self.fn.commit(commitment(informer, blob, salt)), sender=informer)
        word = sum(b << j for j, b in enumerate(bits))
        return lambda: self.ch.send(self.fn.reveal(i, blob, word, other, salt), sender=informer)

    def fails(self, error: str, thunk) -> None:
        with pytest.raises(ChainError) as e:
            thunk()
        assert e.value.error == error, str(e.value)


def test_old_contract_accepted_unsafe_parameters():
    """Item 1 (tests/test_argus_attacks.py::test_unsafe_parameters_rejected_by_contract_and_client): the old
    constructor accepted every unsafe parameter the new one refuses."""
    ch = Chain()
    for change in (dict(appeal_window=0), dict(min_age=0), dict(rho_num=0, rho_den=1), dict(deposit=R + 1)):
        Old(BEFORE_ITEMS_1_2_6, Params(**{**P.__dict__, **change}), ch=ch)  # deployed: no revert


def test_old_contract_owner_payoff_grew_with_n():
    """Item 2 (test_argus_payoffs.py::test_guilty_owner_payoff_independent_of_n): the owner was credited
    D_L - n*f(n), so its own extra reports raised its payoff."""
    credit = {}
    for n in (1, 3):
        o = Old(BEFORE_ITEMS_1_2_6)
        i = o.licensee(o.A[1])
        sigma = o.choices[i].sigma
        reveals = [o.report(o.A[4 + k], i, sigma) for k in range(n)]
        o.ch.advance(P.min_age)
        for r in reveals:
            r()
        o.ch.advance(P.collection_window + P.appeal_window)
        o.ch.send(o.fn.setGuilty(i), sender=o.A[9])
        credit[n] = o.ch.call(o.fn.credit(o.A[0]))
    assert credit == {n: D - n * reward(R, P.rho_num, P.rho_den, n) for n in (1, 3)} and credit[3] > credit[1]


def test_old_contract_let_sock_puppets_exhaust_the_escrow():
    """Attack 7 (test_argus_attacks.py::test_sock_puppet_self_reports_cannot_shut_out_an_honest_report): with
    escrow for one accusation, a sock-puppet licensee's self-report shut out the honest report (EscrowExhausted)."""
    o = Old(BEFORE_ITEMS_1_2_6, escrow=R + D)
    leaker, sock = o.licensee(o.A[1]), o.licensee(o.A[2])
    honest = o.report(o.A[5], leaker, o.choices[leaker].sigma)
    self_report = o.report(o.A[7], sock, o.choices[sock].sigma)
    o.ch.advance(P.min_age)
    self_report()
    o.fails("EscrowExhausted", honest)


def test_old_contract_shut_out_a_commitment_made_in_time():
    """Item 6 (test_argus_attacks.py::test_commitment_made_in_time_may_accuse_after_the_end)."""
    o = Old(BEFORE_ITEMS_1_2_6)
    i = o.licensee(o.A[1])
    ends = o.ch.call(o.fn.endsAt())
    o.ch.tester.time_travel(ends - 1)
    rep = o.report(o.A[5], i, o.choices[i].sigma)
    o.ch.tester.time_travel(ends - 1 + P.min_age)
    o.fails("CampaignEnded", rep)


def test_old_client_accepted_forged_ot_proofs(tmp_path):
    """Attack 8 (test_argus_ot.py::test_forged_cheating_proofs_rejected): the old `check_cheating_proof` accepted a
    proof with sigma = 2 against an honest delivery."""
    src = tmp_path / "old_ot.py"
    src.write_text(_git_show(BEFORE_ITEMS_1_2_6, "offchain/campaign/ot.py"))
    spec = importlib.util.spec_from_file_location("old_ot", src)
    old_ot = importlib.util.module_from_spec(spec)
    sys.modules["old_ot"] = old_ot
    spec.loader.exec_module(old_ot)
    key = ot.OwnerKey.generate()
    codes = new_codes(4)
    choice = ot.choose(key.A, [1, 1, 0, 1])
    hashes = [code_hash(c) for pair in codes for c in pair]
    variants = [(c0 + b"x", c1 + b"y") for c0, c1 in codes]
    delivery = ot.deliver(key, choice.B, variants, b"ctx")
    honest = ot.prove_cheating(choice, delivery, 1)
    flat = [c for pair in delivery for c in pair]
    forged = old_ot.CheatingProof(1, 2, choice.b[1], honest.ciphertext_hashes, flat[4])
    assert old_ot.check_cheating_proof(forged, key.A, choice.B, ot.delivery_hash(delivery), hashes, b"ctx")
    new = ot.CheatingProof(1, 2, choice.b[1], honest.ciphertext_hashes, flat[4])
    assert not ot.check_cheating_proof(new, key.A, choice.B, ot.delivery_hash(delivery), hashes, b"ctx")


def test_old_contract_refused_partial_and_mixed_copies():
    """Item 3 (test_argus_partial.py: missing segment, mixed copy): the old reveal needed all S codes; an informer
    holding 3 of 4 segments (the 4th unknown to it) or a 2 + 2 mix got CodeMismatch."""
    o = Old(BEFORE_ITEMS_3_4_9)
    a, b = o.licensee(o.A[1]), o.licensee(o.A[2])
    sa, sb = o.choices[a].sigma, o.choices[b].sigma
    partial = [o.codes[a][j][sa[j]] for j in range(3)] + [bytes(8)]  # the missing segment's code is unknown
    mixed = [o.codes[a][j][sa[j]] for j in range(2)] + [o.codes[b][j][sb[j]] for j in (2, 3)]
    tries = [o.report(o.A[5], a, sa, partial), o.report(o.A[6], a, sa, mixed), o.report(o.A[7], b, sb, mixed)]
    o.ch.advance(P.min_age)
    for t in tries:
        o.fails("CodeMismatch", t)


def test_old_contract_let_one_flipped_segment_win_an_appeal():
    """Item 4 (test_argus_partial.py::test_one_flipped_segment_no_longer_wins_an_appeal): a friend's report with
    one flipped segment (one 64-bit preimage) cleared the guilty licensee and paid it 2*D_L."""
    o = Old(BEFORE_ITEMS_3_4_9)
    i = o.licensee(o.A[1])
    sigma = o.choices[i].sigma
    flipped = [s ^ (j == 2) for j, s in enumerate(sigma)]
    friend = o.report(o.A[6], i, flipped)
    o.ch.advance(P.min_age)
    friend()
    o.ch.advance(P.collection_window)
    o.ch.send(o.fn.appeal(i, o.choices[i].words(), 2, o.choices[i].b[2]), sender=o.A[1])
    assert o.ch.call(o.fn.credit(o.A[1])) == 2 * D


def test_old_contract_report_cost_over_100k_at_64_segments():
    """Item 9 (benchmarks/argus_gas.py): the old report (commit + first reveal of the whole watermark) at 64
    segments."""
    o = Old(BEFORE_ITEMS_3_4_9, Params(segments=64))
    i = o.licensee(o.A[1])
    sigma = o.choices[i].sigma
    codes = [o.codes[i][j][b] for j, b in enumerate(sigma)]
    other = [keccak(o.codes[i][j][1 - b]) for j, b in enumerate(sigma)]
    salt = secrets.token_bytes(32)
    c = o.ch.send(o.fn.commit(commitment(o.A[5], b"".join(codes), salt)), sender=o.A[5])
    o.ch.advance(P.min_age)
    r = o.ch.send(o.fn.reveal(i, b"".join(codes), sum(b << j for j, b in enumerate(sigma)), other, salt),
                  sender=o.A[5])
    assert c.gas + r.gas > 200_000


def test_old_64bit_codes_fell_to_one_64bit_search_new_leaves_bind_128_bits(tmp_path):
    """Item 4 (64-bit codes): on the contract of e65b302 a leaf was keccak(code(8) || campaign || id || j || v), so
    the other variant of a segment was opened by an 8-byte value, which a 2^64 search finds (``repudiation_work``
    was m * 2^64); with appeal quorum m = 1 a friend's report carrying that one value cleared the guilty licensee
    (2*D_L). Now a leaf binds a 16-byte code, truncated to 16 bytes: the same 8-byte value, padded either way, or
    the real code with its last 8 bytes guessed opens nothing (CodeMismatch), and the work is 2^128 per segment."""
    from tests.test_argus_contract import World

    oc = _old_module(BEFORE_128_BIT_CODES, "offchain/campaign/codes.py", "old_codes", tmp_path)
    assert oc.CODE_BYTES == OLD_CODE_BYTES and oc.repudiation_work(1) == 2**64
    art = json.loads(_git_show(BEFORE_128_BIT_CODES, "protocol/chain/artifacts/Campaign.json"))
    ch = Chain()
    A = ch.accounts
    key = ot.OwnerKey.generate()
    wk = P.watermark_key.ljust(32, b"\0")[:32]
    tx = ch.send(ch.w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"]).constructor(
        (R, P.rho_num, P.rho_den, D, P.segments, P.min_age, P.collection_window, P.appeal_window, P.duration,
         *key.A, wk, 3, 1)), sender=A[0], value=2 * (R + D))
    c = ch.w3.eth.contract(address=tx.receipt["contractAddress"], abi=art["abi"])
    sigma = [secrets.randbelow(2) for _ in range(P.segments)]
    choice = ot.choose(key.A, sigma)
    ch.send(c.functions.join(choice.words()), sender=A[1], value=D)
    codes = oc.new_codes(P.segments)
    leaves = oc.code_leaves(c.address, 0, codes)
    ch.send(c.functions.license(0, leaves, b"\1" * 32), sender=A[0])
    flipped = [s ^ (j == 2) for j, s in enumerate(sigma)]  # segment 2: the 8-byte result of a 2^64 search
    loc = oc.report_of(c.address, 0, leaves, {j: (b, codes[j][b]) for j, b in enumerate(flipped)}, None)
    salt = secrets.token_bytes(32)
    ch.send(c.functions.commit(oc.commitment(A[6], loc.codes, salt)), sender=A[6])
    ch.advance(P.min_age)
    ch.send(c.functions.reveal(0, loc.mask, loc.bits, loc.codes, loc.proof, salt), sender=A[6])
    ch.advance(P.collection_window)
    ch.send(c.functions.appeal(0, choice.words(), [2], [choice.b[2]]), sender=A[1])
    assert ch.call(c.functions.credit(A[1])) == 2 * D  # the guilty licensee cleared by one 64-bit value

    # now: the friend's 64-bit values do not open the other variant's 128-bit leaf
    assert repudiation_work(1) == 2**128
    w = World(k=1)
    sig = w.lic[0].choice.sigma
    idx = w.camp.code_index()[0]
    other = w.codes[0][2][1 - sig[2]]
    with pytest.raises(CodeError):  # an 8-byte code is not a code any more
        report_of(w.camp.address, 0, idx, {2: (1 - sig[2], other[:OLD_CODE_BYTES])}, None)
    guesses = [other[:8] + bytes(8), bytes(8) + other[:8], other[:8] + secrets.token_bytes(8)]
    reps = []
    for n, guess in enumerate(guesses):
        found = {j: (s, w.codes[0][j][s]) for j, s in enumerate(sig)}
        found[2] = (1 - sig[2], guess)
        loc = report_of(w.camp.address, 0, idx, found, None)
        salt = secrets.token_bytes(32)
        reps.append((loc, salt, w.A[5 + n]))
        w.camp.commit(commitment(w.A[5 + n], loc.blob, salt), w.A[5 + n])
    w.ch.advance(P.min_age)
    for loc, salt, who in reps:
        w.fails("CodeMismatch", w.camp.reveal, loc, salt, who)
