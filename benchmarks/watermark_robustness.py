"""Robustness benchmark of offchain.campaign.watermark: what pirates do, and laundering by a licensee.

Usage (from the repository root)::

    .venv/bin/python benchmarks/watermark_robustness.py [--photos DIR] [--n N] [--json] [--seed S] [--short-side PX]

Photos (``*.JPEG``, ``*.jpg``, ``*.png`` in ``--photos``, default the bundle's 100 ImageNet photos) are resized
(Pillow LANCZOS) so the shorter side is ``--short-side`` px (default 256; 0 = as they are).  For each photo a random
64-bit code is embedded under a fixed public key; every attack below is applied and the code is extracted blindly.
Random parameters (crop fractions in [0, 0.10] per border, rotation angles in [-2, 2] degrees) are drawn per photo
from ``--seed``.  Rows:

* ``exact``: the embedded code came back; ``wrong``: another code came back (never acceptable, except for the
  laundering rows, where it is the launderer's random code); ``failed``: `WatermarkNotFound`.
* ``unmarked`` / ``other-key``: extraction from the unmarked photo / under another key; any code is ``wrong``.
* ``launder``: the licensee re-embeds a random code with the public key (`offchain.campaign.attacks.launder`);
  ``launder+jpeg50``: then re-encodes.  The JSON adds the PSNR of the laundered copy against the marked copy.

Prints a markdown table; ``--json`` prints ``{"attacks": {name: {"n", "exact", "wrong", "failed"}}, "psnr_db_mean",
...}`` instead.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from offchain.campaign import attacks as A  # noqa: E402
from offchain.campaign.watermark import WatermarkNotFound, embed, extract, psnr  # noqa: E402

DEFAULT_DIR = ROOT.parent / "shared" / "data" / "images" / "imagenet"
KEY = b"benchmark-public-key"
OTHER_KEY = b"benchmark-other-key"


def attacks(rng: np.random.Generator) -> dict:
    """The attacks, name -> function(marked uint8 image) -> suspect image, with this photo's random parameters."""
    fr = tuple(float(v) for v in rng.uniform(0.0, 0.10, 4))
    fr2 = tuple(float(v) for v in rng.uniform(0.0, 0.10, 4))
    ang = float(rng.uniform(-2.0, 2.0))
    ang2 = float(rng.uniform(-2.0, 2.0))
    return {
        "none": lambda im: im,
        "jpeg40": lambda im: A.jpeg(im, 40),
        "webp50": lambda im: A.webp(im, 50),
        "resize50": lambda im: A.resize(im, 0.5, "bilinear"),
        "resize50-lanczos": lambda im: A.resize(im, 0.5, "lanczos"),
        "crop<=10%": lambda im: A.crop(im, fr),
        "crop10%-all": lambda im: A.crop(im, (0.1, 0.1, 0.1, 0.1)),
        "rotate+2": lambda im: A.rotate(im, 2.0),
        "rotate-2": lambda im: A.rotate(im, -2.0),
        "rotate[-2,2]": lambda im: A.rotate(im, ang),
        "brightness+15%": lambda im: A.brightness(im, 1.15),
        "brightness-15%": lambda im: A.brightness(im, 0.85),
        "contrast+15%": lambda im: A.contrast(im, 1.15),
        "contrast-15%": lambda im: A.contrast(im, 0.85),
        "gamma0.8": lambda im: A.gamma(im, 0.8),
        "gamma1.25": lambda im: A.gamma(im, 1.25),
        "offset+25": lambda im: A.offset(im, 25),
        "blur1": lambda im: A.blur(im, 1.0),
        "noise5": lambda im: A.noise(im, 5.0),
        "flip": A.flip,
        "crop+resize50+jpeg50": lambda im: A.jpeg(A.resize(A.crop(im, fr2), 0.5), 50),
        "rotate+jpeg50": lambda im: A.jpeg(A.rotate(im, ang2), 50),
        "flip+brightness+jpeg50": lambda im: A.jpeg(A.brightness(A.flip(im), 1.15), 50),
    }


def load(path: Path, short_side: int) -> np.ndarray:
    with Image.open(path) as im:
        im = im.convert("RGB")
        if short_side:
            w, h = im.size
            sc = short_side / min(w, h)
            im = im.resize((max(1, round(w * sc)), max(1, round(h * sc))), Image.LANCZOS)
        return np.asarray(im, dtype=np.uint8)


def _extract(im: np.ndarray, key: bytes):
    try:
        return extract(im, key)
    except WatermarkNotFound:
        return None


def run(files: list[Path], short_side: int, seed: int, progress=None) -> dict:
    """Embed, attack and extract on every photo; returns the JSON-able result dictionary."""
    rng = np.random.default_rng(seed)
    rows: dict[str, dict] = {}
    times: dict[str, list] = {}
    psnrs, launder_psnrs = [], []

    def count(name, got, code, dt):
        r = rows.setdefault(name, {"n": 0, "exact": 0, "wrong": 0, "failed": 0})
        r["n"] += 1
        r["exact" if got == code else ("failed" if got is None else "wrong")] += 1
        times.setdefault(name, []).append(dt)

    for i, f in enumerate(files):
        img = load(f, short_side)
        code = rng.bytes(8)
        marked = embed(img, code, KEY)
        psnrs.append(psnr(img, marked))
        for name, att in attacks(rng).items():
            suspect = att(marked)
            t0 = time.perf_counter()
            got = _extract(suspect, KEY)
            count(name, got, code, time.perf_counter() - t0)
        laundered = A.launder(marked, KEY, seed=(seed ^ 0x5EED) + i)  # a stream apart from the codes' own
        launder_psnrs.append(psnr(marked, laundered))
        for name, im, key in (("launder", laundered, KEY), ("launder+jpeg50", A.jpeg(laundered, 50), KEY),
                              ("unmarked", img, KEY), ("other-key", marked, OTHER_KEY)):
            t0 = time.perf_counter()
            got = _extract(im, key)
            # unmarked / other-key: the right answer is no code (None == None counts as exact)
            count(name, got, code if name.startswith("launder") else None, time.perf_counter() - t0)
        if progress:
            progress(f"{f.name}: psnr {psnrs[-1]:.2f} dB")
    return {"attacks": rows, "psnr_db_mean": float(np.mean(psnrs)), "psnr_db_min": float(np.min(psnrs)),
            "launder_psnr_db_mean": float(np.mean(launder_psnrs)),
            "extract_s_mean": {k: float(np.mean(v)) for k, v in times.items()},
            "n_photos": len(files), "short_side": short_side, "seed": seed}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=Path, default=DEFAULT_DIR, help="folder of photos (default: the bundle's)")
    ap.add_argument("--n", type=int, default=100, help="number of photos (default 100)")
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--short-side", type=int, default=256,
                    help="resize so the shorter side is this many px (0: use photos as they are)")
    ap.add_argument("--json", action="store_true", help="print the JSON result instead of the table")
    ap.add_argument("--verbose", action="store_true", help="print progress per photo on stderr")
    args = ap.parse_args()
    if args.n < 1:
        ap.error("--n must be >= 1")
    files = sorted(p for p in args.photos.glob("*") if p.suffix.lower() in (".jpeg", ".jpg", ".png"))[: args.n]
    if not files:
        print(f"error: no photos (*.JPEG, *.jpg, *.png) in {args.photos}", file=sys.stderr)
        sys.exit(2)
    prog = (lambda m: print(m, file=sys.stderr, flush=True)) if args.verbose else None
    res = run(files, args.short_side, args.seed, prog)
    if args.json:
        print(json.dumps(res, indent=1))
        return
    how = f"shorter side {args.short_side} px" if args.short_side else "as they are"
    print(f"photos: {len(files)} from {args.photos} ({how}); key {KEY!r}; seed {args.seed}")
    print(f"PSNR of marked photos: mean {res['psnr_db_mean']:.2f} dB, min {res['psnr_db_min']:.2f} dB; "
          f"laundered vs marked: mean {res['launder_psnr_db_mean']:.2f} dB")
    print()
    print("| attack | exact | wrong | failed | mean extract (s) |")
    print("|---|---|---|---|---|")
    for name, r in res["attacks"].items():
        print(f"| {name} | {r['exact']}/{r['n']} | {r['wrong']} | {r['failed']} | "
              f"{res['extract_s_mean'][name]:.2f} |")
    print("\nunmarked / other-key: exact = correctly no code; launder rows: exact = the licensee's code survived, "
          "wrong = the launderer's code was read")


if __name__ == "__main__":
    main()
