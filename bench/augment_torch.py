"""The torchvision and OpenCV half of bench/augment_bench.ts: images per second
of flip, random resized crop, colour jitter, affine, lens distortion (OpenCV only;
torchvision has none) and the whole pipeline on
64 float32 images of 256x256x3, as at their best here.

Run with Debian's python3 (torch 1.13, torchvision 0.14, OpenCV 4.6) and the
malloc settings of bench/compare_torch.py:

    MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=68719476736 /usr/bin/python3 bench/augment_torch.py

torchvision's v1 transforms given a batch tensor draw ONE set of parameters for
the whole batch (every image gets the same crop, flip and jitter), which is
not per-image augmentation; both that batched call and the honest per-image
loop are measured. OpenCV works per image on HWC arrays (float32 like the
others, and uint8 as albumentations usually feeds it).

Prints one JSON object: median seconds per workload and images per second.
"""
import argparse
import json
import os
import statistics
import time

import numpy as np
import torch
import torchvision
import torchvision.transforms as T
import cv2


def median_s(work, warmup, repeats):
    for _ in range(warmup):
        work()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        work()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def cv_jitter(img, rng, b, c, s, h, uint8):
    """Brightness, contrast, saturation (blends, as torchvision does), hue through HSV."""
    x = img.astype(np.float32) / 255 if uint8 else img
    x = x * rng.uniform(1 - b, 1 + b)
    gray = cv2.cvtColor(np.clip(x, 0, 1), cv2.COLOR_RGB2GRAY)
    cf = rng.uniform(1 - c, 1 + c)
    x = cv2.addWeighted(x, cf, np.full_like(x, gray.mean()), 1 - cf, 0)
    gray3 = cv2.cvtColor(cv2.cvtColor(np.clip(x, 0, 1), cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    sf = rng.uniform(1 - s, 1 + s)
    x = cv2.addWeighted(x, sf, gray3, 1 - sf, 0)
    hsv = cv2.cvtColor(np.clip(x, 0, 1), cv2.COLOR_RGB2HSV)  # float: H in [0, 360)
    hsv[..., 0] = (hsv[..., 0] + 360 * rng.uniform(-h, h)) % 360
    x = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    return (x * 255).astype(np.uint8) if uint8 else x


def cv_rrc(img, rng, size=224):
    hh, ww = img.shape[:2]
    for _ in range(10):
        area = hh * ww * rng.uniform(0.08, 1)
        ar = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
        cw, ch = int(round(np.sqrt(area * ar))), int(round(np.sqrt(area / ar)))
        if 0 < cw <= ww and 0 < ch <= hh:
            top, left = rng.integers(0, hh - ch + 1), rng.integers(0, ww - cw + 1)
            return cv2.resize(img[top:top + ch, left:left + cw], (size, size), interpolation=cv2.INTER_LINEAR)
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_LINEAR)


def cv_affine(img, rng):
    hh, ww = img.shape[:2]
    m = cv2.getRotationMatrix2D((ww / 2, hh / 2), rng.uniform(-20, 20), rng.uniform(0.9, 1.1))
    sh = np.tan(np.radians(rng.uniform(-10, 10)))
    m = m @ np.array([[1, sh, -sh * hh / 2], [0, 1, 0], [0, 0, 1]])
    m[:, 2] += rng.uniform(-0.1, 0.1, 2) * [ww, hh]
    return cv2.warpAffine(img, m, (ww, hh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


def cv_lens(img, rng, grid):
    """Radial (Brown-Conrady) distortion as convlens's lensDistortion: cv2.remap on a per-image map."""
    dx, dy, cx, cy, r2 = grid
    k1, k2 = rng.uniform(-0.3, 0.3), rng.uniform(-0.1, 0.1)
    f = 1 + k1 * r2 + k2 * r2 * r2
    return cv2.remap(img, f * dx + cx, f * dy + cy, interpolation=cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_CONSTANT)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--size", type=int, default=256)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    torch.manual_seed(0)
    n, s = args.n, args.size
    batch = torch.rand(n, 3, s, s)
    images = [batch[i] for i in range(n)]
    hwc = [np.ascontiguousarray(im.permute(1, 2, 0).numpy()) for im in images]
    hwc8 = [(x * 255).astype(np.uint8) for x in hwc]
    rng = np.random.default_rng(0)
    # The distortion's pixel offsets from the centre, made once (not per image).
    cx = cy = (s - 1) / 2
    ys, xs = np.mgrid[0:s, 0:s].astype(np.float32)
    dx, dy = xs - cx, ys - cy
    lens_grid = (dx, dy, cx, cy, (dx * dx + dy * dy) / np.float32(cx * cx + cy * cy))

    flip = T.RandomHorizontalFlip()
    rrc = T.RandomResizedCrop(224)
    jitter = T.ColorJitter(0.4, 0.4, 0.4, 0.1)
    affine = T.RandomAffine(degrees=20, translate=(0.1, 0.1), scale=(0.9, 1.1), shear=10,
                            interpolation=T.InterpolationMode.BILINEAR)
    pipe = T.Compose([flip, rrc, affine, jitter])

    def per_image(t):
        return lambda: [t(im) for im in images]

    def cv_pipe(data, uint8):
        def run():
            for im in data:
                x = cv2.flip(im, 1) if rng.random() < 0.5 else im
                x = cv_affine(cv_rrc(x, rng), rng)
                cv_jitter(x, rng, 0.4, 0.4, 0.4, 0.1, uint8)
        return run

    work = {
        "torchvision batch": {
            "flip": lambda: flip(batch), "random resized crop": lambda: rrc(batch),
            "colour jitter": lambda: jitter(batch), "affine": lambda: affine(batch),
            "pipeline": lambda: pipe(batch),
        },
        "torchvision per image": {
            "flip": per_image(flip), "random resized crop": per_image(rrc),
            "colour jitter": per_image(jitter), "affine": per_image(affine), "pipeline": per_image(pipe),
        },
    }
    for name, data, u8 in (("opencv float32", hwc, False), ("opencv uint8", hwc8, True)):
        work[name] = {
            "flip": lambda d=data: [cv2.flip(im, 1) if rng.random() < 0.5 else im for im in d],
            "random resized crop": lambda d=data: [cv_rrc(im, rng) for im in d],
            "colour jitter": lambda d=data, u=u8: [cv_jitter(im, rng, 0.4, 0.4, 0.4, 0.1, u) for im in d],
            "affine": lambda d=data: [cv_affine(im, rng) for im in d],
            "lens distortion": lambda d=data: [cv_lens(im, rng, lens_grid) for im in d],
            "pipeline": cv_pipe(data, u8),
        }
    result = {}
    for side, rows in work.items():
        result[side] = {}
        for row, w in rows.items():
            sec = median_s(w, args.warmup, args.repeats)
            result[side][row] = {"seconds": sec, "imagesPerSecond": n / sec}
    print(json.dumps({
        "threads": args.threads, "torch": torch.__version__, "torchvision": torchvision.__version__,
        "opencv": cv2.__version__, "n": n, "size": s, "result": result,
    }))


if __name__ == "__main__":
    main()
