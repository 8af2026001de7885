"""Tests of offchain.campaign.watermark (robust blind 64- and 128-bit image watermark, public and secret layers) and
its channel code (offchain.campaign.ecc).

Photo-based tests use ImageNet photos (a CI share of 2-3; the full table is the benchmark's) from ../shared/data/images/imagenet (relative to the
repository root), resized so the shorter side is 256 px like the benchmark's default protocol,
and are skipped if the directory is missing.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from offchain.campaign import ecc
from offchain.campaign import detection as det
from offchain.campaign import watermark as wm
from offchain.campaign import attacks as A
from offchain.campaign.attacks import chain, crop, jpeg, resize

IMAGE_DIR = Path(__file__).resolve().parents[2] / "shared/data/images/imagenet"
KEY = b"test-public-key"
N_PHOTOS = 10


def _synthetic(h: int = 300, w: int = 400, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = 110 + 60 * np.sin(x / 37.0) * np.cos(y / 23.0) + 30 * (x / w)
    tex = rng.normal(0, 12, (h, w))
    img = np.stack([base + tex, base * 0.8 + tex, base * 0.6 + 40 + tex], axis=-1)
    return np.clip(img, 0, 255).astype(np.uint8)


@functools.lru_cache(maxsize=1)
def _photos() -> tuple[np.ndarray, ...]:
    files = sorted(IMAGE_DIR.glob("*.JPEG"))
    # a spread-out deterministic selection of 10 photos
    step = max(1, len(files) // N_PHOTOS)
    out = []
    for f in files[::step][:N_PHOTOS]:
        with Image.open(f) as im:
            im = im.convert("RGB")
            w, h = im.size
            s = 256 / min(w, h)
            im = im.resize((round(w * s), round(h * s)), Image.LANCZOS)
            out.append(np.asarray(im, dtype=np.uint8))
    return tuple(out)


@functools.lru_cache(maxsize=1)
def _marked_photos() -> tuple[tuple[np.ndarray, bytes, np.ndarray], ...]:
    """(original, code, marked) for each photo, with random codes from a fixed seed."""
    rng = np.random.default_rng(1234)
    out = []
    for img in _photos():
        code = rng.bytes(8)
        out.append((img, code, wm.embed(img, code, KEY)))
    return tuple(out)


needs_photos = pytest.mark.skipif(
    not IMAGE_DIR.is_dir() or not any(IMAGE_DIR.glob("*.JPEG")),
    reason=f"photo directory {IMAGE_DIR} missing",
)


# ---------------------------------------------------------------------------------------------
# Round trip and API contract
# ---------------------------------------------------------------------------------------------
def test_roundtrip_synthetic():
    img = _synthetic()
    code = bytes(range(8))
    marked = wm.embed(img, code, KEY)
    assert marked.shape == img.shape and marked.dtype == np.uint8
    assert wm.psnr(img, marked) > 36.0
    assert wm.extract(marked, KEY, code_bytes=8) == code


def test_input_validation():
    img = _synthetic(64, 64)
    with pytest.raises(wm.WatermarkError):
        wm.embed(img, b"short", KEY)
    with pytest.raises(wm.WatermarkError):
        wm.embed(img.astype(np.float32), bytes(8), KEY)
    with pytest.raises(wm.WatermarkError):
        wm.embed(img[..., 0], bytes(8), KEY)
    with pytest.raises(wm.WatermarkError):
        wm.embed(img, bytes(8), b"")
    with pytest.raises(wm.WatermarkError):
        wm.extract(img[:10, :10], KEY, code_bytes=8)
    with pytest.raises(wm.WatermarkError):
        wm.embed(img, bytes(12), KEY)
    with pytest.raises(wm.WatermarkError):
        wm.embed(img, bytes(16), KEY, secret_key=KEY)
    with pytest.raises(wm.WatermarkError):
        wm.extract(img, KEY, code_bytes=12)
    assert issubclass(wm.WatermarkNotFound, wm.WatermarkError)
    assert issubclass(wm.WatermarkError, ValueError)
    assert wm.CODE_BYTES == 16  # codes.CODE_BYTES: 128-bit campaign codes


def test_roundtrip_128_bit_codes_and_secret_layer():
    img = _synthetic()
    code = bytes(range(100, 116))
    marked = wm.embed(img, code, KEY)
    assert wm.extract(marked, KEY, code_bytes=16) == code
    with pytest.raises(wm.WatermarkNotFound):  # a 64-bit reading of a 128-bit mark finds nothing
        wm.extract(marked, KEY, code_bytes=8)
    both = wm.embed(img, code, KEY, secret_key=b"owner-secret")
    assert wm.extract(both, KEY, code_bytes=16) == code  # the public layer alone, with the public key
    assert wm.extract(both, b"owner-secret", code_bytes=16, secret=True) == code
    with pytest.raises(wm.WatermarkNotFound):  # no secret layer under the public key
        wm.extract(both, KEY, code_bytes=16, secret=True)
    with pytest.raises(wm.WatermarkNotFound):  # a copy without a secret layer
        wm.extract(marked, b"owner-secret", code_bytes=16, secret=True)


def test_psnr():
    a = np.zeros((4, 4, 3), np.uint8)
    assert wm.psnr(a, a) == float("inf")
    b = a.copy()
    b[0, 0, 0] = 255
    assert abs(wm.psnr(a, b) - 10 * np.log10(48)) < 1e-9


def test_attack_helpers_shapes():
    img = _synthetic(200, 300)
    assert jpeg(img, 50).shape == img.shape
    assert resize(img, 0.5).shape == (100, 150, 3)
    assert crop(img, (0.05, 0.0, 0.05, 0.1)).shape == (180, 270, 3)
    assert chain(img).dtype == np.uint8


# ---------------------------------------------------------------------------------------------
# Robustness on real photos: a seeded CI share (3 photos); the full table is benchmarks/watermark_robustness.py
# ---------------------------------------------------------------------------------------------
def _crop_fractions(i: int) -> tuple[float, float, float, float]:
    return tuple(float(v) for v in np.random.default_rng(100 + i).uniform(0, 0.10, 4))


def _angle(i: int) -> float:
    return float(np.random.default_rng(200 + i).uniform(-2.0, 2.0))


# photometric and signal-processing attacks (the upright geometry: fast)
TONE_ATTACKS = {
    "none": lambda im, i: im,
    "jpeg40": lambda im, i: A.jpeg(im, 40),
    "webp50": lambda im, i: A.webp(im, 50),
    "resize50_lanczos": lambda im, i: A.resize(im, 0.5, "lanczos"),
    "brightness+10": lambda im, i: A.brightness(im, 1.10),
    "brightness-15": lambda im, i: A.brightness(im, 0.85),
    "contrast+15": lambda im, i: A.contrast(im, 1.15),
    "contrast-15": lambda im, i: A.contrast(im, 0.85),
    "gamma0.8": lambda im, i: A.gamma(im, 0.8),
    "gamma1.25": lambda im, i: A.gamma(im, 1.25),
    "offset+25": lambda im, i: A.offset(im, 25),
    "blur1": lambda im, i: A.blur(im, 1.0),
    "noise5": lambda im, i: A.noise(im, 5.0, seed=i),
}
# geometric attacks and chains (sync-template search: seconds each)
GEOMETRIC_ATTACKS = {
    "flip": lambda im, i: A.flip(im),
    "crop10_all": lambda im, i: A.crop(im, (0.1, 0.1, 0.1, 0.1)),
    "rotate": lambda im, i: A.rotate(im, _angle(i)),
    "crop_resize_jpeg": lambda im, i: A.jpeg(A.resize(A.crop(im, _crop_fractions(i)), 0.5), 50),
    "flip_brightness_jpeg": lambda im, i: A.jpeg(A.brightness(A.flip(im), 1.15), 50),
}
CI_PHOTOS = 3
# Brightening attacks clip bright photos (the second CI photo has 10 % of its pixels white already, 42 % after
# +15 % brightness): the clipped host moves the payload projections and the code is lost (a measured limitation;
# `benchmarks/watermark_robustness.py` gives the rates).  They are checked here on the two darker CI photos only.
CLIPPING = {"brightness+10", "contrast+15", "offset+25"}


def _check_attack(name: str, attack, n: int) -> None:
    marked = _marked_photos()[:n]
    ok = 0
    for i, (img, code, m) in enumerate(marked):
        if name in CLIPPING and i == 1:
            continue
        assert wm.psnr(img, m) >= 38.0
        try:
            got = wm.extract(attack(m, i), KEY, code_bytes=8)
        except wm.WatermarkNotFound:
            continue
        assert got == code, "a wrong code was returned"
        ok += 1
    need = len(marked) - (name in CLIPPING and len(marked) > 1)
    assert ok == need, f"{name}: recovered {ok}/{need}"


@needs_photos
@pytest.mark.parametrize("name", list(TONE_ATTACKS))
def test_tone_attack_on_photos(name):
    _check_attack(name, TONE_ATTACKS[name], CI_PHOTOS)


@needs_photos
@pytest.mark.parametrize("name", ["flip", "crop10_all", "rotate"])
def test_geometric_attack_on_photos(name):
    _check_attack(name, GEOMETRIC_ATTACKS[name], 2)


@functools.lru_cache(maxsize=1)
def _marked_photos_128() -> tuple[tuple[np.ndarray, bytes, np.ndarray], ...]:
    """(original, 16-byte code, marked) for the first two CI photos."""
    rng = np.random.default_rng(4321)
    return tuple((img, c, wm.embed(img, c, KEY)) for img in _photos()[:2] for c in [rng.bytes(16)])


# a CI share; crop + resize + JPEG and flip + brightness + JPEG lose the second CI photo (a white, textured beach
# that clips), their rates are the benchmark's
ATTACKS_128 = {
    "jpeg40": lambda im, i: A.jpeg(im, 40),
    "webp50": lambda im, i: A.webp(im, 50),
    "gamma0.8": lambda im, i: A.gamma(im, 0.8),
    "contrast-15": lambda im, i: A.contrast(im, 0.85),
    "blur1": lambda im, i: A.blur(im, 1.0),
    **{k: GEOMETRIC_ATTACKS[k] for k in ("flip", "crop10_all", "rotate")},
}


@needs_photos
@pytest.mark.parametrize("name", list(ATTACKS_128))
def test_128_bit_codes_on_photos(name):
    for i, (img, code, m) in enumerate(_marked_photos_128()):
        assert wm.psnr(img, m) >= 38.0
        assert wm.extract(ATTACKS_128[name](m, i), KEY, code_bytes=16) == code, f"{name}: photo {i}"


@needs_photos
def test_128_bit_unmarked_and_other_key_raise():
    with pytest.raises(wm.WatermarkNotFound):
        wm.extract(_photos()[1], KEY, code_bytes=16)
    with pytest.raises(wm.WatermarkNotFound):
        wm.extract(_marked_photos_128()[0][2], b"another-key", code_bytes=16)


def _photo(name: str) -> np.ndarray:
    """One bundle photo by file name, shorter side 256 px (the benchmark's protocol)."""
    with Image.open(IMAGE_DIR / name) as im:
        im = im.convert("RGB")
        w, h = im.size
        s = 256 / min(w, h)
        return np.asarray(im.resize((round(w * s), round(h * s)), Image.LANCZOS), dtype=np.uint8)


ZEBRA = "n02391049_zebra.JPEG"


@pytest.mark.skipif(not (IMAGE_DIR / ZEBRA).is_file(), reason="bundle photo missing")
def test_sync_free_stage_registers_where_texture_drowns_the_sync():
    """The zebra's stripes drown the sync template (its best coarse peak on the rotated copy is ~4.8 standard
    deviations, none at the true geometry): before the sync-free stage its rotated, rotated + JPEG and centre-cropped
    copies gave WatermarkNotFound (benchmark seed, photo 34); the payload's lattice fit alone finds them."""
    code = bytes(range(16))
    marked = wm.embed(_photo(ZEBRA), code, KEY)
    kd = wm.keyed(KEY, 16, "public")
    rotated = A.rotate(marked, 1.7628)
    assert max(h[0] for h in _sync_hypotheses(kd, rotated)) < det._SYNC_MIN  # the sync stage has nothing strong
    best = det._sync_free(kd, det._Suspect(rotated))[0]
    assert best[0] >= det._Q_SCAN and best[1] is False and abs(best[2] + 1.7628) <= 0.1  # rotated back by -angle
    for suspect in (rotated, A.jpeg(A.rotate(marked, -1.3), 50), A.crop(marked, (0.1, 0.1, 0.1, 0.1))):
        assert wm.extract(suspect, KEY, code_bytes=16) == code


FLATWORM = "n01924916_flatworm.JPEG"


@pytest.mark.skipif(not (IMAGE_DIR / FLATWORM).is_file(), reason="bundle photo missing")
def test_weak_sync_candidates_ranked_by_lattice_fit():
    """Crop + resize 0.5 + JPEG 50 of a textured photo (the benchmark's photo 11, key, code and crop): the true
    geometry's sync peak is only the 3rd of the upright frame (~4.1 standard deviations, below noise peaks of rotated
    hypotheses), so stages 1-2 gave WatermarkNotFound; stage 3 ranks the upright candidates by their refined lattice
    fit and finds it."""
    key, code = b"benchmark-public-key", bytes.fromhex("aa711b90f10b7555b8ba67308880fcdd")
    fr = (0.04560250945995612, 0.023185285210891984, 0.07415465779687981, 0.054894088466598615)
    suspect = A.jpeg(A.resize(A.crop(wm.embed(_photo(FLATWORM), code, key), fr), 0.5), 50)
    kd = wm.keyed(key, 16, "public")
    sus = det._Suspect(suspect)
    hyps = det._upright(kd, sus)
    assert hyps and all(h[0] >= det._Q_GATE for h in hyps)
    assert any(det._register(kd, sus, flip, angle, geo) == code for _, flip, angle, geo in hyps)
    assert wm.extract(suspect, key, code_bytes=16) == code


def _sync_hypotheses(kd, image):
    """The coarse sync peaks (standard deviations) of every mirror x rotation hypothesis, as `extract` scores them."""
    sus = det._Suspect(image)
    out = []
    for flip in (False, True):
        for angle in det._ANGLES:
            _, W_half = det.whitened(sus.frame(flip, angle)[0])
            out += [(c[0], flip, angle) for c in det.coarse_sync(kd, W_half, 2)]
    return out


def test_sync_free_scan_rejects_unmarked_frames():
    """On an unmarked image no sync-free hypothesis reaches _Q_SCAN (so an unmarked image costs the scan only)."""
    kd = wm.keyed(KEY, 16, "public")
    assert det._sync_free(kd, det._Suspect(_synthetic(seed=3))) == []


@needs_photos
def test_different_codes_give_different_results():
    img = _photos()[0]
    c1, c2 = b"\x00" * 8, b"\xff" * 7 + b"\xfe"
    m1, m2 = wm.embed(img, c1, KEY), wm.embed(img, c2, KEY)
    assert not np.array_equal(m1, m2)
    assert wm.extract(m1, KEY, code_bytes=8) == c1
    assert wm.extract(A.jpeg(m2, 50), KEY, code_bytes=8) == c2


@needs_photos
def test_unmarked_and_wrong_key_raise():
    with pytest.raises(wm.WatermarkNotFound):
        wm.extract(_photos()[1], KEY, code_bytes=8)
    with pytest.raises(wm.WatermarkNotFound):
        wm.extract(_marked_photos()[0][2], b"another-key", code_bytes=8)


@needs_photos
def test_public_key_laundering_overwrites_the_code():
    """The threat model of the module docstring: a licensee holding the public key re-embeds a random code into
    its own copy; the copy then carries the launderer's code, not the licensee's, at about the embedding's PSNR."""
    img, code, m = _marked_photos()[0]
    laundered = A.launder(m, KEY, seed=7, code_bytes=8)
    assert wm.extract(laundered, KEY, code_bytes=8) == np.random.default_rng(7).bytes(8) != code
    assert wm.psnr(m, laundered) > 35.0


@needs_photos
def test_secret_layer_survives_public_key_laundering():
    """Issue 11.5: a licensee holding the public key re-embeds a random code, strips the public sync template, crops
    and re-encodes its copy: the public layer is gone (or reads the launderer's code), the secret layer still gives
    the licensee's code to the owner; and the secret layer reads nothing under another secret key."""
    img = _photos()[0]
    code = bytes(range(16))
    secret = b"owner-secret-key"
    marked = wm.embed(img, code, KEY, secret_key=secret)
    assert wm.psnr(img, marked) > 34.0
    laundered = A.launder(marked, KEY, seed=3, code_bytes=16)
    assert wm.extract(laundered, KEY, code_bytes=16) == np.random.default_rng(3).bytes(16)
    assert wm.extract(laundered, secret, code_bytes=16, secret=True) == code
    worse = A.jpeg(A.crop(A.strip_sync(laundered, KEY), (0.04, 0.06, 0.02, 0.05)), 50)
    assert wm.extract(worse, secret, code_bytes=16, secret=True) == code
    try:
        assert wm.extract(worse, KEY, code_bytes=16) != code
    except wm.WatermarkNotFound:
        pass
    with pytest.raises(wm.WatermarkNotFound):
        wm.extract(marked, b"another-secret", code_bytes=16, secret=True)


def test_secret_key_commitment():
    from offchain.campaign import secret as S

    k = S.new_secret_key()
    assert len(k) == 32 and k != S.new_secret_key()
    c = S.commitment(k)
    assert len(c) == 32 and S.opens(c, k) and not S.opens(c, k[:-1] + bytes([k[-1] ^ 1]))
    with pytest.raises(ValueError):
        S.commitment(b"")


def test_band_noise_touches_only_its_pool():
    """The blind attack of the benchmark moves the secret pool's coefficients, not the public layer's."""
    from offchain.campaign.registration import keyed

    img = _synthetic(256, 256)
    noisy = A.band_noise(img, 30.0, seed=1, code_bytes=16, layer="secret")
    pub = keyed(KEY, 16, "public")
    sec = keyed(b"s", 16, "secret")
    region = lambda im: wm._canonical(im)[28:228, 28:228]  # noqa: E731
    d_pub = pub.project(region(noisy)) - pub.project(region(img))
    d_sec = sec.project(region(noisy)) - sec.project(region(img))
    assert np.abs(d_sec).mean() > 5 * np.abs(d_pub).mean()


# ---------------------------------------------------------------------------------------------
# Error-correcting code
# ---------------------------------------------------------------------------------------------
BCH = ecc.bch()


def test_bch_parameters():
    assert (BCH.n, BCH.k, BCH.t) == (220, 80, 20)
    c16 = ecc.channel(16)
    assert (c16.n, c16.k, c16.t) == (414, 144, 32)
    assert ecc.false_positive_bound(8) < 2.0**-58
    assert ecc.false_positive_bound(16) < 2.0**-120
    with pytest.raises(wm.WatermarkError):
        ecc.channel(12)


@settings(max_examples=30, deadline=None)
@given(code=st.binary(min_size=16, max_size=16), data=st.data())
def test_ecc_128_corrects_t_and_detects_more(code, data):
    c16 = ecc.channel(16)
    cw = ecc.encode_payload(code)
    assert cw.shape == (c16.n,)
    n_err = data.draw(st.integers(0, c16.n // 3))
    pos = data.draw(st.lists(st.integers(0, c16.n - 1), min_size=n_err, max_size=n_err, unique=True))
    word = cw.copy()
    word[pos] ^= 1
    if n_err <= c16.t:
        assert ecc.decode_payload(word, 16) == code
    else:
        with pytest.raises(wm.WatermarkNotFound):
            ecc.decode_payload(word, 16)


@settings(max_examples=60, deadline=None)
@given(code=st.binary(min_size=8, max_size=8), data=st.data())
def test_ecc_corrects_up_to_t_errors(code, data):
    cw = ecc.encode_payload(code)
    n_err = data.draw(st.integers(0, BCH.t))
    pos = data.draw(st.lists(st.integers(0, BCH.n - 1), min_size=n_err, max_size=n_err, unique=True))
    word = cw.copy()
    word[pos] ^= 1
    assert ecc.decode_payload(word) == code
    bits, corrected = BCH.decode(word)
    assert corrected == n_err


@settings(max_examples=60, deadline=None)
@given(code=st.binary(min_size=8, max_size=8), data=st.data())
def test_ecc_detects_more_errors(code, data):
    cw = ecc.encode_payload(code)
    n_err = data.draw(st.integers(BCH.t + 1, BCH.n // 2))
    pos = data.draw(st.lists(st.integers(0, BCH.n - 1), min_size=n_err, max_size=n_err, unique=True))
    word = cw.copy()
    word[pos] ^= 1
    # beyond t errors the decoder can never return the original; BCH + CRC detect the failure
    with pytest.raises(wm.WatermarkNotFound):
        ecc.decode_payload(word)


@settings(max_examples=40, deadline=None)
@given(word=st.lists(st.integers(0, 1), min_size=220, max_size=220))
def test_random_words_rejected(word):
    with pytest.raises(wm.WatermarkNotFound):
        ecc.decode_payload(np.array(word, dtype=np.uint8))


def test_crc_detects_corruption():
    code = b"12345678"
    assert ecc.crc16(code) != ecc.crc16(b"12345679")
    assert ecc.crc16(b"123456789") == 0x29B1  # CRC-16/CCITT-FALSE check value
