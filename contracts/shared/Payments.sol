// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// @title Payments: pull payments, the one way `Pinpoint` and `Campaign` pay anyone
/// @notice A contract credits what it owes (`_credit`); the payee takes it with `withdraw`. No transfer to an
///         arbitrary address ever happens inside a state change of the protocol, so a payee that rejects ether
///         can block only its own payment.
/// @dev `credit` is part of each inheriting contract's balance invariant (sum(credit) is held by the contract).
abstract contract Payments {
    /// @notice msg.sender has no credit (or, for a direct payment, the amount is zero).
    error NothingToWithdraw();
    /// @notice The payee's fallback rejected the ether.
    error TransferFailed();

    /// @notice `amount` wei paid to `to` (by `withdraw` or a direct payment of the inheriting contract).
    event Withdrawn(address indexed to, uint256 amount);

    /// @notice Wei each address may withdraw.
    mapping(address => uint256) public credit;

    /// @notice Pay msg.sender everything credited to it (wei).
    /// @custom:reverts NothingToWithdraw, TransferFailed
    function withdraw() external {
        uint256 amount = credit[msg.sender];
        if (amount == 0) revert NothingToWithdraw();
        credit[msg.sender] = 0;
        _pay(msg.sender, amount);
    }

    /// @dev Owe `amount` wei to `to`.
    function _credit(address to, uint256 amount) internal {
        credit[to] += amount;
    }

    /// @dev Send `amount` wei to `to` now (emits Withdrawn); effects must be done before (checks-effects-
    ///      interactions). Reverts TransferFailed.
    function _pay(address to, uint256 amount) internal {
        emit Withdrawn(to, amount);
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert TransferFailed();
    }
}
