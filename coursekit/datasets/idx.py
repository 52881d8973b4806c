"""The IDX files of MNIST as bytes: parse, decompress, check the MD5, download.

The file format (LeCun et al.): a magic number ``0 0 8 ndim``, then ``ndim`` big-endian
32-bit sizes, then the unsigned bytes in C order. Every error names the file.
"""

from __future__ import annotations

import gzip
import hashlib
import struct
import urllib.error
import urllib.request
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np


class MNISTIntegrityError(ValueError):
    """A file is corrupt, truncated or not the expected MNIST file (the message names it)."""


def parse_idx(data: bytes, name: str = "file") -> np.ndarray:
    """Parse decompressed IDX bytes (unsigned-byte type) into a uint8 array.

    Raises :class:`MNISTIntegrityError` naming ``name`` when the header or size is wrong.
    """
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise MNISTIntegrityError(f"{name}: not an unsigned-byte IDX file (bad magic number)")
    ndim = data[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise MNISTIntegrityError(f"{name}: truncated IDX header")
    shape = struct.unpack(">" + "I" * ndim, data[4:header])
    expected = header + int(np.prod(shape))
    if len(data) != expected:
        raise MNISTIntegrityError(
            f"{name}: expected {expected} bytes for shape {shape}, got {len(data)} (truncated?)"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def decompress(raw: bytes, name: str) -> bytes:
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise MNISTIntegrityError(f"{name}: corrupt or truncated gzip data ({err})") from err


def check_md5(data: bytes, name: str, md5: Mapping[str, str]) -> None:
    expected = md5.get(name)
    if expected is None:
        return
    got = hashlib.md5(data).hexdigest()
    if got != expected:
        raise MNISTIntegrityError(
            f"{name}: MD5 of the decompressed file is {got}, expected {expected} "
            "(corrupt, truncated or a different file)"
        )


def read_file(path: Path, name: str, md5: Mapping[str, str]) -> bytes:
    """The bytes of the file at ``path`` (decompressed if gzip), their MD5 checked."""
    data = decompress(path.read_bytes(), f"{name} ({path})")
    check_md5(data, name, md5)
    return data


def download(
    name: str, mirrors: Sequence[str], timeout: float, md5: Mapping[str, str]
) -> tuple[bytes, bytes]:
    """Fetch ``name.gz`` from the first mirror that gives a valid file -> (gz bytes, data)."""
    errors = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + name + ".gz"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                raw = response.read()
            data = decompress(raw, f"{name} from {url}")
            check_md5(data, name, md5)
            return raw, data
        except MNISTIntegrityError as err:
            warnings.warn(
                f"MNIST download: {err}; not cached, trying the next mirror", stacklevel=3
            )
            errors.append(str(err))
        except (urllib.error.URLError, OSError, ValueError) as err:  # timeouts are OSErrors
            errors.append(f"{url}: {err}")
    raise ConnectionError(f"could not download {name}: " + "; ".join(errors or ["no mirrors"]))
