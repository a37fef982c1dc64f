#!/usr/bin/python3
"""Recipe for graft's shipped pretrained backbone and sample task.

Run from anywhere with Debian's python3 (python3-torch, python3-onnx,
python3-numpy, python3-pil) and the Debian package dataset-fashion-mnist:

    /usr/bin/python3 models/recipe.py                    # everything
    /usr/bin/python3 models/recipe.py --baselines-only   # baselines only

The full run writes, next to this file:

    backbone.onnx          small MobileNetV2-style CNN, opset 13, pretrained on
                           six Fashion-MNIST classes, with graft metadata
    sample/train/<Class>/  20 PNGs per class of four other Fashion-MNIST classes
    sample/test/<Class>/   100 PNGs per class of the same four classes
    baseline.json          source accuracy and the PyTorch head-only and
                           two-stage baselines on the sample task

--baselines-only re-uses the existing backbone.onnx and sample/ PNGs and does
not pretrain. It never writes them: it checks that the PNGs are the ones the
seeded sample draw makes, that the folded network still gets the recorded
source accuracy, and that backbone.onnx and the PNGs are byte-identical
afterwards. It rewrites only the head_only and two_stage entries of
baseline.json and keeps the rest, after checking it against the files.

Everything is seeded and runs on one CPU thread, so a rerun on the same
software stack reproduces the same files.
"""

import argparse
import copy
import gzip
import hashlib
import io
import json
import os
import shutil
import struct
import sys
import time
import zlib

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F
from onnx import numpy_helper
from PIL import Image

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = "/usr/share/datasets/fashion-mnist"
SEED = 20240601

# Fashion-MNIST label index -> label text.
FMNIST = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
          "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
SOURCE_LABELS = [0, 1, 2, 3, 4, 6]   # pretraining classes, in output order
SAMPLE_LABELS = [5, 7, 8, 9]         # the sample task's classes

SIZE = 32                # network input height and width
TRAIN_PER_CLASS = None   # pretraining images per class (None: all 6000)
EPOCHS = 5
BATCH = 64
LR = 2e-3
WEIGHT_DECAY = 0.0
DROPOUT = 0.3          # before the classifier, pretraining only (absent from the export)

SAMPLE_TRAIN = 20        # per class, from the train split
SAMPLE_TEST = 100        # per class, from the t10k split

# Baselines: graft's defaults for `graft adapt` (train/adapt.go). Stage 1 of
# the two-stage baseline is the head-only run; stage 2 is a fresh Adam on the
# head (lr HEAD["lr"]) and the last UNFREEZE_LAST convs (lr HEAD["lr"] *
# BACKBONE_LR_MULT) for FINETUNE_EPOCHS epochs, with the same batch size.
BASELINE_SEEDS = [0, 1, 2]
HEAD = dict(optimizer="adam", lr=1e-2, beta1=0.9, beta2=0.999, eps=1e-8,
            weight_decay=0.0, batch_size=16, epochs=100)
UNFREEZE_LAST = 4
BACKBONE_LR_MULT = 0.1
FINETUNE_EPOCHS = 10

SCALE = 1.0 / 255.0

# (expansion t, output channels c, stride s) of each inverted residual block.
BLOCKS = [(2, 16, 1), (4, 24, 2), (4, 24, 1), (4, 32, 2), (4, 32, 1), (4, 64, 1)]
STEM = 16
LAST = 512               # feature width seen by a new head


def folder_name(label_text):
    """Folder name of a class: its label text with spaces as underscores."""
    return label_text.replace(" ", "_")


# ---------------------------------------------------------------- data

def read_idx(name):
    with gzip.open(os.path.join(DATA, name), "rb") as f:
        raw = f.read()
    magic, = struct.unpack(">I", raw[:4])
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    if magic >> 8 != 0x08:
        raise ValueError("%s: not an unsigned-byte IDX file" % name)
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def resize_quantize(images):
    """28x28 uint8 -> 32x32 uint8: bilinear, align_corners=False, no
    antialias, then round half to even and clip, as an 8-bit PNG holds it."""
    out = []
    for i in range(0, len(images), 4096):
        x = torch.from_numpy(images[i:i + 4096].astype(np.float32)).unsqueeze(1)
        x = F.interpolate(x, size=(SIZE, SIZE), mode="bilinear",
                          align_corners=False, antialias=False)
        out.append(torch.round(x).clamp_(0, 255).to(torch.uint8).squeeze(1).numpy())
    return np.concatenate(out)


def png_gray(pixels):
    """Minimal 8-bit grayscale PNG encoder (no ancillary chunks)."""
    h, w = pixels.shape

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data +
                struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    rows = b"".join(b"\x00" + pixels[r].tobytes() for r in range(h))
    png = (b"\x89PNG\r\n\x1a\n" +
           chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) +
           chunk(b"IDAT", zlib.compress(rows, 9)) +
           chunk(b"IEND", b""))
    return png


def read_png_gray(path):
    with Image.open(path) as im:
        if im.mode != "L" or im.size != (SIZE, SIZE):
            raise ValueError("%s: mode %s size %s" % (path, im.mode, im.size))
        return np.asarray(im, dtype=np.uint8).copy()


def to_input(u8, mean, std):
    """uint8 N x H x W gray -> float32 N x 3 x H x W, as graft's default
    preprocessing: replicate gray to RGB, multiply by scale, (x-mean)/std."""
    x = torch.from_numpy(u8).to(torch.float32).unsqueeze(1) * torch.tensor(SCALE, dtype=torch.float32)
    x = x.expand(-1, 3, -1, -1)
    m = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    return ((x - m) / s).contiguous()


# ---------------------------------------------------------------- model

class ConvBN(nn.Sequential):
    """Conv (+BN) (+ReLU6). With bn=False the conv carries a bias instead:
    the shape the exported graph has once BN is folded into the conv."""

    def __init__(self, cin, cout, k, stride=1, groups=1, act=True, bn=True):
        layers = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=not bn)]
        if bn:
            layers.append(nn.BatchNorm2d(cout))
        if act:
            layers.append(nn.ReLU6(inplace=True))
        super().__init__(*layers)


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, t, bn=True):
        super().__init__()
        hidden = cin * t
        self.block = nn.Sequential(
            ConvBN(cin, hidden, 1, bn=bn),                                  # expand
            ConvBN(hidden, hidden, 3, stride, groups=hidden, bn=bn),        # depthwise
            ConvBN(hidden, cout, 1, act=False, bn=bn),                      # project
        )
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.block(x)
        return x + y if self.residual else y


class Net(nn.Module):
    def __init__(self, num_classes, bn=True):
        super().__init__()
        layers = [ConvBN(3, STEM, 3, stride=2, bn=bn)]
        c = STEM
        for t, cout, s in BLOCKS:
            layers.append(InvertedResidual(c, cout, s, t, bn=bn))
            c = cout
        layers.append(ConvBN(c, LAST, 1, bn=bn))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(DROPOUT)
        self.classifier = nn.Linear(LAST, num_classes)

    def embed(self, x):
        return torch.flatten(self.pool(self.features(x)), 1)

    def forward(self, x):
        return self.classifier(self.dropout(self.embed(x)))


def convs(net):
    return [m for m in net.modules() if isinstance(m, nn.Conv2d)]


def accuracy(logits, y):
    return float((logits.argmax(1) == y).to(torch.float64).mean())


@torch.no_grad()
def predict(fn, x, bs=500):
    return torch.cat([fn(x[i:i + bs]) for i in range(0, len(x), bs)])


# ---------------------------------------------------------------- ONNX

def run_onnx_in_torch(model, x):
    """Evaluates the exported graph node by node with torch ops. It knows
    only the ops this recipe's export produces, and checks their attributes,
    so it doubles as an independent check of the file."""
    env = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy())
           for i in model.graph.initializer}
    env[model.graph.input[0].name] = x
    for n in model.graph.node:
        a = {at.name: onnx.helper.get_attribute_value(at) for at in n.attribute}
        ins = [env[i] if i else None for i in n.input]
        if n.op_type == "Conv":
            k = a["kernel_shape"]
            assert a.get("dilations", [1, 1]) == [1, 1]
            p = a.get("pads", [0, 0, 0, 0])
            assert p[0] == p[2] and p[1] == p[3]
            out = F.conv2d(ins[0], ins[1], ins[2] if len(ins) > 2 else None,
                           a.get("strides", [1, 1]), (p[0], p[1]), 1, a.get("group", 1))
            assert list(ins[1].shape[2:]) == list(k)
        elif n.op_type == "Clip":
            out = ins[0].clamp(float(ins[1]), float(ins[2]))
        elif n.op_type == "Relu":
            out = ins[0].clamp_min(0)
        elif n.op_type == "Add":
            out = ins[0] + ins[1]
        elif n.op_type == "GlobalAveragePool":
            out = ins[0].mean(dim=(2, 3), keepdim=True)
        elif n.op_type == "Flatten":
            out = torch.flatten(ins[0], a.get("axis", 1))
        elif n.op_type == "Gemm":
            assert a.get("transA", 0) == 0 and a.get("transB", 0) == 1
            out = a.get("alpha", 1.0) * ins[0] @ ins[1].t() + a.get("beta", 1.0) * ins[2]
        elif n.op_type == "Constant":
            out = torch.from_numpy(numpy_helper.to_array(a["value"]).copy())
        else:
            raise NotImplementedError(n.op_type)
        env[n.output[0]] = out
    return env


def load_folded(model, num_classes):
    """A BN-free Net whose conv weights and biases are the exported graph's
    initializers: the Conv nodes in topological order map onto the module's
    convs in forward order; Gemm's B and C onto the classifier."""
    inits = {i.name: np.array(numpy_helper.to_array(i)) for i in model.graph.initializer}
    conv_nodes = [n for n in model.graph.node if n.op_type == "Conv"]
    gemm = [n for n in model.graph.node if n.op_type == "Gemm"]
    net = Net(num_classes, bn=False)
    mods = convs(net)
    assert len(mods) == len(conv_nodes) and len(gemm) == 1
    with torch.no_grad():
        for m, n in zip(mods, conv_nodes):
            w, b = inits[n.input[1]], inits[n.input[2]]
            assert tuple(m.weight.shape) == w.shape and tuple(m.bias.shape) == b.shape, n.name
            m.weight.copy_(torch.from_numpy(w))
            m.bias.copy_(torch.from_numpy(b))
        net.classifier.weight.copy_(torch.from_numpy(inits[gemm[0].input[1]]))
        net.classifier.bias.copy_(torch.from_numpy(inits[gemm[0].input[2]]))
    return net.eval(), conv_nodes


# ---------------------------------------------------------------- baselines

def train_head(head, xtr, ytr, epochs, params_groups=None, forward=None):
    """Adam, batch 16, reshuffled each epoch (last smaller batch kept),
    constant lr, mean cross-entropy."""
    groups = params_groups or [{"params": head.parameters(), "lr": HEAD["lr"]}]
    opt = torch.optim.Adam(groups, betas=(HEAD["beta1"], HEAD["beta2"]),
                           eps=HEAD["eps"], weight_decay=HEAD["weight_decay"])
    fwd = forward or head
    n = len(xtr)
    for _ in range(epochs):
        perm = torch.randperm(n)
        for i in range(0, n, HEAD["batch_size"]):
            idx = perm[i:i + HEAD["batch_size"]]
            loss = F.cross_entropy(fwd(xtr[idx]), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()



def summary(accs):
    a = np.array(accs, dtype=np.float64)
    return float(a.mean()), float(a.std())   # population std


def sample_baselines(folded, conv_nodes, sample_dir, sample_names, mean, std, cut_tensor):
    """The head-only and two-stage baselines on the sample PNGs read back
    from disk, with the BN-folded network. Returns the two baseline.json
    entries."""
    def load_split(split):
        xs, ys = [], []
        for ci, name in enumerate(sample_names):
            d = os.path.join(sample_dir, split, name)
            for f in sorted(os.listdir(d)):
                xs.append(read_png_gray(os.path.join(d, f)))
                ys.append(ci)
        return to_input(np.stack(xs), mean, std), torch.tensor(ys)

    xtr, ytr = load_split("train")
    xte, yte = load_split("test")
    with torch.no_grad():
        ftr, fte = folded.embed(xtr), folded.embed(xte)

    head_accs = []
    for seed in BASELINE_SEEDS:
        torch.manual_seed(seed)
        head = nn.Linear(ftr.shape[1], len(sample_names))
        train_head(head, ftr, ytr, HEAD["epochs"])
        with torch.no_grad():
            head_accs.append(accuracy(head(fte), yte))
        print("head-only seed %d: %.4f" % (seed, head_accs[-1]), flush=True)

    backbone_lr = HEAD["lr"] * BACKBONE_LR_MULT
    last_names = [n.name for n in conv_nodes[-UNFREEZE_LAST:]]
    two_accs, stage1_accs = [], []
    for seed in BASELINE_SEEDS:
        torch.manual_seed(seed)
        bb = copy.deepcopy(folded)
        head = nn.Linear(ftr.shape[1], len(sample_names))
        train_head(head, ftr, ytr, HEAD["epochs"])            # stage 1 = head-only
        with torch.no_grad():
            stage1_accs.append(accuracy(head(fte), yte))
        for p in bb.parameters():
            p.requires_grad_(False)
        tuned = [p for c in convs(bb)[-UNFREEZE_LAST:] for p in (c.weight, c.bias)]
        for p in tuned:
            p.requires_grad_(True)
        groups = [{"params": tuned, "lr": backbone_lr},       # stage 2: a fresh Adam
                  {"params": list(head.parameters()), "lr": HEAD["lr"]}]
        train_head(head, xtr, ytr, FINETUNE_EPOCHS, groups, lambda x: head(bb.embed(x)))
        with torch.no_grad():
            two_accs.append(accuracy(predict(lambda x: head(bb.embed(x)), xte), yte))
        print("two-stage seed %d: stage 1 %.4f, stage 2 %.4f"
              % (seed, stage1_accs[-1], two_accs[-1]), flush=True)
    assert stage1_accs == head_accs

    hm, hs = summary(head_accs)
    tm, ts = summary(two_accs)
    common = dict(HEAD)
    common.update(shuffle="each epoch, last smaller batch kept", lr_schedule="constant",
                  loss="cross-entropy, mean over batch", augmentation="none",
                  head_init="torch.nn.Linear default, torch.manual_seed(seed)",
                  features="output of the Flatten after GlobalAveragePool (%s)" % cut_tensor,
                  preprocessing="gray replicated to RGB, *scale, (x-mean)/std from metadata",
                  class_order="sorted folder names (graft's class indices)")
    two = dict(common)
    two.update(head_epochs=HEAD["epochs"], finetune_epochs=FINETUNE_EPOCHS,
               unfreeze_last=UNFREEZE_LAST, backbone_lr_mult=BACKBONE_LR_MULT,
               finetune_head_lr=HEAD["lr"], finetune_backbone_lr=backbone_lr,
               unfrozen_nodes=last_names,
               stage1="the head-only run with the same seed (its accuracy is checked equal)",
               stage2="fresh Adam; unfrozen Conv weights+biases lr %g, head lr %g; batch %d, "
                      "%d epochs, constant lr, no augmentation"
                      % (backbone_lr, HEAD["lr"], HEAD["batch_size"], FINETUNE_EPOCHS),
               network="BN-folded: a BN-free copy of the net loaded from backbone.onnx's "
                       "Conv/Gemm initializers")
    del two["epochs"]
    return ({"settings": common, "seeds": BASELINE_SEEDS, "test_accuracy": head_accs,
             "mean": hm, "std": hs},
            {"settings": two, "seeds": BASELINE_SEEDS, "test_accuracy": two_accs,
             "mean": tm, "std": ts})


# ---------------------------------------------------------------- pieces of a run

def read_fmnist():
    return (read_idx("train-images-idx3-ubyte.gz"), read_idx("train-labels-idx1-ubyte.gz"),
            read_idx("t10k-images-idx3-ubyte.gz"), read_idx("t10k-labels-idx1-ubyte.gz"))


def draw_sample(rng, tr_img, tr_lab, te_img, te_lab):
    """The seeded sample draw. Returns the PNG files as {relative path:
    bytes} and the provenance. It is the first use of rng, so a run that
    seeds rng the same way draws the same sample."""
    files, provenance = {}, {"train": {}, "test": {}}
    for split, imgs, labs, count, src in (("train", tr_img, tr_lab, SAMPLE_TRAIN, "train"),
                                          ("test", te_img, te_lab, SAMPLE_TEST, "t10k")):
        for l in SAMPLE_LABELS:
            idx = np.sort(rng.choice(np.flatnonzero(labs == l), size=count, replace=False))
            name = folder_name(FMNIST[l])
            for k, im in enumerate(resize_quantize(imgs[idx])):
                files[os.path.join(split, name, "%03d.png" % k)] = png_gray(im)
            provenance[split][name] = {"split": src, "indices": idx.tolist()}
    return files, provenance


def sample_files_on_disk(sample_dir):
    out = {}
    for root, _, names in os.walk(sample_dir):
        for n in names:
            p = os.path.join(root, n)
            out[os.path.relpath(p, sample_dir)] = p
    return out


def fingerprint(paths):
    """sha256 of each file, to show that a run left the files alone."""
    out = {}
    for p in sorted(paths):
        with open(p, "rb") as f:
            out[p] = hashlib.sha256(f.read()).hexdigest()
    return out


def source_test_set(te_img, te_lab, mean, std):
    tsel = np.flatnonzero(np.isin(te_lab, SOURCE_LABELS))
    remap = {l: i for i, l in enumerate(SOURCE_LABELS)}
    x = to_input(resize_quantize(te_img[tsel]), mean, std)
    y = torch.tensor([remap[int(l)] for l in te_lab[tsel]])
    return tsel, x, y


def inspect_onnx(model):
    """Op histogram, cut tensor (Flatten output) and head node (Gemm)."""
    hist = {}
    for n in model.graph.node:
        hist[n.op_type] = hist.get(n.op_type, 0) + 1
    flat = [n for n in model.graph.node if n.op_type == "Flatten"]
    gemm = [n for n in model.graph.node if n.op_type == "Gemm"]
    assert len(flat) == 1 and len(gemm) == 1 and gemm[0].input[0] == flat[0].output[0]
    return hist, flat[0].output[0], gemm[0].name


def write_baseline(out):
    with open(os.path.join(HERE, "baseline.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


def print_baselines(head_only, two_stage):
    print("head-only  %s mean %.4f std %.4f"
          % (head_only["test_accuracy"], head_only["mean"], head_only["std"]))
    print("two-stage  %s mean %.4f std %.4f"
          % (two_stage["test_accuracy"], two_stage["mean"], two_stage["std"]))


# ---------------------------------------------------------------- modes

def full_run():
    t0 = time.time()
    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)

    tr_img, tr_lab, te_img, te_lab = read_fmnist()

    # ---- sample task files
    sample_dir = os.path.join(HERE, "sample")
    if os.path.isdir(sample_dir):
        shutil.rmtree(sample_dir)
    sample_names = sorted(folder_name(FMNIST[l]) for l in SAMPLE_LABELS)  # graft's class order
    files, provenance = draw_sample(rng, tr_img, tr_lab, te_img, te_lab)
    for rel, png in files.items():
        os.makedirs(os.path.dirname(os.path.join(sample_dir, rel)), exist_ok=True)
        with open(os.path.join(sample_dir, rel), "wb") as f:
            f.write(png)
    print("sample written: %d train, %d test per class" % (SAMPLE_TRAIN, SAMPLE_TEST), flush=True)

    # ---- pretraining data
    sel = []
    for l in SOURCE_LABELS:
        idx = np.flatnonzero(tr_lab == l)
        if TRAIN_PER_CLASS is not None:
            idx = rng.choice(idx, size=TRAIN_PER_CLASS, replace=False)
        sel.append(np.sort(idx))
    sel = np.sort(np.concatenate(sel))
    remap = {l: i for i, l in enumerate(SOURCE_LABELS)}
    src_u8 = resize_quantize(tr_img[sel])
    src_y = torch.tensor([remap[int(l)] for l in tr_lab[sel]])
    pix = src_u8.astype(np.float64) * SCALE
    m, s = round(float(pix.mean()), 4), round(float(pix.std()), 4)
    mean, std = [m] * 3, [s] * 3
    del pix
    tsel, src_xte, src_yte = source_test_set(te_img, te_lab, mean, std)
    print("pretraining: %d train images, %d test images, mean %s std %s"
          % (len(sel), len(tsel), m, s), flush=True)

    # ---- pretraining
    net = Net(len(SOURCE_LABELS))
    print("parameters: %d" % sum(p.numel() for p in net.parameters()), flush=True)
    steps = EPOCHS * ((len(sel) + BATCH - 1) // BATCH)
    opt = torch.optim.AdamW(net.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=LR, total_steps=steps, pct_start=0.15)
    t1 = time.time()
    for ep in range(EPOCHS):
        net.train()
        perm = torch.randperm(len(sel))
        tot = 0.0
        for i in range(0, len(sel), BATCH):
            idx = perm[i:i + BATCH]
            x = to_input(src_u8[idx.numpy()], mean, std)
            flip = torch.rand(len(idx)) < 0.5          # horizontal flip augmentation
            x[flip] = x[flip].flip(3)
            loss = F.cross_entropy(net(x), src_y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            tot += float(loss) * len(idx)
        net.eval()
        acc = accuracy(predict(net, src_xte), src_yte)
        print("epoch %d: loss %.4f, source test accuracy %.4f (%.0fs)"
              % (ep + 1, tot / len(sel), acc, time.time() - t1), flush=True)
    train_secs = time.time() - t1
    state = copy.deepcopy(net.state_dict())   # kept in memory only
    net.load_state_dict(state)
    net.eval()
    src_acc = accuracy(predict(net, src_xte), src_yte)

    # ---- export
    buf = io.BytesIO()
    torch.onnx.export(net, torch.zeros(1, 3, SIZE, SIZE), buf, opset_version=13,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                      do_constant_folding=True, training=torch.onnx.TrainingMode.EVAL)
    model = onnx.load_from_string(buf.getvalue())
    labels = [FMNIST[l] for l in SOURCE_LABELS]
    prep = {"layout": "NCHW", "channels": 3, "color_order": "RGB", "height": SIZE, "width": SIZE,
            "resize": SIZE, "crop": "center", "scale": SCALE, "mean": mean, "std": std}
    meta = {"labels": json.dumps(labels, separators=(",", ":")),
            "preprocessing": json.dumps(prep, separators=(",", ":"))}
    for k, v in meta.items():
        p = model.metadata_props.add()
        p.key, p.value = k, v
    model.producer_name = "graft models/recipe.py"
    model.producer_version = "torch " + torch.__version__
    model.graph.name = "fmnist6_mobilenetv2_small"
    model.doc_string = ("Small MobileNetV2-style CNN (input 3x32x32) pretrained on Fashion-MNIST "
                        "(Zalando Research, MIT license) classes " + ", ".join(labels) +
                        ". BatchNorm folded into Conv. Made by graft's models/recipe.py.")
    onnx.checker.check_model(model, full_check=True)
    onnx_path = os.path.join(HERE, "backbone.onnx")
    onnx.save(model, onnx_path)
    model = onnx.load(onnx_path)
    onnx.checker.check_model(model, full_check=True)

    hist, cut_tensor, head_node = inspect_onnx(model)
    print("onnx: %d bytes, ops %s" % (os.path.getsize(onnx_path), json.dumps(hist, sort_keys=True)))
    print("cut: Flatten output %r -> Gemm node %r" % (cut_tensor, head_node), flush=True)

    # ---- folded network from the ONNX initializers, checked three ways
    folded, conv_nodes = load_folded(model, len(SOURCE_LABELS))
    with torch.no_grad():
        xchk = src_xte[:256]
        ref = net(xchk)
        env = run_onnx_in_torch(model, xchk)
        d_graph = float((env["logits"] - ref).abs().max())
        d_fold = float((folded(xchk) - ref).abs().max())
        d_feat = float((env[cut_tensor] - folded.embed(xchk)).abs().max())
    fold_acc = accuracy(predict(folded, src_xte), src_yte)
    print("check: |graph-torch| %.2e, |folded-torch| %.2e, |graph feat-folded feat| %.2e, "
          "folded source accuracy %.4f" % (d_graph, d_fold, d_feat, fold_acc), flush=True)
    assert d_graph < 1e-3 and d_fold < 1e-3 and d_feat < 1e-4

    # ---- sample task, read back from disk
    head_only, two_stage = sample_baselines(folded, conv_nodes, sample_dir, sample_names,
                                            mean, std, cut_tensor)
    out = {
        "source": {"classes": labels, "test_accuracy": src_acc, "train_images": int(len(sel)),
                   "test_images": int(len(tsel)), "epochs": EPOCHS, "mean": m, "std": s},
        "sample": {"classes": sample_names,
                   "labels": [n.replace("_", " ") for n in sample_names],
                   "train_per_class": SAMPLE_TRAIN, "test_per_class": SAMPLE_TEST,
                   "provenance": provenance},
        "onnx": {"cut_tensor": cut_tensor, "head_node": head_node, "ops": hist},
        "head_only": head_only,
        "two_stage": two_stage,
    }
    write_baseline(out)

    print("source test accuracy %.4f (%d images, %d epochs, training %.0fs)"
          % (src_acc, len(tsel), EPOCHS, train_secs))
    print_baselines(head_only, two_stage)
    print("metadata labels: %s" % meta["labels"])
    print("metadata preprocessing: %s" % meta["preprocessing"])
    print("total runtime %.0fs" % (time.time() - t0))


def baselines_only():
    """Re-measures the baselines with the existing backbone.onnx and sample/
    PNGs, which it reads but never writes."""
    t0 = time.time()
    onnx_path = os.path.join(HERE, "backbone.onnx")
    sample_dir = os.path.join(HERE, "sample")
    json_path = os.path.join(HERE, "baseline.json")
    for p in (onnx_path, sample_dir, json_path):
        if not os.path.exists(p):
            raise SystemExit("%s is missing: run the recipe without --baselines-only" % p)
    on_disk = sample_files_on_disk(sample_dir)
    before = fingerprint([onnx_path] + list(on_disk.values()))
    with open(json_path) as f:
        old = json.load(f)

    # ---- the PNGs are the seeded sample draw's, byte for byte
    rng = np.random.default_rng(SEED)
    tr_img, tr_lab, te_img, te_lab = read_fmnist()
    files, provenance = draw_sample(rng, tr_img, tr_lab, te_img, te_lab)
    if sorted(files) != sorted(on_disk):
        raise SystemExit("sample/: the files are not the ones the recipe draws")
    for rel, png in files.items():
        with open(on_disk[rel], "rb") as f:
            if f.read() != png:
                raise SystemExit("sample/%s differs from the recipe's draw" % rel)
    assert provenance == old["sample"]["provenance"]
    sample_names = sorted(folder_name(FMNIST[l]) for l in SAMPLE_LABELS)
    assert sample_names == old["sample"]["classes"]
    print("sample: %d PNGs match the seeded draw" % len(files), flush=True)

    # ---- the model, its metadata, and the folded network
    model = onnx.load(onnx_path)
    onnx.checker.check_model(model, full_check=True)
    meta = {p.key: p.value for p in model.metadata_props}
    labels = json.loads(meta["labels"])
    prep = json.loads(meta["preprocessing"])
    mean, std = prep["mean"], prep["std"]
    assert labels == [FMNIST[l] for l in SOURCE_LABELS] == old["source"]["classes"]
    assert prep["scale"] == SCALE and mean == [old["source"]["mean"]] * 3 \
        and std == [old["source"]["std"]] * 3
    hist, cut_tensor, head_node = inspect_onnx(model)
    assert old["onnx"] == {"cut_tensor": cut_tensor, "head_node": head_node, "ops": hist}
    folded, conv_nodes = load_folded(model, len(SOURCE_LABELS))

    tsel, src_xte, src_yte = source_test_set(te_img, te_lab, mean, std)
    with torch.no_grad():
        xchk = src_xte[:256]
        env = run_onnx_in_torch(model, xchk)
        d_graph = float((env["logits"] - folded(xchk)).abs().max())
        d_feat = float((env[cut_tensor] - folded.embed(xchk)).abs().max())
    fold_acc = accuracy(predict(folded, src_xte), src_yte)
    print("check: |graph-folded| %.2e, |graph feat-folded feat| %.2e, folded source "
          "accuracy %.4f (recorded %.4f)"
          % (d_graph, d_feat, fold_acc, old["source"]["test_accuracy"]), flush=True)
    assert d_graph < 1e-3 and d_feat < 1e-4
    assert len(tsel) == old["source"]["test_images"]
    assert fold_acc == old["source"]["test_accuracy"]

    # ---- baselines
    head_only, two_stage = sample_baselines(folded, conv_nodes, sample_dir, sample_names,
                                            mean, std, cut_tensor)
    out = dict(old)
    out["head_only"], out["two_stage"] = head_only, two_stage
    write_baseline(out)

    after = fingerprint([onnx_path] + list(sample_files_on_disk(sample_dir).values()))
    assert after == before, "backbone.onnx or sample/ changed"
    print("backbone.onnx and %d PNGs unchanged (sha256)" % (len(after) - 1))
    print_baselines(head_only, two_stage)
    print("total runtime %.0fs" % (time.time() - t0))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--baselines-only", action="store_true",
                    help="re-use the existing backbone.onnx and sample/ PNGs (no pretraining, "
                         "neither is written) and rewrite only the baselines in baseline.json")
    args = ap.parse_args()
    if args.baselines_only:
        baselines_only()
    else:
        full_run()


if __name__ == "__main__":
    sys.exit(main())
