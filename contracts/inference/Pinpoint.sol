// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {Merkle} from "../shared/Merkle.sol";
import {Gas} from "../shared/Gas.sol";
import {Payments} from "../shared/Payments.sol";
import {OneStep, Opening} from "./OneStep.sol";

/// @title Pinpoint: verifiable int8 DNN inference refereed by a two-phase k-ary pinpoint game
/// @notice A requester posts a task (model and input commitments, fee). A solver submits the result (output and
///         trace roots) with a bond, naming the task's model and input roots. Within the challenge window anyone
///         may challenge that result (naming its trace root) with an equal bond. The games of one task are played
///         ONE AT A TIME, in the order of the challenges: the first is active at once, the others wait in the
///         task's queue without a deadline; when the active game ends for the solver, the next starts
///         (deadline now + moveWindow). Each game is:
///         phase 1, a k-ary search over the trace (the solver's per-operator output roots) for the first operator
///         the challenger disputes; phase 2, a k-ary search over that operator's output tensor down to one word;
///         the one-step, where `OneStep` recomputes one element of that operator from Merkle-proven inputs,
///         weights and parameters. A party that misses its move deadline loses.
///         PAYOUT (sequential games with a burn, after Agatha's sequential challenges and BoLD's excess-stake
///         receiver): the loser of a game forfeits its bond B, half (B/2) to the winner and half burned (kept
///         here forever, counted in `burned`, owned by no one); the winner gets its own bond back. A refuted
///         solver: the task is Rejected, the fee goes back to the requester and every queued challenger may
///         `reclaim` its whole bond. B = 2 * Gas.worstCase * bondGasPrice, so B/2 pays the winner's worst-case gas
///         of one game. Hence a cheating solver loses at least B/2 whatever identities it challenges itself from:
///         a sock puppet that wins takes B/2 + its own bond (net -B/2: burned), one that loses burns B/2 and the
///         honest challenger's game comes next. A result is finalized after the window once no game is active or
///         queued; the solver is then paid fee + bond.
///         COPIED SUBMIT: first wins. A copier of a pending `submit` (same roots, its own bond) becomes the
///         solver and must then answer every reveal from the full trace: without having run the inference (or the
///         help of one who did: reveals of phases 1 and 2 may come from anyone, as they are fixed by the committed
///         roots) it times out at its first reveal and loses its bond to any challenger (the front-run solver
///         included).
///         GAS LAYOUT: the game of a task's i-th challenge has id taskId << 32 | i (`gameIdOf`), so the queue is
///         implicit (Task.head, Task.nGames). The games of a task share one two-slot `Arena` (the active game's
///         state), set nonzero by `postTask` (paid by the requester), and each game has a one-slot record: a
///         challenge writes one fresh slot, a reveal reads two slots and writes one, a pick reads three and writes
///         two. While no result is submitted, the traceRoot slot holds keccak256(abi.encode(opsRoot, inputRoot)),
///         which `submit` checks and overwrites.
///         OVER-DEEP OPERATOR: a task whose model has an operator tensor deeper than the declared
///         maxTensorDepth (the requester under-declared it, so bonds are too small) is Voided at the
///         `selectOperator` that reaches it: every bond is returned (solver, active and queued challengers) and
///         the requester's fee is burned.
///         After Agatha (Zheng et al., arXiv 2105.04919) §4, with the phase-2 search over the output tensor and the
///         phase binding of `selectOperator` our own.
/// @dev A game's payouts (winner, and the requester's refund) are pushed at its end with the call stipend only,
///      credited if the payee does not take them (`Payments._payOrCredit`); every other payment is pulled
///      (`Payments`: credit, withdraw). Game.phase is a `Phase` (ABI: uint8, the values of
///      `protocol/inference/types.py` Phase). INVARIANT: address(this).balance == sum(credit) + burned + sum over
///      Open tasks of fee + sum over Submitted tasks of (fee + solver bond) + sum over active or Queued games of
///      the challenger bond (`tests/test_invariant.py`); pushed payouts have left the contract.
contract Pinpoint is Payments {
    // ---------------------------------------------------------------------------------------------- errors
    error ValueMismatch(uint256 expected, uint256 given);
    error BadTask(uint256 taskId);
    error TaskNotOpen(uint256 taskId);
    error TaskNotSubmitted(uint256 taskId);
    error NotRequester();
    error BadModel();
    error BadOutputProof();
    error ChallengeWindowClosed(uint256 closedAt);
    error ChallengeWindowOpen(uint256 closesAt);
    error GamesPending(uint256 open);
    error GameNotInProgress(uint256 gameId);
    error NotYourTurn(address expected);
    error DeadlinePassed(uint256 deadline);
    error DeadlineNotPassed(uint256 deadline);
    error WrongPhase(Phase phase);
    error BadChildCount(uint256 expected, uint256 given);
    error RevealMismatch();
    error BadChild(uint256 child);
    error BadSiblings();
    error UseFinalMove();
    error NotFinalMove();
    error BadDescriptor();
    error BadTraceProof(uint256 input);
    error BadInputRoot(uint256 input);
    error BadElement(uint256 element);
    error WrongTask(uint256 taskId);
    error WrongResult(uint256 taskId);
    error NotReclaimable(uint256 gameId);
    error FeeTooLarge(uint256 fee);
    error BondTooLarge(uint256 bond);
    error IndexOverflow(uint256 index);
    error NotAtRoot();

    // ---------------------------------------------------------------------------------------------- types
    enum Status {
        None,
        Open, // posted, waiting for a result
        Submitted, // result posted, challengeable / in dispute
        Finalized, // result accepted, solver paid
        Rejected, // solver lost a game: result refuted, fee refunded
        Cancelled, // requester withdrew an unsolved task
        Voided // an operator deeper than the declared maxTensorDepth was selected: bonds returned, fee burned
    }

    /// @dev Storage of a task, packed so that `submit` and `challenge` read and write few slots.
    struct Task {
        // slot 0
        address solver;
        Status status;
        uint32 nOps;
        uint8 traceDepth;
        uint8 maxTensorDepth;
        uint40 submittedAt; // seconds
        // slot 1
        address requester;
        uint32 openGames; // games active or queued
        uint32 head; // index (in the task's game ids, see `gameIdOf`) of the active game (when openGames > 0)
        uint32 nGames; // challenges so far: the task's games are gameId(taskId, 0 .. nGames - 1)
        // slot 2
        uint128 fee; // wei
        uint128 bond; // wei, the solver's and every challenger's (also `_bond`, computed from slot 0)
        // slots 3-5
        bytes32 opsRoot;
        bytes32 inputRoot;
        bytes32 traceRoot; // while no result is submitted: keccak256(abi.encode(opsRoot, inputRoot)), which
            // `submit` checks (one slot read) and overwrites (a nonzero slot: no fresh-slot cost)
    }

    /// @notice A task as `task` returns it (the ABI of `protocol/inference/types.py` Task): traceRoot is zero
    ///         until a result is submitted; head the position in `queue(taskId)` of the active game.
    struct TaskView {
        address solver;
        Status status;
        uint32 nOps;
        uint8 traceDepth;
        uint8 maxTensorDepth;
        uint40 submittedAt;
        address requester;
        uint32 openGames;
        uint32 head;
        uint128 fee;
        uint128 bond;
        bytes32 opsRoot;
        bytes32 inputRoot;
        bytes32 traceRoot;
    }

    enum Phase {
        None, // no such game
        TraceSearch, // phase 1: k-ary search over the trace for the first disputed operator
        TensorSearch, // phase 2: k-ary search over that operator's output tensor down to one word
        Resolved, // decided: see challengerWon
        Queued, // waiting behind the task's active game; no deadline
        Cancelled, // ended undecided (task rejected or voided): the bond was returned
        Reduction // phase 3: dissection of the disputed element's partial sums down to one chunk
    }

    enum Turn {
        Solver, // to reveal the children of the current node
        Challenger // to pick one child (or to make the phase's final move)
    }

    /// @dev The record of one game (one slot, written at `challenge`, activation and the end). While the game is
    ///      active (phase TraceSearch here), its state is the task's `Arena`.
    struct Game {
        address challenger;
        Phase phase; // Queued, TraceSearch (= active: see the arena), Resolved or Cancelled
        bool challengerWon;
        uint40 activeBlock; // block at which the game became active (its moves' events are at or after it)
    }

    /// @dev The state of a task's active game (its games are played one at a time, so they share it): two slots
    ///      that `postTask` sets nonzero (`ONE`, `NODE_MASK`), so that no challenge or move writes a fresh slot.
    ///      Slot 0 holds everything a move reads or writes besides the node: a reveal reads two slots and writes
    ///      one (no address check in phases 1 and 2: see `reveal`), a pick reads three and writes two.
    struct Arena {
        // slot 0
        uint32 index; // the active game's index: its id is gameIdOf(taskId, index)
        uint40 deadline; // seconds
        uint32 nodeIndex; // index of the current node at its level (depths <= 32: see postTask)
        uint8 height; // levels between the current node and the leaves
        Phase phase; // TraceSearch, TensorSearch or Reduction while a game is active, else None
        Turn turn;
        uint32 opIndex; // the disputed operator (phases 2 and 3)
        uint32 element; // phase 3: the disputed element (flat index in operator opIndex's output)
        uint8 claimed; // phase 3: the solver's value of it (its byte)
        uint8 one; // always ONE: keeps the slot nonzero
        uint32 size; // phases 2 and 3: numel << 3 | esize of operator opIndex's output (`OneStep.profile`)
        uint16 chunksM1; // phases 2 and 3: the number of chunks of its reduction, minus 1 (`OneStep.profile`)
        // slot 1
        bytes32 maskedNode; // the solver's value of the current node XOR NODE_MASK (nonzero whatever the node)
    }

    /// @notice A game as `game` returns it (the ABI of `protocol/inference/types.py` Game).
    struct GameView {
        address challenger;
        uint64 taskId;
        Phase phase;
        Turn turn;
        bool challengerWon;
        uint64 deadline;
        uint64 nodeIndex;
        uint32 opIndex;
        uint8 height;
        uint40 activeBlock;
        uint32 element;
        uint8 claimed;
        bytes32 node;
    }

    // ---------------------------------------------------------------------------------------------- state
    OneStep public immutable oneStep;
    /// @notice Seconds after a submission during which it may be challenged.
    uint256 public immutable challengeWindow;
    /// @notice Seconds each party has for each move.
    uint256 public immutable moveWindow;
    /// @notice Wei per gas at which bonds are sized (`Gas.worstCase` * bondGasPrice).
    uint256 public immutable bondGasPrice;

    /// @notice Wei burned: forfeited half-bonds and voided tasks' fees, held here forever and owed to no one.
    uint256 public burned;
    /// @notice Number of tasks posted (ids 0 .. taskCount - 1).
    uint256 public taskCount;

    mapping(uint256 => Task) internal _tasks;
    /// @dev gameId = taskId << 32 | i for the task's i-th challenge (`gameIdOf`).
    mapping(uint256 => Game) internal _games;
    /// @dev taskId => the state of its active game.
    mapping(uint256 => Arena) internal _arenas;

    uint8 internal constant ONE = 1;
    bytes32 internal constant NODE_MASK = keccak256("pinpoint.arena.node");

    // ---------------------------------------------------------------------------------------------- events
    event TaskPosted(
        uint256 indexed taskId, address indexed requester, bytes32 modelRoot, bytes32 inputRoot, uint256 fee, uint256 bond
    );
    event ResultSubmitted(uint256 indexed taskId, address indexed solver, bytes32 outputRoot, bytes32 traceRoot);
    event Challenged(uint256 indexed taskId, uint256 indexed gameId, address indexed challenger);
    /// @notice Game `gameId` is now the task's active game; the solver's first move is due by `deadline`.
    event GameStarted(uint256 indexed gameId, uint256 indexed taskId, uint256 deadline);
    /// @dev phase: a `Phase` as uint8 (emitting the enum type would re-validate it, ~90 gas per event).
    ///      height and nodeIndex: the node whose descendants `children` (2**m of them, left to right) are. Clients
    ///      read moves from these events only, never from transaction input (a move may come through a contract).
    event Revealed(uint256 indexed gameId, uint8 phase, uint8 height, uint64 nodeIndex, bytes32[] children);
    /// @dev height and nodeIndex: the picked node, `value` the solver's value of it.
    event Picked(uint256 indexed gameId, uint8 phase, uint8 height, uint64 nodeIndex, bytes32 value);
    event OperatorSelected(uint256 indexed gameId, uint32 opIndex, uint8 tensorDepth);
    /// @notice Phase 3 starts: element `element` of the disputed operator is a reduction of `chunks` chunks,
    ///         dissected over a tree of height `height` (the solver reveals first). In phase 3, `Revealed`
    ///         carries int256 partial sums as 32-byte zigzag words (`_sum`) and `Picked` the picked right end.
    event ReductionStarted(uint256 indexed gameId, uint256 element, uint256 chunks, uint8 height);
    event GameResolved(uint256 indexed gameId, uint256 indexed taskId, bool challengerWon, string reason);
    event TaskFinalized(uint256 indexed taskId, address solver);
    event TaskRejected(uint256 indexed taskId, uint256 gameId);
    event TaskCancelled(uint256 indexed taskId);
    event TaskVoided(uint256 indexed taskId, uint256 gameId, uint256 tensorDepth);
    event BondReclaimed(uint256 indexed gameId, address indexed challenger, uint256 bond);

    /// @param oneStep_ the deployed operator definitions
    /// @param challengeWindow_ seconds a result stays challengeable
    /// @param moveWindow_ seconds per move
    /// @param bondGasPrice_ wei per gas for bond sizing
    constructor(OneStep oneStep_, uint256 challengeWindow_, uint256 moveWindow_, uint256 bondGasPrice_) {
        oneStep = oneStep_;
        challengeWindow = challengeWindow_;
        moveWindow = moveWindow_;
        bondGasPrice = bondGasPrice_;
    }

    // ---------------------------------------------------------------------------------------------- views
    /// @notice Bond in wei that the solver and each challenger of a model of `nOps` operators and largest
    ///         tensor tree depth `maxTensorDepth` must post: twice the worst-case gas of one game times
    ///         bondGasPrice, so that the half a loser pays its winner covers the winner's gas.
    function bondFor(uint256 nOps, uint256 maxTensorDepth) public view returns (uint256) {
        return 2 * Gas.worstCase(Merkle.depthForLeaves(nOps), maxTensorDepth) * bondGasPrice;
    }

    /// @notice The id of task `taskId`'s game of its `index`-th challenge (0-based): taskId << 32 | index.
    function gameIdOf(uint256 taskId, uint256 index) public pure returns (uint256) {
        return (taskId << 32) | index;
    }

    /// @notice Ids of task `taskId`'s games in the order of their challenges; the active one is at `task.head`.
    function queue(uint256 taskId) external view returns (uint256[] memory ids) {
        uint256 n = _task(taskId).nGames;
        ids = new uint256[](n);
        for (uint256 i = 0; i < n; ++i) {
            ids[i] = gameIdOf(taskId, i);
        }
    }

    /// @notice `keccak256(abi.encode(nOps, opsRoot))`, the model commitment of
    ///         `Graph.model_root` in `offchain/inference/graph.py`.
    function modelRoot(uint256 taskId) public view returns (bytes32) {
        Task storage t = _task(taskId);
        return keccak256(abi.encode(uint256(t.nOps), t.opsRoot));
    }

    /// @custom:reverts BadTask (no such task)
    function task(uint256 taskId) external view returns (TaskView memory v) {
        Task storage t = _task(taskId);
        v = TaskView({
            solver: t.solver,
            status: t.status,
            nOps: t.nOps,
            traceDepth: t.traceDepth,
            maxTensorDepth: t.maxTensorDepth,
            submittedAt: t.submittedAt,
            requester: t.requester,
            openGames: t.openGames,
            head: t.head,
            fee: t.fee,
            bond: t.bond,
            opsRoot: t.opsRoot,
            inputRoot: t.inputRoot,
            traceRoot: t.submittedAt == 0 ? bytes32(0) : t.traceRoot
        });
    }

    /// @custom:reverts GameNotInProgress (no such game)
    function game(uint256 id) external view returns (GameView memory v) {
        Game storage g = _games[id];
        if (g.phase == Phase.None) revert GameNotInProgress(id);
        v.challenger = g.challenger;
        v.taskId = uint64(id >> 32);
        v.phase = g.phase;
        v.challengerWon = g.challengerWon;
        v.activeBlock = g.activeBlock;
        Arena storage a = _arenas[id >> 32];
        // the arena holds the state of the task's active game, or of its last active one once that has ended
        if (g.activeBlock != 0 && a.index == uint32(id)) {
            if (g.phase == Phase.TraceSearch) v.phase = a.phase;
            v.turn = a.turn;
            v.deadline = a.deadline;
            v.nodeIndex = a.nodeIndex;
            v.opIndex = a.opIndex;
            v.height = a.height;
            v.element = a.element;
            v.claimed = a.claimed;
            v.node = a.maskedNode ^ NODE_MASK;
        }
    }

    function _task(uint256 taskId) internal view returns (Task storage t) {
        t = _tasks[taskId];
        if (t.status == Status.None) revert BadTask(taskId);
    }

    /// @dev The bond of task t (wei), from slot 0 (as `bondFor` at postTask).
    function _bond(Task storage t) internal view returns (uint256) {
        return 2 * Gas.worstCase(t.traceDepth, t.maxTensorDepth) * bondGasPrice;
    }

    // ---------------------------------------------------------------------------------------------- tasks
    /// @notice Post an inference task; msg.value is the fee (wei) paid to the solver of an accepted result.
    /// @param opsRoot root of the operator-descriptor tree of the canonical model
    /// @param nOps number of canonical operators (>= 1, < 2^32)
    /// @param inputRoot Merkle root of the float32 input tensor (NCHW)
    /// @param maxTensorDepth depth of the largest tensor tree of the model (sizes the bond; <= 32)
    /// @return taskId
    /// @custom:reverts BadModel if nOps is 0 or maxTensorDepth > 32; FeeTooLarge if msg.value >= 2**128 wei;
    ///                 BondTooLarge if the bond (bondGasPrice too high) is >= 2**128 wei
    function postTask(bytes32 opsRoot, uint32 nOps, bytes32 inputRoot, uint8 maxTensorDepth)
        external
        payable
        returns (uint256 taskId)
    {
        if (nOps == 0 || maxTensorDepth > 32) revert BadModel();
        if (msg.value > type(uint128).max) revert FeeTooLarge(msg.value);
        uint256 bond = bondFor(nOps, maxTensorDepth);
        if (bond > type(uint128).max) revert BondTooLarge(bond);
        taskId = taskCount++;
        _tasks[taskId] = Task({
            solver: address(0),
            status: Status.Open,
            nOps: nOps,
            traceDepth: uint8(Merkle.depthForLeaves(nOps)),
            maxTensorDepth: maxTensorDepth,
            submittedAt: 0,
            requester: msg.sender,
            openGames: 0,
            head: 0,
            nGames: 0,
            fee: uint128(msg.value),
            bond: uint128(bond),
            opsRoot: opsRoot,
            inputRoot: inputRoot,
            traceRoot: keccak256(abi.encode(opsRoot, inputRoot))
        });
        Arena storage ar = _arenas[taskId];
        ar.one = ONE; // the arena's slots are set nonzero here, once per task (see Arena)
        ar.maskedNode = NODE_MASK;
        emit TaskPosted(taskId, msg.sender, keccak256(abi.encode(uint256(nOps), opsRoot)), inputRoot, msg.value, bond);
    }

    /// @notice Requester withdraws an unsolved task; the fee is credited back.
    /// @custom:reverts NotRequester, TaskNotOpen
    function cancel(uint256 taskId) external {
        Task storage t = _task(taskId);
        if (msg.sender != t.requester) revert NotRequester();
        if (t.status != Status.Open) revert TaskNotOpen(taskId);
        t.status = Status.Cancelled;
        _credit(t.requester, t.fee);
        emit TaskCancelled(taskId);
    }

    /// @notice Submit the result of an open task with the bond (msg.value == task bond, wei). The first
    ///         submission wins (see COPIED SUBMIT above).
    /// @param opsRoot, inputRoot the task's model and input roots: a submission replayed (e.g. after a
    ///        reorganization) onto a task with another model or input reverts instead of landing there
    /// @param outputRoot root of the output tensor (float32 logits)
    /// @param traceRoot root of the trace: leaf i = root of operator i's output tensor
    /// @param outputProof siblings proving outputRoot is leaf nOps-1 of traceRoot (traceDepth of them)
    /// @custom:reverts TaskNotOpen, WrongTask, ValueMismatch, BadOutputProof
    function submit(
        uint256 taskId,
        bytes32 opsRoot,
        bytes32 inputRoot,
        bytes32 outputRoot,
        bytes32 traceRoot,
        bytes32[] calldata outputProof
    ) external payable {
        Task storage t = _task(taskId);
        if (t.status != Status.Open) revert TaskNotOpen(taskId);
        // while Open, the traceRoot slot holds keccak256(abi.encode(opsRoot, inputRoot)) (postTask)
        if (keccak256(abi.encode(opsRoot, inputRoot)) != t.traceRoot) revert WrongTask(taskId);
        uint256 bond = _bond(t);
        if (msg.value != bond) revert ValueMismatch(bond, msg.value);
        if (outputProof.length != t.traceDepth || Merkle.rootOf(outputRoot, t.nOps - 1, outputProof) != traceRoot) {
            revert BadOutputProof();
        }
        t.solver = msg.sender;
        t.status = Status.Submitted;
        t.submittedAt = uint40(block.timestamp);
        t.traceRoot = traceRoot;
        emit ResultSubmitted(taskId, msg.sender, outputRoot, traceRoot);
    }

    /// @notice Accept an unrefuted result after the challenge window once no game is active or queued: the
    ///         solver is credited fee + bond (wei).
    /// @custom:reverts BadTask, TaskNotSubmitted, ChallengeWindowOpen, GamesPending
    function finalize(uint256 taskId) external {
        Task storage t = _task(taskId);
        if (t.status != Status.Submitted) revert TaskNotSubmitted(taskId);
        uint256 closes = uint256(t.submittedAt) + challengeWindow;
        if (block.timestamp <= closes) revert ChallengeWindowOpen(closes);
        if (t.openGames != 0) revert GamesPending(t.openGames);
        t.status = Status.Finalized;
        _credit(t.solver, uint256(t.fee) + t.bond);
        emit TaskFinalized(taskId, t.solver);
    }

    // ---------------------------------------------------------------------------------------------- games
    /// @notice Challenge the submitted result (msg.value == task bond, wei): the new game, of id
    ///         `gameIdOf(taskId, i)` for the task's i-th challenge, joins the task's queue. It is active at once
    ///         (solver to move, deadline now + moveWindow) if no other game of the task is active, else it waits,
    ///         without a deadline, until the games before it end for the solver.
    /// @param traceRoot the trace root of the result challenged: a challenge replayed onto another result
    ///        (e.g. after a reorganization) reverts
    /// @return id the game's id
    /// @custom:reverts BadTask, TaskNotSubmitted, WrongResult, ChallengeWindowClosed, ValueMismatch, IndexOverflow
    function challenge(uint256 taskId, bytes32 traceRoot) external payable returns (uint256 id) {
        Task storage t = _task(taskId);
        if (t.status != Status.Submitted) revert TaskNotSubmitted(taskId);
        if (traceRoot != t.traceRoot) revert WrongResult(taskId);
        uint256 closes = uint256(t.submittedAt) + challengeWindow;
        if (block.timestamp > closes) revert ChallengeWindowClosed(closes);
        uint256 bond = _bond(t);
        if (msg.value != bond) revert ValueMismatch(bond, msg.value);
        bool active = t.openGames == 0;
        uint256 i = t.nGames;
        if (i + 1 > type(uint32).max) revert IndexOverflow(i);
        t.nGames = uint32(i + 1);
        t.openGames += 1;
        id = gameIdOf(taskId, i);
        Game storage g = _games[id];
        g.challenger = msg.sender;
        g.phase = Phase.Queued;
        emit Challenged(taskId, id, msg.sender);
        if (active) _activate(taskId, i, g, t);
    }

    /// @dev Game `index` of task `taskId` (record g) becomes active: phase 1 at the trace root, solver to move.
    function _activate(uint256 taskId, uint256 index, Game storage g, Task storage t) internal {
        g.phase = Phase.TraceSearch;
        g.activeBlock = uint40(block.number);
        Arena storage a = _arenas[taskId];
        uint256 depth = t.traceDepth;
        a.index = uint32(index);
        a.deadline = uint40(block.timestamp + moveWindow);
        a.nodeIndex = 0;
        a.height = uint8(depth);
        a.phase = Phase.TraceSearch;
        a.turn = depth == 0 ? Turn.Challenger : Turn.Solver;
        a.maskedNode = t.traceRoot ^ NODE_MASK;
        emit GameStarted(gameIdOf(taskId, index), taskId, block.timestamp + moveWindow);
    }

    /// @notice Return the whole bond (wei, credited) of a game still queued when its task was Rejected or
    ///         Voided. Anyone may call it; the challenger is credited.
    /// @custom:reverts NotReclaimable (no such game, not queued, or the task still Submitted)
    function reclaim(uint256 id) external {
        Game storage g = _games[id];
        Task storage t = _tasks[id >> 32];
        if (g.phase != Phase.Queued || (t.status != Status.Rejected && t.status != Status.Voided)) {
            revert NotReclaimable(id);
        }
        g.phase = Phase.Cancelled;
        t.openGames -= 1;
        _credit(g.challenger, t.bond);
        emit BondReclaimed(id, g.challenger, t.bond);
    }

    /// @dev The arena of game `id` if `id` is its task's active game, before its deadline, and `turn`'s turn.
    function _arena(uint256 id, Turn turn) internal view returns (Arena storage a) {
        a = _arenas[id >> 32];
        if (!_moving(a.phase) || a.index != uint32(id)) revert GameNotInProgress(id);
        if (block.timestamp > a.deadline) revert DeadlinePassed(a.deadline);
        if (a.turn != turn) {
            revert NotYourTurn(a.turn == Turn.Solver ? _tasks[id >> 32].solver : _games[id].challenger);
        }
    }

    /// @dev `_arena` for the challenger's moves, with msg.sender checked to be the challenger.
    function _challengerMove(uint256 id) internal view returns (Arena storage a, Game storage g) {
        a = _arena(id, Turn.Challenger);
        g = _games[id];
        if (msg.sender != g.challenger) revert NotYourTurn(g.challenger);
    }

    function _moving(Phase p) internal pure returns (bool) {
        return p == Phase.TraceSearch || p == Phase.TensorSearch || p == Phase.Reduction;
    }

    /// @dev Levels the next reveal descends: in phases 1 and 2 `Gas.split` of the height (at most Gas.TAIL, the
    ///      height cut evenly into ceil(height / TAIL) reveals), in phase 3 min(K_LOG, height).
    function _m(Arena storage a) internal view returns (uint256) {
        uint256 h = a.height;
        if (a.phase != Phase.Reduction) return Gas.split(h);
        return h < Gas.K_LOG ? h : Gas.K_LOG;
    }

    /// @notice Solver move: reveal the 2**m descendants, m levels below the current node: in phases 1 and 2
    ///         m = `Gas.split(height)` (<= 5: the height cut evenly into ceil(height / 5) reveals), in phase 3
    ///         min(4, height).
    ///         They must hash up to the current node. In phases 1 and 2 anyone may send them for the solver: they
    ///         are fixed by the node the solver committed (a Keccak Merkle tree), so whoever sends them sends what
    ///         the solver would. In phase 3 (Reduction), only the solver: `children` are then 2**m + 1 int256
    ///         partial sums as 32-byte zigzag words (`_sum`: small magnitudes are mostly zero bytes, the cheap
    ///         calldata, whatever their sign): the accumulator at the node's left end, then at the
    ///         right end of each of its 2**m descendants (chunks past the last one add 0); the first and the last
    ///         must be the node's ends (at the root: the left end is acc_0 = 0 and the last is acc_n, which the
    ///         solver fixes here).
    /// @custom:reverts GameNotInProgress, DeadlinePassed, NotYourTurn, BadChildCount, RevealMismatch
    function reveal(uint256 id, bytes32[] calldata children) external {
        Arena storage a = _arenas[id >> 32];
        uint256 w; // arena slot 0: index | deadline << 32 | nodeIndex << 72 | height << 104 | phase << 112
        //            | turn << 120 | opIndex << 128 | element << 160 | claimed << 192 | one << 200
        assembly ("memory-safe") {
            w := sload(a.slot)
        }
        uint256 phase = uint8(w >> 112);
        if (phase == uint256(Phase.Reduction)) return _revealSums(id, a, children);
        if ((phase != uint256(Phase.TraceSearch) && phase != uint256(Phase.TensorSearch)) || uint32(w) != uint32(id)) {
            revert GameNotInProgress(id);
        }
        if (block.timestamp > uint40(w >> 32)) revert DeadlinePassed(uint40(w >> 32));
        if (uint8(w >> 120) != uint8(Turn.Solver)) revert NotYourTurn(_games[id].challenger);
        uint256 height = uint8(w >> 104);
        uint256 k = 1 << Gas.split(height); // `_m` in phases 1 and 2
        if (children.length != k) revert BadChildCount(k, children.length);
        if (_subtreeRoot(children) != a.maskedNode ^ NODE_MASK) revert RevealMismatch();
        // turn := Challenger, deadline := now + moveWindow (one write of slot 0)
        w = (w & ~((uint256(type(uint40).max) << 32) | (uint256(type(uint8).max) << 120)))
            | (uint256(uint40(block.timestamp + moveWindow)) << 32) | (uint256(Turn.Challenger) << 120);
        assembly ("memory-safe") {
            sstore(a.slot, w)
        }
        _emitRevealed(id, phase, height, uint32(w >> 72), children);
    }

    /// @dev reveal() in phase 3 (see there): the solver only.
    function _revealSums(uint256 id, Arena storage a, bytes32[] calldata children) internal {
        _arena(id, Turn.Solver);
        address solver = _tasks[id >> 32].solver;
        if (msg.sender != solver) revert NotYourTurn(solver);
        uint256 m = _m(a);
        if (children.length != (1 << m) + 1) revert BadChildCount((1 << m) + 1, children.length);
        bytes32 node = a.maskedNode ^ NODE_MASK;
        bytes32 ends = node == bytes32(0) // the root: acc_n not fixed yet
            ? keccak256(abi.encode(bytes32(0), children[children.length - 1]))
            : node;
        if (keccak256(abi.encode(children[0], children[children.length - 1])) != ends) revert RevealMismatch();
        a.maskedNode = keccak256(abi.encodePacked(children)) ^ NODE_MASK;
        a.turn = Turn.Challenger;
        a.deadline = uint40(block.timestamp + moveWindow);
        _emitRevealed(id, uint8(Phase.Reduction), a.height, a.nodeIndex, children);
    }

    /// @dev `Merkle.subtreeRoot` of 2**m calldata words (m >= 1), hashed in place in free memory.
    function _subtreeRoot(bytes32[] calldata c) internal pure returns (bytes32 r) {
        assembly ("memory-safe") {
            let p := mload(0x40)
            let n := c.length
            calldatacopy(p, c.offset, shl(5, n))
            for {} gt(n, 1) {} {
                n := shr(1, n)
                for { let i := 0 } lt(i, n) { i := add(i, 1) } {
                    mstore(add(p, shl(5, i)), keccak256(add(p, shl(6, i)), 0x40))
                }
            }
            r := mload(p)
        }
    }

    /// @dev `emit Revealed(id, phase, height, nodeIndex, children)` with the same ABI encoding, written straight
    ///      from calldata (no memory copy of `children` by the compiler).
    function _emitRevealed(uint256 id, uint256 phase, uint256 height, uint256 nodeIndex, bytes32[] calldata c)
        internal
    {
        bytes32 sig = Revealed.selector;
        assembly ("memory-safe") {
            let p := mload(0x40)
            mstore(p, phase)
            mstore(add(p, 0x20), height)
            mstore(add(p, 0x40), nodeIndex)
            mstore(add(p, 0x60), 0x80)
            mstore(add(p, 0x80), c.length)
            calldatacopy(add(p, 0xa0), c.offset, shl(5, c.length))
            log2(p, add(0xa0, shl(5, c.length)), sig, id)
        }
    }

    /// @dev Descend to `child` (< 2**m) of the revealed children, whose value is proven by m `siblings` against the
    ///      current node. Returns true when the new node is a leaf.
    function _descend(Arena storage a, uint256 child, bytes32 value, bytes32[] calldata siblings)
        internal
        returns (bool)
    {
        uint256 m = _m(a);
        if (child >= (1 << m)) revert BadChild(child);
        if (siblings.length != m || Merkle.rootOf(value, child, siblings) != a.maskedNode ^ NODE_MASK) {
            revert BadSiblings();
        }
        a.maskedNode = value ^ NODE_MASK;
        // unreachable while depths are bounded (trace <= 32, tensor <= maxTensorDepth <= 32): a guard, not a cast
        uint256 index = (uint256(a.nodeIndex) << m) | child;
        if (index > type(uint32).max) revert IndexOverflow(index);
        a.nodeIndex = uint32(index);
        a.height -= uint8(m);
        a.deadline = uint40(block.timestamp + moveWindow);
        return a.height == 0;
    }

    /// @notice Challenger move: pick the child (of the solver's last reveal) it disputes, not the last of a phase.
    /// @param child index among the 2**m revealed children; value its value; siblings the proof of it
    /// @custom:reverts GameNotInProgress, DeadlinePassed, NotYourTurn, BadChild, BadSiblings, UseFinalMove
    function pick(uint256 id, uint256 child, bytes32 value, bytes32[] calldata siblings) external {
        (Arena storage a,) = _challengerMove(id);
        if (a.phase == Phase.Reduction) revert WrongPhase(a.phase);
        if (_descend(a, child, value, siblings)) revert UseFinalMove();
        a.turn = Turn.Solver;
        emit Picked(id, uint8(a.phase), a.height, a.nodeIndex, value);
    }

    /// @notice Challenger's last phase-1 move: pick the disputed trace leaf j (operator j's output root) and bind
    ///         phase 2 to it: `desc` must be operator j's descriptor (proven against the model), the phase-2
    ///         tree is operator j's output tensor with the root the solver committed at leaf j.
    ///         A leaf past the last operator is padding: it must be zero, decided at once. An operator whose
    ///         output tree is deeper than the task's maxTensorDepth voids the task (see OVER-DEEP OPERATOR).
    /// @custom:reverts GameNotInProgress, WrongPhase, DeadlinePassed, NotYourTurn, BadChild, BadSiblings,
    ///                 NotFinalMove, BadDescriptor
    function selectOperator(
        uint256 id,
        uint256 child,
        bytes32 value,
        bytes32[] calldata siblings,
        bytes calldata desc,
        bytes32[] calldata descProof
    ) external {
        (Arena storage a, Game storage g) = _challengerMove(id);
        if (a.phase != Phase.TraceSearch) revert WrongPhase(a.phase);
        if (!_descend(a, child, value, siblings)) revert NotFinalMove();
        Task storage t = _tasks[id >> 32];
        uint256 j = a.nodeIndex;
        if (j >= t.nOps) {
            _resolve(id, a, g, t, value != bytes32(0), "trace padding");
            return;
        }
        _checkDesc(t, j, desc, descProof);
        (bool decidable, uint256 numel, uint256 esize, uint256 n) = oneStep.profile(desc);
        // a decidable descriptor has numel <= MAX_NUMEL = 2**28, esize in {1, 4} and 1 <= n <= 2**16: checked
        // again here so that the arena's packing (size, chunksM1) can never truncate
        decidable = decidable && numel < 1 << 29 && esize >= 1 && esize <= 7 && n >= 1 && n <= 1 << 16;
        if (!decidable) {
            // an operator OneStep cannot decide (bad parameters, unknown kind, over the one-step limits): the
            // solver committed to a model its client must refuse (`offchain/inference/limits.py`), so it loses
            _resolve(id, a, g, t, true, "undecidable operator");
            return;
        }
        uint8 depth = uint8(Merkle.depthForBytes(numel * esize));
        if (depth > t.maxTensorDepth) {
            _void(id, a, g, t, depth);
            return;
        }
        a.phase = Phase.TensorSearch;
        a.opIndex = uint32(j);
        a.size = uint32((numel << 3) | esize);
        a.chunksM1 = uint16(n - 1);
        a.height = depth;
        a.nodeIndex = 0;
        a.turn = depth == 0 ? Turn.Challenger : Turn.Solver;
        emit OperatorSelected(id, uint32(j), depth);
    }

    function _checkDesc(Task storage t, uint256 j, bytes calldata desc, bytes32[] calldata proof) internal view {
        if (proof.length != t.traceDepth || Merkle.rootOf(keccak256(desc), j, proof) != t.opsRoot) {
            revert BadDescriptor();
        }
    }

    /// @notice The one-step, the challenger's last phase-2 move: pick the disputed word of operator j's output
    ///         tensor, name one element in it, and supply what `OneStep` needs to recompute that element: operator
    ///         j's descriptor, the roots of its inputs (proven against the solver's trace, the model input against
    ///         the task) and the openings of inputs, weights and tables. The challenger wins iff the recomputed
    ///         element differs from the solver's. If the element is a reduction of more than one chunk
    ///         (`OneStep.chunks`, kept by `selectOperator`), phase 3 starts instead: nothing is proven then (pass
    ///         an empty desc and empty arrays), nor for an element past the end of the tensor (it must be 0).
    /// @param element index of the element within the word (< 32 / element size)
    /// @param inputRoots roots of the operator's runtime inputs, in descriptor order
    /// @param traceProofs per input: siblings proving its root in the solver's trace (empty for the model input)
    /// @custom:reverts GameNotInProgress, WrongPhase, DeadlinePassed, NotYourTurn, BadChild, BadSiblings,
    ///                 NotFinalMove, BadDescriptor, BadElement, BadInputRoot, BadTraceProof, and OneStep's errors
    function step(
        uint256 gameId,
        uint256 child,
        bytes32 value,
        bytes32[] calldata siblings,
        uint256 element,
        bytes calldata desc,
        bytes32[] calldata descProof,
        bytes32[] calldata inputRoots,
        bytes32[][] calldata traceProofs,
        Opening[] calldata openings
    ) external {
        (Arena storage a, Game storage g) = _challengerMove(gameId);
        if (a.phase != Phase.TensorSearch) revert WrongPhase(a.phase);
        if (!_descend(a, child, value, siblings)) revert NotFinalMove();
        Task storage t = _tasks[gameId >> 32];
        uint256 esize = a.size & 7; // the sizes `selectOperator` kept from the proven descriptor
        uint256 numel = a.size >> 3;
        uint256 perWord = 32 / esize;
        if (element >= perWord) revert BadElement(element);
        uint256 e = uint256(a.nodeIndex) * perWord + element;
        uint256 claimed = (uint256(value) >> (256 - 8 * esize * (element + 1))) & ((1 << (8 * esize)) - 1);
        uint256 expected = 0;
        if (e < numel) {
            if (a.chunksM1 != 0) {
                _startReduction(gameId, a, e, claimed, uint256(a.chunksM1) + 1);
                return;
            }
            _checkDesc(t, a.opIndex, desc, descProof);
            _checkInputs(t, desc, inputRoots, traceProofs);
            expected = oneStep.element(desc, inputRoots, e, openings);
        }
        _resolve(gameId, a, g, t, expected != claimed, "one-step");
    }

    function _checkInputs(Task storage t, bytes calldata desc, bytes32[] calldata roots, bytes32[][] calldata proofs)
        internal
        view
    {
        (, uint256[] memory inputs) = abi.decode(desc, (uint256, uint256[]));
        if (roots.length != inputs.length || proofs.length != inputs.length) revert BadInputRoot(inputs.length);
        for (uint256 i = 0; i < inputs.length; ++i) {
            uint256 ref = inputs[i];
            if (ref == 0) {
                if (roots[i] != t.inputRoot) revert BadInputRoot(i);
            } else if (
                proofs[i].length != t.traceDepth || Merkle.rootOf(roots[i], ref - 1, proofs[i]) != t.traceRoot
            ) {
                revert BadTraceProof(i);
            }
        }
    }

    // ---------------------------------------------------------------------------------------------- phase 3
    // The disputed element e is sat(requantize(acc_n)) with acc_i = acc_{i-1} + chunk_i (acc_0 = 0, chunk 1 adds
    // the bias; `OneStep.chunk`). Its chunks are the leaves of a tree of height h = ceil(log2 n), searched k-arily
    // like phases 1 and 2 over the solver's revealed partial sums: the node is 0 at the root (acc_n not yet fixed),
    // keccak256(sums) after a reveal, keccak256(left end, right end) after a pick. At the root the challenger
    // may instead show requantize(acc_n) != the claimed element (`finish`); at the leaves it recomputes one chunk
    // (`chunkStep`). Each final move is one bounded one-step (the cost model of `offchain/inference/limits.py`).

    function _startReduction(uint256 gameId, Arena storage a, uint256 e, uint256 claimed, uint256 n) internal {
        uint256 h = 0;
        while ((1 << h) < n) ++h;
        a.phase = Phase.Reduction;
        a.element = uint32(e);
        a.claimed = uint8(claimed);
        a.height = uint8(h);
        a.nodeIndex = 0;
        a.maskedNode = NODE_MASK; // node 0: the root
        a.turn = Turn.Solver;
        emit ReductionStarted(gameId, e, n, uint8(h));
    }

    /// @dev The int256 partial sum of a phase-3 word w, zigzag-encoded: w = 2v for v >= 0, -2v - 1 for v < 0
    ///      (`offchain.inference.reduction.to_word`); acc_0 = 0 is the zero word. A bijection of 256-bit words.
    function _sum(bytes32 w) internal pure returns (int256 v) {
        uint256 z = uint256(w);
        unchecked {
            v = int256(z >> 1) ^ -int256(z & 1);
        }
    }

    /// @dev Checks `sums` (the solver's last phase-3 reveal, 2**m + 1 words) against the node; returns the child's
    ///      left and right ends and descends to it (deadline renewed). Returns true at a leaf.
    function _descendSums(Arena storage a, uint256 child, bytes32[] calldata sums)
        internal
        returns (int256 left, int256 right, bool leaf)
    {
        if (a.phase != Phase.Reduction) revert WrongPhase(a.phase);
        uint256 m = _m(a);
        if (child >= (1 << m)) revert BadChild(child);
        if (sums.length != (1 << m) + 1 || keccak256(abi.encodePacked(sums)) != a.maskedNode ^ NODE_MASK) {
            revert BadSiblings();
        }
        left = _sum(sums[child]);
        right = _sum(sums[child + 1]);
        a.maskedNode = keccak256(abi.encode(sums[child], sums[child + 1])) ^ NODE_MASK;
        a.nodeIndex = uint32((uint256(a.nodeIndex) << m) | child); // < 2**REDUCTION_DEPTH
        a.height -= uint8(m);
        a.deadline = uint40(block.timestamp + moveWindow);
        leaf = a.height == 0;
    }

    /// @notice Challenger's phase-3 move (not the last): pick the revealed interval whose left end it agrees with
    ///         and whose right end it disputes.
    /// @param child index among the 2**m intervals; sums the solver's last reveal (from its `Revealed` event)
    /// @custom:reverts GameNotInProgress, WrongPhase, DeadlinePassed, NotYourTurn, BadChild, BadSiblings,
    ///                 UseFinalMove
    function pickSum(uint256 gameId, uint256 child, bytes32[] calldata sums) external {
        (Arena storage a,) = _challengerMove(gameId);
        (,, bool leaf) = _descendSums(a, child, sums);
        if (leaf) revert UseFinalMove();
        a.turn = Turn.Solver;
        emit Picked(gameId, uint8(Phase.Reduction), a.height, a.nodeIndex, sums[child + 1]);
    }

    /// @notice Challenger's last phase-3 move at a leaf: pick chunk i (its left end agreed, right end disputed)
    ///         and recompute it from inputs proven against the solver's trace and weights proven against the
    ///         model (`OneStep.chunk`). The challenger wins iff left + chunk != right.
    /// @param child index among the 2**m intervals of the last reveal; sums that reveal
    /// @param desc, descProof the disputed operator's descriptor and its proof in the model
    /// @param inputRoots, traceProofs, openings as for `step` (openings of `OneStep.chunk`)
    /// @custom:reverts GameNotInProgress, WrongPhase, DeadlinePassed, NotYourTurn, BadChild, BadSiblings,
    ///                 NotFinalMove, BadDescriptor, BadInputRoot, BadTraceProof, and OneStep's errors
    function chunkStep(
        uint256 gameId,
        uint256 child,
        bytes32[] calldata sums,
        bytes calldata desc,
        bytes32[] calldata descProof,
        bytes32[] calldata inputRoots,
        bytes32[][] calldata traceProofs,
        Opening[] calldata openings
    ) external {
        (Arena storage a, Game storage g) = _challengerMove(gameId);
        (int256 left, int256 right, bool leaf) = _descendSums(a, child, sums);
        if (!leaf) revert NotFinalMove();
        Task storage t = _tasks[gameId >> 32];
        _checkDesc(t, a.opIndex, desc, descProof);
        _checkInputs(t, desc, inputRoots, traceProofs);
        int256 sum = oneStep.chunk(desc, inputRoots, a.element, a.nodeIndex, openings);
        bool differs;
        unchecked {
            differs = left + sum != right; // wraps only on values no honest solver reveals
        }
        _resolve(gameId, a, g, t, differs, "chunk one-step");
    }

    /// @notice Challenger's phase-3 move at the root, instead of a pick: show that the solver's final accumulator
    ///         acc_n (the last of its first reveal) does not requantize to the element it claimed
    ///         (`OneStep.finish`). The challenger wins iff it does not.
    /// @param sums the solver's root reveal; openings of `OneStep.finish` (CONV/MATMUL [table], GAP [])
    /// @custom:reverts GameNotInProgress, WrongPhase, DeadlinePassed, NotYourTurn, BadSiblings, BadDescriptor,
    ///                 NotAtRoot, and OneStep's errors
    function finish(
        uint256 gameId,
        bytes32[] calldata sums,
        bytes calldata desc,
        bytes32[] calldata descProof,
        Opening[] calldata openings
    ) external {
        (Arena storage a, Game storage g) = _challengerMove(gameId);
        if (a.phase != Phase.Reduction) revert WrongPhase(a.phase);
        Task storage t = _tasks[gameId >> 32];
        _checkDesc(t, a.opIndex, desc, descProof);
        uint256 n = uint256(a.chunksM1) + 1;
        uint256 h = 0;
        while ((1 << h) < n) ++h;
        if (a.height != h) revert NotAtRoot();
        if (sums.length != (1 << _m(a)) + 1 || keccak256(abi.encodePacked(sums)) != a.maskedNode ^ NODE_MASK) {
            revert BadSiblings();
        }
        uint256 value = oneStep.finish(desc, a.element, _sum(sums[sums.length - 1]), openings);
        _resolve(gameId, a, g, t, value != a.claimed, "final requantization");
    }

    /// @notice Anyone: end a game whose mover missed its deadline; the mover loses.
    /// @custom:reverts GameNotInProgress, DeadlineNotPassed
    function timeout(uint256 gameId) external {
        Arena storage a = _arenas[gameId >> 32];
        if (!_moving(a.phase) || a.index != uint32(gameId)) revert GameNotInProgress(gameId);
        if (block.timestamp <= a.deadline) revert DeadlineNotPassed(a.deadline);
        _resolve(gameId, a, _games[gameId], _tasks[gameId >> 32], a.turn == Turn.Solver, "timeout");
    }

    /// @dev The active game ends: the loser's bond B is forfeited, B/2 to the winner and B - B/2 burned; the
    ///      winner's own bond is returned (the solver's stays staked until `finalize`). A winning challenger
    ///      refutes the result (Rejected, fee to the requester; queued challengers `reclaim`); a winning solver
    ///      faces the next queued game, which starts now. The arena keeps the ended game's last state (`game`)
    ///      until the next game starts. The winner's B + B/2 (challenger) or B/2 (solver) and the requester's
    ///      refunded fee are pushed last (`_payOrCredit`), credited to a payee that does not take them.
    function _resolve(
        uint256 gameId,
        Arena storage a,
        Game storage g,
        Task storage t,
        bool challengerWon,
        string memory reason
    ) internal {
        a.phase = Phase.None;
        g.phase = Phase.Resolved;
        g.challengerWon = challengerWon;
        t.openGames -= 1;
        uint256 head = t.head + 1;
        t.head = uint32(head);
        uint256 bond = t.bond;
        uint256 half = bond / 2;
        burned += bond - half;
        uint256 taskId = gameId >> 32;
        if (challengerWon) {
            t.status = Status.Rejected;
            emit TaskRejected(taskId, gameId);
        }
        emit GameResolved(gameId, taskId, challengerWon, reason);
        if (!challengerWon && t.openGames != 0) {
            // the games before it have ended: the next one is Queued
            _activate(taskId, head, _games[gameIdOf(taskId, head)], t);
        }
        // the payouts last, after every effect (`_payOrCredit`: pushed with the stipend only, else credited)
        if (challengerWon) {
            _payOrCredit(g.challenger, bond + half);
            _payOrCredit(t.requester, t.fee);
        } else {
            _payOrCredit(t.solver, half);
        }
    }

    /// @dev The requester under-declared maxTensorDepth (operator of tree depth `depth` selected): the task is
    ///      Voided, the active game Cancelled, the solver's and this challenger's bonds returned (queued ones by
    ///      `reclaim`), the fee burned.
    function _void(uint256 gameId, Arena storage a, Game storage g, Task storage t, uint256 depth) internal {
        a.phase = Phase.None;
        g.phase = Phase.Cancelled;
        t.openGames -= 1;
        t.head += 1;
        t.status = Status.Voided;
        burned += t.fee;
        _credit(g.challenger, t.bond);
        _credit(t.solver, t.bond);
        emit TaskVoided(gameId >> 32, gameId, depth);
    }
}
