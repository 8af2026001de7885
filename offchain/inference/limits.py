"""The validity rules of operator descriptors: one table, enforced by the loader (`check_op`, on every `Op` it
builds) and by the contract (`OneStep.check` in `contracts/inference/OneStep.sol`, whose constants mirror the ones
here; `tests/test_parity.py` compares the two tables and the two verdicts).

A descriptor is valid when: its kind is known; it has the kind's number of parameters (`PARAM_NAMES`) and of runtime
inputs; every size is in [1, `MAX_DIM`] (dimensions, kernel, stride, dilation, groups; element counts in
[1, `MAX_NUMEL`]), paddings in
[0, `MAX_PAD`], zero points in their dtype's range, flags 0 or 1, requantization shifts in [1, 62] and multipliers
in [1, 2^24], scales normal positive float32; the output size is consistent with the input dimensions (CONV: the
implied bottom/right padding is in [1 - stride, `MAX_PAD`]; groups divide both channel counts; ADD: numel_b divides
numel_a); every tensor has at most `MAX_NUMEL` elements; and every final move is bounded: the cost model below,
an upper bound of a one-step's gas (transaction gas, calldata included) and calldata fitted on anvil
(`benchmarks/parity_fuzz.py --gas` prints measured against modelled), is at most `ONE_STEP_GAS` gas and
`ONE_STEP_CALLDATA` bytes, which keeps every final move of `Pinpoint` (the one-step plus at most ~130k gas of
proofs, game state and payout, ~2 KB) within 300k gas and 24 KB (measured by `tests/test_reduction.py` at
ResNet-50, VGG-16 and large-pool shapes; `Gas.STEP` adds 30k for payees that refuse a pushed payout). QUANTIZE, ADD and DEQUANTIZE: the whole element's one-step
(`OneStep.element`) is bounded. CONV, MATMUL and GAP reduce many taps into one element: the bound applies PER
CHUNK (`chunking`: the whole element when its one-step fits, else the largest chunk of L taps whose `OneStep.chunk`
fits; phase 3 of the game dissects the
element's partial sums down to one chunk, `offchain.inference.reduction`), and a descriptor is valid when one tap
fits and there are at most 2^`MAX_CHUNK_DEPTH` chunks (which bounds phase 3's rounds, hence the bonds). So a
160 x 160 GAP, VGG-16's K = 25,088 classifier and ResNet-50's 1 x 1 convolutions over 2048 channels are accepted.
A descriptor outside these rules is one the contract cannot decide: `Pinpoint` decides it against the solver at
`selectOperator`, and the loader refuses the model (UnsupportedOperator naming the node).

Cost model, for a one-step that opens ``W`` words and multiproof siblings (each range of bytes in a tree of depth d
counts its words plus d siblings), reduces ``R`` byte pairs (CONV/MATMUL K) and sums ``S`` bytes (GAP H*W):
gas = `GAS_BASE` + `GAS_PER_WORD` W + `GAS_PER_REDUCE` R + `GAS_PER_SUM` S (coefficients: a linear program over 91
measured one-steps, synthetic shapes and every MobileNetV2 operator, each bounded with 5% margin);
calldata = `CALLDATA_BASE` + 32 (W + number of parameters + inputs).
"""

from __future__ import annotations

from . import elementwise, pooling
from .graph import PARAM_NAMES, Kind, UnsupportedOperator

MAX_DIM = 1 << 24
MAX_PAD = 1 << 10
MAX_NUMEL = 1 << 28
ONE_STEP_GAS = 160_000
ONE_STEP_CALLDATA = 22_000
MAX_CHUNK_DEPTH = 16
CHUNK_GAS = 30_000
GAS_BASE = 70_000
GAS_PER_WORD = 870
GAS_PER_REDUCE = 105
GAS_PER_SUM = 370
CALLDATA_BASE = 1_000

N_INPUTS = {Kind.QUANTIZE: (1,), Kind.CONV: (1,), Kind.ADD: (1, 2), Kind.GAP: (1,), Kind.MATMUL: (1,),
            Kind.DEQUANTIZE: (1,)}
"""Number of runtime inputs per kind (ADD: 1 when its second input is the committed constant)."""

LIMITS = {"MAX_DIM": MAX_DIM, "MAX_PAD": MAX_PAD, "MAX_NUMEL": MAX_NUMEL, "ONE_STEP_GAS": ONE_STEP_GAS,
          "ONE_STEP_CALLDATA": ONE_STEP_CALLDATA, "GAS_BASE": GAS_BASE, "GAS_PER_WORD": GAS_PER_WORD,
          "GAS_PER_REDUCE": GAS_PER_REDUCE, "GAS_PER_SUM": GAS_PER_SUM,
          "CALLDATA_BASE": CALLDATA_BASE, "MAX_CHUNK_DEPTH": MAX_CHUNK_DEPTH,
          "CHUNK_GAS": CHUNK_GAS}
"""The constants by name, as `OneStep.sol` declares them (tests compare the two)."""


def depth_for_bytes(n: int) -> int:
    """Depth of the Merkle tree over ``n`` bytes (32-byte words): ceil(log2(words)), as `Merkle.depthForBytes`."""
    return max(0, ((max(1, -(-n // 32))) - 1).bit_length())


def _words(n: int) -> int:
    return n // 32 + 2


def features(kind: Kind, P: dict) -> tuple[int, int, int]:
    """(W, R, S) of the cost model: words and siblings opened, byte pairs of a dot product (CONV/MATMUL),
    bytes summed (GAP); ``P``: the parameters by name, in range."""
    d = depth_for_bytes
    R = 0
    if kind == Kind.CONV:
        return chunk_features(kind, P, taps(kind, P))
    elif kind == Kind.MATMUL:
        K = P["K"]
        W = _words(K) + d(P["M"] * K) + _words(K) + d(P["N"] * K) + 1 + d(P["N"] * 32)
        R = K
    elif kind == Kind.GAP:
        hw = P["H"] * P["W"]
        depth = d(P["N"] * hw * P["C"])
        if P["x_nchw"]:
            W, R = _words(hw) + depth, hw
        else:
            W, R = hw * (1 + depth), hw
    elif kind == Kind.QUANTIZE:
        W = 1 + d(P["N"] * P["C"] * P["H"] * P["W"] * 4)
    elif kind == Kind.ADD:
        W = 2 + d(P["numel_a"]) + d(P["numel_b"])
    else:
        W = 1 + d(P["numel"])
    return (W, 0, R) if kind == Kind.GAP else (W, R, 0)


def add_floats_ok(rac_bits: int, rbc_bits: int, fixed_bits: int) -> bool:
    """ADD's binary32 parameters (`offchain.inference.graph`): the ratios positive with biased exponent in
    [95, 146] (values in [2^-32, 2^20)), the fixed part 0 or of biased exponent in [63, 155] (|fixed| in
    [2^-64, 2^29)). Then every ``fma32`` result is zero or normal, |y| < 2^30, and the Solidity one-step's aligned
    integers stay below 2^120."""
    ok = [0 <= b < 1 << 31 and 95 <= b >> 23 <= 146 for b in (rac_bits, rbc_bits)]
    mag = fixed_bits & 0x7FFFFFFF
    return all(ok) and 0 <= fixed_bits < 1 << 32 and (mag == 0 or 63 <= mag >> 23 <= 155)


def one_step_cost(kind: Kind, P: dict, n_inputs: int) -> tuple[int, int]:
    """(gas, calldata bytes) of the cost model for a descriptor of ``kind`` with parameters ``P`` (by name) and
    ``n_inputs`` runtime inputs; assumes the parameters are in range (see `violation`)."""
    W, R, S = features(kind, P)
    gas = GAS_BASE + GAS_PER_WORD * W + GAS_PER_REDUCE * R + GAS_PER_SUM * S
    return gas, CALLDATA_BASE + 32 * (W + len(PARAM_NAMES[kind]) + n_inputs)


REDUCING = (Kind.CONV, Kind.MATMUL, Kind.GAP)
"""The kinds whose element is a long reduction: their one-step bound applies per chunk."""


def taps(kind: Kind, P: dict) -> int:
    """R: the number of terms summed into one element of a reducing ``kind`` with parameters ``P`` (by name):
    CONV KH * KW * Ci/G, MATMUL K, GAP H * W."""
    if kind == Kind.CONV:
        return P["KH"] * P["KW"] * (P["Ci"] // P["G"])
    if kind == Kind.MATMUL:
        return P["K"]
    return P["H"] * P["W"]


def chunk_features(kind: Kind, P: dict, L: int) -> tuple[int, int, int]:
    """(W, R, S) of the cost model for a chunk of ``L`` consecutive taps at its worst position in the reduction
    (`OneStep.chunk`); at L = `taps` it is the whole element's `features`."""
    d = depth_for_bytes
    if kind == Kind.CONV:
        cig, dx = P["Ci"] // P["G"], d(P["N"] * P["H"] * P["W"] * P["Ci"])
        tc = min(P["KH"] * P["KW"], (L + cig - 2) // cig + 1)  # kernel taps L consecutive terms can touch
        W = tc * (_words(min(cig, L)) + dx) + _words(L) + d(P["Co"] * P["KH"] * P["KW"] * cig) + 1 + d(P["Co"] * 32)
        return W, L, 0
    if kind == Kind.MATMUL:
        K = P["K"]
        return _words(L) + d(P["M"] * K) + _words(L) + d(P["N"] * K) + 1 + d(P["N"] * 32), L, 0
    depth = d(P["N"] * P["H"] * P["W"] * P["C"])
    return (_words(L) + depth if P["x_nchw"] else L * (1 + depth)), 0, L


def chunk_cost(kind: Kind, P: dict, n_inputs: int, L: int) -> tuple[int, int]:
    """(gas, calldata bytes) of the cost model for a chunk one-step of ``L`` taps (the element's model plus
    `CHUNK_GAS`, what the chunking itself costs); nondecreasing in L."""
    W, R, S = chunk_features(kind, P, L)
    gas = GAS_BASE + CHUNK_GAS + GAS_PER_WORD * W + GAS_PER_REDUCE * R + GAS_PER_SUM * S
    return gas, CALLDATA_BASE + 32 * (W + len(PARAM_NAMES[kind]) + n_inputs)


def _fits(kind: Kind, P: dict, n_inputs: int, L: int) -> bool:
    gas, cd = chunk_cost(kind, P, n_inputs, L)
    return gas <= ONE_STEP_GAS and cd <= ONE_STEP_CALLDATA


def chunking(kind: Kind, P: dict, n_inputs: int) -> tuple[int, int]:
    """(n, L) of a reducing descriptor with parameters in range: (1, `taps`) when the whole element's one-step
    (`one_step_cost`, no chunking cost) fits the bound; else L the largest number of taps in [1, `taps`] whose
    chunk fits the bound (binary search, as `OneStep.chunks`), n = ceil(taps / L); (0, 0) if one tap does not
    fit."""
    R = taps(kind, P)
    gas, cd = one_step_cost(kind, P, n_inputs)
    if gas <= ONE_STEP_GAS and cd <= ONE_STEP_CALLDATA:
        return 1, R
    if not _fits(kind, P, n_inputs, 1):
        return 0, 0
    lo, hi = 1, R  # lo fits
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _fits(kind, P, n_inputs, mid):
            lo = mid
        else:
            hi = mid - 1
    return -(-R // lo), lo


def _zp_ok(zp: int, signed: int) -> bool:
    return (-128 <= zp <= 127) if signed else (0 <= zp <= 255)


def _scale_ok(bits: int) -> bool:
    """A positive, normal, finite float32 bit pattern."""
    return 0 <= bits < 1 << 31 and 1 <= (bits >> 23) <= 254


def violation(kind: int, params: tuple[int, ...], n_inputs: int) -> str | None:
    """Why the descriptor (``kind``, ``params``, ``n_inputs`` runtime inputs) breaks the rules, or None."""
    try:
        kind = Kind(kind)
    except ValueError:
        return f"unknown kind {kind}"
    if kind in pooling.KINDS or kind in elementwise.N_INPUTS:
        if len(params) != len(PARAM_NAMES[kind]):
            return f"{len(params)} parameters, {kind.name} has {len(PARAM_NAMES[kind])}"
        rules = pooling if kind in pooling.KINDS else elementwise
        return rules.violation(kind, dict(zip(PARAM_NAMES[kind], (int(v) for v in params))), n_inputs)
    if kind not in N_INPUTS:
        return f"kind {kind.name} has no rules here"
    names = PARAM_NAMES[kind]
    if len(params) != len(names):
        return f"{len(params)} parameters, {kind.name} has {len(names)}"
    if n_inputs not in N_INPUTS[kind]:
        return f"{n_inputs} runtime inputs"
    P = dict(zip(names, (int(v) for v in params)))
    flags = [k for k in names if k.endswith("_signed") or k.endswith("_nchw")]
    if any(P[k] not in (0, 1) for k in flags):
        return "a flag is not 0 or 1"
    sizes = {Kind.QUANTIZE: "N C H W", Kind.CONV: "N H W Ci Co OH OW KH KW SH SW DH DW G",
             Kind.ADD: "numel_a numel_b", Kind.GAP: "N H W C", Kind.MATMUL: "M K N",
             Kind.DEQUANTIZE: "numel"}[kind].split()
    bad = [k for k in sizes if not 1 <= P[k] <= (MAX_NUMEL if k.startswith("numel") else MAX_DIM)]
    if bad:
        return f"size {bad[0]} = {P[bad[0]]} outside [1, {MAX_NUMEL if bad[0].startswith('numel') else MAX_DIM}]"
    zps = {Kind.QUANTIZE: [("zp", "y_signed")], Kind.CONV: [("x_zp", "x_signed"), ("y_zp", "y_signed")],
           Kind.ADD: [("a_zp", "a_signed"), ("b_zp", "b_signed"), ("c_zp", "c_signed")],
           Kind.GAP: [("x_zp", "x_signed"), ("y_zp", "y_signed")],
           Kind.MATMUL: [("a_zp", "a_signed"), ("y_zp", "y_signed")], Kind.DEQUANTIZE: [("zp", "x_signed")]}[kind]
    bad = [z for z, s in zps if not _zp_ok(P[z], P[s])]
    if bad:
        return f"zero point {bad[0]} = {P[bad[0]]} outside its dtype's range"
    if "scale_bits" in P and not _scale_ok(P["scale_bits"]):
        return "scale is not a positive normal float32"
    if "s" in P and not 1 <= P["s"] <= 62:
        return f"shift {P['s']} outside [1, 62]"
    mults = [k for k in ("Ma", "Mb", "M0") if k in P]
    if any(not 1 <= P[k] <= 1 << 24 for k in mults):
        return "multiplier outside [1, 2^24]"
    if kind == Kind.CONV:
        if P["Ci"] % P["G"] or P["Co"] % P["G"]:
            return f"group {P['G']} does not divide channels {P['Ci']} -> {P['Co']}"
        for pad, o, s, dd, k, i in (("PT", "OH", "SH", "DH", "KH", "H"), ("PL", "OW", "SW", "DW", "KW", "W")):
            if not 0 <= P[pad] <= MAX_PAD:
                return f"padding {pad} = {P[pad]} outside [0, {MAX_PAD}]"
            implied = (P[o] - 1) * P[s] + P[dd] * (P[k] - 1) + 1 - P[i] - P[pad]
            if not 1 - P[s] <= implied <= MAX_PAD:
                return f"output size {o} = {P[o]} inconsistent with the input and kernel"
    if kind == Kind.ADD and P["numel_a"] % P["numel_b"]:
        return f"numel_b {P['numel_b']} does not divide numel_a {P['numel_a']}"
    if kind == Kind.ADD and not add_floats_ok(P["rac_bits"], P["rbc_bits"], P["fixed_bits"]):
        return "ADD scale ratios outside [2^-32, 2^20) or fixed part outside {0} U [2^-64, 2^29) in magnitude"
    tensors = {Kind.QUANTIZE: lambda: [P["N"] * P["C"] * P["H"] * P["W"]],
               Kind.CONV: lambda: [P["N"] * P["H"] * P["W"] * P["Ci"], P["N"] * P["OH"] * P["OW"] * P["Co"],
                                   P["Co"] * P["KH"] * P["KW"] * (P["Ci"] // P["G"])],
               Kind.ADD: lambda: [P["numel_a"]], Kind.GAP: lambda: [P["N"] * P["H"] * P["W"] * P["C"]],
               Kind.MATMUL: lambda: [P["M"] * P["K"], P["K"] * P["N"], P["M"] * P["N"]],
               Kind.DEQUANTIZE: lambda: [P["numel"]]}[kind]()
    if max(tensors) > MAX_NUMEL:
        return f"a tensor of {max(tensors)} elements (limit {MAX_NUMEL})"
    if kind in REDUCING:
        n, _ = chunking(kind, P, n_inputs)
        if n == 0:
            gas, calldata = chunk_cost(kind, P, n_inputs, 1)
            return (f"one tap's one-step bound {gas} gas / {calldata} bytes of calldata exceeds {ONE_STEP_GAS} gas "
                    f"/ {ONE_STEP_CALLDATA} bytes")
        if n > 1 << MAX_CHUNK_DEPTH:
            return f"{n} chunks of its reduction (limit 2^{MAX_CHUNK_DEPTH})"
        return None
    gas, calldata = one_step_cost(kind, P, n_inputs)
    if gas > ONE_STEP_GAS or calldata > ONE_STEP_CALLDATA:
        return (f"one-step bound {gas} gas / {calldata} bytes of calldata exceeds {ONE_STEP_GAS} gas / "
                f"{ONE_STEP_CALLDATA} bytes")
    return None


def check_op(op) -> None:
    """Raise UnsupportedOperator naming ``op``'s node unless its descriptor satisfies the rules (see `violation`)."""
    why = violation(op.kind, op.params, len(op.inputs))
    if why is not None:
        raise UnsupportedOperator(op.kind.name, op.name, f"descriptor the contract cannot decide: {why}")
