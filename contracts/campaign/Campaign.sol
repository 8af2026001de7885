// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {BN254} from "./BN254.sol";
import {Bounds} from "./Bounds.sol";
import {Rewards} from "./Rewards.sol";
import {Payments} from "../shared/Payments.sol";

/// @title Campaign: one Argus anti-piracy incentive campaign (one contract instance per campaign)
/// @notice The owner escrows the reward budget and publishes an oblivious-transfer key A = a*G. A licensee joins
///         with its deposit D_L (>= 2R) and its OT choice points B_i = sigma_i*A + b_i*G, one per segment; the
///         owner then commits to the keccak hashes of that licensee's 2*S watermark codes (two variants per
///         segment), reserving R + D_L of its escrow for that licence, and delivers both variants of every
///         segment by OT, so the licensee holds exactly one variant per segment, which the owner cannot predict.
///         Every parameter is within `Bounds` (each bound documents the attack it stops).
///         Informers report a leaked copy by commit-and-reveal: commit c = H(informer, H(codes, salt)); after
///         `minAge` seconds reveal the codes, which must hash to committed values of the named licensee (proof of
///         possession), fixing the licensee and its variant bits. The first reveal accuses the licensee and opens
///         the collection window; only commitments at least `minAge` old at that first reveal count. Each of the
///         n valid reports earns f(n) = R*rho^(n-1) (`Rewards`), final when the collection window closes.
///         Then the appeal window: the licensee may open (sigma_j, b_j) of a segment j whose reported bit differs
///         from its choice (checked with the alt_bn128 precompiles) and is cleared: the copy came from the owner,
///         who alone knows every variant, so the licence's reserve pays R (the informers' n*f(n), the rest
///         burned) and compensates the framed licensee with D_L. Otherwise anyone may `setGuilty` after the
///         appeal window: the deposit is slashed, R of it pays the informers' n*f(n) (the rest R - n*f(n)
///         burned) and the owner gets exactly D_L - R; the reserve returns to the escrow.
///         OWNER-NEUTRAL: the owner's payoff is -(R + D_L) (cleared), +(D_L - R) (guilty), 0 (otherwise), whatever
///         the number n of reports. A leaker reporting itself recovers at most R, so loses at least D_L - R.
///         NO SHUT-OUT: a report never needs escrow (each licence holds its own reserve from `license` on), and
///         a commitment made before the campaign's end may make the first reveal until `revealsClose`.
///         Construction of the protocol: see the Argus paper (arXiv 2107.06049) and
///         `offchain/campaign/ot.py`.
/// @dev Hash formats (all keccak256, abi.encodePacked):
///      codeHash = H(code: bytes8); codeRoot = H(codeHash[0][0], codeHash[0][1], ..., codeHash[S-1][1]);
///      choiceHash = H(B_0.x, B_0.y, ..., B_{S-1}.x, B_{S-1}.y); commitment = H(informer, H(codes: bytes(8*S), salt)).
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
    error BadBits(uint64 bits);
    error CampaignEnded(uint256 endedAt);
    error RevealsClosed(uint256 closedAt);
    error CampaignNotEnded(uint256 endsAt);
    error CommitmentExists(bytes32 commitment);
    error UnknownCommitment(bytes32 commitment);
    error CommitmentTooYoung(uint256 revealableAt);
    error CommitmentTooLate(uint256 committedAt, uint256 firstRevealAt);
    error CodeMismatch(uint256 id);
    error WatermarkMismatch(uint64 accusedBits, uint64 bits);
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
    }

    /// @dev Slot 0: licensee, status, accusedAt, reports; slot 1: bits and licensedAt (nonzero from `license` on,
    ///      so the first reveal's write of `bits` changes a nonzero slot: 2,900 gas instead of 22,100); slots 2-3:
    ///      hashes.
    struct License {
        address licensee;
        Status status;
        uint40 accusedAt; // seconds: time of the first reveal
        uint32 reports; // n: valid reports of the leaked copy
        uint64 bits; // the reported variant of segment j is bit j
        uint40 licensedAt; // seconds: time of `license` (0 before)
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

    /// @notice Owner's escrow not reserved for an accused licensee (wei).
    uint256 public escrow;
    /// @notice Wei locked in this contract forever: the part R - n*f(n) of a resolved licence's R not paid to its
    ///         informers (so that no party's payoff grows with the number of reports).
    uint256 public burned;
    License[] internal _licenses;
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
    event Licensed(uint256 indexed id, bytes32[] codeHashes, bytes32 deliveryHash);
    event Committed(bytes32 indexed commitment, address indexed informer);
    event Reported(uint256 indexed id, address indexed informer, uint64 bits, uint256 n);
    event Accused(uint256 indexed id, uint64 bits, uint256 collectionEnd, uint256 appealEnd);
    event Cleared(uint256 indexed id, uint256 segment, uint256 compensation, uint256 burned);
    event SetGuilty(uint256 indexed id, uint256 slashed, uint256 toOwner, uint256 burned);
    event RewardClaimed(uint256 indexed id, address indexed informer, uint256 amount);
    event DepositRefunded(uint256 indexed id);

    /// @notice Create a campaign; msg.value (wei) is the owner's escrow, at least R + D_L (the reserve of one
    ///         licence).
    /// @custom:reverts BadReward, BadRho, DepositTooSmall, BadSegments, BadMinAge, BadCollectionWindow,
    ///         BadAppealWindow, BadDuration: a parameter outside `Bounds` (see there the attack each bound stops)
    /// @custom:reverts BadPoint if the OT key is not a point of alt_bn128
    /// @custom:reverts EscrowTooSmall if msg.value < R + D_L
    constructor(Params memory p) payable {
        Bounds.check(p.reward, p.rhoNum, p.rhoDen, p.deposit, p.segments, p.minAge, p.collectionWindow,
            p.appealWindow, p.duration);
        if (!BN254.onCurve(p.otKeyX, p.otKeyY)) revert BadPoint();
        uint256 need = uint256(p.reward) + p.deposit;
        if (msg.value < need) revert EscrowTooSmall(need, msg.value);
        owner = msg.sender;
        reward = p.reward;
        rhoNum = p.rhoNum;
        rhoDen = p.rhoDen;
        deposit = p.deposit;
        segments = p.segments;
        minAge = p.minAge;
        collectionWindow = p.collectionWindow;
        appealWindow = p.appealWindow;
        endsAt = block.timestamp + p.duration;
        revealsClose = block.timestamp + p.duration + p.minAge + p.collectionWindow;
        otKeyX = p.otKeyX;
        otKeyY = p.otKeyY;
        watermarkKey = p.watermarkKey;
        escrow = msg.value;
        emit CampaignCreated(msg.sender, msg.value, p);
    }

    // ---------------------------------------------------------------------------------------------- views
    /// @notice f(n) in wei: what each of n valid reports of one leaked copy earns.
    function rewardFor(uint256 n) public view returns (uint256) {
        return Rewards.perReport(reward, rhoNum, rhoDen, n);
    }

    /// @notice The parameter bounds of `Bounds.all` (floor, ceiling pairs; what clients check before joining).
    function bounds() external pure returns (uint256[14] memory) {
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

    function licenseeCount() external view returns (uint256) {
        return _licenses.length;
    }

    /// @notice End of the collection window of licensee `id` (seconds; 0 if not accused).
    function collectionEnd(uint256 id) public view returns (uint256) {
        uint256 t = _license(id).accusedAt;
        return t == 0 ? 0 : t + collectionWindow;
    }

    function _license(uint256 id) internal view returns (License storage) {
        if (id >= _licenses.length) revert UnknownLicensee(id);
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

    /// @notice Commit to the hashes of licensee `id`'s codes (after delivering nothing yet: deliver by OT once
    ///         this is mined). `codeHashes[2*j + v]` = keccak256(code of variant v of segment j) (bytes8 code).
    /// @param deliveryHash keccak256 of the OT ciphertexts the owner will deliver (`offchain/campaign/ot.py`), so
    ///        that a licensee can prove a cheating delivery off chain.
    ///        Reserves R + D_L of the escrow for this licence (what a cleared appeal costs the owner), so no
    ///        report of any licence ever waits for escrow.
    /// @custom:reverts NotOwner, UnknownLicensee, WrongStatus unless Joined, BadLength unless 2*segments hashes,
    ///         EscrowExhausted if the escrow is below R + D_L (`fund` first)
    function license(uint256 id, bytes32[] calldata codeHashes, bytes32 deliveryHash) external {
        if (msg.sender != owner) revert NotOwner();
        License storage l = _license(id);
        if (l.status != Status.Joined) revert WrongStatus(id, l.status);
        if (codeHashes.length != 2 * segments) revert BadLength(2 * segments, codeHashes.length);
        uint256 hold = reward + deposit;
        if (escrow < hold) revert EscrowExhausted(hold, escrow);
        escrow -= hold;
        l.codeRoot = keccak256(abi.encodePacked(codeHashes));
        l.status = Status.Licensed;
        l.licensedAt = uint40(block.timestamp);
        emit Licensed(id, codeHashes, deliveryHash);
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
        id = _licenses.length;
        _licenses.push(
            License({
                licensee: msg.sender,
                status: Status.Joined,
                accusedAt: 0,
                reports: 0,
                bits: 0,
                licensedAt: 0,
                choiceHash: keccak256(abi.encodePacked(choice)),
                codeRoot: bytes32(0)
            })
        );
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

    /// @notice Appeal an accusation: open the OT choice (sigma, b) of segment `segment`, where sigma is the
    ///         variant NOT reported (so the reported copy is not the one the licensee received):
    ///         B_segment == sigma*A + b*G, checked with ecMul/ecAdd. On success the licensee is Cleared and
    ///         credited 2*D_L (its deposit and D_L of compensation from the licence's reserve); of the reserve's
    ///         R, the informers' n*f(n) stay payable and R - n*f(n) is burned: the owner loses R + D_L whatever n.
    /// @param choice all the choice points as in `join` (checked against the stored hash)
    /// @param b the licensee's scalar b_segment
    /// @custom:reverts UnknownLicensee, NotLicensee, WrongStatus unless Accused, AppealWindowNotOpen before the
    ///         collection window closes, AppealWindowClosed after collectionEnd + appealWindow, BadChoice,
    ///         BadSegment, BadOpening
    function appeal(uint256 id, uint256[] calldata choice, uint256 segment, uint256 b) external {
        License storage l = _license(id);
        if (msg.sender != l.licensee) revert NotLicensee(l.licensee);
        if (l.status != Status.Accused) revert WrongStatus(id, l.status);
        uint256 opens = uint256(l.accusedAt) + collectionWindow;
        if (block.timestamp < opens) revert AppealWindowNotOpen(opens);
        if (block.timestamp >= opens + appealWindow) revert AppealWindowClosed(opens + appealWindow);
        if (keccak256(abi.encodePacked(choice)) != l.choiceHash) revert BadChoice();
        if (segment >= segments) revert BadSegment(segment);
        uint256 sigma = 1 - ((l.bits >> segment) & 1);
        (uint256 x, uint256 y) = BN254.mul(BN254.GX, BN254.GY, b);
        if (sigma == 1) (x, y) = BN254.add(x, y, otKeyX, otKeyY);
        if (x != choice[2 * segment] || y != choice[2 * segment + 1]) revert BadOpening(segment);
        l.status = Status.Cleared;
        // INVARIANT: the Accused hold R + 2*D_L becomes 2*D_L to the licensee, R - n*f(n) burned and n*f(n) of
        // rewards (unclaimed or claimed).
        uint256 n = l.reports;
        uint256 burn = reward - n * rewardFor(n);
        _credit(l.licensee, 2 * deposit);
        burned += burn;
        emit Cleared(id, segment, deposit, burn);
    }

    // ---------------------------------------------------------------------------------------------- informers
    /// @notice Commit to a report: `commitment` = keccak256(abi.encodePacked(msg.sender,
    ///         keccak256(abi.encodePacked(codes, salt)))), codes the 8*S bytes of the watermark in segment order.
    /// @custom:reverts CampaignEnded, CommitmentExists
    function commit(bytes32 commitment) external {
        if (block.timestamp >= endsAt) revert CampaignEnded(endsAt);
        if (commitments[msg.sender][commitment] != 0) revert CommitmentExists(commitment);
        commitments[msg.sender][commitment] = block.timestamp;
        emit Committed(commitment, msg.sender);
    }

    /// @notice Reveal a committed report of the leaked copy of licensee `id`.
    /// @param codes the watermark: 8 bytes per segment, segment order (8*S bytes)
    /// @param bits bit j = the variant of segment j the codes belong to
    /// @param otherHashes keccak256 of the other variant's code, per segment (S hashes)
    /// @param salt the commitment's salt
    /// @custom:reverts UnknownCommitment (none by this sender with these codes and salt, or already revealed),
    ///         CommitmentTooYoung before committedAt + minAge, UnknownLicensee, BadLength, BadBits,
    ///         WrongStatus unless Licensed or Accused, CodeMismatch unless the codes hash to the licensee's
    ///         committed codes, RevealsClosed (first reveal at or after `revealsClose`; the commitment itself was
    ///         made before `endsAt`), WatermarkMismatch (bits differ from the first reveal's), CollectionClosed,
    ///         CommitmentTooLate (commitment not minAge old at the first reveal)
    function reveal(uint256 id, bytes calldata codes, uint64 bits, bytes32[] calldata otherHashes, bytes32 salt)
        external
    {
        bytes32 c = keccak256(abi.encodePacked(msg.sender, keccak256(abi.encodePacked(codes, salt))));
        uint256 t = commitments[msg.sender][c];
        if (t == 0 || t >> _STAGE != 0) revert UnknownCommitment(c);
        if (block.timestamp < t + minAge) revert CommitmentTooYoung(t + minAge);
        License storage l = _license(id);
        uint256 s = segments;
        if (codes.length != 8 * s) revert BadLength(8 * s, codes.length);
        if (otherHashes.length != s) revert BadLength(s, otherHashes.length);
        if (s < 64 && bits >> s != 0) revert BadBits(bits);
        Status st = l.status;
        if (st != Status.Licensed && st != Status.Accused) revert WrongStatus(id, st);
        // proof of possession: the codes are the licensee's committed codes of the variants `bits`
        bytes32[] memory hs = new bytes32[](2 * s);
        for (uint256 j = 0; j < s; ++j) {
            bytes32 h = keccak256(codes[8 * j:8 * j + 8]);
            uint256 v = (bits >> j) & 1;
            hs[2 * j + v] = h;
            hs[2 * j + 1 - v] = otherHashes[j];
        }
        if (keccak256(abi.encodePacked(hs)) != l.codeRoot) revert CodeMismatch(id);
        if (st == Status.Licensed) {
            // every commitment was made before endsAt (`commit`); it may accuse until revealsClose
            if (block.timestamp >= revealsClose) revert RevealsClosed(revealsClose);
            l.status = Status.Accused;
            l.accusedAt = uint40(block.timestamp);
            l.bits = bits;
            emit Accused(id, bits, block.timestamp + collectionWindow,
                block.timestamp + collectionWindow + appealWindow);
        } else {
            if (bits != l.bits) revert WatermarkMismatch(l.bits, bits);
            uint256 first = l.accusedAt;
            if (block.timestamp >= first + collectionWindow) revert CollectionClosed(first + collectionWindow);
            // INVARIANT: only commitments made minAge before the watermark's first reveal count.
            if (t + minAge > first) revert CommitmentTooLate(t, first);
        }
        commitments[msg.sender][c] = t | (1 << _STAGE) | (id << _ID);
        uint32 n = l.reports + 1;
        l.reports = n;
        emit Reported(id, msg.sender, bits, n);
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
