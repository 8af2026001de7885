"""Issue 11, clients that lose nothing: a licensee's choices survive a crash between sending `join` and saving the
licence file (saved before sending under a pending name, reconciled with the `Joined` events afterwards)."""

from __future__ import annotations

import stat

import pytest

from protocol.campaign.binding import Campaign, LicenseStatus
from protocol.campaign.licensee import Licensee, licensee_join, load_or_recover, pending_files, recover
from tests.test_argus_contract import World
from tests.test_argus_contract import _home  # noqa: F401  (autouse: PINPOINT_HOME in a temporary directory)


def test_join_mined_then_crash_before_save_is_recovered(monkeypatch):
    """The old client wrote the licence file only after the join was mined: an interrupt in between lost the OT
    choices (the deposit paid, no way to accept the copy or appeal). Now the pending file is reconciled."""
    w = World(k=0)
    with monkeypatch.context() as m, pytest.raises(KeyboardInterrupt):
        def crash(self):
            raise KeyboardInterrupt  # after `join` was mined, before the licence file is written

        m.setattr(Licensee, "save", crash)
        licensee_join(w.camp, w.A[1])
    assert w.camp.count() == 1 and w.camp.license(0).status == LicenseStatus.JOINED
    assert not Licensee.path_for(w.camp.address, 0).exists()
    [pend] = pending_files(w.camp.address)
    assert stat.S_IMODE(pend.stat().st_mode) == 0o600
    lic = load_or_recover(w.camp, 0)
    assert lic.id == 0 and lic.choice.B == w.camp.choice_points(0)
    assert not pending_files(w.camp.address)
    assert stat.S_IMODE(Licensee.path_for(w.camp.address, 0).stat().st_mode) == 0o600


def test_join_never_mined_stays_pending(monkeypatch):
    """A crash before the join was mined: the pending file is kept (no id on chain) and a later join works."""
    w = World(k=0)
    with monkeypatch.context() as m, pytest.raises(KeyboardInterrupt):
        def crash(*a, **kw):
            raise KeyboardInterrupt

        m.setattr(Campaign, "join", crash)
        licensee_join(w.camp, w.A[1])
    assert recover(w.camp) == ([], pending_files(w.camp.address)) and len(pending_files(w.camp.address)) == 1
    lic, _ = licensee_join(w.camp, w.A[1])
    assert lic.id == 0 and Licensee.load(w.camp.address, 0).choice == lic.choice


def test_owner_state_of_other_code_length_is_a_clear_error():
    """A state file written by the 64-bit-code clients (8-byte codes) or not an owner file at all: ArgusError
    naming the cause, never a traceback deep in the campaign code."""
    from protocol.campaign.binding import ArgusError
    from protocol.campaign.owner import Owner

    d = {"a": "0x5", "A": ["0x1", "0x2"], "secret_key": None, "codes": {"0": [["11" * 8, "22" * 8]]}}
    with pytest.raises(ArgusError, match="64-bit codes"):
        Owner.from_dict(d)
    with pytest.raises(ArgusError, match="not an owner state"):
        Owner.from_dict({"codes": {}})
    d["codes"] = {"0": [["11" * 16, "22" * 16]]}
    assert Owner.from_dict(d).codes[0][0][0] == bytes.fromhex("11" * 16)
