"""Robustness benchmark of offchain.campaign.watermark on the ImageNet sample photos.

Usage (from the repository root)::

    .venv/bin/python benchmarks/watermark_robustness.py [--limit N] [--dir PATH] [--seed S]

By default images are first resized (Pillow LANCZOS) so that the shorter side is 256 px
(``--short-side 256``); ``--short-side 0`` uses them *as they are* (original ImageNet sizes,
typically 500x375 but down to 150x106).  The one greyscale photo is converted to RGB.  For each photo a random 64-bit code is embedded with a fixed key,
then each attack is applied and the code is extracted blindly.  Crop fractions (left, top,
right, bottom) are drawn uniformly in [0, 0.05] per image from a fixed seed; the "all chained"
attack uses the same fractions: crop -> resize 50 % (bilinear) -> JPEG q50.
Prints: attack, exact recovery x/N, wrong codes returned, mean PSNR of the marked image,
mean / max extraction time.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from offchain.campaign.attacks import crop, jpeg, resize  # noqa: E402
from offchain.campaign.watermark import WatermarkNotFound, embed, extract, psnr  # noqa: E402

DEFAULT_DIR = ROOT.parent / "shared" / "data" / "images" / "imagenet"
KEY = b"benchmark-public-key"


def attacks(fr):
    return {
        "none": lambda im: im,
        "jpeg50": lambda im: jpeg(im, 50),
        "resize50": lambda im: resize(im, 0.5, "bilinear"),
        "resize50-lanczos": lambda im: resize(im, 0.5, "lanczos"),
        "crop<=5%": lambda im: crop(im, fr),
        "jpeg50+resize50": lambda im: jpeg(resize(im, 0.5, "bilinear"), 50),
        "crop+resize50+jpeg50": lambda im: jpeg(resize(crop(im, fr), 0.5, "bilinear"), 50),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--short-side", type=int, default=256,
                    help="resize so the shorter side is this many px (0: use images as they are)")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()

    files = sorted(args.dir.glob("*.JPEG"))[: args.limit]
    if not files:
        sys.exit(f"no *.JPEG images in {args.dir}")
    rng = np.random.default_rng(args.seed)
    names = list(attacks((0, 0, 0, 0)))
    ok = {n: 0 for n in names}
    wrong = {n: 0 for n in names}
    times = {n: [] for n in names}
    psnrs, embed_times = [], []
    failures = []
    for f in files:
        with Image.open(f) as im:
            im = im.convert("RGB")
            if args.short_side:
                w, h = im.size
                sc = args.short_side / min(w, h)
                im = im.resize((max(1, round(w * sc)), max(1, round(h * sc))), Image.LANCZOS)
            img = np.asarray(im, dtype=np.uint8)
        code = rng.bytes(8)
        fr = tuple(float(v) for v in rng.uniform(0.0, 0.05, 4))
        t0 = time.perf_counter()
        marked = embed(img, code, KEY)
        embed_times.append(time.perf_counter() - t0)
        psnrs.append(psnr(img, marked))
        for name, att in attacks(fr).items():
            suspect = att(marked)
            t0 = time.perf_counter()
            try:
                got = extract(suspect, KEY)
            except WatermarkNotFound:
                got = None
            times[name].append(time.perf_counter() - t0)
            if got == code:
                ok[name] += 1
            else:
                if got is not None:
                    wrong[name] += 1
                failures.append((f.name, name, fr))
        if args.verbose:
            print(f"{f.name}: psnr {psnrs[-1]:.2f}", flush=True)

    n = len(files)
    how = f"resized to shorter side {args.short_side}" if args.short_side else "used as they are"
    print(f"images: {n} from {args.dir} ({how}), key {KEY!r}, seed {args.seed}")
    print(f"mean PSNR of marked images: {np.mean(psnrs):.2f} dB (min {np.min(psnrs):.2f}); "
          f"mean embed time {np.mean(embed_times):.3f} s")
    print()
    print(f"| {'attack':22s} | {'exact recovery':>14s} | {'wrong code':>10s} | {'mean PSNR (dB)':>14s} "
          f"| {'mean extract (s)':>16s} | {'max extract (s)':>15s} |")
    print(f"|{'-' * 24}|{'-' * 16}|{'-' * 12}|{'-' * 16}|{'-' * 18}|{'-' * 17}|")
    for name in names:
        print(f"| {name:22s} | {f'{ok[name]}/{n}':>14s} | {wrong[name]:>10d} | {np.mean(psnrs):>14.2f} "
              f"| {np.mean(times[name]):>16.3f} | {np.max(times[name]):>15.3f} |")
    if failures:
        print("\nfailures:")
        for fn, name, fr in failures:
            print(f"  {fn} {name} crop={tuple(round(v, 4) for v in fr)}")


if __name__ == "__main__":
    main()
