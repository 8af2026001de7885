"""Pinpoint games on chain: deployment, tasks, solver and challenger strategies, and a driver for any chain.

Every strategy decides its next move from chain state (the game struct and the solver's last reveal, read back
from its transaction) and its own `offchain.inference.trace.Trace`, so a restarted player loses nothing.

Strategies:
  * `Solver` - answers every reveal from the trace it committed (honest, or altered by `Trace.altered`: a
    cheating solver commits a trace in which one element of one tensor is wrong).
  * `Challenger` - honest: at each reveal it picks the leftmost child that differs from its own trace, and at the
    end names the first differing element and proves the inputs it recomputes it from.
  * `LyingChallenger` - disputes a correct result: steers the search to a chosen operator and element.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from offchain.inference.trace import Trace

from protocol.chain.connection import Chain, Tx

K_LOG = 4
CHALLENGE_WINDOW = 3600  # seconds
MOVE_WINDOW = 1800  # seconds
BOND_GAS_PRICE = 10**9  # wei per gas (1 gwei) for bond sizing on development chains


@dataclass
class Deployment:
    """The deployed contracts on one chain."""

    chain: Chain
    pinpoint: object
    onestep: object
    gas: dict = field(default_factory=dict)

    @classmethod
    def deploy(cls, chain: Chain, challenge_window: int = CHALLENGE_WINDOW, move_window: int = MOVE_WINDOW,
               bond_gas_price: int = BOND_GAS_PRICE, sender: str | None = None) -> "Deployment":
        """Deploy OneStep and Pinpoint; windows in seconds, bond_gas_price in wei per gas."""
        onestep, t1 = chain.deploy("OneStep", sender=sender)
        pp, t2 = chain.deploy("Pinpoint", onestep.address, challenge_window, move_window, bond_gas_price,
                              sender=sender)
        return cls(chain, pp, onestep, {"deploy OneStep": t1.gas, "deploy Pinpoint": t2.gas})

    @classmethod
    def at(cls, chain: Chain, pinpoint_address: str) -> "Deployment":
        pp = chain.contract("Pinpoint", pinpoint_address)
        return cls(chain, pp, chain.contract("OneStep", pp.functions.oneStep().call()))


@dataclass
class GameState:
    challenger: str
    task_id: int
    phase: int
    turn: int  # 0 solver, 1 challenger
    challenger_won: bool
    deadline: int
    node_index: int
    op_index: int
    height: int
    node: bytes

    @property
    def m(self) -> int:
        return min(K_LOG, self.height)


@dataclass
class Move:
    """One transaction of a game: who sent it, what it did, its gas."""

    who: str
    what: str
    gas: int
    tx: str


def read_game(dep: Deployment, game_id: int) -> GameState:
    g = dep.chain.call(dep.pinpoint.functions.game(game_id))
    return GameState(g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7], g[8], bytes(g[9]))


# ---------------------------------------------------------------------------------------------------- tasks

def post_task(dep: Deployment, trace: Trace, fee: int, sender: str) -> tuple[int, Tx]:
    """Post a task for the model and input of ``trace`` (only the model and input are used); fee in wei."""
    g = trace.graph
    fn = dep.pinpoint.functions.postTask(trace.ops_tree.root, g.n_ops, trace.input_root, trace.max_tensor_depth())
    tx = dep.chain.send(fn, sender=sender, value=fee)
    ev = dep.pinpoint.events.TaskPosted().process_receipt(tx.receipt)[0]
    return int(ev["args"]["taskId"]), tx


def task_bond(dep: Deployment, task_id: int) -> int:
    return int(dep.chain.call(dep.pinpoint.functions.task(task_id))[9])


def submit(dep: Deployment, task_id: int, trace: Trace, sender: str) -> Tx:
    """Submit ``trace``'s output and trace roots for ``task_id`` with the task's bond."""
    fn = dep.pinpoint.functions.submit(task_id, trace.output_root, trace.trace_root, trace.output_proof())
    return dep.chain.send(fn, sender=sender, value=task_bond(dep, task_id))


def challenge(dep: Deployment, task_id: int, sender: str) -> tuple[int, Tx]:
    tx = dep.chain.send(dep.pinpoint.functions.challenge(task_id), sender=sender, value=task_bond(dep, task_id))
    ev = dep.pinpoint.events.Challenged().process_receipt(tx.receipt)[0]
    return int(ev["args"]["gameId"]), tx


# ---------------------------------------------------------------------------------------------------- strategies

class Solver:
    """Answers reveals from the trace it committed."""

    def __init__(self, trace: Trace, address: str):
        self.trace, self.address = trace, address

    def reveal(self, st: GameState) -> list[bytes]:
        return self.trace.children(st.phase, st.op_index, st.height, st.node_index, st.m)


class Challenger:
    """Honest challenger: follows the leftmost disagreement with its own trace."""

    def __init__(self, trace: Trace, address: str):
        self.trace, self.address = trace, address

    def choose(self, st: GameState, revealed: list[bytes]) -> int:
        mine = self.trace.children(st.phase, st.op_index, st.height, st.node_index, st.m)
        for i, (a, b) in enumerate(zip(revealed, mine)):
            if a != b:
                return i
        raise RuntimeError("no disagreement below this node: nothing to dispute")

    def element(self, st: GameState, word: bytes) -> int:
        mine = self.trace.node(2, st.op_index, 0, st.node_index)
        size = self.trace.graph.ops[st.op_index].out.dtype.itemsize
        for i in range(32 // size):
            if word[i * size:(i + 1) * size] != mine[i * size:(i + 1) * size]:
                return i
        raise RuntimeError("no differing element in the disputed word")


class LyingChallenger(Challenger):
    """Disputes a correct result at operator ``op_index``, element ``element``."""

    def __init__(self, trace: Trace, address: str, op_index: int, element: int):
        super().__init__(trace, address)
        self.target_op, self.target_element = op_index, element

    def choose(self, st: GameState, revealed: list[bytes]) -> int:
        if st.phase == 1:
            leaf = self.target_op
        else:
            leaf = self.target_element // (32 // self.trace.graph.ops[st.op_index].out.dtype.itemsize)
        return (leaf >> (st.height - st.m)) & ((1 << st.m) - 1)

    def element(self, st: GameState, word: bytes) -> int:
        return self.target_element % (32 // self.trace.graph.ops[st.op_index].out.dtype.itemsize)


# ---------------------------------------------------------------------------------------------------- driver

def last_reveal(dep: Deployment, tx_hash: str) -> list[bytes]:
    """The children revealed by the solver's transaction ``tx_hash``, decoded from the chain."""
    tx = dep.chain.w3.eth.get_transaction(tx_hash)
    _, args = dep.pinpoint.decode_function_input(tx["input"])
    return [bytes(c) for c in args["children"]]


def solver_move(dep: Deployment, game_id: int, solver: Solver) -> Move:
    st = read_game(dep, game_id)
    children = solver.reveal(st)
    tx = dep.chain.send(dep.pinpoint.functions.reveal(game_id, children), sender=solver.address)
    where = "trace" if st.phase == 1 else f"op {st.op_index} output"
    return Move("solver", f"reveal {len(children)} nodes of the {where} (height {st.height} -> {st.height - st.m})",
                tx.gas, tx.hash)


def challenger_move(dep: Deployment, game_id: int, ch: Challenger, reveal_tx: str | None) -> Move:
    st = read_game(dep, game_id)
    t = ch.trace
    if st.m == 0:
        revealed, child = [st.node], 0
    else:
        revealed = last_reveal(dep, reveal_tx or latest_reveal_tx(dep, game_id))
        child = ch.choose(st, revealed)
    value = revealed[child]
    sib = _siblings(revealed, child, st.m)
    pp = dep.pinpoint.functions
    final = st.height - st.m == 0
    if not final:
        tx = dep.chain.send(pp.pick(game_id, child, value, sib), sender=ch.address)
        return Move("challenger", f"pick child {child} (phase {st.phase}, height {st.height - st.m})", tx.gas, tx.hash)
    if st.phase == 1:
        j = (st.node_index << st.m) | child
        if j < t.graph.n_ops:
            desc, dproof = t.descriptor_proof(j)
        else:
            desc, dproof = b"", []
        tx = dep.chain.send(pp.selectOperator(game_id, child, value, sib, desc, dproof), sender=ch.address)
        name = t.graph.ops[j].kind.name if j < t.graph.n_ops else "padding"
        return Move("challenger", f"select operator {j} ({name}) -> phase 2", tx.gas, tx.hash)
    st_leaf = GameState(**{**st.__dict__, "node_index": (st.node_index << st.m) | child, "height": 0})
    elem = ch.element(st_leaf, value)
    j = st.op_index
    op = t.graph.ops[j]
    e = st_leaf.node_index * (32 // op.out.dtype.itemsize) + elem
    desc, dproof = t.descriptor_proof(j)
    roots, _, openings = t.step_openings(j, e)
    tproofs = solver_trace_proofs(dep, game_id, t, j)
    tx = dep.chain.send(pp.step(game_id, child, value, sib, elem, desc, dproof, roots, tproofs,
                                [o.as_tuple() for o in openings]), sender=ch.address)
    return Move("challenger", f"one-step: {op.kind.name} op {j} element {e}", tx.gas, tx.hash)


def latest_reveal_tx(dep: Deployment, game_id: int) -> str:
    """Hash of the solver's latest reveal in ``game_id`` (from the Revealed events). Raises LookupError."""
    logs = dep.pinpoint.events.Revealed().get_logs(from_block=0, argument_filters={"gameId": game_id})
    if not logs:
        raise LookupError(f"game {game_id} has no reveal yet")
    return logs[-1]["transactionHash"]


def revealed_nodes(dep: Deployment, game_id: int, phase: int) -> dict[tuple[int, int], bytes]:
    """Every node of the solver's tree the solver has revealed in ``phase`` of ``game_id``, with the inner nodes
    they imply, keyed (height, index); read back from the chain (Revealed events and their transactions)."""
    nodes: dict[tuple[int, int], bytes] = {}
    logs = dep.pinpoint.events.Revealed().get_logs(from_block=0, argument_filters={"gameId": game_id})
    from offchain.inference.merkle import keccak

    for log in logs:
        a = log["args"]
        if a["phase"] != phase:
            continue
        children = last_reveal(dep, log["transactionHash"])
        m = (len(children) - 1).bit_length()
        h, base = a["height"] - m, a["nodeIndex"] << m
        level = children
        while True:
            for i, v in enumerate(level):
                nodes[(h, base + i)] = v
            if len(level) == 1:
                break
            level = [keccak(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
            h, base = h + 1, base >> 1
    return nodes


def solver_trace_proofs(dep: Deployment, game_id: int, t: Trace, j: int) -> list[list[bytes]]:
    """Proofs of operator j's input roots against the SOLVER's trace root. Siblings whose subtree holds only
    leaves before j are agreed (taken from our own trace); the others lie beside the search path to j and were
    revealed by the solver in phase 1."""
    seen = revealed_nodes(dep, game_id, 1)
    depth = t.trace_tree.depth
    proofs = []
    for r in t.graph.ops[j].inputs:
        if r == 0:
            proofs.append([])
            continue
        leaf, proof = r - 1, []
        for k in range(depth):
            s = (leaf >> k) ^ 1
            proof.append(t.trace_tree.node(k, s) if (s + 1) << k <= j else seen[(k, s)])
        proofs.append(proof)
    return proofs


def _siblings(nodes: list[bytes], child: int, m: int) -> list[bytes]:
    """Proof of nodes[child] within the complete tree over ``nodes`` (bottom-up)."""
    from offchain.inference.merkle import keccak

    level, out, j = list(nodes), [], child
    for _ in range(m):
        out.append(level[j ^ 1])
        level = [keccak(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
        j >>= 1
    return out


def play(dep: Deployment, game_id: int, solver: Solver, ch: Challenger, max_moves: int = 200) -> list[Move]:
    """Play game ``game_id`` to its end, each side moving when the chain says it is its turn."""
    moves: list[Move] = []
    reveal_tx = None
    for _ in range(max_moves):
        st = read_game(dep, game_id)
        if st.phase == 3:
            return moves
        if st.turn == 0:
            mv = solver_move(dep, game_id, solver)
            reveal_tx = mv.tx
        else:
            mv = challenger_move(dep, game_id, ch, reveal_tx)
        moves.append(mv)
    raise RuntimeError(f"game {game_id} did not end within {max_moves} moves")


def winner(dep: Deployment, game_id: int) -> str:
    st = read_game(dep, game_id)
    if st.phase != 3:
        return "undecided"
    return "challenger" if st.challenger_won else "solver"
