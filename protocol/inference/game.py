"""Pinpoint games on chain: deployment, tasks, the moves of each side and a driver, for any chain.

Each move reads the game (`protocol.inference.types.Game`) and the solver's last reveal back from the chain (from
its `Revealed` event, `protocol.inference.events`, never from transaction input) and asks a strategy
(`protocol.inference.strategies`) what to play, so a restarted player loses nothing. The games of a task are
played one at a time: `challenge` may return a queued game, which starts when the games before it end.

    dep = Deployment.deploy(chain)
    task_id, _ = post_task(dep, trace, fee, requester)
    submit(dep, task_id, solver_trace, solver_address)
    game_id, _ = challenge(dep, task_id, challenger_address)
    moves = play(dep, game_id, Solver(...), Challenger(...))
    winner(dep, game_id)          # "challenger", "solver" or "undecided"
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from web3.logs import DISCARD

from offchain.common.errors import PinpointError
from offchain.inference import reduction as rd
from offchain.inference.merkle import subtree_levels, subtree_siblings
from offchain.inference.trace import Trace

from protocol.chain.connection import Chain, Tx
from .events import latest_reveal, reveals
from .strategies import Challenger, Solver
from .types import Game, Phase, Turn, decode_game, decode_task

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
        """The Pinpoint deployed at ``pinpoint_address`` and the OneStep it uses."""
        pp = chain.contract("Pinpoint", pinpoint_address)
        return cls(chain, pp, chain.contract("OneStep", pp.functions.oneStep().call()))


@dataclass
class Move:
    """One transaction of a game: who sent it, what it did, its gas."""

    who: str
    what: str
    gas: int
    tx: str


def read_game(dep: Deployment, game_id: int) -> Game:
    """Game ``game_id`` as the chain holds it now. Raises ChainError (GameNotInProgress) for an unknown id."""
    return decode_game(dep.pinpoint, dep.chain.call(dep.pinpoint.functions.game(game_id)))


# ---------------------------------------------------------------------------------------------------- tasks

def post_task(dep: Deployment, trace: Trace, fee: int, sender: str) -> tuple[int, Tx]:
    """Post a task for the model and input of ``trace`` (only the model and input are used); fee in wei."""
    g = trace.graph
    fn = dep.pinpoint.functions.postTask(trace.ops_tree.root, g.n_ops, trace.input_root, trace.max_tensor_depth())
    tx = dep.chain.send(fn, sender=sender, value=fee)
    ev = dep.pinpoint.events.TaskPosted().process_receipt(tx.receipt)[0]
    return int(ev["args"]["taskId"]), tx


def read_task(dep: Deployment, task_id: int):
    """Task ``task_id`` (`protocol.inference.types.Task`) as the chain holds it now. Raises ChainError (BadTask)."""
    return decode_task(dep.pinpoint, dep.chain.call(dep.pinpoint.functions.task(task_id)))


def task_bond(dep: Deployment, task_id: int) -> int:
    """The bond (wei) the solver and each challenger of ``task_id`` must post."""
    return read_task(dep, task_id).bond


def submit_call(dep: Deployment, task_id: int, trace: Trace):
    """The `submit` call for ``trace``'s result on ``task_id``, naming the task's model and input roots (so a
    replay onto another task reverts with WrongTask)."""
    return dep.pinpoint.functions.submit(task_id, trace.ops_tree.root, trace.input_root, trace.output_root,
                                         trace.trace_root, trace.output_proof())


def submit(dep: Deployment, task_id: int, trace: Trace, sender: str) -> Tx:
    """Submit ``trace``'s output and trace roots for ``task_id`` with the task's bond."""
    return dep.chain.send(submit_call(dep, task_id, trace), sender=sender, value=task_bond(dep, task_id))


def challenge(dep: Deployment, task_id: int, sender: str, trace_root: bytes | None = None) -> tuple[int, Tx]:
    """Challenge the result with trace root ``trace_root`` (default: the task's result as read now) of ``task_id``
    with the task's bond; returns (game id, Tx). The game is active at once or queued behind the task's active
    game. Raises ChainError (WrongResult if the task's result is not ``trace_root``)."""
    t = read_task(dep, task_id)
    root = t.trace_root if trace_root is None else trace_root
    tx = dep.chain.send(dep.pinpoint.functions.challenge(task_id, root), sender=sender, value=t.bond)
    ev = dep.pinpoint.events.Challenged().process_receipt(tx.receipt, errors=DISCARD)[0]
    return int(ev["args"]["gameId"]), tx


# ---------------------------------------------------------------------------------------------------- moves

def send_as(dep: Deployment, fn, sender: str, value: int = 0, via=None) -> Tx:
    """Send Pinpoint call ``fn`` (value in wei) from ``sender``, or, with ``via`` (a `Forwarder` contract owned by
    ``sender``, `contracts/testing/Forwarder.sol`), through it: Pinpoint then sees the forwarder as msg.sender and
    the move is in no transaction's input as a call to Pinpoint. Raises ChainError if it reverts."""
    if via is None:
        return dep.chain.send(fn, sender=sender, value=value)
    data = fn._encode_transaction_data()
    return dep.chain.send(via.functions.forward(dep.pinpoint.address, data), sender=sender, value=value)


def solver_move(dep: Deployment, game_id: int, solver: Solver) -> Move:
    """The solver's move in ``game_id`` (its turn): reveal the current node's 2**m descendants (through
    ``solver.via`` when set). Raises ChainError if the contract rejects it."""
    g = read_game(dep, game_id)
    children = solver.reveal(g)
    tx = send_as(dep, dep.pinpoint.functions.reveal(game_id, children), solver.address, via=solver.via)
    if g.phase == Phase.REDUCTION:
        return Move("solver", f"reveal {len(children)} partial sums of op {g.op_index} element {g.element} "
                    f"(height {g.height} -> {g.height - g.m})", tx.gas, tx.hash)
    where = "trace" if g.phase == Phase.TRACE_SEARCH else f"op {g.op_index} output"
    return Move("solver", f"reveal {len(children)} nodes of the {where} (height {g.height} -> {g.height - g.m})",
                tx.gas, tx.hash)


def challenger_move(dep: Deployment, game_id: int, ch: Challenger, revealed: list[bytes] | None = None) -> Move:
    """The challenger's move in ``game_id`` (its turn): pick a revealed child, or at a phase's last level select
    the disputed operator (phase 1) or make the one-step (phase 2), or in phase 3 pick an interval of partial
    sums, recompute a chunk or the final requantization. ``revealed``: the children of the solver's reveal of the
    current node (None: read from its Revealed event, `protocol.inference.events.latest_reveal`).
    Raises ChainError if the contract rejects the move, MoveNotFound if the reveal's event is not found."""
    g = read_game(dep, game_id)
    if g.phase == Phase.REDUCTION:
        sums = revealed if revealed is not None else latest_reveal(dep, game_id, game=g)
        return _reduction_move(dep, game_id, g, sums, ch)
    if g.m == 0:
        revealed, child = [g.node], 0
    else:
        revealed = revealed if revealed is not None else latest_reveal(dep, game_id, game=g)
        child = ch.choose(g, revealed)
    value, sib = revealed[child], subtree_siblings(revealed, child)
    pp = dep.pinpoint.functions
    if g.height > g.m:
        tx = dep.chain.send(pp.pick(game_id, child, value, sib), sender=ch.address)
        return Move("challenger", f"pick child {child} (phase {int(g.phase)}, height {g.height - g.m})", tx.gas,
                    tx.hash)
    leaf = dataclasses.replace(g, node_index=(g.node_index << g.m) | child, height=0, node=value)
    if g.phase == Phase.TRACE_SEARCH:
        return _select_operator(dep, game_id, leaf, child, sib, ch)
    return _one_step(dep, game_id, leaf, child, sib, ch)


def _select_operator(dep: Deployment, game_id: int, leaf: Game, child: int, sib: list[bytes], ch: Challenger) -> Move:
    """Phase 1's last move: descend to trace leaf j and bind phase 2 to operator j (or to padding)."""
    t, j = ch.trace, leaf.node_index
    desc, dproof = t.descriptor_proof(j) if j < t.graph.n_ops else (b"", [])
    fn = dep.pinpoint.functions.selectOperator(game_id, child, leaf.node, sib, desc, dproof)
    tx = dep.chain.send(fn, sender=ch.address)
    name = t.graph.ops[j].kind.name if j < t.graph.n_ops else "padding"
    return Move("challenger", f"select operator {j} ({name}) -> phase 2", tx.gas, tx.hash)


def _one_step(dep: Deployment, game_id: int, leaf: Game, child: int, sib: list[bytes], ch: Challenger) -> Move:
    """Phase 2's last move: name the disputed element of the leaf word and prove what it is recomputed from."""
    t, j = ch.trace, leaf.op_index
    elem = ch.element(leaf, leaf.node)
    op = t.graph.ops[j]
    e = leaf.node_index * (32 // op.out.dtype.itemsize) + elem
    n, _ = rd.op_chunking(op)
    if n > 1 and e < op.out.numel:  # the contract starts phase 3 instead (chunk count kept at selectOperator)
        fn = dep.pinpoint.functions.step(game_id, child, leaf.node, sib, elem, b"", [], [], [], [])
        tx = dep.chain.send(fn, sender=ch.address)
        return Move("challenger", f"phase 3: {op.kind.name} op {j} element {e} ({n} chunks)", tx.gas, tx.hash)
    desc, dproof = t.descriptor_proof(j)
    roots, _, openings = t.step_openings(j, e)
    tproofs = solver_trace_proofs(dep, game_id, t, j)
    fn = dep.pinpoint.functions.step(game_id, child, leaf.node, sib, elem, desc, dproof, roots, tproofs,
                                     [o.as_tuple() for o in openings])
    tx = dep.chain.send(fn, sender=ch.address)
    return Move("challenger", f"one-step: {op.kind.name} op {j} element {e}", tx.gas, tx.hash)


def _reduction_move(dep: Deployment, game_id: int, g: Game, sums: list[bytes], ch: Challenger) -> Move:
    """A challenger's phase-3 move on the solver's reveal ``sums``: the final requantization, a pick, or at a
    leaf the chunk one-step."""
    t, j, e = ch.trace, g.op_index, g.element
    op = t.graph.ops[j]
    pp = dep.pinpoint.functions
    action, child = ch.choose_sums(g, sums)
    desc, dproof = t.descriptor_proof(j)
    if action == "finish":
        opens = [o.as_tuple() for o in rd.finish_openings(op, e)]
        tx = dep.chain.send(pp.finish(game_id, sums, desc, dproof, opens), sender=ch.address)
        return Move("challenger", f"one-step: final requantization of {op.kind.name} op {j} element {e}", tx.gas,
                    tx.hash)
    if g.height > g.m:
        tx = dep.chain.send(pp.pickSum(game_id, child, sums), sender=ch.address)
        return Move("challenger", f"pick partial sums {child} (phase 3, height {g.height - g.m})", tx.gas, tx.hash)
    i = (g.node_index << g.m) | child
    roots, _, openings = rd.chunk_openings(t, j, e, i)
    tproofs = solver_trace_proofs(dep, game_id, t, j)
    fn = pp.chunkStep(game_id, child, sums, desc, dproof, roots, tproofs, [o.as_tuple() for o in openings])
    tx = dep.chain.send(fn, sender=ch.address)
    return Move("challenger", f"one-step: chunk {i} of {op.kind.name} op {j} element {e}", tx.gas, tx.hash)


def revealed_nodes(dep: Deployment, game_id: int, phase: Phase) -> dict[tuple[int, int], bytes]:
    """Every node of the solver's tree the solver has revealed in ``phase`` of ``game_id``, with the inner nodes
    they imply, keyed (height, index); read back from the chain (the game's Revealed events)."""
    nodes: dict[tuple[int, int], bytes] = {}
    for r in reveals(dep, game_id):
        if r["phase"] != phase:
            continue
        levels = subtree_levels(r["children"])
        m = len(levels) - 1
        for up, level in enumerate(levels):
            h, base = r["height"] - m + up, (r["node_index"] << m) >> up
            for i, v in enumerate(level):
                nodes[(h, base + i)] = v
    return nodes


def solver_trace_proofs(dep: Deployment, game_id: int, t: Trace, j: int) -> list[list[bytes]]:
    """Proofs of operator j's input roots against the SOLVER's trace root. Siblings whose subtree holds only
    leaves before j are agreed (taken from our own trace); the others lie beside the search path to j and were
    revealed by the solver in phase 1."""
    seen = revealed_nodes(dep, game_id, Phase.TRACE_SEARCH)
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


# ---------------------------------------------------------------------------------------------------- driver

class GameStuck(PinpointError, RuntimeError):
    """A game did not end within the allowed number of moves."""


def play(dep: Deployment, game_id: int, solver: Solver, ch: Challenger, max_moves: int = 200) -> list[Move]:
    """Play game ``game_id`` to its end, each side moving when the chain says it is its turn. Raises GameStuck
    after ``max_moves`` moves, ChainError if a move is rejected."""
    moves: list[Move] = []
    for _ in range(max_moves):
        g = read_game(dep, game_id)
        if g.resolved:
            return moves
        if not g.active:
            raise GameStuck(f"game {game_id} is queued: it starts when the task's earlier games end")
        mv = solver_move(dep, game_id, solver) if g.turn == Turn.SOLVER else challenger_move(dep, game_id, ch)
        moves.append(mv)
    raise GameStuck(f"game {game_id} did not end within {max_moves} moves")


def winner(dep: Deployment, game_id: int) -> str:
    """"challenger" or "solver" once ``game_id`` is decided, "cancelled" if it ended undecided (its bond returned:
    the task was rejected or voided first), else "undecided"."""
    return read_game(dep, game_id).winner or "undecided"
