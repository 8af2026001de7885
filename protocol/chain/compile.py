"""Compile `contracts/` with the pinned solc and write the artifacts shipped in `protocol/chain/artifacts/`.

The compiler is solc SOLC_VERSION: the npm package `solc` (solcjs, WebAssembly) from the project's own
`node_modules`, or, when one is installed, a native solc of the same version through py-solc-x (same version,
same settings, same bytecode). Deploying and running need only the committed artifacts, never a compiler;
`tests/test_artifacts.py` recompiles and fails if the artifacts differ from the sources.

Usage: ``python -m protocol.chain.compile [--check]``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

from offchain.common.errors import PinpointError
from protocol.config import PROJECT as ROOT

CONTRACTS = ROOT / "contracts"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
SOLC_VERSION = "0.8.28"
SETTINGS = {
    "optimizer": {"enabled": True, "runs": 200},
    "evmVersion": "cancun",
    "viaIR": True,
    "outputSelection": {"*": {"*": ["abi", "metadata", "evm.bytecode.object", "evm.deployedBytecode.object"]}},
}
DEPLOYABLE = ("OneStep", "Pinpoint", "Campaign", "Forwarder", "Pooling", "Elementwise")


class CompilerError(PinpointError, RuntimeError):
    """solc is missing or reported errors."""


def sources() -> dict[str, str]:
    """All Solidity sources under contracts/, keyed by their path relative to contracts/."""
    out = {}
    for p in sorted(CONTRACTS.rglob("*.sol")):
        out[p.relative_to(CONTRACTS).as_posix()] = p.read_text()
    return out


def source_hash(metadata: str) -> str:
    """sha256 over the keccak256 of every source a contract was built from (as solc's metadata lists them) and
    the compiler settings: what an artifact was built from, independent of unrelated sources."""
    srcs = json.loads(metadata)["sources"]
    h = hashlib.sha256()
    for name in sorted(srcs):
        h.update(name.encode() + b"\0" + srcs[name]["keccak256"].encode() + b"\0")
    h.update(json.dumps([SOLC_VERSION, SETTINGS], sort_keys=True).encode())
    return h.hexdigest()


def _standard_json(srcs: dict[str, str]) -> dict:
    return {"language": "Solidity", "sources": {k: {"content": v} for k, v in srcs.items()}, "settings": SETTINGS}


def _run_solcjs(inp: dict) -> dict:
    solc_js = ROOT / "node_modules" / "solc"
    node = shutil.which("node")
    if node is None or not solc_js.exists():
        raise CompilerError("no compiler: run `npm ci` (npm package solc) or install a native solc " + SOLC_VERSION)
    script = (
        "const solc=require(process.argv[1]);let s='';process.stdin.on('data',d=>s+=d);"
        "process.stdin.on('end',()=>{process.stdout.write(JSON.stringify({v:solc.version(),o:JSON.parse(solc.compile(s))}))});"
    )
    r = subprocess.run([node, "-e", script, str(solc_js)], input=json.dumps(inp), capture_output=True, text=True)
    if r.returncode:
        raise CompilerError(f"solcjs failed: {r.stderr.strip()}")
    res = json.loads(r.stdout)
    if not res["v"].startswith(SOLC_VERSION + "+"):
        raise CompilerError(f"solcjs is {res['v']}, expected {SOLC_VERSION}")
    return res["o"]


def _run_native(inp: dict) -> dict | None:
    try:
        import solcx
        from solcx.exceptions import SolcNotInstalled
    except ImportError:  # pragma: no cover
        return None
    try:
        solcx.set_solc_version(SOLC_VERSION, silent=True)
    except Exception:
        try:
            solcx.import_installed_solc()
            solcx.set_solc_version(SOLC_VERSION, silent=True)
        except Exception:
            return None
    try:
        return solcx.compile_standard(inp)
    except SolcNotInstalled:
        return None


def compile_all() -> dict[str, dict]:
    """Compile every contract; return {name: artifact}. Raises CompilerError on any compiler error."""
    srcs = sources()
    inp = _standard_json(srcs)
    out = _run_native(inp) or _run_solcjs(inp)
    errors = [e for e in out.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise CompilerError("\n".join(e.get("formattedMessage", e.get("message", "")) for e in errors))
    arts = {}
    for path, contracts in out["contracts"].items():
        for name, c in contracts.items():
            if name not in DEPLOYABLE:
                continue
            arts[name] = {
                "contractName": name,
                "sourcePath": f"contracts/{path}",
                "compiler": f"solc {SOLC_VERSION}",
                "settings": SETTINGS,
                "sourceHash": source_hash(c["metadata"]),
                "abi": c["abi"],
                "bytecode": "0x" + c["evm"]["bytecode"]["object"],
                "deployedBytecode": "0x" + c["evm"]["deployedBytecode"]["object"],
            }
    return arts


def write(arts: dict[str, dict]) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    for name, a in arts.items():
        (ARTIFACTS / f"{name}.json").write_text(json.dumps(a, indent=1, sort_keys=True) + "\n")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    arts = compile_all()
    if "--check" in argv:
        stale = [n for n, a in arts.items()
                 if not (ARTIFACTS / f"{n}.json").exists()
                 or json.loads((ARTIFACTS / f"{n}.json").read_text()) != json.loads(json.dumps(a))]
        if stale:
            print("stale artifacts: " + ", ".join(stale) + " (run python -m protocol.chain.compile)")
            return 1
        print("artifacts up to date")
        return 0
    write(arts)
    for n, a in arts.items():
        print(f"{n}: {(len(a['deployedBytecode']) - 2) // 2} bytes runtime")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
