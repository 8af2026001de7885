"""How each side of a pinpoint game chooses its moves, from the chain's `Game` and its own `Trace`.

A strategy holds no game state of its own: it decides from the game struct (`protocol.inference.types.Game`) and
the solver's last reveal read back from the chain, so a restarted player loses nothing.

  * `Solver` - answers every reveal from the trace it committed (honest, or altered by `Trace.altered`: a
    cheating solver commits a trace in which one element of one tensor is wrong).
  * `Challenger` - honest: at each reveal it picks the leftmost child that differs from its own trace, and at the
    end names the first differing element.
  * `LyingChallenger` - disputes a correct result: steers the search to a chosen operator and element.
  * `SumLiar` - a cheating solver that, in phase 3, hides its wrong element behind partial sums consistent with it
    (every sum from a chosen chunk on shifted, chunk 1 being a wrong bias).

Phase 3 (`Phase.REDUCTION`): the solver reveals partial sums of the disputed element (`offchain.inference.reduction`),
the challenger either proves the final requantization wrong (`choose_sums` returns ("finish", 0)) or picks the
first interval whose right end differs from its own (("pick", child)).
"""

from __future__ import annotations

from offchain.common.errors import PinpointError
from offchain.inference import reduction as rd
from offchain.inference.trace import Trace

from .types import Game, Phase


class NothingToDispute(PinpointError, RuntimeError):
    """The challenger's trace agrees with what the solver revealed: there is no disagreement to follow."""


class Solver:
    """Answers reveals from the trace it committed. ``address`` is the account it moves from; ``via``, when set,
    a `Forwarder` contract owned by ``address`` through which it moves (the solver on chain is then the
    forwarder)."""

    def __init__(self, trace: Trace, address: str, via=None):
        self.trace, self.address, self.via = trace, address, via

    def reveal(self, g: Game) -> list[bytes]:
        """The 2**g.m descendants of the current node (32 bytes each), from the committed trace; in phase 3 the
        2**g.m + 1 partial sums of the node (`offchain.inference.reduction.sums_reveal`) as int256 words."""
        if g.phase == Phase.REDUCTION:
            acc = self.partial_sums(g)
            return [rd.to_word(v) for v in rd.sums_reveal(acc, g.height, g.node_index, g.m)]
        return self.trace.children(g.phase, g.op_index, g.height, g.node_index, g.m)

    def partial_sums(self, g: Game) -> list[int]:
        """acc_0..acc_n of the disputed element, from the committed trace's input of the operator."""
        return rd.element_sums(self.trace, g.op_index, g.element)


class SumLiar(Solver):
    """A cheating solver (its ``trace`` has a wrong element) that in phase 3 reveals partial sums consistent with
    its wrong element: acc_i + delta for every i >= ``from_chunk`` (1 = a wrong bias), delta the smallest shift
    that makes the final accumulator requantize to the claimed element."""

    def __init__(self, trace: Trace, address: str, from_chunk: int = 1, via=None):
        super().__init__(trace, address, via)
        self.from_chunk = from_chunk

    def partial_sums(self, g: Game) -> list[int]:
        acc = super().partial_sums(g)
        op = self.trace.graph.ops[g.op_index]
        delta = _shift_to(lambda a: rd.finish_value(op, g.element, a), acc[-1], g.claimed)
        k = min(self.from_chunk, len(acc) - 1)
        return acc[:k] + [a + delta for a in acc[k:]]


def _shift_to(f, acc: int, target: int) -> int:
    """A delta of small magnitude with f(acc + delta) == target: 0..±256 one by one, then geometric steps of 1%
    up to 2^31 (one output step spans 1/S accumulator units, so it is never skipped)."""
    mag, deltas = 0, []
    while mag < 1 << 31:
        deltas += [mag, -mag] if mag else [0]
        mag = mag + 1 if mag < 256 else mag + mag // 100
    for delta in deltas:
        if f(acc + delta) == target:
            return delta
    raise NothingToDispute("no accumulator requantizes to the claimed element")


class Challenger:
    """Honest challenger: follows the leftmost disagreement with its own trace. ``address`` is its account."""

    def __init__(self, trace: Trace, address: str):
        self.trace, self.address = trace, address

    def _per_word(self, g: Game) -> int:
        """Elements per 32-byte word of the disputed operator's output."""
        return 32 // self.trace.graph.ops[g.op_index].out.dtype.itemsize

    def choose(self, g: Game, revealed: list[bytes]) -> int:
        """Index (< 2**g.m) of the revealed child to dispute. Raises NothingToDispute if all agree."""
        mine = self.trace.children(g.phase, g.op_index, g.height, g.node_index, g.m)
        for i, (a, b) in enumerate(zip(revealed, mine)):
            if a != b:
                return i
        raise NothingToDispute("no disagreement below this node: nothing to dispute")

    def element(self, g: Game, word: bytes) -> int:
        """Index within ``word`` (the solver's leaf g.node_index of phase 2) of the first element that differs
        from our own trace. Raises NothingToDispute if none does."""
        mine = self.trace.node(Phase.TENSOR_SEARCH, g.op_index, 0, g.node_index)
        size = 32 // self._per_word(g)
        for i in range(self._per_word(g)):
            if word[i * size:(i + 1) * size] != mine[i * size:(i + 1) * size]:
                return i
        raise NothingToDispute("no differing element in the disputed word")

    def choose_sums(self, g: Game, sums: list[bytes]) -> tuple[str, int]:
        """Phase 3: ("finish", 0) if at the root the solver's final accumulator does not requantize to its
        claimed element, else ("pick", child) for the first revealed interval whose right end differs from our
        own partial sums. Raises NothingToDispute if all agree."""
        op = self.trace.graph.ops[g.op_index]
        got = [rd.from_word(w) for w in sums]
        n, _ = rd.op_chunking(op)
        if g.node_index == 0 and g.height == rd.root_height(n) and rd.finish_value(op, g.element, got[-1]) != g.claimed:
            return "finish", 0
        mine = rd.sums_reveal(rd.element_sums(self.trace, g.op_index, g.element), g.height, g.node_index, g.m)
        for i in range(1 << g.m):
            if got[i + 1] != mine[i + 1]:
                return "pick", i
        raise NothingToDispute("the solver's partial sums agree with ours")


class LyingChallenger(Challenger):
    """Disputes a correct result at operator ``op_index``, element ``element`` (flat index in its output)."""

    def __init__(self, trace: Trace, address: str, op_index: int, element: int):
        super().__init__(trace, address)
        self.target_op, self.target_element = op_index, element

    def choose(self, g: Game, revealed: list[bytes]) -> int:
        """The child on the path to the target leaf, whatever was revealed."""
        if g.phase == Phase.TRACE_SEARCH:
            leaf = self.target_op
        else:
            leaf = self.target_element // self._per_word(g)
        return (leaf >> (g.height - g.m)) & ((1 << g.m) - 1)

    def element(self, g: Game, word: bytes) -> int:
        """The target element's index within its word."""
        return self.target_element % self._per_word(g)

    def choose_sums(self, g: Game, sums: list[bytes]) -> tuple[str, int]:
        """Phase 3: claims the final requantization wrong at the root when ``finish_lie`` is set, else disputes
        the interval on the path to the last chunk."""
        if getattr(self, "finish_lie", False):
            return "finish", 0
        return "pick", (1 << g.m) - 1
