"""Robustness benchmark of offchain.campaign.watermark: what pirates do, and laundering by a licensee.

Usage (from the repository root)::

    .venv/bin/python benchmarks/watermark_robustness.py [--photos DIR] [--n N] [--skip K] [--code-bytes 8|16]
        [--secret] [--only NAME ...] [--json] [--out FILE] [--seed S] [--short-side PX]

Photos (``*.JPEG``, ``*.jpg``, ``*.png`` in ``--photos``, default the bundle's 100 ImageNet photos, sorted; ``--skip``
and ``--n`` select a slice) are resized (Pillow LANCZOS) so the shorter side is ``--short-side`` px (default 256;
0 = as they are).  For each photo a random code of ``--code-bytes`` (default 16: 128 bits) is embedded under a fixed
public key (and, with ``--secret``, the secret layer under a fixed secret key); every attack below is applied and
the code is extracted blindly.  Random parameters (crop fractions in [0, 0.10] per border, rotation angles in
[-2, 2] degrees) are drawn per photo from ``--seed``.  Rows:

* ``exact``: the embedded code came back; ``wrong``: another code came back (never acceptable, except for the
  laundering rows, where it is the launderer's random code); ``failed``: `WatermarkNotFound`.  With ``--secret``,
  ``secret_exact`` / ``secret_wrong`` / ``secret_failed`` count the secret layer read with the secret key.
* ``unmarked`` / ``other-key``: extraction from the unmarked photo / under another (public, resp. secret) key; any
  code is ``wrong``.
* laundering by a licensee holding the public key: ``launder`` re-embeds a random code
  (`offchain.campaign.attacks.launder`), ``launder+jpeg50`` then re-encodes, ``launder+strip-sync+crop+jpeg50``
  also subtracts the public sync template, crops and re-encodes; ``blind-secret-band<sigma>`` adds Gaussian noise
  of ``sigma`` to every coefficient of the secret layer's (public) pool (`offchain.campaign.attacks.band_noise`).
  The JSON's ``attempt_psnr_db_mean`` gives each attempt's PSNR against the marked copy (before crop / re-encoding).

Prints a markdown table; ``--json`` prints ``{"attacks": {name: {"n", "exact", "wrong", "failed", ...}},
"psnr_db_mean", ...}`` instead; ``--out`` rewrites that JSON after every photo.
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
SECRET_KEY = b"benchmark-owner-secret-key"
BLIND_SIGMAS = (27.5, 55.0)  # blind noise on the secret layer's coefficient pool (orthonormal DCT units)


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


def _extract(im: np.ndarray, key: bytes, code_bytes: int, secret: bool = False):
    try:
        return extract(im, key, code_bytes=code_bytes, secret=secret)
    except WatermarkNotFound:
        return None


def _count(rows: dict, name: str, got, code, prefix: str = "") -> None:
    r = rows.setdefault(name, {"n": 0, "exact": 0, "wrong": 0, "failed": 0})
    if not prefix:
        r["n"] += 1
    field = "exact" if got == code else ("failed" if got is None else "wrong")
    r[prefix + field] = r.get(prefix + field, 0) + 1


def run(files: list[Path], short_side: int, seed: int, progress=None, code_bytes: int = 16, secret: bool = False,
        only: list[str] | None = None, out: Path | None = None) -> dict:
    """Embed, attack and extract on every photo; returns the JSON-able result dictionary.

    ``secret``: embed the secret layer too (key `SECRET_KEY`) and read it after every attack (fields
    ``secret_exact``, ``secret_wrong``, ``secret_failed`` of each row).  ``only``: restrict to these attack names.
    ``out``: a file rewritten with the result so far after every photo (long runs that may be cut short).
    """
    rng = np.random.default_rng(seed)
    rows: dict[str, dict] = {}
    times: dict[str, list] = {}
    secret_times: list = []
    psnrs, attempt_psnr = [], {}

    def read(name, im, key, code, secret_key=SECRET_KEY, secret_code=None):
        t0 = time.perf_counter()
        _count(rows, name, _extract(im, key, code_bytes), code)
        times.setdefault(name, []).append(time.perf_counter() - t0)
        if secret:
            t0 = time.perf_counter()
            _count(rows, name, _extract(im, secret_key, code_bytes, True), secret_code, "secret_")
            secret_times.append(time.perf_counter() - t0)

    for i, f in enumerate(files):
        img = load(f, short_side)
        code = rng.bytes(code_bytes)
        marked = embed(img, code, KEY, secret_key=SECRET_KEY if secret else None)
        psnrs.append(psnr(img, marked))
        for name, att in attacks(rng).items():
            if only and name not in only:
                continue
            read(name, att(marked), KEY, code, secret_code=code)
        if not only or "launder" in only:
            fr_l = tuple(float(v) for v in rng.uniform(0.0, 0.10, 4))
            laundered = A.launder(marked, KEY, seed=(seed ^ 0x5EED) + i, code_bytes=code_bytes)
            stripped = A.strip_sync(laundered, KEY, code_bytes)
            attempts = {  # row -> (laundered copy to measure PSNR on, the suspect read)
                "launder": (laundered, laundered),
                "launder+jpeg50": (laundered, A.jpeg(laundered, 50)),
                "launder+strip-sync+crop+jpeg50": (stripped, A.jpeg(A.crop(stripped, fr_l), 50)),
            }
            for sigma in BLIND_SIGMAS:
                blind = A.band_noise(marked, sigma, seed=i, code_bytes=code_bytes)
                attempts[f"blind-secret-band{sigma:g}"] = (blind, blind)
            for name, (copy, suspect) in attempts.items():
                attempt_psnr.setdefault(name, []).append(psnr(marked, copy))
                read(name, suspect, KEY, code, secret_code=code)
        if not only or "unmarked" in only:
            # the right answer is no code (None == None counts as exact)
            read("unmarked", img, KEY, None)
            read("other-key", marked, OTHER_KEY, None, secret_key=OTHER_KEY)
        if progress:
            progress(f"{f.name}: psnr {psnrs[-1]:.2f} dB")
        if out is not None:
            tmp = out.with_suffix(".tmp")
            tmp.write_text(json.dumps(_result(rows, times, secret_times, psnrs, attempt_psnr, i + 1, short_side, seed,
                                              code_bytes, secret), indent=1))
            tmp.replace(out)
    return _result(rows, times, secret_times, psnrs, attempt_psnr, len(files), short_side, seed, code_bytes, secret)


def _result(rows, times, secret_times, psnrs, attempt_psnr, n_photos, short_side, seed, code_bytes, secret) -> dict:
    res = {"attacks": rows, "psnr_db_mean": float(np.mean(psnrs)), "psnr_db_min": float(np.min(psnrs)),
           "extract_s_mean": {k: float(np.mean(v)) for k, v in times.items()},
           "extract_s_per_photo": float(sum(np.sum(v) for v in times.values()) / n_photos),
           "n_photos": n_photos, "short_side": short_side, "seed": seed, "code_bytes": code_bytes,
           "secret_layer": secret}
    if attempt_psnr:
        res["launder_psnr_db_mean"] = float(np.mean(attempt_psnr["launder"]))
        res["attempt_psnr_db_mean"] = {k: float(np.mean(v)) for k, v in attempt_psnr.items()}
    if secret:
        res["secret_extract_s_mean"] = float(np.mean(secret_times))
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=Path, default=DEFAULT_DIR, help="folder of photos (default: the bundle's)")
    ap.add_argument("--n", type=int, default=100, help="number of photos (default 100)")
    ap.add_argument("--skip", type=int, default=0, help="skip the first photos (split a run in parts)")
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--short-side", type=int, default=256,
                    help="resize so the shorter side is this many px (0: use photos as they are)")
    ap.add_argument("--code-bytes", type=int, default=16, choices=(8, 16), help="code size (default 16: 128 bits)")
    ap.add_argument("--secret", action="store_true", help="embed the secret layer too and read it after each attack")
    ap.add_argument("--only", nargs="*", help="only these rows (attack names; 'launder', 'unmarked')")
    ap.add_argument("--json", action="store_true", help="print the JSON result instead of the table")
    ap.add_argument("--out", type=Path, help="rewrite this JSON file with the result so far after every photo")
    ap.add_argument("--verbose", action="store_true", help="print progress per photo on stderr")
    args = ap.parse_args()
    if args.n < 1:
        ap.error("--n must be >= 1")
    files = sorted(p for p in args.photos.glob("*") if p.suffix.lower() in (".jpeg", ".jpg", ".png"))
    files = files[args.skip: args.skip + args.n]
    if not files:
        print(f"error: no photos (*.JPEG, *.jpg, *.png) in {args.photos}", file=sys.stderr)
        sys.exit(2)
    prog = (lambda m: print(m, file=sys.stderr, flush=True)) if args.verbose else None
    res = run(files, args.short_side, args.seed, prog, args.code_bytes, args.secret, args.only, args.out)
    if args.json:
        print(json.dumps(res, indent=1))
        return
    how = f"shorter side {args.short_side} px" if args.short_side else "as they are"
    print(f"photos: {len(files)} from {args.photos} ({how}); {8 * args.code_bytes}-bit codes; key {KEY!r}; "
          f"seed {args.seed}; secret layer: {'yes' if args.secret else 'no'}")
    print(f"PSNR of marked photos: mean {res['psnr_db_mean']:.2f} dB, min {res['psnr_db_min']:.2f} dB"
          + (f"; laundered vs marked: mean {res['launder_psnr_db_mean']:.2f} dB" if "launder_psnr_db_mean" in res
             else ""))
    print(f"public extraction time per photo (all rows): {res['extract_s_per_photo']:.1f} s")
    print()
    sec = args.secret
    print("| attack | exact | wrong | failed | mean extract (s) |" + (" secret exact | secret wrong |" if sec else ""))
    print("|---|---|---|---|---|" + ("---|---|" if sec else ""))
    for name, r in res["attacks"].items():
        print(f"| {name} | {r['exact']}/{r['n']} | {r['wrong']} | {r['failed']} | "
              f"{res['extract_s_mean'][name]:.2f} |"
              + (f" {r.get('secret_exact', 0)}/{r['n']} | {r.get('secret_wrong', 0)} |" if sec else ""))
    for name, v in res.get("attempt_psnr_db_mean", {}).items():
        print(f"PSNR of the attempt '{name}' against the marked copy: {v:.2f} dB")
    print("\nunmarked / other-key: exact = correctly no code; launder rows: exact = the licensee's code survived, "
          "wrong = the launderer's code was read")


if __name__ == "__main__":
    main()
