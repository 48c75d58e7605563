"""Files: atomic writes, safe checkpoint loading, images and masks, hashes.

Every output goes to a temporary path next to its destination and is renamed
into place, so an interrupted or failed run never leaves a half-written file
or bundle directory behind. Checkpoints are read with
``torch.load(weights_only=True)``: a model file from a stranger cannot run code.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import shutil
import tempfile
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from neurodeploy.errors import UserError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp/mkdtemp create private (0600/0700) paths; outputs get the usual permissions.
FILE_MODE = 0o666 & ~_umask()
DIR_MODE = 0o777 & ~_umask()

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm")


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary file path that is renamed to ``path`` on success.

    On any exception (KeyboardInterrupt included) the temporary file is removed
    and ``path`` is left as it was.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.pid{os.getpid()}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike[str], force: bool = False) -> Iterator[Path]:
    """Yield a temporary directory that becomes ``path`` when the block succeeds.

    With ``force`` an existing ``path`` is replaced only after the new one is
    complete; without it an existing ``path`` is a :class:`UserError`. The
    temporary directory is a hidden sibling named after this process; ones
    left by a killed process (SIGKILL runs no cleanup) are removed here.
    """
    target = Path(path)
    if target.exists() and not force:
        raise UserError(f"output directory {target} already exists", "pass `force=True` to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.pid{os.getpid()}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        os.chmod(tmp, DIR_MODE)
        if target.exists():
            old = target.with_name(f".{target.name}.pid{os.getpid()}.old.tmp")
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def remove_stale_temporaries(target: Path) -> None:
    """Delete ``.NAME.pidN.*.tmp`` siblings of ``target`` whose process N no longer runs."""
    pattern = re.compile(rf"^\.{re.escape(target.name)}\.pid(\d+)\..*\.tmp$")
    for sibling in target.parent.iterdir():
        match = pattern.match(sibling.name)
        if match and not _alive(int(match.group(1))):
            if sibling.is_dir():
                shutil.rmtree(sibling, ignore_errors=True)
            else:
                sibling.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# What a file must start with to count as one neurodeploy writes; see check_output_file.
_SIGNATURES: dict[str, tuple[bytes, ...]] = {
    "PNG image": (b"\x89PNG\r\n\x1a\n",),
    "JSON": (b"{", b"["),
    "npz archive": (b"PK\x03\x04",),
    "torch checkpoint": (b"PK\x03\x04", b"\x80"),
}


def check_output_file(path: str | os.PathLike[str], kind: str, suffix: str | None = None) -> Path:
    """Check, before any work, that ``path`` can take an output file of ``kind``.

    Refused, each as a one-line :class:`UserError`: a path that is a
    directory, a parent that is a file, a wrong suffix (when ``suffix`` is
    given), and an existing file of another kind: neurodeploy replaces its
    own outputs, never a file it did not write. ``kind`` is a key of
    ``_SIGNATURES``.
    """
    target = Path(path)
    if target.is_dir():
        raise UserError(f"output {target} is a directory, not a {kind} file", f"name a {kind} file to write")
    if suffix is not None and target.suffix.lower() != suffix:
        raise UserError(f"output {target} should end in {suffix} (it is written as a {kind})",
                        f"name a {suffix} file")
    _check_parents(target)
    if target.exists() and not _starts_with(target, _SIGNATURES[kind]):
        raise UserError(f"{target} exists and is not a {kind}; neurodeploy does not replace a file of "
                        "another kind", "name a new file or move that one away")
    return target


def check_output_folder(path: str | os.PathLike[str]) -> Path:
    """Check, before any work, that ``path`` is a directory or can become one."""
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise UserError(f"output folder {target} is a file", "name a folder (new or existing) for the outputs")
    _check_parents(target)
    return target


def _check_parents(target: Path) -> None:
    for parent in target.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UserError(f"cannot write {target}: {parent} is a file, not a folder", "choose another path")
            return


def _starts_with(path: Path, signatures: tuple[bytes, ...]) -> bool:
    with open(path, "rb") as handle:
        head = handle.read(16).lstrip()
    return any(head.startswith(signature) for signature in signatures)


def save_torch(obj: Any, path: str | os.PathLike[str]) -> None:
    """``torch.save`` into memory, then the bytes through a temporary file and a rename.

    Saved to a path, torch names the zip's records after the file's stem, which
    for a temporary file is random; saved to a buffer, the records are named
    ``archive/...`` always, so the same object gives the same bytes every run.
    """
    import torch  # lazy: every layer imports this module, and torch takes seconds to import

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())


def load_torch(path: str | os.PathLike[str], what: str = "checkpoint") -> dict[str, Any]:
    """Load a torch file with ``weights_only=True``; anything else is a UserError.

    A pickle that would run code, a truncated file, or a file that is not a
    torch checkpoint at all each give a one-line error naming the file.
    """
    import pickle

    import torch

    p = Path(path)
    if not p.is_file():
        raise UserError(f"{what} {p} does not exist", "check the path")
    if not _looks_like_torch_file(p):
        raise UserError(f"{p} is not a torch {what} file", "pass a .pt file written by neurodeploy")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
        what_runs = f" (it references {found.group(1)})" if found else ""
        raise UserError(
            f"{p} is not a safe {what}: loading it would run code{what_runs}",
            "only load files written by neurodeploy, which hold plain tensors and values",
        ) from None
    except Exception as exc:
        raise UserError(f"{p} is not a readable {what} ({type(exc).__name__})",
                        "pass a .pt file written by neurodeploy") from None
    if not isinstance(obj, dict):
        raise UserError(f"{p} holds a {type(obj).__name__}, not a {what} dictionary",
                        "pass a .pt file written by neurodeploy")
    return obj


def _looks_like_torch_file(path: Path) -> bool:
    """A torch.save zip archive, or a legacy pickle (protocol 2+ starts with 0x80)."""
    import zipfile

    if zipfile.is_zipfile(path):
        return True
    with open(path, "rb") as handle:
        return handle.read(1) == b"\x80"


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read any image Pillow opens as uint8 RGB, shape (H, W, 3).

    Grayscale is replicated to three channels, alpha is composited on black
    (the RGB values are kept, alpha dropped), 16-bit and float images are
    scaled to 8 bits: the spiking stage takes 8-bit pixel values.
    """
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    try:
        with Image.open(p) as img:
            img.load()
            arr = _to_uint8_rgb(img)
    except FileNotFoundError:
        raise UserError(f"image {p} does not exist", "check the path") from None
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError, SyntaxError) as exc:
        raise UserError(f"{p} is not a readable image ({type(exc).__name__})",
                        "pass a PNG or JPEG file") from None
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise UserError(f"image {p} is empty", "pass an image with at least one pixel")
    return arr


def _to_uint8_rgb(img: Any) -> np.ndarray:
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if arr.max(initial=0) > 255 or mode.startswith("I;16") else 255.0
        gray = np.clip(np.round(arr / peak * 255.0), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        peak = 1.0 if arr.max(initial=0) <= 1.0 else 255.0
        gray = np.clip(np.round(arr / peak * 255.0), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()


def image_size(path: str | os.PathLike[str]) -> tuple[int, int]:
    """An image's (height, width) from its header, checked before any work: a file Pillow cannot identify,
    or whose structure does not verify (``Image.verify``: a PNG's chunks and their checksums, no pixels
    decoded; a JPEG decoded at 1/8 scale, which reads every block), is a one-line :class:`UserError`
    naming it."""
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    try:
        with Image.open(p) as img:
            width, height, jpeg = *img.size, img.format == "JPEG"
            img.verify()
        if jpeg:  # verify checks nothing of a JPEG: decode it at 1/8 scale (DC coefficients), ~1/64 of the work
            with Image.open(p) as img:
                img.draft("RGB", (max(1, width // 8), max(1, height // 8)))
                img.load()
    except FileNotFoundError:
        raise UserError(f"image {p} does not exist", "check the path") from None
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError, SyntaxError) as exc:
        detail = str(exc).replace(f" {str(p)!r}", "") or type(exc).__name__  # the path is said once
        raise UserError(f"{p} is not a readable image ({detail})",
                        "replace or remove that file (a PNG or JPEG), then rerun") from None
    if height < 1 or width < 1:
        raise UserError(f"image {p} is empty", "pass an image with at least one pixel")
    return height, width


def read_mask(path: str | os.PathLike[str], shape: tuple[int, int]) -> np.ndarray:
    """Read a mask image as bool (H, W): nonzero (white) marks missing pixels."""
    rgb = read_image(path)
    if rgb.shape[:2] != tuple(shape):
        raise UserError(
            f"mask {path} is {rgb.shape[1]}x{rgb.shape[0]} but the image is {shape[1]}x{shape[0]}",
            "pass a mask of the same width and height as the image",
        )
    return rgb.max(axis=2) > 0


def write_png(path: str | os.PathLike[str], rgb: np.ndarray) -> None:
    """Write uint8 (H, W, 3) or (H, W) as PNG, atomically.

    zlib level 1, not PIL's default 6: lossless either way, and for a 0.27 megapixel photo 0.075 s
    instead of 0.24 s, as long as the torch backend takes to inpaint it, for a file 18% larger
    (docs/BENCHMARKS.md, section 16)."""
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(np.ascontiguousarray(rgb)).save(tmp, format="PNG", compress_level=1)


class PngWriter:
    """PNG files written by :func:`write_png` in a thread of their own, so that encoding one image overlaps
    computing the next (zlib runs without the GIL): a 0.27 megapixel photo takes 0.075 s to write, a third
    of the torch backend's time to inpaint it. At most ``backlog`` images wait in memory; leaving the
    context waits for every write and raises the first error."""

    def __init__(self, backlog: int = 2) -> None:
        self.pool = ThreadPoolExecutor(1, "png-writer")
        self.backlog = backlog
        self.pending: deque[Future[None]] = deque()

    def write(self, path: str | os.PathLike[str], rgb: np.ndarray) -> None:
        while len(self.pending) >= self.backlog:
            self.pending.popleft().result()
        self.pending.append(self.pool.submit(write_png, path, rgb))

    def __enter__(self) -> PngWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            while self.pending:
                self.pending.popleft().result()
        finally:
            self.pool.shutdown()


def list_images(folder: str | os.PathLike[str]) -> list[Path]:
    """All image files below ``folder`` (recursive), sorted for determinism."""
    root = Path(folder)
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def read_samples(path: str | Path, input_shape: tuple[int, ...], payload: str, option: str = "--input"
                 ) -> np.ndarray:
    """Read X (N, T, *input_shape) from a ``.npy`` file or an ``.npz`` with key ``input``, checked.

    Refused, each in one line naming ``option``: another kind of file, a
    missing file, a wrong shape, no samples or no steps, values that are not
    finite, and values outside what the input's ``payload`` carries (spikes:
    0 or 1; graded: [0, 1]).
    """
    p = Path(path)
    input_shape = tuple(input_shape)
    shape = "(N, T, " + ", ".join(map(str, input_shape)) + ")"
    if p.suffix.lower() not in (".npy", ".npz"):
        raise UserError(f"{option} {p} is not a .npy or .npz file", f"pass an array of shape {shape} as .npy")
    if not p.is_file():
        raise UserError(f"{option} {p} does not exist", "check the path")
    try:
        if p.suffix.lower() == ".npz":
            with np.load(p, allow_pickle=False) as archive:
                if "input" not in archive.files:
                    raise UserError(f"{option} {p} has no array named 'input' (it has "
                                    f"{', '.join(archive.files) or 'none'})", "save X as np.savez(path, input=X)")
                x = archive["input"]
        else:
            x = np.load(p, allow_pickle=False)
    except UserError:
        raise
    except Exception as exc:
        raise UserError(f"{option} {p} is not a readable NumPy file ({type(exc).__name__})",
                        "write it with np.save or np.savez") from None
    if not isinstance(x, np.ndarray) or x.dtype.kind not in "biuf":
        raise UserError(f"{option} {p} holds {getattr(x, 'dtype', type(x))} values, not numbers",
                        "save a numeric array")
    if x.ndim != 2 + len(input_shape) or tuple(x.shape[2:]) != input_shape:
        raise UserError(f"{option} {p} has shape {x.shape}; the graph's input is {shape}",
                        "give N samples of T time steps of the graph's input")
    if min(x.shape[:2]) < 1:
        raise UserError(f"{option} {p} has shape {x.shape}: no samples or no time steps",
                        f"give at least one sample of at least one step, {shape}")
    x = x.astype(np.float64)
    if not np.all(np.isfinite(x)):
        raise UserError(f"{option} {p} holds values that are not finite (NaN or inf)", "give finite values")
    if payload == "spikes":
        if np.any(x < 0):
            raise UserError(f"{option} {p} holds negative values; the graph's input is spikes (0 or 1)",
                            "give events as 0/1, or convert with `payload=graded` for frames")
        if np.any((x != 0) & (x != 1)):
            raise UserError(f"{option} {p} holds values other than 0 and 1; the graph's input is spikes",
                            "give events as 0/1, or convert with `payload=graded` for frames")
    elif np.any(x < 0) or np.any(x > 1):
        raise UserError(f"{option} {p} holds values outside [0, 1]; the graph's input is 8-bit graded",
                        "scale the frames to [0, 1]")
    return x
