"""How each side of a pinpoint game chooses its moves, from the chain's `Game` and its own `Trace`.

A strategy holds no game state of its own: it decides from the game struct (`protocol.inference.types.Game`) and
the solver's last reveal read back from the chain, so a restarted player loses nothing.

  * `Solver` - answers every reveal from the trace it committed (honest, or altered by `Trace.altered`: a
    cheating solver commits a trace in which one element of one tensor is wrong).
  * `Challenger` - honest: at each reveal it picks the leftmost child that differs from its own trace, and at the
    end names the first differing element.
  * `LyingChallenger` - disputes a correct result: steers the search to a chosen operator and element.
"""

from __future__ import annotations

from offchain.common.errors import PinpointError
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
        """The 2**g.m descendants of the current node (32 bytes each), from the committed trace."""
        return self.trace.children(g.phase, g.op_index, g.height, g.node_index, g.m)


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
