// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// @title Forwarder: a minimal contract wallet, for tests only
/// @notice Forwards its owner's calls (with value) to any target, so that the target sees this contract as
///         msg.sender and the call's arguments appear in no transaction's input as a top-level call to the target.
///         Used to check that game clients read moves from events (`tests/test_incentives.py`). Not deployed on
///         any network.
contract Forwarder {
    /// @notice The caller is not the owner.
    error NotOwner();
    /// @notice The forwarded call reverted; `reason` is its revert data.
    error CallFailed(bytes reason);

    address public immutable owner;

    constructor() {
        owner = msg.sender;
    }

    /// @notice While true, the wallet takes no ether: `receive` burns all the gas it is given, then fails (a
    ///         griefing payee, for the tests of pushed payouts).
    bool public refuse;

    /// @notice Ether paid to the wallet (e.g. a withdrawal from the target) stays here until `sweep`; while
    ///         `refuse`, every payment fails after burning all the gas it came with.
    receive() external payable {
        if (refuse) {
            while (true) {}
        }
    }

    /// @notice Set `refuse` (owner only).
    /// @custom:reverts NotOwner
    function setRefuse(bool on) external {
        if (msg.sender != owner) revert NotOwner();
        refuse = on;
    }

    /// @notice Call `target` with `data` and msg.value (wei) as this contract.
    /// @return result the call's return data
    /// @custom:reverts NotOwner, CallFailed
    function forward(address target, bytes calldata data) external payable returns (bytes memory result) {
        if (msg.sender != owner) revert NotOwner();
        bool ok;
        (ok, result) = target.call{value: msg.value}(data);
        if (!ok) revert CallFailed(result);
    }

    /// @notice Send the wallet's whole balance (wei) to the owner.
    /// @custom:reverts NotOwner, CallFailed
    function sweep() external {
        if (msg.sender != owner) revert NotOwner();
        (bool ok, bytes memory r) = owner.call{value: address(this).balance}("");
        if (!ok) revert CallFailed(r);
    }
}
