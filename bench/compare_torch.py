"""The PyTorch half of compare.ts: the same workloads as bench/workloads.ts.

Run with Debian's python3 (torch 1.13, libopenblas0-pthread) and the malloc
settings that spare this VM's slow page faults:

    MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=68719476736 /usr/bin/python3 bench/compare_torch.py

Prints one JSON object: median milliseconds per workload.
"""
import argparse
import json
import os
import statistics
import time

import torch
import torch.nn as nn


def vgg_net():
    def conv(i, o):
        return [nn.Conv2d(i, o, 3, padding=1), nn.ReLU()]

    return nn.Sequential(
        *conv(3, 32), *conv(32, 32), nn.MaxPool2d(2),
        *conv(32, 64), *conv(64, 64), nn.MaxPool2d(2),
        *conv(64, 128), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(8 * 8 * 128, 256), nn.ReLU(), nn.Linear(256, 10),
    )


def mnist_net():
    def conv(i, o):
        return [nn.Conv2d(i, o, 3, padding=1), nn.ReLU()]

    return nn.Sequential(
        *conv(1, 16), *conv(16, 16), nn.MaxPool2d(2),
        *conv(16, 32), *conv(32, 32), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(7 * 7 * 32, 64), nn.ReLU(), nn.Linear(64, 10),
    )


class GuidedReluFn(torch.autograd.Function):
    """ReLU whose backward is relu(grad) * (x > 0): guided backprop."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad.clamp(min=0) * (x > 0)


class GuidedReLU(nn.Module):
    def forward(self, x):
        return GuidedReluFn.apply(x)


def guided_copy(net):
    """The same net (shared weights) with every nn.ReLU made a GuidedReLU."""
    return nn.Sequential(*[GuidedReLU() if isinstance(m, nn.ReLU) else m for m in net])


def median_ms(work, warmup, repeats):
    for _ in range(warmup):
        work()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        work()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    vgg, mnist = vgg_net().eval(), mnist_net().train()
    x1, x16, x64 = torch.rand(1, 3, 64, 64), torch.rand(16, 3, 64, 64), torch.rand(64, 3, 64, 64)
    m64, labels = torch.rand(64, 1, 28, 28), torch.randint(0, 10, (64,))
    m1, m16 = torch.rand(1, 1, 28, 28), torch.rand(16, 1, 28, 28)
    # Saliency / guided backprop on a second MNIST-size net (the training step keeps
    # changing the first one's weights), as in workloads.ts.
    mnist_eval = mnist_net().eval()
    for p in mnist_eval.parameters():
        p.requires_grad_(False)
    mnist_guided = guided_copy(mnist_eval)
    opt = torch.optim.SGD(mnist.parameters(), lr=0.01)
    loss_fn = nn.CrossEntropyLoss()

    def forward(x):
        def run():
            with torch.no_grad():
                vgg(x)
        return run

    def input_grad(x):
        def run():
            v = x.clone().requires_grad_(True)
            vgg(v)[:, 0].sum().backward()
            return v.grad
        return run

    def train():
        opt.zero_grad()
        loss = loss_fn(mnist(m64), labels)
        loss.backward()
        opt.step()

    def attribution(net, x):
        def run():
            v = x.clone().requires_grad_(True)
            net(v)[:, 0].sum().backward()
            return v.grad
        return run

    # One step of gradient ascent on the VGG-style net's input, from the current x.
    state = {"cm": x1.clone(), "dd": x1.clone()}
    to_pool2 = vgg[:10]  # conv, relu, conv, relu, pool, conv, relu, conv, relu, pool

    def class_model_step():
        v = state["cm"].clone().requires_grad_(True)
        (vgg(v)[:, 0].sum() - 0.01 * v.square().sum()).backward()
        with torch.no_grad():
            state["cm"] = state["cm"] + 0.1 * v.grad

    def deep_dream_step():
        v = state["dd"].clone().requires_grad_(True)
        to_pool2(v).square().mean().backward()
        with torch.no_grad():
            g = v.grad
            state["dd"] = state["dd"] + 0.01 * g / (g.abs().mean() + 1e-8)

    for p in vgg.parameters():
        p.requires_grad_(False)
    work = {
        "forward b1": forward(x1),
        "forward b64": forward(x64),
        "input grad b1": input_grad(x1),
        "input grad b16": input_grad(x16),
        "train step b64": train,
        "saliency b1": attribution(mnist_eval, m1),
        "saliency b16": attribution(mnist_eval, m16),
        "guided backprop b1": attribution(mnist_guided, m1),
        "guided backprop b16": attribution(mnist_guided, m16),
        "class-model step b1": class_model_step,
        "deep-dream step b1": deep_dream_step,
    }
    result = {k: median_ms(w, args.warmup, args.repeats) for k, w in work.items()}
    print(json.dumps({
        "backend": "pytorch",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "blas": next((t for t in torch.__config__.show().replace(",", " ").split() if t.startswith("BLAS_INFO")), ""),
        "result": result,
    }))


if __name__ == "__main__":
    main()
