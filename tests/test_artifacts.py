"""The committed artifacts are exactly what the pinned compiler builds from the committed sources."""

import json

from protocol.chain import compile as solc


def test_artifacts_match_sources():
    arts = solc.compile_all()
    for name, a in arts.items():
        committed = json.loads((solc.ARTIFACTS / f"{name}.json").read_text())
        assert committed["sourceHash"] == a["sourceHash"], f"{name}: sources changed, run python -m protocol.chain.compile"
        assert committed["bytecode"] == a["bytecode"], f"{name}: bytecode differs from a fresh compile"
        assert committed["abi"] == a["abi"]
        assert committed["compiler"] == f"solc {solc.SOLC_VERSION}"
