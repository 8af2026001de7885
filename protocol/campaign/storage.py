"""What the campaign roles keep locally: private state files (mode 0600 under `state_dir()`), image files and
the OT delivery file an owner sends to a licensee."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
from PIL import Image

from protocol.campaign.binding import ArgusError
from protocol.config import home


def state_dir() -> Path:
    """$PINPOINT_HOME or ~/.pinpoint, with an `argus/` subfolder (created mode 0700)."""
    root = home() / "argus"
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    return root


def save_private(path: Path, obj: dict) -> Path:
    """Write JSON readable by the owner only (0600), atomically (temp file + rename)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path


def write_private(path: Path, data: bytes) -> Path:
    """Write ``data`` to a file readable by the owner only (0600 from its creation); returns the path."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)
    return path


def load_private(path: Path) -> dict:
    """The JSON saved by `save_private` at ``path``. Raises ArgusError if there is none."""
    if not path.exists():
        raise ArgusError(f"no saved state at {path}")
    try:
        return json.loads(path.read_text())
    except ValueError as e:
        raise ArgusError(f"{path} is not a saved state: {e}") from None


def load_image(path: Path) -> np.ndarray:
    """uint8 HxWx3 RGB array of an image file. Raises ArgusError if it cannot be read as an image."""
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    except OSError as e:  # missing file, not an image (PIL.UnidentifiedImageError), truncated data
        raise ArgusError(f"cannot read image {path}: {e}") from None


def png_bytes(image: np.ndarray) -> bytes:
    """PNG encoding of a uint8 HxWx3 RGB image."""
    buf = io.BytesIO()
    Image.fromarray(image, "RGB").save(buf, format="PNG")
    return buf.getvalue()


def image_of_png(data: bytes) -> np.ndarray:
    """uint8 HxWx3 RGB array of encoded image bytes (PNG or any format Pillow reads)."""
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


def image_files(paths: list[Path]) -> list[Path]:
    """Expand directories to their image files (sorted by name); keep files as given."""
    out = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            out += sorted(q for q in p.iterdir() if q.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp", ".webp"))
        else:
            out.append(p)
    if not out:
        raise ArgusError("no image files given")
    return out


def save_delivery(path: Path, campaign: str, i: int, delivery: list[tuple[bytes, bytes]]) -> Path:
    """Write the OT delivery of licensee ``i`` (ciphertext pairs, hex JSON) to ``path``; returns it."""
    Path(path).write_text(json.dumps({"campaign": campaign, "id": i,
                                      "ciphertexts": [[a.hex(), b.hex()] for a, b in delivery]}))
    return Path(path)


def load_delivery(path: Path) -> tuple[str, int, list[tuple[bytes, bytes]]]:
    """(campaign address, licensee id, ciphertext pairs) of a delivery file written by `save_delivery`. Raises
    ArgusError if the file is not one."""
    try:
        d = json.loads(Path(path).read_text())
        return d["campaign"], int(d["id"]), [(bytes.fromhex(a), bytes.fromhex(b)) for a, b in d["ciphertexts"]]
    except (ValueError, KeyError, TypeError) as e:
        raise ArgusError(f"{path} is not a delivery file: {type(e).__name__}: {e}") from None
