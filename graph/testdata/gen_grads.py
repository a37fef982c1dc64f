#!/usr/bin/python3
"""Generate the gradient golden files graft's gradients are tested against.

Run with Debian's system python (torch 1.13, onnx 1.12, numpy):

    /usr/bin/python3 graph/testdata/gen_grads.py           # rewrite graph/testdata/grads/
    /usr/bin/python3 graph/testdata/gen_grads.py --check   # regenerate elsewhere, compare bytes
    /usr/bin/python3 graph/testdata/gen_grads.py --list

Every case is a tiny ONNX model, one node (two for x*sigmoid(x)), written as

    grads/<case>/model.onnx       the model; its float weights are initializers
    grads/<case>/input_<N>.pb     TensorProto: the value of graph input N
    grads/<case>/output.pb        TensorProto: PyTorch's output (output_<i>.pb
                                  and up_<i>.pb when the node has several)
    grads/<case>/up.pb            TensorProto: the upstream gradient U
    grads/<case>/grad_<N>.pb      TensorProto: dL/dN for every graph input and
                                  every differentiable float initializer N

where L = sum(output * U) (summed over the outputs). The reference is PyTorch
autograd in float64 on the float32 values stored in the files (so the only
difference left for graft is its own float32 arithmetic), stored as float32.
Every case is also checked here:
  * against central finite differences of L in float64 (every element of
    every differentiable tensor), which validates the PyTorch formula written
    for the ONNX semantics and catches data sitting on a kink;
  * against the same computation in float32, which must agree with float64
    to well under graft's 1e-4 tolerance, or the case is ill-conditioned.

Where PyTorch's op does not have ONNX's semantics (asymmetric pads, LRN with
an even size, Softmax before opset 13, BatchNormalization with running
statistics, LayerNormalization over several axes, Pad with a weight as its
constant value, Slice with negative steps...) the reference is written out
with elementary PyTorch ops.

Initializers that graft reads only at build time (Clip bounds, Dropout ratio,
integer shapes, indices, pads) are "consts": they get no gradient file.

Data stays away from kinks (ReLU and Clip thresholds, Abs at 0, HardSigmoid
corners, integers for Floor/Ceil) and from ties (max pooling, Min/Max,
ReduceMax), as asserted below. Data and upstream gradients are seeded from
the case name, so the output is byte-identical from run to run.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
import zlib

import numpy as np
import onnx
import onnx.checker
from onnx import TensorProto, helper, numpy_helper
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "grads")

# float32 PyTorch must agree with float64 PyTorch this closely (relative to
# the largest magnitude) for a case to be usable at graft's 1e-4.
F32_TOL = 2e-5
# Central finite differences in float64: step and tolerance (relative to
# the largest gradient magnitude of the tensor).
FD_STEP = 1e-6
FD_TOL = 1e-6

torch.set_num_threads(1)


def seed_of(name):
    """A stable 31-bit seed from a name."""
    return zlib.crc32(name.encode()) & 0x7FFFFFFF


# ------------------------------------------------------------------ cases

CASES = []


def case(name):
    def register(f):
        if any(n == name for n, _ in CASES):
            raise SystemExit("duplicate case " + name)
        CASES.append((name, f))
        return f
    return register


class Spec:
    """One case.

    op/attrs/opset: the node (or nodes: a list of NodeProto, for models of
    several nodes). inputs: graph inputs, inits: differentiable float
    initializers, consts: initializers read at build time (lists of
    (name, array)). node_in: the node's inputs ("" for an absent optional
    one); by default inputs, inits, consts in that order. fn(T) computes the
    outputs in PyTorch from T, a dict of the differentiable tensors.
    n_out: the number of outputs. extra_out: names of further node outputs
    that are not graph outputs (they carry no upstream gradient).
    out_shape=False leaves the output dims symbolic, where onnx 1.12's
    shape inference disagrees with the semantics of later ONNX releases.
    out_type: the element type of the outputs. strict=False skips onnx
    1.12's strict shape inference (the model is still checked structurally).
    """

    def __init__(self, op, fn, inputs, inits=(), consts=(), attrs=None, opset=13,
                 node_in=None, n_out=1, nodes=None, extra_out=(), out_shape=True,
                 out_type=TensorProto.FLOAT, strict=True):
        self.op, self.fn, self.opset, self.n_out = op, fn, opset, n_out
        self.strict = strict
        self.out_type = out_type
        self.out_shape = out_shape
        self.extra_out = list(extra_out)
        self.inputs = [(n, np.asarray(a, np.float64).astype(np.float32)) for n, a in inputs]
        self.inits = [(n, np.asarray(a, np.float64).astype(np.float32)) for n, a in inits]
        self.consts = []
        for n, a in consts:
            a = np.asarray(a)
            if a.dtype.kind in "iu":
                a = a.astype(np.int64)
            elif a.dtype.kind != "b":
                a = a.astype(np.float32)
            self.consts.append((n, a))
        self.attrs = attrs or {}
        if node_in is None:
            node_in = [n for n, _ in list(inputs) + list(inits) + list(consts)]
        self.node_in = node_in
        self.nodes = nodes


def U(r, shape, lo=-1.0, hi=1.0):
    return r.uniform(lo, hi, shape)


def away(a, points, margin):
    """Moves every value closer than margin to one of points out to margin."""
    a = np.array(a, np.float64)
    for p in points:
        d = a - p
        close = np.abs(d) < margin
        a[close] = p + np.where(d[close] >= 0, margin, -margin)
    return a


def distinct(a):
    """Random values with no ties (asserted after rounding to float32)."""
    a32 = np.asarray(a).astype(np.float32)
    assert np.unique(a32).size == a32.size, "ties in data"
    return a


def signed(r, shape, lo, hi):
    """Values of magnitude in [lo, hi) with random signs."""
    return r.uniform(lo, hi, shape) * np.where(r.uniform(size=shape) < 0.5, -1.0, 1.0)


def tpads(pads):
    """ONNX pads [b0, b1, ..., e0, e1, ...] as F.pad's (b_last, e_last, ...).
    Conv and pool pads (spatial axes only) convert the same way."""
    r = len(pads) // 2
    spec = []
    for d in reversed(range(r)):
        spec += [pads[d], pads[d + r]]
    return tuple(spec)


# ---- Conv

def conv_ref(x, w, b, strides, pads, dil, group):
    xp = F.pad(x, tpads(pads))
    if x.dim() == 4:
        return F.conv2d(xp, w, b, tuple(strides), 0, tuple(dil), group)
    return F.conv1d(xp, w, b, tuple(strides), 0, tuple(dil), group)


def conv_case(r, xs, ws, bias=True, strides=None, pads=None, dil=None, group=1, auto_pad=None):
    sp = len(xs) - 2
    x, w = U(r, xs), U(r, ws)
    inits = [("W", w)]
    if bias:
        inits.append(("B", U(r, (ws[0],))))
    attrs = {"kernel_shape": list(ws[2:])}
    if strides:
        attrs["strides"] = strides
    if dil:
        attrs["dilations"] = dil
    if group != 1:
        attrs["group"] = group
    s = strides or [1] * sp
    d = dil or [1] * sp
    if auto_pad:
        attrs["auto_pad"] = auto_pad
        # SAME_UPPER: output ceil(in/stride), the extra pad at the end.
        p_head, p_tail = [], []
        for i in range(sp):
            o = -(-xs[2 + i] // s[i])
            need = max(0, (o - 1) * s[i] + (ws[2 + i] - 1) * d[i] + 1 - xs[2 + i])
            h = need // 2 if auto_pad == "SAME_UPPER" else need - need // 2
            p_head.append(h)
            p_tail.append(need - h)
        p = p_head + p_tail
    else:
        p = pads or [0] * (2 * sp)
        if pads:
            attrs["pads"] = pads

    def fn(T):
        return conv_ref(T["X"], T["W"], T.get("B"), s, p, d, group)
    return Spec("Conv", fn, [("X", x)], inits, attrs=attrs)


@case("conv_plain")
def _(r):
    return conv_case(r, (1, 2, 5, 5), (3, 2, 3, 3))


@case("conv_pads")
def _(r):
    return conv_case(r, (1, 2, 5, 5), (3, 2, 3, 3), pads=[1, 1, 1, 1])


@case("conv_strides_asym_pads")
def _(r):
    return conv_case(r, (1, 2, 7, 6), (3, 2, 3, 2), strides=[2, 2], pads=[0, 1, 1, 2])


@case("conv_dilations")
def _(r):
    return conv_case(r, (1, 2, 7, 7), (2, 2, 3, 3), dil=[2, 2], pads=[1, 1, 1, 1])


@case("conv_group2")
def _(r):
    return conv_case(r, (1, 4, 5, 5), (4, 2, 3, 3), group=2, pads=[1, 1, 1, 1])


@case("conv_depthwise")
def _(r):
    return conv_case(r, (1, 3, 6, 6), (3, 1, 3, 3), group=3, strides=[2, 2], pads=[1, 1, 1, 1])


@case("conv_depthwise_mult2")
def _(r):
    return conv_case(r, (1, 3, 5, 5), (6, 1, 3, 3), group=3)


@case("conv_nobias_batch2")
def _(r):
    return conv_case(r, (2, 2, 4, 4), (3, 2, 3, 3), bias=False, pads=[1, 1, 1, 1])


@case("conv_1x1")
def _(r):
    return conv_case(r, (2, 4, 3, 3), (5, 4, 1, 1))


@case("conv_1d")
def _(r):
    return conv_case(r, (2, 3, 9), (4, 3, 3), strides=[2], pads=[1, 1])


@case("conv_same_upper")
def _(r):
    return conv_case(r, (1, 2, 6, 6), (2, 2, 3, 3), strides=[2, 2], auto_pad="SAME_UPPER")


@case("conv_same_lower_nobias")
def _(r):
    return conv_case(r, (1, 2, 5, 5), (2, 2, 2, 2), bias=False, auto_pad="SAME_LOWER")


# ---- ConvTranspose

def convt_ref(x, w, b, strides, heads, ends, dil, group):
    """ONNX ConvTranspose: the full transposed convolution (length
    s*(in-1) + dilated kernel), extended by ends[i] zeros at the end
    (output_padding, or an output_shape beyond the natural length; a
    negative value crops), cropped by heads[i] at the start, plus bias."""
    conv = F.conv_transpose2d if x.dim() == 4 else F.conv_transpose1d
    y = conv(x, w, None, tuple(strides), 0, 0, group, tuple(dil))
    sp = x.dim() - 2
    for i in range(sp):
        ax = 2 + i
        e = ends[i]
        if e > 0:
            shp = list(y.shape)
            shp[ax] = e
            y = torch.cat([y, y.new_zeros(shp)], ax)
        elif e < 0:
            y = y.narrow(ax, 0, y.shape[ax] + e)
        y = y.narrow(ax, heads[i], y.shape[ax] - heads[i])
    if b is not None:
        y = y + b.reshape([1, -1] + [1] * sp)
    return y


def convt_case(r, xs, ws, bias=True, strides=None, pads=None, dil=None, group=1,
               out_pad=None, out_shape=None, auto_pad=None):
    sp = len(xs) - 2
    x, w = U(r, xs), U(r, ws)
    inits = [("W", w)]
    if bias:
        inits.append(("B", U(r, (ws[1] * group,))))
    attrs = {"kernel_shape": list(ws[2:])}
    s = strides or [1] * sp
    d = dil or [1] * sp
    a = out_pad or [0] * sp
    p = pads or [0] * (2 * sp)
    for k, v in (("strides", strides), ("dilations", dil), ("pads", pads),
                 ("output_padding", out_pad), ("output_shape", out_shape), ("auto_pad", auto_pad)):
        if v:
            attrs[k] = v
    if group != 1:
        attrs["group"] = group
    heads, ends = [], []
    for i in range(sp):
        full = s[i] * (xs[2 + i] - 1) + a[i] + (ws[2 + i] - 1) * d[i] + 1
        o = out_shape[i] if out_shape else (xs[2 + i] * s[i] if auto_pad else None)
        if o is None:
            h, t = p[i], p[i + sp]
        else:
            total = full - o
            if total < 0:
                h, t = 0, total
            elif auto_pad == "SAME_UPPER":
                h, t = total // 2, total - total // 2
            else:
                h, t = total - total // 2, total // 2
        heads.append(h)
        ends.append(a[i] - t)

    def fn(T):
        return convt_ref(T["X"], T["W"], T.get("B"), s, heads, ends, d, group)
    return Spec("ConvTranspose", fn, [("X", x)], inits, attrs=attrs)


@case("convtranspose_plain")
def _(r):
    return convt_case(r, (1, 2, 4, 4), (2, 3, 3, 3))


@case("convtranspose_strides_asym_pads_outpad")
def _(r):
    return convt_case(r, (1, 2, 3, 4), (2, 3, 3, 2), strides=[2, 3], pads=[1, 0, 0, 1], out_pad=[1, 2])


@case("convtranspose_group2_dilations_batch2_nobias")
def _(r):
    return convt_case(r, (2, 4, 3, 3), (4, 2, 2, 3), bias=False, dil=[2, 1], group=2, strides=[1, 2])


@case("convtranspose_depthwise")
def _(r):
    return convt_case(r, (1, 3, 4, 4), (3, 1, 3, 3), group=3, strides=[2, 2], pads=[1, 1, 1, 1])


@case("convtranspose_1d_output_shape")
def _(r):
    return convt_case(r, (2, 3, 5), (3, 2, 3), strides=[2], out_shape=[12])


@case("convtranspose_output_shape_odd")
def _(r):
    return convt_case(r, (1, 2, 3, 3), (2, 1, 3, 3), strides=[2, 2], out_shape=[6, 7])


@case("convtranspose_same_upper")
def _(r):
    return convt_case(r, (1, 2, 3, 3), (2, 2, 3, 3), strides=[2, 2], auto_pad="SAME_UPPER")


@case("convtranspose_same_lower")
def _(r):
    return convt_case(r, (1, 2, 3, 4), (2, 2, 3, 3), strides=[2, 1], auto_pad="SAME_LOWER")


# ---- BatchNormalization

def bn_inference_ref(T, eps):
    x = T["X"]
    shp = [1, x.shape[1]] + [1] * (x.dim() - 2)
    v = lambda n: T[n].reshape(shp)
    return (x - v("mean")) / torch.sqrt(v("var") + eps) * v("scale") + v("B")


def bn_params(r, c):
    return [("scale", U(r, (c,), 0.5, 1.5)), ("B", U(r, (c,))),
            ("mean", U(r, (c,), -0.5, 0.5)), ("var", U(r, (c,), 0.5, 1.5))]


@case("batchnorm_inference")
def _(r):
    x = U(r, (2, 3, 4, 4), -2, 2)
    return Spec("BatchNormalization", lambda T: bn_inference_ref(T, 1e-5), [("X", x)], bn_params(r, 3),
                attrs={"epsilon": 1e-5})


@case("batchnorm_inference_2d_opset9")
def _(r):
    x = U(r, (5, 4), -2, 2)
    return Spec("BatchNormalization", lambda T: bn_inference_ref(T, 1e-3), [("X", x)], bn_params(r, 4),
                attrs={"epsilon": 1e-3}, opset=9)


@case("batchnorm_training")
def _(r):
    # opset 15, training_mode=1: Y uses the batch statistics; the running
    # mean and var inputs do not reach it (zero gradients). ONNX wants the
    # node to name its running_mean and running_var outputs in training
    # mode; only Y is a graph output and carries the upstream gradient.
    x = U(r, (3, 3, 3, 3), -2, 2)

    def fn(T):
        return F.batch_norm(T["X"], None, None, T["scale"], T["B"], True, 0.1, 1e-5)
    return Spec("BatchNormalization", fn, [("X", x)], bn_params(r, 3),
                attrs={"epsilon": 1e-5, "training_mode": 1}, opset=15, extra_out=["running_mean", "running_var"])


@case("batchnorm_training_y_only")
def _(r):
    # The same with the node naming Y alone (graft then computes no
    # running statistics). onnx 1.12's shape inference insists on three
    # outputs in training mode, so only the structural check runs.
    x = U(r, (2, 3, 2, 3), -2, 2)

    def fn(T):
        return F.batch_norm(T["X"], None, None, T["scale"], T["B"], True, 0.1, 1e-3)
    return Spec("BatchNormalization", fn, [("X", x)], bn_params(r, 3),
                attrs={"epsilon": 1e-3, "training_mode": 1}, opset=15, strict=False)


# ---- pooling

def maxpool_ref(x, k, s, pads, dil=None, ceil=False):
    """ONNX MaxPool. Asymmetric pads become explicit -inf padding (never
    combined with ceil_mode here: PyTorch's ceil rule then differs)."""
    sp = x.dim() - 2
    dil = dil or [1] * sp
    sym = pads[:sp] == pads[sp:]
    if sym:
        p, xp = pads[:sp], x
    else:
        assert not ceil
        p, xp = [0] * sp, F.pad(x, tpads(pads), value=-float("inf"))
    f = F.max_pool2d if sp == 2 else F.max_pool1d
    return f(xp, k, s, p, dil, ceil_mode=ceil)


def avgpool_ref(x, k, s, pads, include, ceil=False):
    sp = x.dim() - 2
    f = F.avg_pool2d if sp == 2 else F.avg_pool1d
    if pads[:sp] == pads[sp:]:
        return f(x, k, s, pads[:sp], ceil_mode=ceil, count_include_pad=include)
    assert not ceil
    # Explicit padding: sum of the window / number of counted elements.
    xp = F.pad(x, tpads(pads))
    ones = torch.ones_like(xp) if include else F.pad(torch.ones_like(x), tpads(pads))
    return f(xp, k, s) / f(ones, k, s)


def pool_case(r, op, xs, k, s=None, pads=None, ceil=0, dil=None, include=0):
    sp = len(xs) - 2
    x = distinct(U(r, xs, -2, 2))
    attrs = {"kernel_shape": k}
    if s:
        attrs["strides"] = s
    if pads:
        attrs["pads"] = pads
    if ceil:
        attrs["ceil_mode"] = 1
    if dil:
        attrs["dilations"] = dil
    if op == "AveragePool":
        attrs["count_include_pad"] = include
    s = s or [1] * sp
    p = pads or [0] * (2 * sp)
    if op == "MaxPool":
        fn = lambda T: maxpool_ref(T["X"], k, s, p, dil, bool(ceil))
    else:
        fn = lambda T: avgpool_ref(T["X"], k, s, p, bool(include), bool(ceil))
    return Spec(op, fn, [("X", x)], attrs=attrs)


@case("maxpool_pads_strides")
def _(r):
    return pool_case(r, "MaxPool", (1, 2, 7, 7), [3, 3], [2, 2], [1, 1, 1, 1])


@case("maxpool_ceil")
def _(r):
    return pool_case(r, "MaxPool", (1, 2, 6, 6), [3, 3], [2, 2], ceil=1)


@case("maxpool_ceil_pads_dropped_window")
def _(r):
    # 5 + 2 pads, kernel 2, stride 2: ceil gives 4 windows, the last would
    # start in the end padding and is dropped (ONNX Runtime, PyTorch, and
    # the ONNX spec since onnx 1.16): 3. onnx 1.12's shape inference still
    # says 4, so the output shape is left undeclared.
    sp = pool_case(r, "MaxPool", (1, 2, 5, 5), [2, 2], [2, 2], [1, 1, 1, 1], ceil=1)
    sp.out_shape = False
    return sp


@case("maxpool_asym_pads")
def _(r):
    return pool_case(r, "MaxPool", (1, 2, 6, 6), [3, 2], [2, 1], [1, 0, 0, 1])


@case("maxpool_dilations")
def _(r):
    return pool_case(r, "MaxPool", (1, 2, 7, 7), [2, 2], dil=[2, 2])


@case("maxpool_1d")
def _(r):
    return pool_case(r, "MaxPool", (2, 3, 9), [3], [2], [1, 1])


@case("avgpool_pads_exclude")
def _(r):
    return pool_case(r, "AveragePool", (1, 2, 6, 6), [3, 3], [2, 2], [1, 1, 1, 1], include=0)


@case("avgpool_pads_include")
def _(r):
    return pool_case(r, "AveragePool", (1, 2, 6, 6), [3, 3], [2, 2], [1, 1, 1, 1], include=1)


@case("avgpool_asym_pads_exclude")
def _(r):
    return pool_case(r, "AveragePool", (1, 2, 5, 6), [3, 3], [2, 2], [1, 0, 2, 1], include=0)


@case("avgpool_asym_pads_include")
def _(r):
    return pool_case(r, "AveragePool", (1, 2, 5, 6), [3, 3], [2, 2], [1, 0, 2, 1], include=1)


@case("avgpool_ceil_exclude")
def _(r):
    return pool_case(r, "AveragePool", (1, 2, 6, 6), [3, 3], [2, 2], [1, 1, 1, 1], ceil=1, include=0)


@case("avgpool_ceil_include")
def _(r):
    # The last window runs past the end padding: its divisor counts the
    # input and the pads only (ONNX Runtime, PyTorch).
    return pool_case(r, "AveragePool", (1, 2, 6, 6), [3, 3], [2, 2], [1, 1, 1, 1], ceil=1, include=1)


@case("avgpool_ceil_nopads")
def _(r):
    return pool_case(r, "AveragePool", (1, 2, 6, 6), [2, 2], [2, 2], ceil=1)


@case("avgpool_1d")
def _(r):
    return pool_case(r, "AveragePool", (2, 2, 8), [3], [2], [1, 1], include=0)


@case("globalavgpool")
def _(r):
    return Spec("GlobalAveragePool", lambda T: T["X"].mean(dim=(2, 3), keepdim=True),
                [("X", U(r, (2, 3, 4, 5)))])


@case("globalmaxpool")
def _(r):
    return Spec("GlobalMaxPool", lambda T: T["X"].amax(dim=(2, 3), keepdim=True),
                [("X", distinct(U(r, (2, 3, 4, 5))))])


@case("globalavgpool_1d")
def _(r):
    return Spec("GlobalAveragePool", lambda T: T["X"].mean(dim=2, keepdim=True),
                [("X", U(r, (2, 3, 7)))])


# ---- activations

MARGIN = 0.05


@case("relu")
def _(r):
    return Spec("Relu", lambda T: F.relu(T["X"]), [("X", away(U(r, (4, 30), -2, 2), [0], MARGIN))])


@case("clip_relu6_opset11")
def _(r):
    x = away(U(r, (4, 30), -2, 8), [0, 6], MARGIN)
    return Spec("Clip", lambda T: torch.clamp(T["X"], 0.0, 6.0), [("X", x)],
                consts=[("min", np.array(0.0)), ("max", np.array(6.0))], opset=11)


@case("clip_relu6_opset13")
def _(r):
    x = away(U(r, (2, 3, 4, 4), -2, 8), [0, 6], MARGIN)
    return Spec("Clip", lambda T: torch.clamp(T["X"], 0.0, 6.0), [("X", x)],
                consts=[("min", np.array(0.0)), ("max", np.array(6.0))])


@case("clip_max_only_opset13")
def _(r):
    hi = float(np.float32(0.7))
    x = away(U(r, (4, 30), -2, 2), [0.7], MARGIN)
    return Spec("Clip", lambda T: torch.clamp(T["X"], max=hi), [("X", x)],
                consts=[("max", np.array(0.7))], node_in=["X", "", "max"])


@case("clip_attrs_opset10")
def _(r):
    lo, hi = float(np.float32(-0.5)), float(np.float32(0.7))
    x = away(U(r, (4, 30), -2, 2), [lo, hi], MARGIN)
    return Spec("Clip", lambda T: torch.clamp(T["X"], lo, hi), [("X", x)],
                attrs={"min": -0.5, "max": 0.7}, opset=10)


@case("leakyrelu")
def _(r):
    a = float(np.float32(0.1))
    return Spec("LeakyRelu", lambda T: F.leaky_relu(T["X"], a),
                [("X", away(U(r, (4, 30), -2, 2), [0], MARGIN))], attrs={"alpha": 0.1})


@case("prelu_channel")
def _(r):
    x = away(U(r, (2, 3, 4, 4), -2, 2), [0], MARGIN)

    def fn(T):
        return torch.where(T["X"] >= 0, T["X"], T["slope"] * T["X"])
    return Spec("PRelu", fn, [("X", x)], [("slope", U(r, (3, 1, 1), 0.05, 0.5))])


@case("prelu_scalar")
def _(r):
    x = away(U(r, (4, 30), -2, 2), [0], MARGIN)

    def fn(T):
        return torch.where(T["X"] >= 0, T["X"], T["slope"] * T["X"])
    return Spec("PRelu", fn, [("X", x)], [("slope", U(r, (1,), 0.05, 0.5))])


@case("elu")
def _(r):
    a = float(np.float32(0.7))
    return Spec("Elu", lambda T: F.elu(T["X"], a), [("X", away(U(r, (4, 30), -2, 2), [0], MARGIN))],
                attrs={"alpha": 0.7})


@case("sigmoid")
def _(r):
    return Spec("Sigmoid", lambda T: torch.sigmoid(T["X"]), [("X", U(r, (4, 30), -4, 4))])


@case("tanh")
def _(r):
    return Spec("Tanh", lambda T: torch.tanh(T["X"]), [("X", U(r, (4, 30), -3, 3))])


@case("hardsigmoid")
def _(r):
    a, b = float(np.float32(0.3)), float(np.float32(0.4))
    x = away(U(r, (4, 30), -3, 3), [(0 - b) / a, (1 - b) / a], MARGIN)
    return Spec("HardSigmoid", lambda T: torch.clamp(a * T["X"] + b, 0, 1), [("X", x)],
                attrs={"alpha": 0.3, "beta": 0.4})


@case("hardsigmoid_default")
def _(r):
    x = away(U(r, (4, 30), -4, 4), [-2.5, 2.5], MARGIN)
    a, b = float(np.float32(0.2)), 0.5
    return Spec("HardSigmoid", lambda T: torch.clamp(a * T["X"] + b, 0, 1), [("X", x)])


@case("hardswish")
def _(r):
    x = away(U(r, (4, 30), -4.5, 4.5), [-3, 3], MARGIN)
    return Spec("HardSwish", lambda T: T["X"] * torch.clamp(T["X"] / 6 + 0.5, 0, 1), [("X", x)], opset=14)


@case("swish_sigmoid_mul")
def _(r):
    nodes = [helper.make_node("Sigmoid", ["X"], ["S"]), helper.make_node("Mul", ["X", "S"], ["Y"])]
    return Spec(None, lambda T: T["X"] * torch.sigmoid(T["X"]), [("X", U(r, (4, 30), -4, 4))], nodes=nodes)


def softmax_flat(x, axis, log):
    n = int(np.prod(x.shape[:axis]))
    y = x.reshape(n, -1)
    y = F.log_softmax(y, 1) if log else F.softmax(y, 1)
    return y.reshape(x.shape)


@case("softmax_opset11_axis1_3d")
def _(r):
    # Before opset 13 Softmax flattens to [N, C*D] and normalizes rows.
    return Spec("Softmax", lambda T: softmax_flat(T["X"], 1, False), [("X", U(r, (2, 3, 5), -3, 3))],
                attrs={"axis": 1}, opset=11)


@case("softmax_opset11_default_axis")
def _(r):
    return Spec("Softmax", lambda T: softmax_flat(T["X"], 1, False), [("X", U(r, (2, 3, 4), -3, 3))], opset=11)


@case("softmax_opset13_lastaxis")
def _(r):
    return Spec("Softmax", lambda T: F.softmax(T["X"], -1), [("X", U(r, (2, 3, 5), -3, 3))], attrs={"axis": -1})


@case("softmax_opset13_axis1_3d")
def _(r):
    return Spec("Softmax", lambda T: F.softmax(T["X"], 1), [("X", U(r, (2, 4, 5), -3, 3))], attrs={"axis": 1})


@case("logsoftmax_opset13_lastaxis")
def _(r):
    return Spec("LogSoftmax", lambda T: F.log_softmax(T["X"], -1), [("X", U(r, (3, 8), -3, 3))], attrs={"axis": -1})


@case("logsoftmax_opset11_axis1_3d")
def _(r):
    return Spec("LogSoftmax", lambda T: softmax_flat(T["X"], 1, True), [("X", U(r, (2, 3, 5), -3, 3))],
                attrs={"axis": 1}, opset=11)


# ---- elementwise

def binary(op, fn, a, b, b_init=False):
    ins = [("A", a)]
    inits = []
    (inits if b_init else ins).append(("B", b))
    return Spec(op, fn, ins, inits, node_in=["A", "B"])


@case("add_broadcast")
def _(r):
    return binary("Add", lambda T: T["A"] + T["B"], U(r, (2, 3, 4)), U(r, (3, 1)))


@case("add_bias_initializer")
def _(r):
    return binary("Add", lambda T: T["A"] + T["B"], U(r, (2, 3, 4)), U(r, (4,)), b_init=True)


@case("sub_broadcast_both")
def _(r):
    return binary("Sub", lambda T: T["A"] - T["B"], U(r, (3, 1, 4)), U(r, (2, 1)))


@case("mul_broadcast_initializer")
def _(r):
    return binary("Mul", lambda T: T["A"] * T["B"], U(r, (2, 3, 4)), U(r, (3, 1)), b_init=True)


@case("mul_broadcast_both")
def _(r):
    return binary("Mul", lambda T: T["A"] * T["B"], U(r, (1, 3, 4)), U(r, (2, 3, 1)))


@case("div_broadcast")
def _(r):
    return binary("Div", lambda T: T["A"] / T["B"], U(r, (2, 3, 4)), signed(r, (4,), 0.5, 2))


@case("div_broadcast_first")
def _(r):
    return binary("Div", lambda T: T["A"] / T["B"], U(r, (3, 1)), signed(r, (2, 3, 4), 0.5, 2))


@case("pow_broadcast")
def _(r):
    return binary("Pow", lambda T: torch.pow(T["A"], T["B"]), U(r, (2, 3, 4), 0.5, 2), U(r, (3, 1), -1.5, 2))


@case("pow_scalar_exponent_initializer")
def _(r):
    # A rank-0 weight (a scalar in ONNX, [1] inside gorgonia).
    return binary("Pow", lambda T: torch.pow(T["A"], T["B"]), U(r, (3, 4), 0.5, 2), np.array(1.7), b_init=True)


def nary(op, fn, shapes, r, gen=None):
    names = ["A", "B", "C", "D"][: len(shapes)]
    gen = gen or (lambda s: U(r, s))
    return Spec(op, fn, [(n, gen(s)) for n, s in zip(names, shapes)])


@case("sum3_broadcast")
def _(r):
    return nary("Sum", lambda T: T["A"] + T["B"] + T["C"], [(2, 3, 4), (3, 4), (1,)], r)


@case("sum1")
def _(r):
    return nary("Sum", lambda T: T["A"] * 1, [(3, 4)], r)


@case("mean3_broadcast")
def _(r):
    return nary("Mean", lambda T: (T["A"] + T["B"] + T["C"]) / 3, [(2, 3, 4), (3, 1), (4,)], r)


def no_ties(arrays):
    b = np.broadcast_arrays(*[a.astype(np.float32) for a in arrays])
    for i in range(len(b)):
        for j in range(i + 1, len(b)):
            assert not np.any(b[i] == b[j]), "ties between Min/Max operands"
    return arrays


def minmax_case(r, op, shapes):
    arrs = no_ties([U(r, s) for s in shapes])
    names = ["A", "B", "C"][: len(shapes)]
    f = torch.minimum if op == "Min" else torch.maximum

    def fn(T):
        y = T[names[0]]
        for n in names[1:]:
            y = f(y, T[n])
        return y
    return Spec(op, fn, list(zip(names, arrs)))


@case("min3_broadcast")
def _(r):
    return minmax_case(r, "Min", [(2, 3, 4), (3, 1), (4,)])


@case("max3_broadcast")
def _(r):
    return minmax_case(r, "Max", [(2, 3, 4), (3, 4), (2, 1, 1)])


@case("max2")
def _(r):
    return minmax_case(r, "Max", [(3, 5), (3, 5)])


def unary_case(op, fn, x):
    return Spec(op, lambda T: fn(T["X"]), [("X", x)])


@case("sqrt")
def _(r):
    return unary_case("Sqrt", torch.sqrt, U(r, (4, 25), 0.3, 3))


@case("exp")
def _(r):
    return unary_case("Exp", torch.exp, U(r, (4, 25), -2, 2))


@case("log")
def _(r):
    return unary_case("Log", torch.log, U(r, (4, 25), 0.3, 3))


@case("neg")
def _(r):
    return unary_case("Neg", torch.neg, U(r, (4, 25)))


@case("abs")
def _(r):
    return unary_case("Abs", torch.abs, signed(r, (4, 25), MARGIN, 2))


@case("reciprocal")
def _(r):
    return unary_case("Reciprocal", torch.reciprocal, signed(r, (4, 25), 0.5, 2))


@case("erf")
def _(r):
    return unary_case("Erf", torch.erf, U(r, (4, 25), -2, 2))


@case("floor")
def _(r):
    x = away(U(r, (4, 25), -3, 3), range(-3, 4), MARGIN)
    return unary_case("Floor", torch.floor, x)


@case("ceil")
def _(r):
    x = away(U(r, (4, 25), -3, 3), range(-3, 4), MARGIN)
    return unary_case("Ceil", torch.ceil, x)


# ---- shape and data movement

@case("concat_axis1")
def _(r):
    return Spec("Concat", lambda T: torch.cat([T["A"], T["B"], T["C"]], 1),
                [("A", U(r, (2, 2, 3))), ("C", U(r, (2, 1, 3)))], [("B", U(r, (2, 3, 3)))],
                attrs={"axis": 1}, node_in=["A", "B", "C"])


@case("concat_negative_axis")
def _(r):
    return Spec("Concat", lambda T: torch.cat([T["A"], T["B"]], -1),
                [("A", U(r, (2, 3, 2))), ("B", U(r, (2, 3, 4)))], attrs={"axis": -1})


@case("split_opset13_two_outputs")
def _(r):
    return Spec("Split", lambda T: torch.split(T["X"], [2, 3], 1), [("X", U(r, (2, 5, 3)))],
                consts=[("split", np.array([2, 3]))], attrs={"axis": 1}, n_out=2)


@case("split_opset11_equal_lastaxis")
def _(r):
    return Spec("Split", lambda T: torch.split(T["X"], 2, -1), [("X", U(r, (2, 3, 4)))],
                attrs={"axis": -1}, n_out=2, opset=11)


def slice_indices(dim, start, end, step):
    """ONNX Slice (opset 10+) indices along one axis."""
    if start < 0:
        start += dim
    if end < 0:
        end += dim
    if step > 0:
        start, end = min(max(start, 0), dim), min(max(end, 0), dim)
    else:
        start, end = min(max(start, 0), dim - 1), min(max(end, -1), dim - 1)
    return list(range(start, end, step))


def slice_ref(x, starts, ends, axes, steps):
    for s, e, a, st in zip(starts, ends, axes, steps):
        a = a % x.dim()
        idx = slice_indices(x.shape[a], s, e, st)
        x = torch.index_select(x, a, torch.tensor(idx, dtype=torch.long))
    return x


@case("slice_steps_negative")
def _(r):
    starts, ends, axes, steps = [1, -1, 0], [4, -100, 5], [0, 2, -2], [2, -2, 1]
    return Spec("Slice", lambda T: slice_ref(T["X"], starts, ends, axes, steps), [("X", U(r, (4, 6, 5)))],
                consts=[("starts", np.array(starts)), ("ends", np.array(ends)),
                        ("axes", np.array(axes)), ("steps", np.array(steps))])


@case("slice_negative_bounds_no_axes")
def _(r):
    starts, ends = [-3, 1], [-1, 1000]
    return Spec("Slice", lambda T: slice_ref(T["X"], starts, ends, [0, 1], [1, 1]), [("X", U(r, (5, 6)))],
                consts=[("starts", np.array(starts)), ("ends", np.array(ends))])


@case("slice_attrs_opset9")
def _(r):
    return Spec("Slice", lambda T: slice_ref(T["X"], [1, 0], [3, -1], [1, 2], [1, 1]), [("X", U(r, (2, 4, 5)))],
                attrs={"starts": [1, 0], "ends": [3, -1], "axes": [1, 2]}, opset=9)


@case("flatten_axis2")
def _(r):
    return Spec("Flatten", lambda T: T["X"].reshape(6, -1), [("X", U(r, (2, 3, 2, 2)))], attrs={"axis": 2})


@case("flatten_axis0")
def _(r):
    return Spec("Flatten", lambda T: T["X"].reshape(1, -1), [("X", U(r, (2, 3, 4)))], attrs={"axis": 0})


@case("reshape_zero_and_minus1")
def _(r):
    return Spec("Reshape", lambda T: T["X"].reshape(2, 6, 2), [("X", U(r, (2, 3, 4)))],
                consts=[("shape", np.array([0, -1, 2]))])


@case("transpose_perm")
def _(r):
    return Spec("Transpose", lambda T: T["X"].permute(2, 0, 1), [("X", U(r, (2, 3, 4)))], attrs={"perm": [2, 0, 1]})


@case("transpose_default")
def _(r):
    return Spec("Transpose", lambda T: T["X"].permute(3, 2, 1, 0), [("X", U(r, (2, 3, 1, 4)))])


@case("squeeze_opset13_axes")
def _(r):
    return Spec("Squeeze", lambda T: T["X"].reshape(2, 3, 4), [("X", U(r, (2, 1, 3, 1, 4)))],
                consts=[("axes", np.array([1, -2]))])


@case("squeeze_opset11_attr")
def _(r):
    return Spec("Squeeze", lambda T: T["X"].reshape(3, 4), [("X", U(r, (1, 3, 4)))], attrs={"axes": [0]}, opset=11)


@case("unsqueeze_opset13_axes")
def _(r):
    return Spec("Unsqueeze", lambda T: T["X"].reshape(1, 3, 4, 1), [("X", U(r, (3, 4)))],
                consts=[("axes", np.array([0, -1]))])


@case("unsqueeze_opset11_attr")
def _(r):
    return Spec("Unsqueeze", lambda T: T["X"].reshape(3, 1, 4), [("X", U(r, (3, 4)))], attrs={"axes": [1]}, opset=11)


def pad_const_ref(x, pads, value):
    """Constant Pad with a differentiable fill value."""
    spec = tpads(pads)
    return F.pad(x, spec) + value * F.pad(torch.zeros_like(x), spec, value=1.0)


@case("pad_constant_asym_value_weight")
def _(r):
    pads = [0, 1, 2, 0, 2, 1]
    # constant_value is a weight (a float initializer): graft differentiates it.
    return Spec("Pad", lambda T: pad_const_ref(T["X"], pads, T["value"]), [("X", U(r, (2, 3, 4)))],
                [("value", np.array(0.5))], consts=[("pads", np.array(pads))],
                node_in=["X", "pads", "value"])


@case("pad_constant_crop")
def _(r):
    pads = [0, -1, 1, 0, 1, -1]
    return Spec("Pad", lambda T: F.pad(T["X"], tpads(pads)), [("X", U(r, (2, 3, 4)))],
                consts=[("pads", np.array(pads))])


@case("pad_reflect")
def _(r):
    pads = [0, 0, 1, 2, 0, 0, 2, 1]
    return Spec("Pad", lambda T: F.pad(T["X"], tpads(pads)[:4], mode="reflect"), [("X", U(r, (1, 2, 4, 5)))],
                consts=[("pads", np.array(pads))], attrs={"mode": "reflect"})


@case("pad_edge")
def _(r):
    pads = [0, 0, 2, 1, 0, 0, 1, 3]
    return Spec("Pad", lambda T: F.pad(T["X"], tpads(pads)[:4], mode="replicate"), [("X", U(r, (1, 2, 3, 4)))],
                consts=[("pads", np.array(pads))], attrs={"mode": "edge"})


@case("pad_attrs_opset7")
def _(r):
    pads = [1, 0, 0, 2]
    v = float(np.float32(-0.25))
    return Spec("Pad", lambda T: F.pad(T["X"], tpads(pads), value=v), [("X", U(r, (3, 4)))],
                attrs={"pads": pads, "value": -0.25}, opset=7)


def gather_ref(x, idx, axis):
    idx = np.asarray(idx)
    flat = np.where(idx < 0, idx + x.shape[axis], idx).reshape(-1)
    y = torch.index_select(x, axis, torch.tensor(flat, dtype=torch.long))
    return y.reshape(tuple(x.shape[:axis]) + idx.shape + tuple(x.shape[axis + 1:]))


@case("gather_axis1_repeated")
def _(r):
    # Repeated and negative indices: gradients accumulate.
    idx = np.array([[0, 3], [3, -1], [1, 0]])
    return Spec("Gather", lambda T: gather_ref(T["X"], idx, 1), [("X", U(r, (2, 4, 3)))],
                consts=[("indices", idx)], attrs={"axis": 1})


@case("gather_axis0_scalar_index")
def _(r):
    idx = np.array(2)
    return Spec("Gather", lambda T: gather_ref(T["X"], idx, 0), [("X", U(r, (4, 5)))],
                consts=[("indices", idx)])


@case("gather_weight_rows")
def _(r):
    # An embedding lookup: gather rows of a weight.
    idx = np.array([[1, 4, 1], [0, 2, 4]])
    x = U(r, (2, 3, 5))

    def fn(T):
        return T["X"] + gather_ref(T["E"], idx, 0)
    nodes = [helper.make_node("Gather", ["E", "indices"], ["G"], axis=0), helper.make_node("Add", ["X", "G"], ["Y"])]
    return Spec(None, fn, [("X", x)], [("E", U(r, (5, 5)))], consts=[("indices", idx)], nodes=nodes)


@case("expand")
def _(r):
    return Spec("Expand", lambda T: T["X"].expand(2, 3, 4), [("X", U(r, (3, 1)))],
                consts=[("shape", np.array([2, 3, 4]))])


@case("expand_bidirectional")
def _(r):
    # The target shape [3, 1] broadcasts with the input's [2, 1, 4].
    return Spec("Expand", lambda T: T["X"].expand(2, 3, 4), [("X", U(r, (2, 1, 4)))],
                consts=[("shape", np.array([3, 1]))])


@case("tile")
def _(r):
    return Spec("Tile", lambda T: T["X"].repeat(1, 3, 2), [("X", U(r, (2, 1, 3)))],
                consts=[("repeats", np.array([1, 3, 2]))])


@case("tile_2d")
def _(r):
    return Spec("Tile", lambda T: T["X"].repeat(2, 3), [("X", U(r, (2, 3)))], consts=[("repeats", np.array([2, 3]))])


@case("identity")
def _(r):
    return Spec("Identity", lambda T: T["X"], [("X", U(r, (3, 4)))])


@case("identity_weight")
def _(r):
    # Identity of a weight, added to an input.
    nodes = [helper.make_node("Identity", ["W"], ["I"]), helper.make_node("Add", ["X", "I"], ["Y"])]
    return Spec(None, lambda T: T["X"] + T["W"], [("X", U(r, (3, 4)))], [("W", U(r, (3, 4)))], nodes=nodes)


@case("dropout_opset13_inference")
def _(r):
    return Spec("Dropout", lambda T: T["X"], [("X", U(r, (3, 4)))], consts=[("ratio", np.array(0.3))])


@case("dropout_opset7")
def _(r):
    return Spec("Dropout", lambda T: T["X"], [("X", U(r, (3, 4)))], attrs={"ratio": 0.3}, opset=7)


@case("cast_float")
def _(r):
    return Spec("Cast", lambda T: T["X"], [("X", U(r, (3, 4)))], attrs={"to": TensorProto.FLOAT})


@case("cast_double")
def _(r):
    # graft holds every float as float32: a cast to double passes through.
    return Spec("Cast", lambda T: T["X"], [("X", U(r, (3, 4)))], attrs={"to": TensorProto.DOUBLE},
                out_type=TensorProto.DOUBLE)


# ---- reductions

@case("reducemean_axis1_keepdims")
def _(r):
    return Spec("ReduceMean", lambda T: T["X"].mean(1, keepdim=True), [("X", U(r, (2, 3, 4)))],
                attrs={"axes": [1], "keepdims": 1})


@case("reducemean_all_nokeep")
def _(r):
    return Spec("ReduceMean", lambda T: T["X"].mean().reshape(()), [("X", U(r, (2, 3, 4)))], attrs={"keepdims": 0})


@case("reducemean_opset11_negaxes")
def _(r):
    return Spec("ReduceMean", lambda T: T["X"].mean((0, 2)), [("X", U(r, (2, 3, 4)))],
                attrs={"axes": [0, -1], "keepdims": 0}, opset=11)


@case("reducesum_opset13_axes_input")
def _(r):
    return Spec("ReduceSum", lambda T: T["X"].sum((0, 2)), [("X", U(r, (2, 3, 4)))],
                consts=[("axes", np.array([0, 2]))], attrs={"keepdims": 0})


@case("reducesum_opset13_all_keep")
def _(r):
    return Spec("ReduceSum", lambda T: T["X"].sum((0, 1, 2), keepdim=True), [("X", U(r, (2, 3, 4)))])


@case("reducesum_opset11_attr")
def _(r):
    return Spec("ReduceSum", lambda T: T["X"].sum(-1, keepdim=True), [("X", U(r, (2, 3, 4)))],
                attrs={"axes": [-1], "keepdims": 1}, opset=11)


@case("reducemax_axes12_nokeep")
def _(r):
    return Spec("ReduceMax", lambda T: T["X"].amax((1, 2)), [("X", distinct(U(r, (2, 3, 4))))],
                attrs={"axes": [1, 2], "keepdims": 0})


@case("reducemax_lastaxis_keep")
def _(r):
    return Spec("ReduceMax", lambda T: T["X"].amax(-1, keepdim=True), [("X", distinct(U(r, (3, 2, 5))))],
                attrs={"axes": [-1], "keepdims": 1})


@case("reducemax_all")
def _(r):
    return Spec("ReduceMax", lambda T: T["X"].amax((0, 1), keepdim=True), [("X", distinct(U(r, (4, 5))))])


# ---- ops models from other exporters use (issue 13)

@case("instancenorm_eps")
def _(r):
    return Spec("InstanceNormalization", lambda T: F.instance_norm(T["X"], weight=T["S"], bias=T["B"], eps=1e-3),
                [("X", U(r, (2, 3, 4, 5), -2, 2))], [("S", U(r, (3,), 0.5, 1.5)), ("B", U(r, (3,)))],
                attrs={"epsilon": 1e-3})


@case("sin")
def _(r):
    return unary_case("Sin", torch.sin, U(r, (4, 25), -3, 3))


@case("cos")
def _(r):
    return unary_case("Cos", torch.cos, U(r, (4, 25), -3, 3))


@case("softplus")
def _(r):
    return unary_case("Softplus", F.softplus, U(r, (4, 25), -4, 4))


# ---- opsets 18 to 21 (onnx 1.12's checker knows opsets up to 17 only:
# build_model skips it for these and sets the IR version by hand)

@case("mish_opset18")
def _(r):
    return Spec("Mish", lambda T: F.mish(T["X"]), [("X", U(r, (4, 25), -4, 4))], opset=18)


@case("gelu_opset20")
def _(r):
    return Spec("Gelu", lambda T: F.gelu(T["X"]), [("X", U(r, (4, 25), -4, 4))], opset=20)


@case("gelu_tanh_opset20")
def _(r):
    return Spec("Gelu", lambda T: F.gelu(T["X"], approximate="tanh"), [("X", U(r, (4, 25), -4, 4))],
                attrs={"approximate": "tanh"}, opset=20)


@case("groupnorm_opset21")
def _(r):
    # from opset 21 scale and bias are per channel, as in nn.GroupNorm
    return Spec("GroupNormalization", lambda T: F.group_norm(T["X"], 2, T["S"], T["B"], eps=1e-3),
                [("X", U(r, (2, 6, 3, 4), -2, 2))], [("S", U(r, (6,), 0.5, 1.5)), ("B", U(r, (6,)))],
                attrs={"num_groups": 2, "epsilon": 1e-3}, opset=21)


@case("groupnorm_opset18")
def _(r):
    # at opset 18 scale and bias hold one value per group
    def fn(T):
        y = F.group_norm(T["X"], 3, eps=1e-5)
        s = T["S"].repeat_interleave(2)[None, :, None, None]
        b = T["B"].repeat_interleave(2)[None, :, None, None]
        return y * s + b
    return Spec("GroupNormalization", fn, [("X", U(r, (2, 6, 2, 3), -2, 2))], [("S", U(r, (3,), 0.5, 1.5)), ("B", U(r, (3,)))],
                attrs={"num_groups": 3}, opset=18)


@case("softsign")
def _(r):
    return unary_case("Softsign", F.softsign, signed(r, (4, 25), MARGIN, 3))


@case("selu")
def _(r):
    return unary_case("Selu", F.selu, signed(r, (4, 25), MARGIN, 3))


@case("thresholdedrelu_alpha")
def _(r):
    x = away(U(r, (4, 25), -2, 2), [0.5], MARGIN)
    return Spec("ThresholdedRelu", lambda T: torch.where(T["X"] > 0.5, T["X"], torch.zeros_like(T["X"])),
                [("X", x)], attrs={"alpha": 0.5})


@case("where_bool_cond_broadcast")
def _(r):
    cond = r.uniform(size=(3, 4)) < 0.5
    return Spec("Where", lambda T: torch.where(torch.from_numpy(cond), T["X"], T["B"]),
                [("X", U(r, (2, 3, 4))), ("B", U(r, (4,)))], consts=[("cond", cond)],
                node_in=["cond", "X", "B"])


@case("where_not_greater_runtime")
def _(r):
    # A condition computed from the input at run time (graft carries the
    # bools as float32 0/1): Where(Not(X > B), X, B), a minimum.
    nodes = [helper.make_node("Greater", ["X", "B"], ["G"]), helper.make_node("Not", ["G"], ["N"]),
             helper.make_node("Where", ["N", "X", "B"], ["Y"])]
    b = U(r, (3, 4))
    return Spec(None, lambda T: torch.where(~(T["X"] > T["B"]), T["X"], T["B"]),
                [("X", b + signed(r, (3, 4), MARGIN, 1)), ("B", b)], nodes=nodes)


@case("trilu_upper_k1")
def _(r):
    return Spec("Trilu", lambda T: torch.triu(T["X"], 1), [("X", U(r, (2, 4, 5)))],
                consts=[("k", np.array(1))], opset=14)


@case("trilu_lower")
def _(r):
    return Spec("Trilu", lambda T: torch.tril(T["X"]), [("X", U(r, (4, 3)))], attrs={"upper": 0}, opset=14)


@case("gatherelements_axis1")
def _(r):
    idx = np.array([[0, 2, 2], [1, 0, 3]])
    return Spec("GatherElements", lambda T: torch.gather(T["X"], 1, torch.from_numpy(idx)),
                [("X", U(r, (2, 4)))], consts=[("indices", idx)], attrs={"axis": 1})


@case("depthtospace_dcr")
def _(r):
    def f(T):
        x = T["X"]
        n, c, h, w = x.shape
        return x.reshape(n, 2, 2, c // 4, h, w).permute(0, 3, 4, 1, 5, 2).reshape(n, c // 4, h * 2, w * 2)
    return Spec("DepthToSpace", f, [("X", U(r, (2, 8, 2, 3)))], attrs={"blocksize": 2})


@case("depthtospace_crd")
def _(r):
    return Spec("DepthToSpace", lambda T: F.pixel_shuffle(T["X"], 2), [("X", U(r, (1, 8, 2, 3)))],
                attrs={"blocksize": 2, "mode": "CRD"})


@case("spacetodepth")
def _(r):
    def f(T):
        x = T["X"]
        n, c, h, w = x.shape
        return x.reshape(n, c, h // 2, 2, w // 2, 2).permute(0, 3, 5, 1, 2, 4).reshape(n, c * 4, h // 2, w // 2)
    return Spec("SpaceToDepth", f, [("X", U(r, (2, 2, 4, 6)))], attrs={"blocksize": 2})


def resize_case(r, mode, scales, torch_mode, align=None, coord=None, opset=13, op="Resize"):
    x = U(r, (1, 2, 3, 4))
    attrs = {"mode": mode}
    if coord:
        attrs["coordinate_transformation_mode"] = coord
    if mode == "nearest" and op == "Resize" and opset >= 11:
        attrs["nearest_mode"] = "floor"
    kw = {} if align is None else {"align_corners": align}
    fn = lambda T: F.interpolate(T["X"], scale_factor=tuple(scales[2:]), mode=torch_mode, **kw)
    sc = np.array(scales, np.float32)
    if op == "Upsample":
        return Spec("Upsample", fn, [("X", x)], consts=[("scales", sc)], attrs=attrs, opset=9)
    return Spec("Resize", fn, [("X", x)], consts=[("scales", sc)], attrs=attrs, opset=opset,
                node_in=["X", "", "scales"], strict=False)


@case("resize_nearest_asymmetric_x2")
def _(r):
    return resize_case(r, "nearest", [1, 1, 2, 2], "nearest", coord="asymmetric")


@case("resize_linear_half_pixel")
def _(r):
    return resize_case(r, "linear", [1, 1, 2, 3], "bilinear", align=False)


@case("resize_linear_align_corners")
def _(r):
    return resize_case(r, "linear", [1, 1, 2, 2], "bilinear", align=True, coord="align_corners")


@case("resize_cubic_half_pixel")
def _(r):
    return resize_case(r, "cubic", [1, 1, 2, 2], "bicubic", align=False)


@case("upsample_nearest_opset9")
def _(r):
    return resize_case(r, "nearest", [1, 1, 2, 3], "nearest", op="Upsample")


def reduce_case(op, fn, x, axes, keep):
    return Spec(op, lambda T: fn(T["X"]), [("X", x)], attrs={"axes": axes, "keepdims": keep})


@case("reducemin_axes")
def _(r):
    return reduce_case("ReduceMin", lambda x: x.amin((0, 2), keepdim=True), distinct(U(r, (2, 3, 4))), [0, 2], 1)


@case("reduceprod_axis1")
def _(r):
    return reduce_case("ReduceProd", lambda x: x.prod(1), signed(r, (2, 3, 4), 0.5, 1.5), [1], 0)


@case("reducel1_axis2")
def _(r):
    return reduce_case("ReduceL1", lambda x: x.abs().sum(2), signed(r, (2, 3, 4), MARGIN, 2), [2], 0)


@case("reducel2_axis1")
def _(r):
    return reduce_case("ReduceL2", lambda x: x.pow(2).sum(1, keepdim=True).sqrt(), U(r, (2, 3, 4)), [1], 1)


@case("reducelogsum_axis1")
def _(r):
    return reduce_case("ReduceLogSum", lambda x: x.sum(1).log(), U(r, (2, 3, 4), 0.2, 2), [1], 0)


@case("reducelogsumexp_axes")
def _(r):
    return reduce_case("ReduceLogSumExp", lambda x: torch.logsumexp(x, (1, 2)), U(r, (2, 3, 4), -3, 3), [1, 2], 0)


@case("reducesumsquare_axis0")
def _(r):
    return reduce_case("ReduceSumSquare", lambda x: x.pow(2).sum(0, keepdim=True), U(r, (2, 3, 4)), [0], 1)



# ---- linear algebra

def gemm_ref(T, ta, tb, alpha, beta):
    a = T["A"].t() if ta else T["A"]
    b = T["B"].t() if tb else T["B"]
    y = alpha * (a @ b)
    if "C" in T:
        y = y + beta * T["C"]
    return y


@case("gemm_trans_alpha_beta_cbroadcast")
def _(r):
    alpha, beta = float(np.float32(0.7)), float(np.float32(1.3))
    return Spec("Gemm", lambda T: gemm_ref(T, True, True, alpha, beta), [("A", U(r, (4, 3)))],
                [("B", U(r, (5, 4))), ("C", U(r, (5,)))],
                attrs={"transA": 1, "transB": 1, "alpha": 0.7, "beta": 1.3})


@case("gemm_plain_ccolumn")
def _(r):
    return Spec("Gemm", lambda T: gemm_ref(T, False, False, 1.0, 1.0), [("A", U(r, (3, 4)))],
                [("B", U(r, (4, 5))), ("C", U(r, (3, 1)))])


@case("gemm_transb_inputs_fullc")
def _(r):
    # Both matrices as graph inputs, C of the full output shape.
    beta = float(np.float32(0.5))
    return Spec("Gemm", lambda T: gemm_ref(T, False, True, 1.0, beta), [("A", U(r, (3, 4))), ("B", U(r, (5, 4)))],
                [("C", U(r, (3, 5)))], attrs={"transB": 1, "beta": 0.5})


@case("gemm_no_c")
def _(r):
    return Spec("Gemm", lambda T: gemm_ref(T, True, False, 1.0, 1.0), [("A", U(r, (4, 3)))], [("B", U(r, (4, 2)))],
                attrs={"transA": 1})


@case("matmul_batched_broadcast")
def _(r):
    return Spec("MatMul", lambda T: torch.matmul(T["A"], T["B"]), [("A", U(r, (2, 1, 3, 4))), ("B", U(r, (3, 4, 5)))])


@case("matmul_weight")
def _(r):
    return Spec("MatMul", lambda T: torch.matmul(T["A"], T["W"]), [("A", U(r, (2, 3, 4)))], [("W", U(r, (4, 5)))],
                node_in=["A", "W"])


@case("matmul_1d_left")
def _(r):
    return Spec("MatMul", lambda T: torch.matmul(T["A"], T["B"]), [("A", U(r, (4,))), ("B", U(r, (2, 4, 3)))])


@case("matmul_1d_right")
def _(r):
    return Spec("MatMul", lambda T: torch.matmul(T["A"], T["B"]), [("A", U(r, (2, 3, 4))), ("B", U(r, (4,)))])


# ---- normalization

def lrn_ref(x, size, alpha, beta, bias):
    """ONNX LRN: the window is [c - (size-1)//2, c + ceil((size-1)/2)]."""
    c = x.shape[1]
    lo = (size - 1) // 2
    hi = size - 1 - lo
    sq = x * x
    s = torch.stack([sq[:, max(0, i - lo):min(c, i + hi + 1)].sum(1) for i in range(c)], 1)
    return x / (bias + alpha / size * s) ** beta


def lrn_case(r, size):
    alpha, beta, bias = (float(np.float32(v)) for v in (0.5, 0.75, 1.5))
    return Spec("LRN", lambda T: lrn_ref(T["X"], size, alpha, beta, bias), [("X", U(r, (2, 5, 3, 3), -2, 2))],
                attrs={"size": size, "alpha": 0.5, "beta": 0.75, "bias": 1.5})


@case("lrn_size3")
def _(r):
    return lrn_case(r, 3)


@case("lrn_size4_even")
def _(r):
    return lrn_case(r, 4)


def ln_ref(T, axis, eps):
    x = T["X"]
    dims = tuple(range(axis % x.dim(), x.dim()))
    m = x.mean(dims, keepdim=True)
    v = ((x - m) ** 2).mean(dims, keepdim=True)
    y = (x - m) / torch.sqrt(v + eps) * T["scale"]
    if "B" in T:
        y = y + T["B"]
    return y


@case("layernorm_lastaxis")
def _(r):
    return Spec("LayerNormalization", lambda T: ln_ref(T, -1, 1e-5), [("X", U(r, (2, 3, 8), -2, 2))],
                [("scale", U(r, (8,), 0.5, 1.5)), ("B", U(r, (8,)))], opset=17)


@case("layernorm_axis1_nobias")
def _(r):
    eps = float(np.float32(1e-3))
    return Spec("LayerNormalization", lambda T: ln_ref(T, 1, eps), [("X", U(r, (2, 3, 4), -2, 2))],
                [("scale", U(r, (3, 4), 0.5, 1.5))], attrs={"axis": 1, "epsilon": 1e-3}, opset=17)


@case("layernorm_broadcast_scale")
def _(r):
    # Scale [4] and B [1, 4] broadcast over the normalized [3, 4].
    return Spec("LayerNormalization", lambda T: ln_ref(T, -2, 1e-5), [("X", U(r, (2, 3, 4), -2, 2))],
                [("scale", U(r, (4,), 0.5, 1.5)), ("B", U(r, (1, 4)))], attrs={"axis": -2}, opset=17)


# ---- TopK and CumSum

def topk_ref(x, k, axis, largest):
    return torch.topk(x, k, dim=axis, largest=largest, sorted=True).values


@case("topk_opset11_largest")
def _(r):
    x = distinct(U(r, (3, 5, 4)))
    return Spec("TopK", lambda T: topk_ref(T["X"], 3, 1, True), [("X", x)],
                consts=[("K", np.array([3]))], attrs={"axis": 1}, opset=11, extra_out=["I"])


@case("topk_opset11_smallest_lastaxis")
def _(r):
    x = distinct(U(r, (2, 3, 6)))
    return Spec("TopK", lambda T: topk_ref(T["X"], 2, -1, False), [("X", x)],
                consts=[("K", np.array([2]))], attrs={"axis": -1, "largest": 0}, opset=11, extra_out=["I"])


@case("topk_opset9_attribute_k")
def _(r):
    x = distinct(U(r, (4, 5)))
    return Spec("TopK", lambda T: topk_ref(T["X"], 4, 0, True), [("X", x)],
                attrs={"axis": 0, "k": 4}, opset=9, extra_out=["I"])


def cumsum_ref(x, axis, exclusive, reverse):
    if reverse:
        x = torch.flip(x, [axis])
    y = torch.cumsum(x, axis)
    if exclusive:
        y = y - x
    if reverse:
        y = torch.flip(y, [axis])
    return y


@case("cumsum_axis1")
def _(r):
    return Spec("CumSum", lambda T: cumsum_ref(T["X"], 1, False, False), [("X", U(r, (2, 5, 3)))],
                consts=[("axis", np.array(1))], opset=11)


@case("cumsum_exclusive_reverse_lastaxis")
def _(r):
    return Spec("CumSum", lambda T: cumsum_ref(T["X"], -1, True, True), [("X", U(r, (3, 6)))],
                consts=[("axis", np.array(-1))], attrs={"exclusive": 1, "reverse": 1}, opset=14)


@case("cumsum_exclusive_axis0")
def _(r):
    return Spec("CumSum", lambda T: cumsum_ref(T["X"], 0, True, False), [("X", U(r, (4, 3)))],
                consts=[("axis", np.array(0))], attrs={"exclusive": 1}, opset=11)


# ---- Scatter, ScatterElements, ScatterND

def scatter_ref(data, upd, dst, reduction):
    """data with update i written to (or added to, or multiplied into)
    flat element dst[i], in order, elementwise so autograd follows."""
    vals = list(data.reshape(-1).unbind())
    for u, j in zip(upd.reshape(-1).unbind(), dst):
        if reduction == "add":
            vals[j] = vals[j] + u
        elif reduction == "mul":
            vals[j] = vals[j] * u
        elif reduction == "max":
            vals[j] = torch.maximum(vals[j], u)
        elif reduction == "min":
            vals[j] = torch.minimum(vals[j], u)
        else:
            vals[j] = u
    return torch.stack(vals).reshape(data.shape)


def elements_dst(shape, idx, axis):
    dst = []
    for co in np.ndindex(*idx.shape):
        c = list(co)
        c[axis] = int(idx[co]) % shape[axis]
        dst.append(int(np.ravel_multi_index(c, shape)))
    return dst


def nd_dst(shape, idx):
    q = idx.shape[-1]
    slice_n = int(np.prod(shape[q:]))
    dst = []
    for t in idx.reshape(-1, q):
        base = int(np.ravel_multi_index([int(v) % shape[d] for d, v in enumerate(t)], shape[:q])) * slice_n
        dst += [base + s for s in range(slice_n)]
    return dst


def scatter_elements_case(r, op, shape, idx, axis, reduction=None, opset=16):
    idx = np.array(idx)
    dst = elements_dst(shape, idx, axis)
    attrs = {"axis": axis}
    if reduction:
        attrs["reduction"] = reduction
    return Spec(op, lambda T: scatter_ref(T["data"], T["updates"], dst, reduction),
                [("data", U(r, shape, 0.5, 1.5)), ("updates", U(r, idx.shape, 0.5, 1.5))],
                consts=[("indices", idx)], node_in=["data", "indices", "updates"], attrs=attrs, opset=opset)


@case("scatter_opset9_axis1")
def _(r):
    return scatter_elements_case(r, "Scatter", (3, 4), [[1, 3], [0, 2], [3, 0]], 1, opset=9)


@case("scatterelements_axis0_negative")
def _(r):
    return scatter_elements_case(r, "ScatterElements", (4, 3), [[-1, 0, 2], [1, 2, 0]], 0, opset=13)


@case("scatterelements_add_duplicates")
def _(r):
    return scatter_elements_case(r, "ScatterElements", (2, 5), [[1, 1, 4], [0, 3, 3]], 1, "add")


@case("scatterelements_mul_duplicates")
def _(r):
    return scatter_elements_case(r, "ScatterElements", (2, 5), [[1, 1, 4], [0, 3, 3]], 1, "mul")


@case("scatterelements_max_opset18")
def _(r):
    return scatter_elements_case(r, "ScatterElements", (3, 4), [[1, 1, 2], [0, 3, 0], [2, 2, 2]], 1, "max", opset=18)


def scatter_nd_case(r, shape, idx, reduction=None, opset=16):
    idx = np.array(idx)
    dst = nd_dst(shape, idx)
    us = idx.shape[:-1] + tuple(shape[idx.shape[-1]:])
    attrs = {"reduction": reduction} if reduction else {}
    return Spec("ScatterND", lambda T: scatter_ref(T["data"], T["updates"], dst, reduction),
                [("data", U(r, shape, 0.5, 1.5)), ("updates", U(r, us, 0.5, 1.5))],
                consts=[("indices", idx)], node_in=["data", "indices", "updates"], attrs=attrs, opset=opset)


@case("scatternd_slices")
def _(r):
    return scatter_nd_case(r, (4, 2, 3), [[2], [0]])


@case("scatternd_elements_add_duplicates")
def _(r):
    return scatter_nd_case(r, (3, 4), [[0, 1], [2, 3], [0, 1]], "add")


@case("scatternd_mul_duplicates")
def _(r):
    return scatter_nd_case(r, (3, 2, 2), [[[1, 0]], [[1, 0]]], "mul")


@case("scatternd_min_opset18")
def _(r):
    return scatter_nd_case(r, (4, 3), [[2], [0], [2], [2]], "min", opset=18)


# ---- Einsum

def einsum_case(r, eq, *shapes):
    names = ["A", "B"][:len(shapes)]
    return Spec("Einsum", lambda T: torch.einsum(eq, *[T[n] for n in names]),
                [(n, U(r, sh)) for n, sh in zip(names, shapes)], attrs={"equation": eq}, opset=12)


@case("einsum_transpose")
def _(r):
    return einsum_case(r, "ij->ji", (3, 4))


@case("einsum_sum_diagonal_ellipsis")
def _(r):
    return einsum_case(r, "...ii->...i", (2, 3, 3))


@case("einsum_row_sums")
def _(r):
    return einsum_case(r, "ijk->ki", (2, 3, 4))


@case("einsum_batch_matmul")
def _(r):
    return einsum_case(r, "bij,bjk->bik", (2, 3, 4), (2, 4, 5))


@case("einsum_attention_scores")
def _(r):
    return einsum_case(r, "bhqd,bhkd->bhqk", (1, 2, 3, 4), (1, 2, 5, 4))


@case("einsum_implicit_matmul")
def _(r):
    return einsum_case(r, "ij,jk", (3, 4), (4, 2))


@case("einsum_contraction_sumout")
def _(r):
    return einsum_case(r, "abc,cde->da", (2, 3, 4), (4, 2, 3))


@case("einsum_outer")
def _(r):
    return einsum_case(r, "i,j->ij", (3,), (4,))


@case("einsum_inner_product")
def _(r):
    return einsum_case(r, "i,i", (5,), (5,))


# ------------------------------------------------------------------ driver

def to_torch(a, dtype):
    return torch.tensor(np.asarray(a, np.float64), dtype=dtype, requires_grad=True)


def evaluate(spec, dtype, ups=None):
    """Outputs, L and the gradients of every differentiable tensor."""
    T = {n: to_torch(a, dtype) for n, a in spec.inputs + spec.inits}
    outs = spec.fn(T)
    if isinstance(outs, torch.Tensor):
        outs = (outs,)
    outs = tuple(outs)
    if ups is None:
        return outs, None, None
    L = sum((o * torch.tensor(u, dtype=dtype)).sum() for o, u in zip(outs, ups))
    names = [n for n, _ in spec.inputs + spec.inits]
    gs = torch.autograd.grad(L, [T[n] for n in names], allow_unused=True)
    grads = {}
    for n, g in zip(names, gs):
        grads[n] = np.zeros(T[n].shape) if g is None else g.detach().numpy().astype(np.float64)
    return [o.detach().numpy().astype(np.float64) for o in outs], L.item(), grads


def loss64(spec, vals, ups):
    with torch.no_grad():
        T = {n: torch.tensor(a, dtype=torch.float64) for n, a in vals.items()}
        outs = spec.fn(T)
        if isinstance(outs, torch.Tensor):
            outs = (outs,)
        return sum(float((o * torch.tensor(u, dtype=torch.float64)).sum()) for o, u in zip(outs, ups))


def relerr(got, want):
    scale = np.max(np.abs(want)) if want.size else 0.0
    d = np.max(np.abs(got - want)) if want.size else 0.0
    return d / scale if scale > 0 else d


def tensor_proto(a, name):
    # (not np.ascontiguousarray, which makes rank-0 arrays rank 1)
    return numpy_helper.from_array(np.array(a, order="C"), name)


def build_model(spec, out_shapes):
    init = [tensor_proto(a, n) for n, a in spec.inits + spec.consts]
    ins = [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(a.shape)) for n, a in spec.inputs]
    out_names = ["Y"] if spec.n_out == 1 else ["Y%d" % i for i in range(spec.n_out)]
    outs = [helper.make_tensor_value_info(n, spec.out_type, list(s) if spec.out_shape else ["d%d" % i for i in range(len(s))])
            for n, s in zip(out_names, out_shapes)]
    if spec.nodes is not None:
        nodes = spec.nodes
    else:
        nodes = [helper.make_node(spec.op, spec.node_in, out_names + spec.extra_out, **spec.attrs)]
    graph = helper.make_graph(nodes, "grad_case", ins, outs, init)
    model = helper.make_model(graph, producer_name="graft gen_grads.py",
                              opset_imports=[helper.make_opsetid("", spec.opset)])
    if spec.opset > 17:
        # onnx 1.12 knows opsets up to 17 and IR versions up to 8
        model.ir_version = {18: 8, 19: 9, 20: 9, 21: 10}[spec.opset]
        return model
    onnx.checker.check_model(model, full_check=spec.strict)
    return model


def gen_case(name, f, out_dir):
    r = np.random.default_rng(seed_of(name))
    spec = f(r)
    # float64 reference on the float32 values.
    outs, _, _ = evaluate(spec, torch.float64)
    ur = np.random.default_rng(seed_of(name + "/up"))
    ups = [U(ur, o.shape).astype(np.float32).astype(np.float64) for o in outs]
    outs, _, grads = evaluate(spec, torch.float64, ups)
    # float32 must agree.
    outs32, _, grads32 = evaluate(spec, torch.float32, ups)
    worst32 = 0.0
    for o, o32 in zip(outs, outs32):
        worst32 = max(worst32, relerr(o32, o))
    for n in grads:
        worst32 = max(worst32, relerr(grads32[n], grads[n]))
    if worst32 > F32_TOL:
        raise SystemExit("%s: float32 PyTorch differs from float64 by %.3g (relative), above %g" % (name, worst32, F32_TOL))
    # Central finite differences in float64, every element.
    vals = {n: a.astype(np.float64) for n, a in spec.inputs + spec.inits}
    worst_fd = 0.0
    for n, g in grads.items():
        v = vals[n]
        fd = np.zeros(v.shape)
        flat, fdf = v.reshape(-1), fd.reshape(-1)
        for i in range(flat.size):
            orig = flat[i]
            flat[i] = orig + FD_STEP
            lp = loss64(spec, vals, ups)
            flat[i] = orig - FD_STEP
            lm = loss64(spec, vals, ups)
            flat[i] = orig
            fdf[i] = (lp - lm) / (2 * FD_STEP)
        scale = max(np.max(np.abs(g)), 1.0)
        err = np.max(np.abs(fd - g)) / scale
        worst_fd = max(worst_fd, err)
        if err > FD_TOL:
            raise SystemExit("%s: autograd and finite differences disagree for %s by %.3g" % (name, n, err))

    model = build_model(spec, [o.shape for o in outs])
    d = os.path.join(out_dir, name)
    os.makedirs(d)

    def write(fname, a, tname):
        with open(os.path.join(d, fname), "wb") as fh:
            fh.write(tensor_proto(np.asarray(a).astype(np.float32), tname).SerializeToString())

    with open(os.path.join(d, "model.onnx"), "wb") as fh:
        fh.write(model.SerializeToString())
    for n, a in spec.inputs:
        write("input_%s.pb" % n, a, n)
    if len(outs) == 1:
        write("output.pb", outs[0], "Y")
        write("up.pb", ups[0], "up")
    else:
        for i, (o, u) in enumerate(zip(outs, ups)):
            write("output_%d.pb" % i, o, "Y%d" % i)
            write("up_%d.pb" % i, u, "up_%d" % i)
    for n, g in grads.items():
        write("grad_%s.pb" % n, g, "grad_" + n)
    ops = [n.op_type for n in model.graph.node]
    return ops, worst32, worst_fd


def dir_bytes(root):
    total = 0
    for dp, _, files in os.walk(root):
        for fn in files:
            total += os.path.getsize(os.path.join(dp, fn))
    return total


def same_tree(a, b):
    def listing(root):
        out = {}
        for dp, _, files in os.walk(root):
            for fn in files:
                p = os.path.join(dp, fn)
                with open(p, "rb") as fh:
                    out[os.path.relpath(p, root)] = fh.read()
        return out
    la, lb = listing(a), listing(b)
    diff = sorted(k for k in set(la) | set(lb) if la.get(k) != lb.get(k))
    return diff


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="regenerate in a temporary folder and compare with grads/")
    ap.add_argument("--list", action="store_true", help="list the cases")
    ap.add_argument("--out", default=OUT, help="output folder (default %(default)s)")
    args = ap.parse_args()
    if args.list:
        for n, _ in CASES:
            print(n)
        return
    start = time.time()
    parent = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".grads.", dir=parent)
    try:
        for name, f in CASES:
            ops, e32, efd = gen_case(name, f, tmp)
            print("%-36s %-34s f32 %.2e  fd %.2e" % (name, "+".join(ops), e32, efd))
        if args.check:
            diff = same_tree(tmp, args.out)
            if diff:
                print("differs from %s: %s" % (args.out, ", ".join(diff)))
                sys.exit(1)
            print("%s is up to date" % args.out)
        else:
            if os.path.exists(args.out):
                shutil.rmtree(args.out)
            os.rename(tmp, args.out)
            tmp = None
            print("%d cases, %d bytes in %s" % (len(CASES), dir_bytes(args.out), args.out))
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    print("%.1fs" % (time.time() - start))


if __name__ == "__main__":
    main()
