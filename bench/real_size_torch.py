"""The PyTorch half of real_size.ts: one row of one architecture at 224x224.

The architectures match `plugins/design/architectures.ts` (the tfjs side),
parameter for parameter: torchvision's ResNet-50 with the v1 strides (on each
stage's first 1x1 conv, as Keras builds it) and a bias on every conv, cut
before its pooling; VGG16's and MobileNetV2's feature parts. Parameters are
frozen (input gradients only), as the attribution rows need.

    MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=68719476736 \
      /usr/bin/python3 bench/real_size_torch.py --arch resnet50 --row "input grad b1"

Prints one JSON object: the row's median milliseconds, the process's peak RSS
(MB), the parameter count.
"""
import argparse
import json
import os
import resource
import torch
import torch.nn as nn
import torchvision

from compare_torch import median_ms  # this folder is on sys.path when run as a script


def with_bias(module):
    """Every Conv2d of `module` given a bias (Keras's convs have one)."""
    for name, child in module.named_children():
        if isinstance(child, nn.Conv2d) and child.bias is None:
            conv = nn.Conv2d(child.in_channels, child.out_channels, child.kernel_size,
                             child.stride, child.padding, child.dilation, child.groups, bias=True)
            conv.weight.data.copy_(child.weight.data)
            setattr(module, name, conv)
        else:
            with_bias(child)
    return module


def build(arch):
    """The network without its top, and the layer a DeepDream step maximizes."""
    if arch == "resnet50":
        m = torchvision.models.resnet50()
        for stage in (m.layer2, m.layer3, m.layer4):
            stage[0].conv1.stride, stage[0].conv2.stride = (2, 2), (1, 1)
        body = nn.Sequential(*list(m.children())[:-2])
        return with_bias(body), 6  # children up to layer3 (conv4_block6_out)
    if arch == "vgg16":
        return torchvision.models.vgg16().features, 23  # through block4_pool
    if arch == "mobilenet":
        return torchvision.models.mobilenet_v2().features, 14  # through block 13
    raise SystemExit(f"unknown arch {arch}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="resnet50")
    ap.add_argument("--row", default="forward b1")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    body, dream_at = build(args.arch)
    body.eval()
    for p in body.parameters():
        p.requires_grad_(False)
    params = sum(p.numel() for p in body.parameters())
    params += sum(b.numel() for n, b in body.named_buffers() if not n.endswith("num_batches_tracked"))
    channels = {"resnet50": 2048, "vgg16": 512, "mobilenet": 1280}[args.arch]
    # A class score: one channel of the last map, averaged (a 1x1 head's logit
    # up to a linear map), as the tfjs side reads it.
    score = lambda v: body(v)[:, 7].mean((1, 2))
    dream = body[:dream_at + 1] if args.arch != "resnet50" else body[:dream_at + 1]
    g = torch.Generator().manual_seed(1)
    x1 = torch.rand(1, 3, 224, 224, generator=g)
    x8 = torch.rand(8, 3, 224, 224, generator=g)
    x448 = torch.rand(1, 3, 448, 448, generator=g)
    state = {"dd": x1.clone(), "dd448": x448.clone(), "pgd": x8.clone()}
    labels = torch.arange(8) % channels

    def forward(x):
        def run():
            with torch.no_grad():
                body(x)
        return run

    def input_grad(x):
        def run():
            v = x.clone().requires_grad_(True)
            score(v).sum().backward()
            return v.grad
        return run

    def grad_cam():
        # d score / d last conv map, then the channel-weighted map.
        with torch.no_grad():
            feats = body[:-1](x1) if args.arch != "vgg16" else body[:-1](x1)
        a = feats.clone().requires_grad_(True)
        s = body[-1:](a)[:, 7].mean((1, 2)).sum()
        s.backward()
        w = a.grad.mean((2, 3), keepdim=True)
        return torch.relu((w * a).sum(1))

    def smoothgrad():
        v = (x1 + 0.15 * torch.randn(16, 3, 224, 224, generator=g)).requires_grad_(True)
        score(v).sum().backward()
        return v.grad.mean(0)

    def dream_step(key):
        def run():
            v = state[key].clone().requires_grad_(True)
            dream(v).square().mean().backward()
            with torch.no_grad():
                gr = v.grad
                state[key] = state[key] + 0.01 * gr / (gr.abs().mean() + 1e-8)
        return run

    def pgd_step():
        v = state["pgd"].clone().requires_grad_(True)
        logits = body(v).mean((2, 3))
        nn.functional.cross_entropy(logits, labels).backward()
        with torch.no_grad():
            step = state["pgd"] + (2 / 255) * v.grad.sign()
            state["pgd"] = torch.min(torch.max(step, x8 - 8 / 255), x8 + 8 / 255).clamp(0, 1)

    rows = {
        "forward b1": forward(x1),
        "forward b8": forward(x8),
        "input grad b1": input_grad(x1),
        "input grad b8": input_grad(x8),
        "grad-cam b1": grad_cam,
        "smoothgrad 16": smoothgrad,
        "deep-dream step 224": dream_step("dd"),
        "deep-dream step 448": dream_step("dd448"),
        "pgd step b8": pgd_step,
    }
    if args.row not in rows:
        raise SystemExit(f"unknown row {args.row}: {', '.join(rows)}")
    ms = median_ms(rows[args.row], args.warmup, args.repeats)
    print(json.dumps({
        "backend": "pytorch",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "params": params,
        "ms": ms,
        "peakMB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


if __name__ == "__main__":
    main()
