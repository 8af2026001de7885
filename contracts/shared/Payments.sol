// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// @title Payments: pull payments, and pushes capped at the call stipend, the ways `Pinpoint` and `Campaign` pay
/// @notice A contract credits what it owes (`_credit`); the payee takes it with `withdraw`. A contract may instead
///         push a payment at the very end of a state change (`_payOrCredit`): the payee runs with the 2300-gas
///         stipend of a value call and nothing more, and if it does not accept the ether the amount is credited.
///         So a payee that rejects ether can block only its own payment, and a push costs its sender at most
///         11.6k gas (cold account, value, stipend) plus the fallback credit.
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

    /// @dev Pay `amount` wei (> 0 or nothing happens) to `to` now if it accepts them with the 2300-gas stipend
    ///      only (no gas forwarded: a payee cannot change any state, hence cannot re-enter, and cannot make the
    ///      sender pay more than the stipend; its return data is not copied), emitting Withdrawn; else credit
    ///      them to `to` (`withdraw` later). Call it after every other effect of the state change: a payee may
    ///      read the contract's state during the call. Saves the fresh credit slot (22.1k gas) and the payee's
    ///      `withdraw` transaction when the payee accepts ether (an account without code always does).
    function _payOrCredit(address to, uint256 amount) internal {
        if (amount == 0) return;
        bool ok;
        assembly ("memory-safe") {
            ok := call(0, to, amount, 0, 0, 0, 0)
        }
        if (ok) {
            emit Withdrawn(to, amount);
        } else {
            _credit(to, amount);
        }
    }

    /// @dev Send `amount` wei to `to` now (emits Withdrawn); effects must be done before (checks-effects-
    ///      interactions). Reverts TransferFailed.
    function _pay(address to, uint256 amount) internal {
        emit Withdrawn(to, amount);
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert TransferFailed();
    }
}
