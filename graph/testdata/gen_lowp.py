#!/usr/bin/python3
"""Generate graft's committed float16 and QDQ (quantized) fixtures.

    /usr/bin/python3 graph/testdata/gen_lowp.py [--out DIR]

Two small image classifiers, built with the ONNX helper API (onnx 1.12,
opset 13) in the backend-test layout under graph/testdata/fixtures:

  f16_classifier  Conv 3->8 3x3 + Relu, Conv 8->8 3x3 stride 2 + Relu,
                  GlobalAveragePool, Flatten, Gemm 8->5; every initializer,
                  the input and the output are float16 (a model converted
                  to float16 with its I/O types, as onnxconverter-common's
                  convert_float_to_float16 writes).
  qdq_classifier  the same network quantized in the QDQ format the ONNX
                  Runtime quantization tool writes: per-channel (axis 0)
                  int8 weights with zero points 0, int32 biases at
                  scale = input scale * weight scale, uint8 activations
                  (QuantizeLinear -> DequantizeLinear around every Conv and
                  Gemm input and output), calibrated on the test input.

output_0.pb holds the float32 network's output (PyTorch, float32 weights
before conversion): a loose reference. Tests compare graft with ONNX
Runtime, which runs these models as they are. Deterministic: same bytes on
every run.
"""

import argparse
import os
import shutil

import numpy as np
import onnx
import onnx.checker
import onnx.numpy_helper as nh
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(REPO, "graph", "testdata", "fixtures")
SHAPE = (1, 3, 8, 8)


def weights():
    g = np.random.default_rng(1813)
    return {
        "conv1.weight": g.normal(0, 0.4, (8, 3, 3, 3)).astype(np.float32),
        "conv1.bias": g.normal(0, 0.1, (8,)).astype(np.float32),
        "conv2.weight": g.normal(0, 0.25, (8, 8, 3, 3)).astype(np.float32),
        "conv2.bias": g.normal(0, 0.1, (8,)).astype(np.float32),
        "fc.weight": g.normal(0, 0.8, (5, 8)).astype(np.float32),
        "fc.bias": g.normal(0, 0.1, (5,)).astype(np.float32),
    }


def the_input():
    return np.random.default_rng(7).normal(0, 1, SHAPE).astype(np.float32)


def torch_forward(w, x, taps=None):
    """The float32 network; taps collects each activation by name."""
    t = {k: torch.from_numpy(v) for k, v in w.items()}
    a = {"input": torch.from_numpy(x)}
    a["r1"] = F.relu(F.conv2d(a["input"], t["conv1.weight"], t["conv1.bias"], padding=1))
    a["r2"] = F.relu(F.conv2d(a["r1"], t["conv2.weight"], t["conv2.bias"], stride=2))
    a["flat"] = torch.flatten(F.adaptive_avg_pool2d(a["r2"], 1), 1)
    a["output"] = F.linear(a["flat"], t["fc.weight"], t["fc.bias"])
    if taps is not None:
        taps.update({k: v.numpy() for k, v in a.items()})
    return a["output"].numpy()


def net_nodes(src, names):
    """The float network's nodes reading tensors through names(tensor)."""
    n = names
    return [
        helper.make_node("Conv", [n("input"), n("conv1.weight"), n("conv1.bias")], ["c1"], name="conv1", pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", [n("r1"), n("conv2.weight"), n("conv2.bias")], ["c2"], name="conv2", strides=[2, 2], kernel_shape=[3, 3]),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("GlobalAveragePool", [n("r2")], ["pool"], name="pool"),
        helper.make_node("Flatten", ["pool"], ["flat"], name="flatten", axis=1),
        helper.make_node("Gemm", [n("flat"), n("fc.weight"), n("fc.bias")], [src], name="fc", transB=1),
    ]


def f16_model(w):
    inits = [nh.from_array(v.astype(np.float16), k) for k, v in w.items()]
    g = helper.make_graph(net_nodes("output", lambda s: s), "f16_classifier",
                          [helper.make_tensor_value_info("input", TensorProto.FLOAT16, SHAPE)],
                          [helper.make_tensor_value_info("output", TensorProto.FLOAT16, (1, 5))], inits)
    return g


def qparams_u8(a):
    """uint8 asymmetric scale and zero point covering [min(a,0), max(a,0)]."""
    lo, hi = min(float(a.min()), 0.0), max(float(a.max()), 0.0)
    scale = np.float32((hi - lo) / 255.0 or 1.0)
    zp = np.uint8(np.clip(round(-lo / scale), 0, 255))
    return scale, zp


def qdq_model(w, x):
    taps = {}
    torch_forward(w, x, taps)
    inits, nodes = [], []
    act_scale = {}

    def act_qdq(name):
        s, z = qparams_u8(taps[name])
        act_scale[name] = s
        inits.extend([nh.from_array(np.array(s, np.float32), name + "_scale"), nh.from_array(np.array(z, np.uint8), name + "_zero_point")])
        nodes.extend([
            helper.make_node("QuantizeLinear", [name, name + "_scale", name + "_zero_point"], [name + "_quantized"], name=name + "_QuantizeLinear"),
            helper.make_node("DequantizeLinear", [name + "_quantized", name + "_scale", name + "_zero_point"], [name + "_dequantized"], name=name + "_DequantizeLinear"),
        ])

    for a in ("input", "r1", "r2", "flat"):
        act_qdq(a)
    reads = {"conv1": "input", "conv2": "r1", "fc": "flat"}
    for layer, src in reads.items():
        wt = w[layer + ".weight"]
        ws = (np.abs(wt.reshape(wt.shape[0], -1)).max(axis=1) / 127.0).astype(np.float32)
        wq = np.clip(np.round(wt / ws.reshape((-1,) + (1,) * (wt.ndim - 1))), -127, 127).astype(np.int8)
        bs = (act_scale[src] * ws).astype(np.float32)
        bq = np.round(w[layer + ".bias"] / bs).astype(np.int32)
        inits.extend([nh.from_array(wq, layer + ".weight_quantized"), nh.from_array(ws, layer + ".weight_scale"),
                      nh.from_array(np.zeros(len(ws), np.int8), layer + ".weight_zero_point"),
                      nh.from_array(bq, layer + ".bias_quantized"), nh.from_array(bs, layer + ".bias_scale"),
                      nh.from_array(np.zeros(len(bs), np.int32), layer + ".bias_zero_point")])
        for p in ("weight", "bias"):
            nodes.append(helper.make_node("DequantizeLinear", [layer + "." + p + "_quantized", layer + "." + p + "_scale", layer + "." + p + "_zero_point"],
                                          [layer + "." + p + "_dequantized"], name=layer + "." + p + "_DequantizeLinear", axis=0))
    # the logits are quantized too, as the quantization tool does
    s, z = qparams_u8(taps["output"])
    inits.extend([nh.from_array(np.array(s, np.float32), "logits_scale"), nh.from_array(np.array(z, np.uint8), "logits_zero_point")])
    body = net_nodes("logits", lambda t: t + "_dequantized" if t in reads.values() or t.endswith((".weight", ".bias")) else t)
    # relu outputs r1/r2 feed Q/DQ; the Gemm reads flat through its DQ
    body = [n for n in body]
    tail = [
        helper.make_node("QuantizeLinear", ["logits", "logits_scale", "logits_zero_point"], ["logits_quantized"], name="logits_QuantizeLinear"),
        helper.make_node("DequantizeLinear", ["logits_quantized", "logits_scale", "logits_zero_point"], ["output"], name="logits_DequantizeLinear"),
    ]
    # order: input Q/DQ and weight DQs first, then the body with activation Q/DQs after their producers
    pre = [n for n in nodes if n.input[0] == "input" or n.input[0] == "input_quantized" or ".weight" in n.name or ".bias" in n.name]
    act = {a: [n for n in nodes if n.input[0] in (a, a + "_quantized")] for a in ("r1", "r2", "flat")}
    ordered = list(pre)
    for n in body:
        ordered.append(n)
        for a, qd in act.items():
            if n.output[0] == a:
                ordered.extend(qd)
    ordered.extend(tail)
    g = helper.make_graph(ordered, "qdq_classifier",
                          [helper.make_tensor_value_info("input", TensorProto.FLOAT, SHAPE)],
                          [helper.make_tensor_value_info("output", TensorProto.FLOAT, (1, 5))], inits)
    return g


def write(out, name, graph, x, y):
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="graft gen_lowp.py")
    m.ir_version = 7
    onnx.checker.check_model(m, full_check=True)
    tmp = os.path.join(out, "." + name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(os.path.join(tmp, "test_data_set_0"))
    with open(os.path.join(tmp, "model.onnx"), "wb") as f:
        f.write(m.SerializeToString())
    for fname, tname, arr in (("input_0.pb", "input", x), ("output_0.pb", "output", y)):
        with open(os.path.join(tmp, "test_data_set_0", fname), "wb") as f:
            f.write(nh.from_array(arr, tname).SerializeToString())
    final = os.path.join(out, name)
    shutil.rmtree(final, ignore_errors=True)
    os.rename(tmp, final)
    print("%-16s %6d bytes  max|out| %.3g" % (name, os.path.getsize(os.path.join(final, "model.onnx")), float(np.abs(y).max())))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=FIXTURES)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    w, x = weights(), the_input()
    y = torch_forward(w, x)
    write(args.out, "f16_classifier", f16_model(w), x.astype(np.float16), y.astype(np.float16))
    write(args.out, "qdq_classifier", qdq_model(w, x), x, y)


if __name__ == "__main__":
    main()
