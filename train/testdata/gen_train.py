#!/usr/bin/python3
"""PyTorch references for graft's training loop, step by step.

    /usr/bin/python3 train/testdata/gen_train.py           # (re)write train/testdata/reference
    /usr/bin/python3 train/testdata/gen_train.py --check   # regenerate elsewhere, compare bytes

train/reference_test.go trains the same networks from the same initial
weights, in the same batch order, with the same optimizers and learning-rate
groups, and compares graft's weights with these after every optimizer step.

Two parts, each run for every case in CASES (Adam, AdamW, SGD with momentum;
with and without a learning-rate schedule and label smoothing):

  head      for HEAD_CASES, the sample task's linear head (torch.nn.Linear(512, 4), exported
            as head.onnx) trained for two epochs (6 steps, batch 16, the last
            batch of each epoch smaller) on the backbone features of 40
            sample training images (head_x.pb). The features are computed
            here from models/backbone.onnx by models/recipe.py's own ONNX
            evaluator in torch, with the preprocessing of the model's
            metadata: the Go test also checks graft's features of the same
            images against them.
  finetune  one fine-tuning epoch of a tiny conv net (finetune.onnx, exported
            by torch): its first conv frozen, its second conv trained as
            "backbone" at the learning rate times BACKBONE_LR_MULT, its Gemm as
            the head; 10 random 3x8x8 inputs (finetune_x.pb), batch 4.

The batch order is not recorded from graft: it is graft's documented stream
(train/rng.go, type Stream) re-implemented below from its description, for
(seed, stage, epoch); manifest.json lists the order it gives, so that the Go
test can tell a changed shuffle from a changed update. Training runs in
float64 from the float32 initial values (so the reference is the exact
arithmetic, not torch's float32 rounding); the trajectories are stored as
float32 TensorProtos <part>/<case>/<initializer>.pb of shape [steps+1, ...]
(row 0 the initial value).
"""

import argparse
import json
import math
import os
import shutil
import sys
import tempfile

import numpy as np
import onnx

# PyTorch picks its CPU kernels by what the CPU supports; on AVX-512
# machines its convolutions and matrix products round differently in the
# last bits, and the committed bytes would not reproduce. Cap both its own
# kernels and oneDNN's at AVX2 (set before torch is imported), so the
# references are the same on every x86 machine CI may run on.
os.environ.setdefault("ATEN_CPU_CAPABILITY", "avx2")
os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")
import torch  # noqa: E402
import torch.nn as nn
import torch.nn.functional as F
from onnx import numpy_helper

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(HERE, "reference")
sys.path.insert(0, os.path.join(ROOT, "models"))
import recipe  # noqa: E402  (the recipe's PNG reader and ONNX evaluator)

BACKBONE_LR_MULT = 0.1
HEAD = dict(per_class=10, batch=16, epochs=2, seed=7, stage="head")
FINETUNE = dict(n=10, classes=3, batch=4, epochs=1, seed=11, stage="fine-tune")

# name, optimizer settings, schedule (kind, warmup steps, step_every, gamma),
# label smoothing. HEAD_CASES run on both parts (the head's trajectories are
# the large files: 2052 floats a step), the others on the fine-tuning part.
HEAD_CASES = ["adam", "adamw_cosine_smooth", "sgd_momentum_step_smooth"]
CASES = [
    ("adam", dict(kind="adam", lr=1e-2, weight_decay=0.0), ("constant", 0, 0, 0.0), 0.0),
    ("adamw_cosine_smooth", dict(kind="adamw", lr=1e-2, weight_decay=0.05), ("cosine", 2, 0, 0.0), 0.1),
    ("adam_l2_step", dict(kind="adam", lr=5e-3, weight_decay=1e-3), ("step", 0, 2, 0.5), 0.0),
    ("sgd_momentum_step_smooth", dict(kind="sgd", lr=5e-2, weight_decay=1e-3, momentum=0.9, nesterov=False), ("step", 1, 2, 0.5), 0.2),
    ("sgd_nesterov_cosine", dict(kind="sgd", lr=5e-2, weight_decay=0.0, momentum=0.9, nesterov=True), ("cosine", 0, 0, 0.0), 0.0),
]

M64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15


# ------------------------------------------------- graft's batch order (rng.go)

def mix(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def fnv1a(s):
    h = 0xCBF29CE484222325
    for b in s.encode():
        h = ((h ^ b) * 0x100000001B3) & M64
    return h


class Stream:
    def __init__(self, seed, stage, epoch):
        s = mix((seed + GOLDEN) & M64)
        s = mix(s ^ fnv1a(stage))
        self.state = mix(s ^ (epoch & M64))

    def next(self):
        self.state = (self.state + GOLDEN) & M64
        return mix(self.state)

    def below(self, n):
        limit = (1 << 64) - ((1 << 64) % n)
        while True:
            x = self.next()
            if x < limit:
                return x % n

    def perm(self, n):
        p = list(range(n))
        for i in range(n - 1, 0, -1):
            j = self.below(i + 1)
            p[i], p[j] = p[j], p[i]
        return p


# ------------------------------------------------- graft's schedules (optim.go)

def schedule_lr(base, total, sched, step):
    kind, warmup, every, gamma = sched
    if step < warmup:
        return base * (step + 1) / warmup
    if kind == "cosine":
        span = total - warmup
        return base if span <= 0 else base * 0.5 * (1 + math.cos(math.pi * (step - warmup) / span))
    if kind == "step":
        every = every if every > 0 else max(1, total // 3)
        gamma = gamma if gamma > 0 else 0.1
        return base * gamma ** ((step - warmup) // every)
    return base


def make_optimizer(groups, o):
    if o["kind"] == "adam":
        return torch.optim.Adam(groups, lr=o["lr"], betas=(0.9, 0.999), eps=1e-8, weight_decay=o["weight_decay"])
    if o["kind"] == "adamw":
        return torch.optim.AdamW(groups, lr=o["lr"], betas=(0.9, 0.999), eps=1e-8, weight_decay=o["weight_decay"])
    return torch.optim.SGD(groups, lr=o["lr"], momentum=o["momentum"], nesterov=o["nesterov"],
                           weight_decay=o["weight_decay"])


def train(net, groups, x, y, part, opt_cfg, sched, smoothing):
    """Trains net (float64) and returns {param name: [steps+1] arrays} and
    the batch order of each epoch."""
    n, b = len(y), part["batch"]
    steps = (n + b - 1) // b
    total = steps * part["epochs"]
    params = dict(net.named_parameters())
    names = [name for g in groups for name in g["names"]]
    traj = {name: [params[name].detach().clone()] for name in names}
    opt = make_optimizer([{"params": [params[k] for k in g["names"]], "lr": opt_cfg["lr"] * g["mult"]} for g in groups], opt_cfg)
    orders, done = [], 0
    for epoch in range(1, part["epochs"] + 1):
        order = Stream(part["seed"], part["stage"], epoch).perm(n)
        orders.append(order)
        for s in range(steps):
            idx = torch.tensor(order[s * b:(s + 1) * b])
            lr = schedule_lr(opt_cfg["lr"], total, sched, done)
            for pg, g in zip(opt.param_groups, groups):
                pg["lr"] = lr * g["mult"]
            loss = F.cross_entropy(net(x[idx]), y[idx], label_smoothing=smoothing)
            opt.zero_grad()
            loss.backward()
            opt.step()
            done += 1
            for name in names:
                traj[name].append(params[name].detach().clone())
    return {k: torch.stack(v).to(torch.float32).numpy() for k, v in traj.items()}, orders


# ------------------------------------------------- the two parts

def head_data():
    model = onnx.load(os.path.join(ROOT, "models", "backbone.onnx"))
    meta = {p.key: p.value for p in model.metadata_props}
    prep = json.loads(meta["preprocessing"])
    classes = sorted(os.listdir(os.path.join(ROOT, "models", "sample", "train")))
    u8, labels, files = [], [], []
    for ci, c in enumerate(classes):
        d = os.path.join(ROOT, "models", "sample", "train", c)
        for f in sorted(os.listdir(d))[:HEAD["per_class"]]:
            u8.append(recipe.read_png_gray(os.path.join(d, f)))
            labels.append(ci)
            files.append("%s/%s" % (c, f))
    x = recipe.to_input(np.stack(u8), prep["mean"], prep["std"])
    cut = recipe.inspect_onnx(model)[1]
    with torch.no_grad():
        feats = recipe.run_onnx_in_torch(model, x)[cut]
    return feats.to(torch.float32), torch.tensor(labels), files, classes, cut


class Tiny(nn.Module):
    def __init__(self, classes):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 6, 3, stride=2, padding=1)
        self.fc = nn.Linear(6, classes)

    def forward(self, x):
        x = F.relu(self.conv2(F.relu(self.conv1(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def export(net, x, path):
    net = net.to(torch.float32).eval()
    torch.onnx.export(net, x[:1].to(torch.float32), path, input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}}, opset_version=13,
                      do_constant_folding=False)
    m = onnx.load(path)
    onnx.checker.check_model(m, full_check=True)
    return [i.name for i in m.graph.initializer]


def save(t, name, path):
    p = numpy_helper.from_array(np.ascontiguousarray(t), name)
    with open(path, "wb") as f:
        f.write(p.SerializeToString())


def generate(out):
    os.makedirs(out)
    manifest = {"generator": "train/testdata/gen_train.py", "backbone_lr_mult": BACKBONE_LR_MULT, "cases": [], "parts": {}}
    for name, o, sched, smooth in CASES:
        manifest["cases"].append({"name": name, "head": name in HEAD_CASES, "optimizer": o, "schedule": {"kind": sched[0], "warmup_steps": sched[1],
                                  "step_every": sched[2], "gamma": sched[3]}, "label_smoothing": smooth})

    # head
    feats, labels, files, classes, cut = head_data()
    torch.manual_seed(0)
    head = nn.Linear(feats.shape[1], len(classes))
    inits = export(head, feats, os.path.join(out, "head.onnx"))
    save(feats.numpy(), "features", os.path.join(out, "head_x.pb"))
    groups = [{"names": ["weight", "bias"], "mult": 1.0}]
    part = dict(HEAD, model="head.onnx", x="head_x.pb", labels=labels.tolist(), images=files, class_names=classes,
                features_of="models/backbone.onnx " + cut, input="input", logits="logits",
                groups=[{"params": ["weight", "bias"], "lr_mult": 1.0}])
    assert inits == ["weight", "bias"], inits
    stats = {}
    for name, o, sched, smooth in CASES:
        if name not in HEAD_CASES:
            continue
        net = nn.Linear(feats.shape[1], len(classes)).double()
        net.load_state_dict({k: v.double() for k, v in head.state_dict().items()})
        traj, orders = train(net, groups, feats.double(), labels, HEAD, o, sched, smooth)
        os.makedirs(os.path.join(out, "head", name))
        for k, v in traj.items():
            save(v, k, os.path.join(out, "head", name, k + ".pb"))
        part["order"] = orders
        stats["head/" + name] = float(np.abs(traj["weight"][-1] - traj["weight"][0]).max())
    manifest["parts"]["head"] = part

    # fine-tuning
    torch.manual_seed(1)
    tiny = Tiny(FINETUNE["classes"])
    x = torch.randn(FINETUNE["n"], 3, 8, 8)
    y = torch.tensor([i % FINETUNE["classes"] for i in range(FINETUNE["n"])])
    inits = export(tiny, x, os.path.join(out, "finetune.onnx"))
    assert inits == ["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc.weight", "fc.bias"], inits
    save(x.numpy(), "input", os.path.join(out, "finetune_x.pb"))
    groups = [{"names": ["fc.weight", "fc.bias"], "mult": 1.0},
              {"names": ["conv2.weight", "conv2.bias"], "mult": BACKBONE_LR_MULT}]
    part = dict(FINETUNE, model="finetune.onnx", x="finetune_x.pb", labels=y.tolist(), input="input", logits="logits",
                frozen=["conv1.weight", "conv1.bias"],
                groups=[{"params": g["names"], "lr_mult": g["mult"]} for g in groups])
    for name, o, sched, smooth in CASES:
        net = Tiny(FINETUNE["classes"]).double()
        net.load_state_dict({k: v.double() for k, v in tiny.state_dict().items()})
        for p in net.conv1.parameters():
            p.requires_grad_(False)
        traj, orders = train(net, groups, x.double(), y, FINETUNE, o, sched, smooth)
        os.makedirs(os.path.join(out, "finetune", name))
        for k, v in traj.items():
            save(v, k, os.path.join(out, "finetune", name, k + ".pb"))
        part["order"] = orders
        stats["finetune/" + name] = float(np.abs(traj["conv2.weight"][-1] - traj["conv2.weight"][0]).max())
    manifest["parts"]["finetune"] = part
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")
    return stats


def same_tree(a, b):
    def listing(root):
        out = {}
        for d, _, files in os.walk(root):
            for f in files:
                p = os.path.join(d, f)
                with open(p, "rb") as fh:
                    out[os.path.relpath(p, root)] = fh.read()
        return out
    la, lb = listing(a), listing(b)
    return sorted(k for k in set(la) | set(lb) if la.get(k) != lb.get(k))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="regenerate in a temporary folder and compare with reference/")
    ap.add_argument("--out", default=OUT, help="output folder (default %(default)s)")
    args = ap.parse_args()
    parent = os.path.dirname(os.path.abspath(args.out))
    tmp = tempfile.mkdtemp(prefix=".reference.", dir=parent)
    try:
        gen = os.path.join(tmp, "reference")
        for k, v in generate(gen).items():
            print("%-36s largest weight change %.3g" % (k, v))
        if args.check:
            diff = same_tree(gen, args.out)
            if diff:
                print("differs from %s: %s" % (args.out, ", ".join(diff)))
                sys.exit(1)
            print("%s is up to date" % args.out)
        else:
            if os.path.exists(args.out):
                shutil.rmtree(args.out)
            os.rename(gen, args.out)
            print("wrote %s" % args.out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
