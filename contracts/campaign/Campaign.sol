// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {BN254} from "./BN254.sol";
import {Bounds} from "./Bounds.sol";
import {CodeTree} from "./CodeTree.sol";
import {Rewards} from "./Rewards.sol";
import {Payments} from "../shared/Payments.sol";

/// @title Campaign: one Argus anti-piracy incentive campaign (one contract instance per campaign)
/// @notice The owner escrows the reward budget and publishes an oblivious-transfer key A = a*G. A licensee joins
///         with its deposit D_L (>= 2R) and its OT choice points B_i = sigma_i*A + b_i*G, one per segment; the
///         owner then commits to the Merkle root (`CodeTree`) of the 2*S code leaves of that licensee (two
///         variants per segment, each a 128-bit code), reserving R + D_L of its escrow for that licence, and delivers both variants of
///         every segment by OT, so the licensee holds exactly one variant per segment, which the owner cannot
///         predict.
///         Every parameter is within `Bounds` (each bound documents the attack it stops).
///         Informers report a leaked copy by commit-and-reveal: commit c = H(informer, H(items, salt)); after
///         `minAge` seconds reveal the codes of any k >= `quorum` segments of one licensee's copy (a partial copy
///         is enough; a copy mixing several licensees' segments is one report per licensee), opened against the
///         licensee's code root with one multiproof (proof of possession), fixing those segments' variant bits.
///         The first reveal accuses the licensee and opens the collection window; only commitments at least
///         `minAge` old at that first reveal count; on segments reported before, the first-reported bits stand
///         (a contradicting report, which only a holder of other variants can make, still counts, so it cannot
///         shut honest reports out). Each of the n valid reports earns f(n) = R*rho^(n-1) (`Rewards`), final when
///         the collection window closes.
///         Then the appeal window: the licensee may open (sigma_j, b_j) of m >= `appealQuorum` reported segments
///         whose reported bit differs from its choice (checked with the alt_bn128 precompiles) and is cleared:
///         the copy came from the owner, who alone knows every variant, so the licence's reserve pays R (the
///         informers' n*f(n), the rest burned) and compensates the framed licensee with D_L. FRAMING by guessing
///         succeeds with probability 2^-k * sum_{i<m} C(k, i) <= 1/8 (`Bounds`). REPUDIATION (a guilty
///         licensee's friend reporting a copy with m flipped segments) needs m second preimages of 128-bit
///         leaves of 128-bit codes, domain-separated: about m * 2^128 Keccak evaluations (the searches add up,
///         they do not multiply; each is out of reach, so m = 1 suffices). Otherwise anyone may `setGuilty` after the
///         appeal window: the deposit is slashed, R of it pays the informers' n*f(n) (the rest R - n*f(n)
///         burned) and the owner gets exactly D_L - R; the reserve returns to the escrow.
///         OWNER-NEUTRAL: the owner's payoff is -(R + D_L) (cleared), +(D_L - R) (guilty), 0 (otherwise), whatever
///         the number n of reports. A leaker reporting itself recovers at most R, so loses at least D_L - R.
///         NO SHUT-OUT: a report never needs escrow (each licence holds its own reserve from `license` on), and
///         a commitment made before the campaign's end may make the first reveal until `revealsClose`.
///         LAUNDERING: a licensee holds the public watermark key, so it can overwrite the public layer of its own
///         copy. The owner may also embed every variant's code in a second layer under a secret key, detect a
///         laundered copy itself and report it through the same commit/reveal as any informer (earning f(n)
///         like any informer; its owner payoff above is unchanged). The contract stores only
///         `secretKeyCommitment` = keccak256("pinpoint-watermark-secret-key-v1|" || key) (0 if none;
///         `offchain/campaign/secret.py`), fixed before any licence, so that once the key is disclosed anyone can
///         check the owner's detection used the key committed before licensing.
///         Construction of the protocol: see the Argus paper (arXiv 2107.06049) and
///         `offchain/campaign/ot.py`.
/// @dev Hash formats (all keccak256, abi.encodePacked):
///      code leaf = bytes16(H(campaign: address, id: uint32, segment: uint8, variant: uint8, code: bytes16))
///      (`CodeTree`); pair word of segment j = leaf(j, 0) || leaf(j, 1); codeRoot = Merkle root of the S pair
///      words, padded with zero words to a power of two;
///      choiceHash = H(B_0.x, B_0.y, ..., B_{S-1}.x, B_{S-1}.y);
///      report item of segment j = code(16) || leaf of the other variant(16);
///      commitment = H(informer, H(items: bytes(32*k), salt)), the k reported items in segment order.
///      Payments are pulled (`claimReward`, `withdrawEscrow`, and `Payments`: credit, withdraw).
///      INVARIANT: address(this).balance == escrow + sum(credit) + burned + D_L per Joined licensee
///      + (R + 2*D_L) per Licensed licensee + (R + 2*D_L - claimed rewards) per Accused licensee + the unclaimed
///      rewards of resolved (Cleared/Guilty) licensees.
contract Campaign is Payments {
    // ---------------------------------------------------------------------------------------------- errors
    error BadPoint();
    error EscrowTooSmall(uint256 required, uint256 given);
    error ValueMismatch(uint256 expected, uint256 given);
    error NotOwner();
    error NotLicensee(address expected);
    error UnknownLicensee(uint256 id);
    error WrongStatus(uint256 id, Status status);
    error BadLength(uint256 expected, uint256 given);
    error BadBits(uint64 mask, uint64 bits);
    error TooFewSegments(uint256 required, uint256 given);
    error NotReported(uint256 segment);
    error CampaignEnded(uint256 endedAt);
    error RevealsClosed(uint256 closedAt);
    error CampaignNotEnded(uint256 endsAt);
    error CommitmentExists(bytes32 commitment);
    error UnknownCommitment(bytes32 commitment);
    error CommitmentTooYoung(uint256 revealableAt);
    error CommitmentTooLate(uint256 committedAt, uint256 firstRevealAt);
    error CodeMismatch(uint256 id);
    error CollectionClosed(uint256 closedAt);
    error EscrowExhausted(uint256 required, uint256 available);
    error RewardNotFinal(uint256 finalAt);
    error NoReward(bytes32 commitment);
    error AlreadyClaimed(bytes32 commitment);
    error AppealWindowNotOpen(uint256 opensAt);
    error AppealWindowClosed(uint256 closedAt);
    error AppealWindowOpen(uint256 closesAt);
    error BadSegment(uint256 segment);
    error BadChoice();
    error BadOpening(uint256 segment);

    // ---------------------------------------------------------------------------------------------- types
    enum Status {
        None,
        Joined, // deposit paid, OT choices published, waiting for the owner's code commitment
        Licensed, // code hashes committed, copy delivered by OT
        Accused, // a leaked copy was revealed: collection, then appeal window
        Cleared, // appeal won: framed by the owner
        Guilty, // appeal window passed: deposit slashed
        Refunded // left (never licensed, or not accused by the campaign's end): deposit returned
    }

    /// @notice Campaign parameters (constructor argument).
    struct Params {
        uint128 reward; // R, wei: reward of a single report (> 0)
        uint64 rhoNum; // decay rho = rhoNum / rhoDen in [1/10, 1/2)
        uint64 rhoDen;
        uint128 deposit; // D_L, wei, >= 2*R; R + D_L of escrow is reserved per licence
        uint32 segments; // S, 4..64: segments of the work, two variants each
        uint32 minAge; // seconds a commitment must age before its reveal
        uint32 collectionWindow; // seconds after the first reveal of a copy during which reports count
        uint32 appealWindow; // seconds after the collection window during which the licensee may appeal
        uint64 duration; // seconds from creation during which licensees may be accused
        uint256 otKeyX; // A = a*G, the owner's oblivious-transfer key (alt_bn128, affine)
        uint256 otKeyY;
        bytes32 watermarkKey; // the public key of the watermark detector
        uint32 quorum; // k, 3..S: segments a report must open (framing by guessing: 2^-k with m = 1)
        uint32 appealQuorum; // m, 1..k: differing segments an appeal must open (repudiation: ~m * 2^128 keccaks)
        bytes32 secretKeyCommitment; // `offchain.campaign.secret.commitment` of the secret key, 0: no secret layer
    }

    /// @dev Slot 0: status, accusedAt, reports, bits, mask, licensedAt (nonzero from `join` on, so a reveal
    ///      rewrites one nonzero slot: 2,900 gas); slot 1: licensee; slots 2-3: hashes.
    struct License {
        Status status;
        uint40 accusedAt; // seconds: time of the first reveal
        uint32 reports; // n: valid reports of the leaked copy
        uint64 bits; // the reported variant of segment j is bit j (for the segments in `mask`)
        uint64 mask; // bit j set: segment j has been reported (the union of every report's segments)
        uint40 licensedAt; // seconds: time of `license` (0 before)
        address licensee;
        bytes32 choiceHash;
        bytes32 codeRoot;
    }

    // ---------------------------------------------------------------------------------------------- state
    address public immutable owner;
    uint256 public immutable reward;
    uint256 public immutable rhoNum;
    uint256 public immutable rhoDen;
    uint256 public immutable deposit;
    uint256 public immutable segments;
    /// @notice k: segments a report must open (any k of one licensee's copy).
    uint256 public immutable quorum;
    /// @notice m: reported segments whose variant differs from the licensee's choice that an appeal must open.
    uint256 public immutable appealQuorum;
    /// @notice Depth of each licensee's code tree (over the S pair words): ceil(log2(S)).
    uint256 public immutable codeDepth;
    uint256 public immutable minAge;
    uint256 public immutable collectionWindow;
    uint256 public immutable appealWindow;
    uint256 public immutable endsAt;
    /// @notice Seconds: no first reveal from this time on (endsAt + minAge + collectionWindow), so a commitment
    ///         made before the end can still accuse; licensed deposits are refundable from then.
    uint256 public immutable revealsClose;
    uint256 public immutable otKeyX;
    uint256 public immutable otKeyY;
    bytes32 public immutable watermarkKey;
    /// @notice keccak256("pinpoint-watermark-secret-key-v1|" || k) of the owner's secret watermark key k (0: none): the
    ///         owner's detections of laundered copies can be checked against it once k is disclosed.
    bytes32 public immutable secretKeyCommitment;

    /// @notice Owner's escrow not reserved for an accused licensee (wei).
    uint256 public escrow;
    /// @notice Wei locked in this contract forever: the part R - n*f(n) of a resolved licence's R not paid to its
    ///         informers (so that no party's payoff grows with the number of reports).
    uint256 public burned;
    /// @notice Number of licensees that joined (ids 0..licenseeCount-1).
    uint256 public licenseeCount;
    mapping(uint256 => License) internal _licenses;
    /// @notice Informer -> commitment -> record: bits 0-39 the block time it was made (seconds), bits 40-47 its
    ///         stage (0 committed, 1 revealed, 2 reward claimed), bits 48- the licensee id it reported (once
    ///         revealed); 0 if none. Keyed by the sender too, so copying someone's commitment neither blocks nor
    ///         helps anyone. The reveal rewrites this slot (no new slot per report: 2,900 gas, not 22,100). An
    ///         informer may report one copy under several commitments: like Sybil identities, k of them earn
    ///         k*f(m+k-1) < f(m) (`Rewards`).
    mapping(address => mapping(bytes32 => uint256)) public commitments;

    uint256 private constant _STAGE = 40;
    uint256 private constant _ID = 48;

    // ---------------------------------------------------------------------------------------------- events
    event CampaignCreated(address indexed owner, uint256 escrow, Params params);
    event Funded(uint256 amount);
    event Joined(uint256 indexed id, address indexed licensee, uint256[] choice);
    /// @notice The owner committed licensee `id`'s codes: `codePairs[j]` = leaf(j, 0) || leaf(j, 1) (16 bytes each,
    ///         `CodeTree.leaf`), the index informers locate a copy with.
    event Licensed(uint256 indexed id, bytes32[] codePairs, bytes32 deliveryHash);
    /// @notice A valid report: its segments `mask`, their variant bits, n the reports so far (n == 1: the report
    ///         that accused; the collection window ends collectionWindow after it).
    event Reported(uint256 indexed id, address indexed informer, uint64 mask, uint64 bits, uint256 n);
    event Cleared(uint256 indexed id, uint256[] segments, uint256 compensation, uint256 burned);
    event SetGuilty(uint256 indexed id, uint256 slashed, uint256 toOwner, uint256 burned);
    event RewardClaimed(uint256 indexed id, address indexed informer, uint256 amount);
    event DepositRefunded(uint256 indexed id);

    /// @notice Create a campaign; msg.value (wei) is the owner's escrow, at least R + D_L (the reserve of one
    ///         licence).
    /// @custom:reverts BadReward, BadRho, DepositTooSmall, BadSegments, BadMinAge, BadCollectionWindow,
    ///         BadAppealWindow, BadDuration, BadQuorum: a parameter outside `Bounds` (see there the attack each
    ///         bound stops)
    /// @custom:reverts BadPoint if the OT key is not a point of alt_bn128
    /// @custom:reverts EscrowTooSmall if msg.value < R + D_L
    constructor(Params memory p) payable {
        Bounds.check(p.reward, p.rhoNum, p.rhoDen, p.deposit, p.segments, p.minAge, p.collectionWindow,
            p.appealWindow, p.duration, p.quorum, p.appealQuorum);
        if (!BN254.onCurve(p.otKeyX, p.otKeyY)) revert BadPoint();
        uint256 need = uint256(p.reward) + p.deposit;
        if (msg.value < need) revert EscrowTooSmall(need, msg.value);
        owner = msg.sender;
        reward = p.reward;
        rhoNum = p.rhoNum;
        rhoDen = p.rhoDen;
        deposit = p.deposit;
        segments = p.segments;
        quorum = p.quorum;
        appealQuorum = p.appealQuorum;
        codeDepth = CodeTree.depthFor(p.segments);
        minAge = p.minAge;
        collectionWindow = p.collectionWindow;
        appealWindow = p.appealWindow;
        endsAt = block.timestamp + p.duration;
        revealsClose = block.timestamp + p.duration + p.minAge + p.collectionWindow;
        otKeyX = p.otKeyX;
        otKeyY = p.otKeyY;
        watermarkKey = p.watermarkKey;
        secretKeyCommitment = p.secretKeyCommitment;
        escrow = msg.value;
        emit CampaignCreated(msg.sender, msg.value, p);
    }

    // ---------------------------------------------------------------------------------------------- views
    /// @notice f(n) in wei: what each of n valid reports of one leaked copy earns.
    function rewardFor(uint256 n) public view returns (uint256) {
        return Rewards.perReport(reward, rhoNum, rhoDen, n);
    }

    /// @notice The parameter bounds of `Bounds.all` (floor, ceiling pairs; what clients check before joining).
    function bounds() external pure returns (uint256[16] memory) {
        return Bounds.all();
    }

    /// @notice Block time (seconds) commitment `c` of `informer` was made, while it is unrevealed; 0 if none or
    ///         revealed.
    function committedAt(address informer, bytes32 c) external view returns (uint256) {
        uint256 r = commitments[informer][c];
        return r >> _STAGE == 0 ? r : 0;
    }

    /// @notice The record of commitment `c` of `informer`: time made (seconds), stage (0 committed, 1 revealed,
    ///         2 reward claimed; 0 also if none: then time is 0) and the licensee id it reported (stage >= 1).
    function commitmentOf(address informer, bytes32 c)
        external
        view
        returns (uint256 time, uint256 stage, uint256 id)
    {
        uint256 r = commitments[informer][c];
        return (uint40(r), uint8(r >> _STAGE), r >> _ID);
    }

    function licenseOf(uint256 id) external view returns (License memory) {
        return _license(id);
    }

    /// @notice End of the collection window of licensee `id` (seconds; 0 if not accused).
    function collectionEnd(uint256 id) public view returns (uint256) {
        uint256 t = _license(id).accusedAt;
        return t == 0 ? 0 : t + collectionWindow;
    }

    function _license(uint256 id) internal view returns (License storage) {
        if (id >= licenseeCount) revert UnknownLicensee(id);
        return _licenses[id];
    }

    // ---------------------------------------------------------------------------------------------- owner
    /// @notice Add msg.value (wei) to the escrow.
    /// @custom:reverts NotOwner
    function fund() external payable {
        if (msg.sender != owner) revert NotOwner();
        escrow += msg.value;
        emit Funded(msg.value);
    }

    /// @notice Commit to licensee `id`'s code leaves (deliver by OT once this is mined): `codePairs[j]` =
    ///         leaf(j, 0) || leaf(j, 1), leaf(j, v) = `CodeTree.leaf`(128-bit code of variant v of segment j, this
    ///         campaign, id, j, v); stores the Merkle root of the S pair words and emits them (the index informers
    ///         locate a copy with).
    /// @param deliveryHash keccak256 of the OT ciphertexts the owner will deliver (`offchain/campaign/ot.py`), so
    ///        that a licensee can prove a cheating delivery off chain.
    ///        Reserves R + D_L of the escrow for this licence (what a cleared appeal costs the owner), so no
    ///        report of any licence ever waits for escrow.
    /// @custom:reverts NotOwner, UnknownLicensee, WrongStatus unless Joined, BadLength unless `segments` words,
    ///         EscrowExhausted if the escrow is below R + D_L (`fund` first)
    function license(uint256 id, bytes32[] calldata codePairs, bytes32 deliveryHash) external {
        if (msg.sender != owner) revert NotOwner();
        License storage l = _license(id);
        if (l.status != Status.Joined) revert WrongStatus(id, l.status);
        if (codePairs.length != segments) revert BadLength(segments, codePairs.length);
        uint256 hold = reward + deposit;
        if (escrow < hold) revert EscrowExhausted(hold, escrow);
        escrow -= hold;
        l.codeRoot = CodeTree.root(codePairs, codeDepth);
        l.status = Status.Licensed;
        l.licensedAt = uint40(block.timestamp);
        emit Licensed(id, codePairs, deliveryHash);
    }

    /// @notice Pay the owner its unreserved escrow (wei) once the campaign has ended.
    /// @custom:reverts NotOwner, CampaignNotEnded, NothingToWithdraw
    function withdrawEscrow() external {
        if (msg.sender != owner) revert NotOwner();
        if (block.timestamp < endsAt) revert CampaignNotEnded(endsAt);
        uint256 amount = escrow;
        if (amount == 0) revert NothingToWithdraw();
        escrow = 0;
        _pay(msg.sender, amount);
    }

    // ---------------------------------------------------------------------------------------------- licensee
    /// @notice Join as a licensee: msg.value must be the deposit D_L (wei); `choice` = (B_0.x, B_0.y, ...,
    ///         B_{S-1}.x, B_{S-1}.y), the OT choice points B_j = sigma_j*A + b_j*G.
    /// @return id the licensee id
    /// @custom:reverts ValueMismatch, BadLength unless 2*segments words, CampaignEnded
    function join(uint256[] calldata choice) external payable returns (uint256 id) {
        if (msg.value != deposit) revert ValueMismatch(deposit, msg.value);
        if (choice.length != 2 * segments) revert BadLength(2 * segments, choice.length);
        if (block.timestamp >= endsAt) revert CampaignEnded(endsAt);
        id = licenseeCount++;
        License storage l = _licenses[id];
        l.status = Status.Joined;
        l.licensee = msg.sender;
        l.choiceHash = keccak256(abi.encodePacked(choice));
        emit Joined(id, msg.sender, choice);
    }

    /// @notice Return the deposit (credited, see `withdraw`) of a licensee never licensed (any time) or licensed
    ///         and not accused once first reveals have closed (`revealsClose`; its reserve R + D_L goes back to
    ///         the escrow). Anyone may call; the licensee is credited.
    /// @custom:reverts UnknownLicensee, WrongStatus, CampaignNotEnded (before revealsClose)
    function refundDeposit(uint256 id) external {
        License storage l = _license(id);
        if (l.status == Status.Licensed) {
            if (block.timestamp < revealsClose) revert CampaignNotEnded(revealsClose);
            escrow += reward + deposit;
        } else if (l.status != Status.Joined) {
            revert WrongStatus(id, l.status);
        }
        l.status = Status.Refunded;
        _credit(l.licensee, deposit);
        emit DepositRefunded(id);
    }

    /// @notice Appeal an accusation: open the OT choices (sigma_j, b_j) of `appealQuorum` or more reported
    ///         segments j (strictly increasing), each with sigma_j the variant NOT reported (so the reported copy is
    ///         not the one the licensee received): B_j == sigma_j*A + b_j*G, checked with ecMul/ecAdd. On success
    ///         the licensee is Cleared and credited 2*D_L (its deposit and D_L of compensation from the licence's
    ///         reserve); of the reserve's R, the informers' n*f(n) stay payable and R - n*f(n) is burned: the owner
    ///         loses R + D_L whatever n.
    /// @param choice all the choice points as in `join` (checked against the stored hash)
    /// @param segs the opened segments, strictly increasing, each reported (in the licence's `mask`)
    /// @param b the licensee's scalars b_j of those segments
    /// @custom:reverts UnknownLicensee, NotLicensee, WrongStatus unless Accused, AppealWindowNotOpen before the
    ///         collection window closes, AppealWindowClosed after collectionEnd + appealWindow, BadChoice,
    ///         BadLength (segs and b differ in length), TooFewSegments (fewer than appealQuorum), BadSegment (out
    ///         of range or not increasing), NotReported, BadOpening
    function appeal(uint256 id, uint256[] calldata choice, uint256[] calldata segs, uint256[] calldata b) external {
        License storage l = _license(id);
        if (msg.sender != l.licensee) revert NotLicensee(l.licensee);
        if (l.status != Status.Accused) revert WrongStatus(id, l.status);
        uint256 opens = uint256(l.accusedAt) + collectionWindow;
        if (block.timestamp < opens) revert AppealWindowNotOpen(opens);
        if (block.timestamp >= opens + appealWindow) revert AppealWindowClosed(opens + appealWindow);
        if (keccak256(abi.encodePacked(choice)) != l.choiceHash) revert BadChoice();
        if (segs.length != b.length) revert BadLength(segs.length, b.length);
        if (segs.length < appealQuorum) revert TooFewSegments(appealQuorum, segs.length);
        uint256 bits = l.bits;
        uint256 mask = l.mask;
        for (uint256 i = 0; i < segs.length; ++i) {
            uint256 j = segs[i];
            if (j >= segments || (i > 0 && j <= segs[i - 1])) revert BadSegment(j);
            if ((mask >> j) & 1 == 0) revert NotReported(j);
            (uint256 x, uint256 y) = BN254.mul(BN254.GX, BN254.GY, b[i]);
            if ((bits >> j) & 1 == 0) (x, y) = BN254.add(x, y, otKeyX, otKeyY); // sigma_j = 1 - reported bit
            if (x != choice[2 * j] || y != choice[2 * j + 1]) revert BadOpening(j);
        }
        l.status = Status.Cleared;
        // INVARIANT: the Accused hold R + 2*D_L becomes 2*D_L to the licensee, R - n*f(n) burned and n*f(n) of
        // rewards (unclaimed or claimed).
        uint256 n = l.reports;
        uint256 burn = reward - n * rewardFor(n);
        _credit(l.licensee, 2 * deposit);
        burned += burn;
        emit Cleared(id, segs, deposit, burn);
    }

    // ---------------------------------------------------------------------------------------------- informers
    /// @notice Commit to a report: `commitment` = keccak256(abi.encodePacked(msg.sender,
    ///         keccak256(abi.encodePacked(items, salt)))), items the 32-byte report items (code || other leaf,
    ///         see `reveal`) of the reported segments in segment order (32*k bytes). No event (the commitment is in the transaction and in `commitmentOf`):
    ///         1,500 gas of the 100k budget of a report.
    /// @custom:reverts CampaignEnded, CommitmentExists
    function commit(bytes32 commitment) external {
        if (block.timestamp >= endsAt) revert CampaignEnded(endsAt);
        if (commitments[msg.sender][commitment] != 0) revert CommitmentExists(commitment);
        commitments[msg.sender][commitment] = block.timestamp;
    }

    /// @notice Reveal a committed report of a leaked (possibly partial) copy of licensee `id`.
    /// @param mask bit j set: segment j is reported; at least `quorum` bits, all below `segments`
    /// @param bits bit j = the variant of segment j the code belongs to (zero outside `mask`)
    /// @param items one word per segment of `mask`, in segment order: the 16-byte code found in the copy, then the
    ///        16-byte leaf of the segment's other variant (public: from the `Licensed` event); together they give
    ///        the segment's pair word (`CodeTree.pairWord`)
    /// @param proof the multiproof of the pair words of the segments in `mask` against the licence's code root
    ///        (`offchain.campaign.codes.multiproof`)
    /// @param salt the commitment's salt
    /// @custom:reverts UnknownCommitment (none by this sender with these items and salt, or already revealed),
    ///         CommitmentTooYoung before committedAt + minAge, WrongStatus unless Licensed or Accused (also for an
    ///         unknown id), BadBits (mask beyond S, or bits outside mask), BadLength (not one item per segment of
    ///         mask), TooFewSegments (fewer than quorum), CodeMismatch unless the items open the licensee's code
    ///         root at those segments, RevealsClosed (first reveal at or after `revealsClose`; the commitment
    ///         itself was made before `endsAt`), CollectionClosed, CommitmentTooLate (commitment not minAge old at
    ///         the first reveal). A later report adds its new segments to the licence's `mask`; on segments
    ///         reported before, the first-reported bits stand even if it contradicts them.
    function reveal(uint256 id, uint64 mask, uint64 bits, bytes32[] calldata items, bytes32[] calldata proof,
        bytes32 salt) external
    {
        bytes32 c;
        assembly ("memory-safe") {
            // c = keccak256(sender || keccak256(items || salt)), items copied to free memory (not allocated)
            let p := mload(0x40)
            let n := shl(5, items.length)
            calldatacopy(p, items.offset, n)
            mstore(add(p, n), salt)
            let h := keccak256(p, add(n, 0x20))
            mstore(0x00, shl(96, caller()))
            mstore(0x14, h)
            c := keccak256(0x00, 0x34)
        }
        uint256 t = commitments[msg.sender][c];
        if (t == 0 || t >> _STAGE != 0) revert UnknownCommitment(c);
        if (block.timestamp < t + minAge) revert CommitmentTooYoung(t + minAge);
        License storage l = _licenses[id];
        Status st = l.status;
        if (st != Status.Licensed && st != Status.Accused) revert WrongStatus(id, st);
        uint256 s = segments;
        if ((s < 64 && mask >> s != 0) || bits & ~mask != 0) revert BadBits(mask, bits);
        uint256 k = items.length;
        if (k < quorum) revert TooFewSegments(quorum, k);
        // proof of possession: the items open the licensee's code tree at the segments of mask
        uint256 nodes = CodeTree.pairWords(mask, bits, items, address(this), id);
        if (nodes == 0) revert BadLength(_popcount(mask), k);
        if (!CodeTree.verify(l.codeRoot, codeDepth, nodes, k, proof)) revert CodeMismatch(id);
        if (st == Status.Licensed) {
            // every commitment was made before endsAt (`commit`); it may accuse until revealsClose
            if (block.timestamp >= revealsClose) revert RevealsClosed(revealsClose);
            l.status = Status.Accused;
            l.accusedAt = uint40(block.timestamp);
            l.bits = bits;
            l.mask = mask;
        } else {
            uint256 firstAt = l.accusedAt;
            if (block.timestamp >= firstAt + collectionWindow) revert CollectionClosed(firstAt + collectionWindow);
            // INVARIANT: only commitments made minAge before the watermark's first reveal count.
            if (t + minAge > firstAt) revert CommitmentTooLate(t, firstAt);
            // segments reported before keep their first-reported bit; a contradicting report still counts (only
            // a holder of other variants makes one: it must not shut honest reports out, and it never helps an
            // appeal, which opens segments against the first-reported bits)
            uint64 known = l.mask;
            l.bits |= bits & ~known;
            l.mask = known | mask;
        }
        commitments[msg.sender][c] = t | (1 << _STAGE) | (id << _ID);
        uint32 n = l.reports + 1;
        l.reports = n;
        emit Reported(id, msg.sender, mask, bits, n);
    }

    /// @dev Number of set bits of m (error reporting only).
    function _popcount(uint256 m) private pure returns (uint256 c) {
        for (; m != 0; m &= m - 1) ++c;
    }

    /// @notice Claim the reward f(n) (wei, paid to msg.sender) of msg.sender's revealed report `commitment`, once
    ///         its licensee's collection window has closed (whatever the outcome of the accusation).
    /// @custom:reverts NoReward (no such revealed commitment of msg.sender), AlreadyClaimed, RewardNotFinal,
    ///         TransferFailed
    function claimReward(bytes32 commitment) external {
        uint256 r = commitments[msg.sender][commitment];
        uint256 stage = uint8(r >> _STAGE);
        if (stage == 0) revert NoReward(commitment);
        if (stage == 2) revert AlreadyClaimed(commitment);
        uint256 id = r >> _ID;
        License storage l = _license(id);
        uint256 t = l.accusedAt;
        if (block.timestamp < t + collectionWindow) revert RewardNotFinal(t + collectionWindow);
        commitments[msg.sender][commitment] = r + (1 << _STAGE);
        uint256 amount = rewardFor(l.reports);
        emit RewardClaimed(id, msg.sender, amount);
        _pay(msg.sender, amount);
    }

    // ---------------------------------------------------------------------------------------------- anyone
    /// @notice Declare an accused licensee guilty once its appeal window has closed. Its deposit D_L is
    ///         slashed: n*f(n) of it pays the informers, R - n*f(n) is burned and exactly D_L - R is credited to
    ///         the owner, whatever n; the licence's reserve R + D_L goes back to the escrow.
    /// @custom:reverts UnknownLicensee, WrongStatus unless Accused, AppealWindowOpen
    function setGuilty(uint256 id) external {
        License storage l = _license(id);
        if (l.status != Status.Accused) revert WrongStatus(id, l.status);
        uint256 closes = uint256(l.accusedAt) + collectionWindow + appealWindow;
        if (block.timestamp < closes) revert AppealWindowOpen(closes);
        l.status = Status.Guilty;
        uint256 burn = reward - uint256(l.reports) * rewardFor(l.reports);
        // INVARIANT: R + 2*D_L held = (R + D_L) to the escrow + (D_L - R) to the owner + (R - n*f(n)) burned
        // + n*f(n) rewards (unclaimed or claimed).
        escrow += reward + deposit;
        burned += burn;
        _credit(owner, deposit - reward);
        emit SetGuilty(id, deposit, deposit - reward, burn);
    }
}
