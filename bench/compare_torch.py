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

    for p in vgg.parameters():
        p.requires_grad_(False)
    work = {
        "forward b1": forward(x1),
        "forward b64": forward(x64),
        "input grad b1": input_grad(x1),
        "input grad b16": input_grad(x16),
        "train step b64": train,
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
