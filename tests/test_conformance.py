"""The ONNX backend node test cases of the installed ``onnx`` wheel (`onnx.backend.test.case.node`) for the
quantization and pooling operators, run through the loader and the canonical operators, bit-exactly.

Each case is one ONNX node whose inputs are graph inputs. It is turned into a model the loader reads: the
activation input (integer data is fed as float32 through a QuantizeLinear of scale 1, zero point 0, which gives
back the same integers) stays the graph input, every other input (scales, zero points, weights) becomes an
initializer with the case's value. Then either the loader refuses it (UnsupportedOperator or ModelError: counted
as unsupported, with the reason) or the canonical graph's output, taken back from its committed layout (NHWC) to
ONNX's, must equal the case's expected output byte for byte. `test_counts` prints the count per operator.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from offchain.inference.graph import ModelError, UnsupportedOperator
from offchain.inference.loader import lower
from tests.bundle import run_graph

PATTERN = re.compile(r"^test_(quantizelinear|dequantizelinear|qlinearconv|qlinearmatmul|convinteger|matmulinteger|"
                     r"dynamicquantizelinear|maxpool|averagepool|globalaveragepool)")


def _cases():
    from onnx.backend.test.case.node import collect_testcases

    return sorted((c for c in collect_testcases() if PATTERN.match(c.name)), key=lambda c: c.name)


CASES = _cases()


def as_model(case) -> tuple[onnx.ModelProto, np.ndarray, list[np.ndarray]]:
    """(model the loader reads, its float32 input, expected outputs) of a one-node backend case."""
    m = case.model
    inputs, outputs = case.data_sets[0]
    act = 0   # the first graph input is the activation of every operator of PATTERN
    nodes, inits, graph_inputs = [], [], []
    names = [i.name for i in m.graph.input]
    for i, (nm, v) in enumerate(zip(names, inputs)):
        if i != act and nm:
            t = onnx.TensorProto()
            t.CopyFrom(v) if isinstance(v, onnx.TensorProto) else t.CopyFrom(numpy_helper.from_array(np.asarray(v)))
            t.name = nm
            inits.append(t)
    if isinstance(inputs[act], onnx.TensorProto):
        raise UnsupportedOperator(m.graph.node[-1].op_type, case.name,
                                  f"input of type {onnx.TensorProto.DataType.Name(inputs[act].data_type)}")
    x = np.asarray(inputs[act])
    feed = x.astype(np.float32)
    if x.dtype in (np.uint8, np.int8):
        nodes.append(helper.make_node("QuantizeLinear", ["x_f", "one", "zero"], [names[act]], name="feed"))
        inits += [numpy_helper.from_array(np.array(1.0, np.float32), "one"),
                  numpy_helper.from_array(np.array(0, x.dtype), "zero")]
        graph_inputs.append(helper.make_tensor_value_info("x_f", onnx.TensorProto.FLOAT, x.shape))
    elif x.dtype == np.float32:
        graph_inputs.append(helper.make_tensor_value_info(names[act], onnx.TensorProto.FLOAT, x.shape))
    else:
        raise UnsupportedOperator(m.graph.node[-1].op_type, case.name, f"input of dtype {x.dtype}")
    nodes += list(m.graph.node)
    outs = [helper.make_tensor_value_info(m.graph.output[0].name, onnx.TensorProto.UNDEFINED, None)]
    g = helper.make_graph(nodes, case.name, graph_inputs, outs, inits)
    model = helper.make_model(g, opset_imports=list(m.opset_import))
    return model, feed, list(outputs)


def logical(graph, y: np.ndarray, shape) -> np.ndarray:
    """The canonical output in ONNX's layout (a 4-D activation is committed NHWC)."""
    if len(shape) == 4:
        n, c, h, w = shape
        return y.reshape(n, h, w, c).transpose(0, 3, 1, 2)
    return y.reshape(shape)


def run_case(case) -> tuple[str, str]:
    """('pass', '') or ('unsupported', reason); raises AssertionError on a wrong result."""
    try:
        model, feed, expected = as_model(case)
        graph = lower(model)
    except ModelError as e:
        return "unsupported", str(e)
    y = run_graph(graph, feed.reshape(graph.input.shape))[-1]
    want = np.asarray(expected[0])
    got = logical(graph, np.asarray(y), want.shape)
    assert got.dtype == want.dtype, f"{case.name}: dtype {got.dtype} != {want.dtype}"
    np.testing.assert_array_equal(got, want, err_msg=case.name)
    return "pass", ""


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case(case):
    """Every case either passes bit-exactly or is refused by the loader with a named reason (never wrong)."""
    verdict, why = run_case(case)
    assert verdict == "pass" or "unsupported operator" in why or "node" in why, why


def op_of(case) -> str:
    return case.model.graph.node[-1].op_type if "expanded" not in case.name else case.name.split("_")[1] + "*"


def test_counts(capsys):
    """Per operator: cases passed bit-exactly / refused. The supported forms must pass: QLinearConv, 2-D
    QLinearMatMul with float32 scales, per-tensor QuantizeLinear and DequantizeLinear to/from int8/uint8,
    MaxPool on uint8."""
    counts: dict[str, Counter] = defaultdict(Counter)
    refused: dict[str, list[str]] = defaultdict(list)
    for c in CASES:
        verdict, why = run_case(c)
        counts[op_of(c)][verdict] += 1
        if verdict != "pass":
            refused[op_of(c)].append(f"{c.name}: {why}")
    with capsys.disabled():
        print("\nONNX backend node cases (installed onnx %s): operator pass / unsupported" % onnx.__version__)
        for op in sorted(counts):
            print(f"  {op:24s} {counts[op]['pass']:3d} / {counts[op]['unsupported']:3d}")
        wrapped_counts: dict[str, Counter] = defaultdict(Counter)
        for c in POOLS:
            wrapped_counts[op_of(c)][run_wrapped(c)[0]] += 1
        print("float pooling cases QDQ-wrapped, against onnx.reference: operator pass / unsupported")
        for op in sorted(wrapped_counts):
            print(f"  {op:24s} {wrapped_counts[op]['pass']:3d} / {wrapped_counts[op]['unsupported']:3d}")
    names = {c.name: run_case(c)[0] for c in CASES if c.name in MUST_PASS}
    assert names == {n: "pass" for n in MUST_PASS if n in names}, refused


MUST_PASS = {"test_qlinearconv", "test_qlinearmatmul_2D_uint8_float32", "test_qlinearmatmul_2D_int8_float32",
             "test_quantizelinear", "test_dequantizelinear", "test_maxpool_2d_uint8"}


# ---------------------------------------------------------------------------------------------------- QDQ-wrapped
POOLS = [c for c in CASES if op_of(c) in ("MaxPool", "AveragePool", "GlobalAveragePool")
         and np.asarray(c.data_sets[0][0][0]).dtype == np.float32]
SCALE, ZP = np.float32(2.0 ** -6), np.uint8(128)   # a power of two: the float reference is exact up to its division


def wrapped(case) -> onnx.ModelProto:
    """The float pooling case between QuantizeLinear and DequantizeLinear (uint8, scale 2^-6, zero point 128) and
    a closing QuantizeLinear of the same scale: the form onnxruntime's quantizer leaves around a float pooling."""
    m = case.model
    node = m.graph.node[0]
    x = np.asarray(case.data_sets[0][0][0])
    inits = [numpy_helper.from_array(np.array(SCALE), "s"), numpy_helper.from_array(np.array(ZP), "z")]
    pool = helper.make_node(node.op_type, ["xd"], ["yf"], name="pool")
    pool.attribute.extend(node.attribute)
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"], name="q_in"),
             helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"], name="dq"), pool,
             helper.make_node("QuantizeLinear", ["yf", "s", "z"], ["y"], name="q_out")]
    g = helper.make_graph(nodes, case.name, [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, x.shape)],
                          [helper.make_tensor_value_info("y", onnx.TensorProto.UINT8, None)], inits)
    return helper.make_model(g, opset_imports=list(m.opset_import))


def run_wrapped(case) -> tuple[str, str]:
    """('pass', '') or ('unsupported', reason) for the QDQ-wrapped pooling case, checked against onnx's reference
    implementation (`onnx.reference.ReferenceEvaluator`) of the same wrapped model; AssertionError if wrong."""
    from onnx.reference import ReferenceEvaluator

    model = wrapped(case)
    x = np.asarray(case.data_sets[0][0][0])
    try:
        graph = lower(model)
    except ModelError as e:
        return "unsupported", str(e)
    want = ReferenceEvaluator(model).run(None, {"x": x})[0]
    got = logical(graph, run_graph(graph, x)[-1], want.shape)
    np.testing.assert_array_equal(got, want, err_msg=case.name)
    return "pass", ""


@pytest.mark.parametrize("case", POOLS, ids=[c.name for c in POOLS])
def test_wrapped_pooling(case):
    """Each float pooling case, QDQ-wrapped: lowered to MAXPOOL / AVGPOOL / GAP and equal to onnx's reference
    implementation bit for bit, or refused with a named reason (3-D and 1-D pooling, dilated averages)."""
    verdict, why = run_wrapped(case)
    assert verdict == "pass" or "unsupported operator" in why, why
    if "3d" not in case.name and "1d" not in case.name and "dilations" not in case.name:
        assert verdict == "pass", why
