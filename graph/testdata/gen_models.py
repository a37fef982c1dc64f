#!/usr/bin/python3
"""Generate graft's ONNX reference models and their PyTorch outputs.

Run with Debian's system python (torch 1.13, torchvision 0.14, onnx 1.12):

    /usr/bin/python3 graph/testdata/gen_models.py              # all big models
    /usr/bin/python3 graph/testdata/gen_models.py --only resnet18,resnet18_op13
    /usr/bin/python3 graph/testdata/gen_models.py --fixtures   # small committed fixtures
    /usr/bin/python3 graph/testdata/gen_models.py --list

Every model is written in the ONNX backend-test layout:

    <out>/<name>/model.onnx
    <out>/<name>/test_data_set_<N>/input_0.pb    (TensorProto named "input")
    <out>/<name>/test_data_set_<N>/output_0.pb   (TensorProto named "output")

The outputs are what PyTorch computes for the inputs (eval mode), so they are
the reference every graft test compares against.

Big models (default mode) are torchvision architectures with random weights
(weights=None; torch.manual_seed per architecture, so the opset 11 and opset 13
exports of one architecture carry the same weights) and randomized
BatchNorm statistics and affine parameters, so that activations and outputs
are not vanishingly small. They go to graph/testdata/generated/ (git-ignored;
.ci/run makes them). Fixtures (--fixtures) are tiny hand-made modules of a few
KB each, committed under graph/testdata/fixtures/.

Each model is built in <out>/.<name>.tmp and renamed into place when complete,
so a folder <out>/<name> holding model.onnx is a finished model; such models
are skipped (an inexpensive rerun) unless --force is given.

BatchNormalization nodes: torch 1.13 folds eval-mode BatchNorm into the
preceding Conv during export (its "eval peephole" pass, run when
training is None or TrainingMode.EVAL). Exporting a model that is in eval mode
with training=torch.onnx.TrainingMode.PRESERVE skips that pass, and since the
module is in eval mode each BatchNormalization node uses the running
statistics (one output, no training_mode). The *_bnpreserve model and the
dense_bnkeep fixture are exported that way; the script asserts the nodes are
there.

The output is deterministic: same seeds, same weights, same inputs; the
fixture files are byte-identical from run to run.
"""

import argparse
import collections
import os
import shutil
import sys
import time
import warnings
import zlib

import numpy as np
import onnx
import onnx.checker
import onnx.numpy_helper
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_GENERATED = os.path.join(REPO, "graph", "testdata", "generated")
DEFAULT_FIXTURES = os.path.join(REPO, "graph", "testdata", "fixtures")

# Every reference output must exceed this in max |value|; the final layer is
# rescaled (by powers of two) until the output reaches MIN_TARGET.
MIN_MAGNITUDE = 1e-2
MIN_TARGET = 0.5


def seed_of(name):
    """A stable 31-bit seed from a name."""
    return zlib.crc32(name.encode()) & 0x7FFFFFFF


def randomize_bn(model):
    """Random BatchNorm statistics and affine parameters (global torch RNG)."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.normal_(0.0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                if m.weight is not None:
                    m.weight.uniform_(0.5, 1.5)
                if m.bias is not None:
                    m.bias.normal_(0.0, 0.1)


def last_layer(model):
    """The last Linear or Conv2d module: the one rescaled to lift outputs."""
    last = None
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            last = m
    return last


def inputs_for(name, shapes):
    """Seeded standard-normal inputs, one per test set."""
    out = []
    for i, shape in enumerate(shapes):
        g = torch.Generator().manual_seed(seed_of("%s/input/%d" % (name, i)))
        out.append(torch.randn(*shape, generator=g))
    return out


class Spec:
    """One model to export."""

    def __init__(self, name, build, opset, shapes, dynamic=False, preserve=False, seed=None, note=""):
        self.name = name
        self.build = build  # () -> nn.Module, called right after torch.manual_seed
        self.opset = opset
        self.shapes = shapes  # input shape of each test set
        self.dynamic = dynamic  # batch axis of input and output is dynamic
        self.preserve = preserve  # export with TrainingMode.PRESERVE (keeps BN nodes)
        self.seed = seed if seed is not None else name
        self.note = note


# ---------------------------------------------------------------- big models

def tv(arch):
    def build():
        return getattr(torchvision.models, arch)(weights=None)
    return build


B1 = [(1, 3, 224, 224)]


def big_specs():
    specs = []
    for arch in ["resnet18", "mobilenet_v2", "squeezenet1_1", "efficientnet_b0", "densenet121"]:
        specs.append(Spec(arch, tv(arch), 11, B1, seed=arch))
        specs.append(Spec(arch + "_op13", tv(arch), 13, B1, seed=arch))
    specs.append(Spec("mobilenet_v2_dynbatch", tv("mobilenet_v2"), 13,
                      [(1, 3, 224, 224), (3, 3, 224, 224)], dynamic=True, seed="mobilenet_v2"))
    specs.append(Spec("resnet18_bnpreserve", tv("resnet18"), 13, B1, preserve=True, seed="resnet18"))
    return specs


# ------------------------------------------------------------------ fixtures

class ConvBnPoolFc(nn.Module):
    """(a) conv + BN (eval, folded into the conv by export) + relu + maxpool + flatten + linear."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(8 * 4 * 4, 5)

    def forward(self, x):
        x = self.pool(F.relu(self.bn(self.conv(x))))
        return self.fc(torch.flatten(x, 1))


class MobileBlock(nn.Module):
    """(b) stem + inverted residual: 1x1 expand, depthwise 3x3 (groups=C), ReLU6 (Clip), 1x1 project, residual Add."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.expand = nn.Conv2d(8, 16, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.dw = nn.Conv2d(16, 16, 3, padding=1, groups=16, bias=False)
        self.bn2 = nn.BatchNorm2d(16)
        self.project = nn.Conv2d(16, 8, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(8)

    def forward(self, x):
        x = F.relu6(self.stem(x))
        y = F.relu6(self.bn1(self.expand(x)))
        y = F.relu6(self.bn2(self.dw(y)))
        y = self.bn3(self.project(y))
        return x + y


class Fire(nn.Module):
    """(c) squeezenet: conv, MaxPool ceil_mode=True (6x6 -> 3x3), fire (squeeze, two expand branches, Concat), 1x1 classifier conv, AdaptiveAvgPool."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)  # 8x8 -> 6x6
        self.pool = nn.MaxPool2d(3, stride=2, ceil_mode=True)  # 6x6 -> 3x3 (floor would give 2x2)
        self.squeeze = nn.Conv2d(8, 4, 1)
        self.e1 = nn.Conv2d(4, 6, 1)
        self.e3 = nn.Conv2d(4, 6, 3, padding=1)
        self.classifier = nn.Conv2d(12, 5, 1)
        self.avg = nn.AdaptiveAvgPool2d((1, 1))

    def forward(self, x):
        x = self.pool(F.relu(self.conv(x)))
        s = F.relu(self.squeeze(x))
        x = torch.cat([F.relu(self.e1(s)), F.relu(self.e3(s))], 1)
        x = self.avg(F.relu(self.classifier(x)))
        return torch.flatten(x, 1)


class DenseBnKeep(nn.Module):
    """(d) densenet-ish, exported with TrainingMode.PRESERVE: BatchNormalization nodes stay; AvgPool2d, F.pad, Concat."""

    def __init__(self):
        super().__init__()
        self.conv0 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn0 = nn.BatchNorm2d(8)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv1 = nn.Conv2d(8, 4, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(12)
        self.conv2 = nn.Conv2d(12, 6, 1, bias=False)
        self.pool = nn.AvgPool2d(2, stride=2)
        self.pool_pad = nn.AvgPool2d(3, stride=1, padding=1)  # count_include_pad=True

    def forward(self, x):
        x = F.relu(self.bn0(self.conv0(x)))
        new = self.conv1(F.relu(self.bn1(x)))
        x = torch.cat([x, new], 1)
        x = self.pool(self.conv2(F.relu(self.bn2(x))))  # 8x8 -> 4x4
        x = F.pad(x, (0, 1, 1, 0))  # asymmetric: left 0, right 1, top 1, bottom 0 -> 5x5
        return self.pool_pad(x)


class SEAct(nn.Module):
    """(e) efficientnet/mobilenetv3-ish: SiLU (x*sigmoid(x)), depthwise conv, Hardswish, squeeze-excitation with Hardsigmoid and a broadcast Mul."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.se_reduce = nn.Conv2d(8, 4, 1)
        self.se_expand = nn.Conv2d(4, 8, 1)
        self.project = nn.Conv2d(8, 4, 1)

    def forward(self, x):
        x = self.conv(x)
        x = x * torch.sigmoid(x)  # SiLU written out: Sigmoid, Mul
        x = F.hardswish(self.dw(x))  # HardSwish at opset 14; HardSigmoid + Mul before
        s = F.adaptive_avg_pool2d(x, 1)
        s = F.hardsigmoid(self.se_expand(F.relu(self.se_reduce(s))))
        x = x * s  # (1,8,8,8) * (1,8,1,1)
        return self.project(x)


class DynBatchView(nn.Module):
    """(f) x.view(x.size(0), -1) with a dynamic batch: Shape, Gather, Unsqueeze, Concat, Reshape."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, stride=2, padding=1)  # 8x8 -> 4x4
        self.fc = nn.Linear(4 * 4 * 4, 6)

    def forward(self, x):
        x = F.relu(self.conv(x))
        x = x.view(x.size(0), -1)
        return self.fc(x)


class SoftmaxHead(nn.Module):
    """(g) Gemm (transB=1), Softmax and LogSoftmax over the logits, and a Softmax over the channel axis of a 4-D tensor."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, stride=2, padding=1)  # 8x8 -> 4x4
        self.fc = nn.Linear(4 * 4 * 4, 10)

    def forward(self, x):
        h = self.conv(x)
        z = self.fc(torch.flatten(F.relu(h), 1))
        c = torch.flatten(torch.softmax(h, dim=1), 1)  # non-last axis
        return torch.cat([torch.softmax(z, dim=1), torch.log_softmax(z, dim=1), c], 1)


class TinyUNet(nn.Module):
    """(h) a U-Net at 8x8: two strided-conv downsamplings, one upsampling by ConvTranspose (stride 2, output_padding 1) and one by Resize (bilinear, pytorch_half_pixel), each followed by a Concat skip connection, and a 1x1 conv head with an image-shaped output."""

    def __init__(self):
        super().__init__()
        self.enc1 = nn.Conv2d(3, 4, 3, padding=1)  # 8x8
        self.enc2 = nn.Conv2d(4, 8, 3, stride=2, padding=1)  # 4x4
        self.mid = nn.Conv2d(8, 8, 3, stride=2, padding=1)  # 2x2
        self.up = nn.ConvTranspose2d(8, 6, 3, stride=2, padding=1, output_padding=1)  # 4x4
        self.dec2 = nn.Conv2d(14, 6, 3, padding=1)
        self.dec1 = nn.Conv2d(10, 4, 3, padding=1)
        self.head = nn.Conv2d(4, 2, 1)

    def forward(self, x):
        e1 = F.relu(self.enc1(x))
        e2 = F.relu(self.enc2(e1))
        m = F.relu(self.mid(e2))
        d2 = F.relu(self.dec2(torch.cat([F.relu(self.up(m)), e2], 1)))
        u1 = F.interpolate(d2, scale_factor=2, mode="bilinear", align_corners=False)
        d1 = F.relu(self.dec1(torch.cat([u1, e1], 1)))
        return self.head(d1)


S8 = [(1, 3, 8, 8)]


def fixture_specs():
    return [
        Spec("conv_bn_pool_fc", ConvBnPoolFc, 13, S8),
        Spec("mobile_block_op11", MobileBlock, 11, S8, seed="mobile_block"),
        Spec("mobile_block_op13", MobileBlock, 13, S8, seed="mobile_block"),
        Spec("fire", Fire, 13, S8),
        Spec("dense_bnkeep", DenseBnKeep, 13, S8, preserve=True),
        Spec("se_act_op13", SEAct, 13, S8, seed="se_act"),
        Spec("se_act_op14", SEAct, 14, S8, seed="se_act"),
        Spec("dynbatch_view", DynBatchView, 13, [(1, 3, 8, 8), (2, 3, 8, 8)], dynamic=True),
        Spec("softmax_head_op11", SoftmaxHead, 11, S8, seed="softmax_head"),
        Spec("softmax_head_op13", SoftmaxHead, 13, S8, seed="softmax_head"),
        Spec("tiny_unet", TinyUNet, 13, S8),
    ]


# ------------------------------------------------------------------- export

def op_histogram(model):
    c = collections.Counter(n.op_type for n in model.graph.node)
    return " ".join("%s:%d" % (k, c[k]) for k in sorted(c))


def build_model(spec):
    torch.manual_seed(seed_of(spec.seed))
    model = spec.build()
    randomize_bn(model)
    model.eval()
    return model


def lift_outputs(spec, model, xs):
    """Run the model; rescale its last layer by powers of two until max |output| >= MIN_TARGET."""
    lifts = 0
    with torch.no_grad():
        while True:
            ys = [model(x) for x in xs]
            mag = max(float(y.abs().max()) for y in ys)
            if lifts == 0:
                natural = mag
            if mag >= MIN_TARGET or lifts == 40:
                break
            last = last_layer(model)
            last.weight.mul_(2.0)
            if last.bias is not None:
                last.bias.mul_(2.0)
            lifts += 1
    if not mag > MIN_MAGNITUDE:
        raise SystemExit("%s: reference output max |value| %.3g is not above %g" % (spec.name, mag, MIN_MAGNITUDE))
    return ys, mag, "" if lifts == 0 else " (last layer x2^%d; was %.3g)" % (lifts, natural)


def export(spec, out_dir):
    """Export spec into out_dir/spec.name; return (model proto, output magnitude, lift note)."""
    model = build_model(spec)
    xs = inputs_for(spec.seed, spec.shapes)
    ys, mag, lift = lift_outputs(spec, model, xs)

    tmp = os.path.join(out_dir, "." + spec.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    path = os.path.join(tmp, "model.onnx")
    kwargs = dict(
        opset_version=spec.opset,
        input_names=["input"],
        output_names=["output"],
        do_constant_folding=True,
    )
    if spec.dynamic:
        kwargs["dynamic_axes"] = {"input": {0: "batch"}, "output": {0: "batch"}}
    if spec.preserve:
        kwargs["training"] = torch.onnx.TrainingMode.PRESERVE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, xs[0], path, **kwargs)

    m = onnx.load(path)
    onnx.checker.check_model(m, full_check=True)
    ops = collections.Counter(n.op_type for n in m.graph.node)
    if spec.preserve and ops["BatchNormalization"] == 0:
        raise SystemExit("%s: exported with TrainingMode.PRESERVE but has no BatchNormalization node" % spec.name)
    if spec.dynamic:
        dim = m.graph.input[0].type.tensor_type.shape.dim[0]
        if not dim.dim_param:
            raise SystemExit("%s: batch axis of the input is not dynamic" % spec.name)
    if [i.name for i in m.graph.input] != ["input"] or [o.name for o in m.graph.output] != ["output"]:
        raise SystemExit("%s: graph inputs/outputs are not input/output" % spec.name)

    for i, (x, y) in enumerate(zip(xs, ys)):
        d = os.path.join(tmp, "test_data_set_%d" % i)
        os.makedirs(d)
        for fname, tname, arr in (("input_0.pb", "input", x), ("output_0.pb", "output", y)):
            tp = onnx.numpy_helper.from_array(arr.detach().numpy().astype(np.float32), name=tname)
            with open(os.path.join(d, fname), "wb") as f:
                f.write(tp.SerializeToString())

    final = os.path.join(out_dir, spec.name)
    shutil.rmtree(final, ignore_errors=True)
    os.rename(tmp, final)
    return m, mag, lift


def is_done(spec, out_dir):
    d = os.path.join(out_dir, spec.name)
    if not os.path.isfile(os.path.join(d, "model.onnx")):
        return False
    return all(os.path.isfile(os.path.join(d, "test_data_set_%d" % i, "output_0.pb")) for i in range(len(spec.shapes)))


def folder_size(d):
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(d) for f in fs)


def stored_magnitude(d):
    mag = 0.0
    for s in sorted(os.listdir(d)):
        p = os.path.join(d, s, "output_0.pb")
        if os.path.isfile(p):
            t = onnx.TensorProto()
            with open(p, "rb") as f:
                t.ParseFromString(f.read())
            mag = max(mag, float(np.abs(onnx.numpy_helper.to_array(t)).max()))
    return mag


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", help="output folder (default graph/testdata/generated, or graph/testdata/fixtures with --fixtures)")
    ap.add_argument("--only", help="comma-separated model names to generate")
    ap.add_argument("--force", action="store_true", help="regenerate models that already exist")
    ap.add_argument("--fixtures", action="store_true", help="write the small committed fixtures instead of the big models")
    ap.add_argument("--list", action="store_true", help="list the model names and exit")
    args = ap.parse_args()

    specs = fixture_specs() if args.fixtures else big_specs()
    out_dir = args.out or (DEFAULT_FIXTURES if args.fixtures else DEFAULT_GENERATED)
    if args.list:
        for s in specs:
            print(s.name)
        return
    if args.only:
        want = [n.strip() for n in args.only.split(",") if n.strip()]
        known = {s.name for s in specs}
        bad = [n for n in want if n not in known]
        if bad:
            raise SystemExit("unknown model(s) %s; known: %s" % (", ".join(bad), ", ".join(sorted(known))))
        specs = [s for s in specs if s.name in want]

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    os.makedirs(out_dir, exist_ok=True)
    t_all = time.time()
    for spec in specs:
        d = os.path.join(out_dir, spec.name)
        if is_done(spec, out_dir) and not args.force:
            m = onnx.load(os.path.join(d, "model.onnx"), load_external_data=False)
            print("%-24s skip (exists)  opset %d  size %7.1f KB  max|out| %.4g  ops %s" % (
                spec.name, spec.opset, folder_size(d) / 1024, stored_magnitude(d), op_histogram(m)), flush=True)
            continue
        t0 = time.time()
        m, mag, lift = export(spec, out_dir)
        print("%-24s %6.1f s        opset %d  size %7.1f KB  max|out| %.4g%s  ops %s" % (
            spec.name, time.time() - t0, spec.opset, folder_size(d) / 1024, mag, lift, op_histogram(m)), flush=True)
    print("done: %d model(s) in %s, %.1f s" % (len(specs), out_dir, time.time() - t_all))


if __name__ == "__main__":
    main()
