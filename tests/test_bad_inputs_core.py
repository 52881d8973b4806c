"""Bad inputs of changevar, maps1d and the data sets: a named error naming the argument.

One table per public area (rows: call, exception type, message pattern); the principle is in
README.md, section "coursekit". The last tests check the inputs that used to be rejected or
answered wrongly and now give the right result.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import io
import math
import os
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest
import torch
from _bad_inputs import Bad, assert_named_error, ids

from coursekit import changevar as cv
from coursekit import exercises as exb
from coursekit import notebook_tools
from coursekit import practice as pr
from coursekit.datasets import (
    Checkerboard,
    GaussianMixture,
    MNISTIntegrityError,
    Rings,
    TwoMoons,
    four_modes,
    load_mnist,
    modes,
)
from coursekit.datasets import mnist as mn
from coursekit.maps1d import get_map

F64 = torch.float64


def _x(n: int = 5) -> torch.Tensor:
    return torch.linspace(0.1, 0.9, n, dtype=F64)


def _xd(n: int = 4, d: int = 2) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(0), dtype=F64)


def _normal_1d(v: torch.Tensor) -> torch.Tensor:
    return -0.5 * v**2 - 0.5 * math.log(2 * math.pi)


def _normal_2d(v: torch.Tensor) -> torch.Tensor:
    return (-0.5 * v**2 - 0.5 * math.log(2 * math.pi)).sum(1)


# graph-breaking maps that students write
_math_exp = lambda v: torch.tensor([math.exp(t) for t in v.tolist()], dtype=v.dtype)  # noqa: E731
_detached = lambda v: v.detach().exp()  # noqa: E731
_numpy_exp = lambda v: torch.from_numpy(np.exp(v.detach().numpy()))  # noqa: E731
_item_map = lambda v: torch.stack([torch.tensor(2.0 * t.item(), dtype=v.dtype) for t in v])  # noqa: E731
_half_numpy = lambda v: torch.stack(  # noqa: E731
    [v[:, 0], torch.from_numpy(np.exp(v[:, 1].detach().numpy()))], 1
)

CHANGEVAR = [
    Bad(
        "derivative: math.exp per element",
        lambda: cv.derivative(_math_exp, _x()),
        ValueError,
        r"^f: .*autograd",
    ),
    Bad(
        "derivative: .detach()",
        lambda: cv.derivative(_detached, _x()),
        ValueError,
        r"^f: .*autograd",
    ),
    Bad(
        "derivative: numpy", lambda: cv.derivative(_numpy_exp, _x()), ValueError, r"^f: .*autograd"
    ),
    Bad(
        "derivative: .item()", lambda: cv.derivative(_item_map, _x()), ValueError, r"^f: .*autograd"
    ),
    Bad(
        "log|det| 1-D: .detach()",
        lambda: cv.log_abs_det_jacobian(_detached, _x()),
        ValueError,
        r"^f: .*autograd",
    ),
    Bad(
        "log|det| 2-D: .detach()",
        lambda: cv.log_abs_det_jacobian(_detached, _xd()),
        ValueError,
        r"^f: .*autograd",
    ),
    Bad(
        "jacobian: one output through numpy",
        lambda: cv.jacobian(_half_numpy, _xd()),
        ValueError,
        r"^f: .*autograd",
    ),
    Bad("jacobian: numpy", lambda: cv.jacobian(_numpy_exp, _xd()), ValueError, r"^f: .*autograd"),
    Bad(
        "pullback: math.exp map (-inf before)",
        lambda: cv.pullback_log_prob(_normal_1d, _math_exp, _x()),
        ValueError,
        r"^f: .*autograd",
    ),
    Bad(
        "pullback density: numpy map",
        lambda: cv.pullback_density(_normal_1d, _numpy_exp, _x()),
        ValueError,
        r"^f: .*autograd",
    ),
    Bad(
        "pushforward: detached inverse",
        lambda: cv.pushforward_log_prob(_normal_1d, _detached, _x()),
        ValueError,
        r"^f_inverse: .*autograd",
    ),
    Bad(
        "pushforward density: numpy inverse 2-D",
        lambda: cv.pushforward_density(_normal_2d, _numpy_exp, _xd()),
        ValueError,
        r"^f_inverse: .*autograd",
    ),
    Bad(
        "pullback: base log-density (n, 1)",
        lambda: cv.pullback_log_prob(lambda z: _normal_2d(z)[:, None], torch.tanh, _xd()),
        ValueError,
        r"^log_prob_z: .*\(batch,\) = \(4,\).*\(4, 1\)",
    ),
    Bad(
        "pullback: forgot .sum(1) with n == d",
        lambda: cv.pullback_log_prob(_normal_1d, torch.tanh, _xd(2, 2)),
        ValueError,
        r"^log_prob_z: .*\(2, 2\)",
    ),
    Bad(
        "pullback: base log-density a scalar",
        lambda: cv.pullback_log_prob(lambda z: _normal_2d(z).sum(), torch.tanh, _xd()),
        ValueError,
        r"^log_prob_z: ",
    ),
    Bad(
        "pullback: base log-density a list",
        lambda: cv.pullback_log_prob(lambda z: _normal_1d(z).tolist(), torch.tanh, _x()),
        ValueError,
        r"^log_prob_z: .*list",
    ),
    Bad(
        "pullback: base log-density not callable",
        lambda: cv.pullback_log_prob("normal", torch.tanh, _x()),
        ValueError,
        r"^log_prob_z: .*callable",
    ),
    Bad(
        "pushforward: base log-density (n, 1)",
        lambda: cv.pushforward_log_prob(lambda v: _normal_2d(v)[:, None], torch.tanh, _xd()),
        ValueError,
        r"^log_prob_x: ",
    ),
    Bad(
        "pushforward: base log-density not callable",
        lambda: cv.pushforward_log_prob(3.0, torch.tanh, _x()),
        ValueError,
        r"^log_prob_x: .*callable",
    ),
    Bad(
        "derivative: x (batch, d)",
        lambda: cv.derivative(torch.exp, _xd()),
        ValueError,
        r"^x: .*\(batch,\)",
    ),
    Bad(
        "derivative: x int",
        lambda: cv.derivative(torch.exp, torch.arange(3)),
        ValueError,
        r"^x: .*floating",
    ),
    Bad(
        "derivative: x NaN",
        lambda: cv.derivative(torch.exp, torch.tensor([0.0, math.nan], dtype=F64)),
        ValueError,
        r"^x: .*finite",
    ),
    Bad(
        "derivative: x a list",
        lambda: cv.derivative(torch.exp, [0.1, 0.2]),
        ValueError,
        r"^x: .*torch.Tensor",
    ),
    Bad(
        "derivative: x numpy",
        lambda: cv.derivative(torch.exp, np.ones(3)),
        ValueError,
        r"^x: .*torch.Tensor",
    ),
    Bad(
        "derivative: f returns a sum",
        lambda: cv.derivative(lambda v: v.sum(), _x()),
        ValueError,
        r"^f: .*shape",
    ),
    Bad(
        "derivative: f not callable",
        lambda: cv.derivative(None, _x()),
        ValueError,
        r"^f: .*callable",
    ),
    Bad(
        "jacobian: x (batch,)",
        lambda: cv.jacobian(torch.exp, _x()),
        ValueError,
        r"^x: .*\(batch, d\)",
    ),
    Bad(
        "jacobian: x 3-D",
        lambda: cv.jacobian(torch.exp, torch.zeros(2, 2, 2, dtype=F64)),
        ValueError,
        r"^x: .*shape",
    ),
    Bad(
        "jacobian: f drops a column",
        lambda: cv.jacobian(lambda v: v[:, :1], _xd()),
        ValueError,
        r"^f: .*shape",
    ),
    Bad(
        "pullback: x inf",
        lambda: cv.pullback_log_prob(_normal_1d, torch.tanh, torch.tensor([math.inf], dtype=F64)),
        ValueError,
        r"^x: .*finite",
    ),
    Bad(
        "pushforward: z (batch, d, d)",
        lambda: cv.pushforward_log_prob(_normal_2d, torch.tanh, torch.zeros(2, 2, 2, dtype=F64)),
        ValueError,
        r"^z: .*shape",
    ),
    Bad(
        "pushforward: f_inverse wrong shape",
        lambda: cv.pushforward_log_prob(_normal_1d, lambda v: v[:-1], _x()),
        ValueError,
        r"^f_inverse: .*shape",
    ),
]

_EXP, _LOGIT, _CDF, _AFFINE = (get_map(n) for n in ("exp", "logit", "normal_cdf", "affine"))

MAPS1D = [
    Bad(
        "exp inverse of a negative z (NaN before)",
        lambda: _EXP.inverse(torch.tensor([-1.0, 0.0], dtype=F64)),
        ValueError,
        r"^z: .*\[0, inf\].*-1",
    ),
    Bad(
        "exp_neg inverse of a negative z",
        lambda: get_map("exp_neg").inverse(torch.tensor([-0.5], dtype=F64)),
        ValueError,
        r"^z: .*\[0, inf\]",
    ),
    Bad(
        "normal_cdf inverse of 1.5 (NaN before)",
        lambda: _CDF.inverse(torch.tensor([1.5], dtype=F64)),
        ValueError,
        r"^z: .*\[0, 1\].*1\.5",
    ),
    Bad(
        "normal_cdf inverse of -0.1",
        lambda: _CDF.inverse(torch.tensor([-0.1], dtype=F64)),
        ValueError,
        r"^z: .*\[0, 1\]",
    ),
    Bad(
        "logit forward of 1.5 (NaN before)",
        lambda: _LOGIT.forward(torch.tensor([1.5], dtype=F64)),
        ValueError,
        r"^x: .*\[0, 1\].*domain",
    ),
    Bad(
        "logit forward of -0.5",
        lambda: _LOGIT.forward(torch.tensor([0.5, -0.5], dtype=F64)),
        ValueError,
        r"^x: .*1 outside",
    ),
    Bad(
        "x_range q = 0.7 (reversed before)",
        lambda: _EXP.x_range(q=0.7),
        ValueError,
        r"^q: .*0 < q < 0.5",
    ),
    Bad("x_range q = 0", lambda: _EXP.x_range(q=0), ValueError, r"^q: "),
    Bad("x_range q = 0.5", lambda: _AFFINE.x_range(q=0.5), ValueError, r"^q: "),
    Bad("z_range q = -1", lambda: _EXP.z_range(q=-1.0), ValueError, r"^q: "),
    Bad("z_range q a string", lambda: _EXP.z_range(q="0.1"), ValueError, r"^q: "),
    Bad("sample n = 0", lambda: _EXP.sample(0), ValueError, r"^n: .*positive integer"),
    Bad("sample n = 2.5", lambda: _EXP.sample(2.5), ValueError, r"^n: "),
    Bad("sample n = True", lambda: _EXP.sample(True), ValueError, r"^n: "),
    Bad(
        "sample generator a seed",
        lambda: _EXP.sample(3, generator=0),
        ValueError,
        r"^generator: .*torch.Generator",
    ),
    Bad(
        "unknown parameter",
        lambda: _EXP.forward(_x(), scale=2.0),
        ValueError,
        r"^scale: not a parameter",
    ),
    Bad("sigma = 0", lambda: _EXP.forward(_x(), sigma=0.0), ValueError, r"^sigma: .*positive"),
    Bad("mu NaN", lambda: _EXP.forward(_x(), mu=math.nan), ValueError, r"^mu: .*finite"),
    Bad("mu a string", lambda: _EXP.forward(_x(), mu="1"), ValueError, r"^mu: expected a number"),
    Bad("affine a = 0", lambda: _AFFINE.forward(_x(), a=0.0), ValueError, r"^a: .*bijection"),
    Bad("logit scale < 0", lambda: _LOGIT.inverse(_x(), scale=-1.0), ValueError, r"^scale: "),
    Bad("unknown map name", lambda: get_map("tanh"), ValueError, r"^name: expected one of"),
    Bad(
        "forward x (batch, 1)", lambda: _EXP.forward(_x()[:, None]), ValueError, r"^x: .*\(batch,\)"
    ),
    Bad("inverse z int", lambda: _EXP.inverse(torch.arange(3)), ValueError, r"^z: .*floating"),
    Bad("forward x a list", lambda: _EXP.forward([0.1]), ValueError, r"^x: .*torch.Tensor"),
    Bad("base_log_prob x 2-D", lambda: _EXP.base_log_prob(_xd()), ValueError, r"^x: .*\(batch,\)"),
]

TOY = [
    Bad("sample n = 0", lambda: four_modes().sample(0), ValueError, r"^n: .*positive integer"),
    Bad("sample n = 2.5", lambda: four_modes().sample(2.5), ValueError, r"^n: "),
    Bad("sample n = -3", lambda: four_modes().sample(-3), ValueError, r"^n: "),
    Bad("sample n = True", lambda: four_modes().sample(True), ValueError, r"^n: "),
    Bad("sample n a string", lambda: four_modes().sample("10"), ValueError, r"^n: "),
    Bad(
        "sample dtype int64 (truncated before)",
        lambda: four_modes().sample(3, dtype=torch.int64),
        ValueError,
        r"^dtype: .*floating",
    ),
    Bad(
        "sample dtype a string", lambda: Rings().sample(3, dtype="float32"), ValueError, r"^dtype: "
    ),
    Bad(
        "sample generator a seed",
        lambda: Checkerboard().sample(3, generator=0),
        ValueError,
        r"^generator: ",
    ),
    Bad("modes(2.0) (named '2.0 modes' before)", lambda: modes(2.0), ValueError, r"^k: .*integer"),
    Bad("modes(5)", lambda: modes(5), ValueError, r"^k: "),
    Bad("modes(True)", lambda: modes(True), ValueError, r"^k: "),
    Bad("modes('4')", lambda: modes("4"), ValueError, r"^k: "),
    Bad(
        "mixture means (K,)",
        lambda: GaussianMixture([1.0, 2.0, 3.0]),
        ValueError,
        r"^means: .*\(K, 2\)",
    ),
    Bad(
        "mixture means NaN",
        lambda: GaussianMixture([[0.0, math.nan]]),
        ValueError,
        r"^means: .*finite",
    ),
    Bad("mixture means a string", lambda: GaussianMixture("ab"), ValueError, r"^means: .*numbers"),
    Bad(
        "mixture means ragged",
        lambda: GaussianMixture([[0.0, 1.0], [2.0]]),
        ValueError,
        r"^means: ",
    ),
    Bad(
        "mixture stds < 0", lambda: GaussianMixture([[0.0, 0.0]], stds=-1.0), ValueError, r"^stds: "
    ),
    Bad(
        "mixture stds count",
        lambda: GaussianMixture([[0.0, 0.0]] * 3, stds=[1.0, 2.0]),
        ValueError,
        r"^stds: .*3",
    ),
    Bad(
        "mixture stds inf",
        lambda: GaussianMixture([[0.0, 0.0]], stds=math.inf),
        ValueError,
        r"^stds: .*finite",
    ),
    Bad(
        "mixture weights < 0",
        lambda: GaussianMixture([[0.0, 0.0]] * 2, weights=[1.0, -1.0]),
        ValueError,
        r"^weights: ",
    ),
    Bad(
        "mixture weights inf",
        lambda: GaussianMixture([[0.0, 0.0]] * 2, weights=[1.0, math.inf]),
        ValueError,
        r"^weights: ",
    ),
    Bad("checkerboard size 0", lambda: Checkerboard(size=0), ValueError, r"^size: "),
    Bad("checkerboard size inf", lambda: Checkerboard(size=math.inf), ValueError, r"^size: "),
    Bad("checkerboard size a string", lambda: Checkerboard(size="4"), ValueError, r"^size: "),
    Bad("rings radii empty", lambda: Rings(radii=[]), ValueError, r"^radii: "),
    Bad("rings radii < 0", lambda: Rings(radii=[-1.0]), ValueError, r"^radii: "),
    Bad("rings std 0", lambda: Rings(std=0.0), ValueError, r"^std: "),
    Bad("two moons noise < 0", lambda: TwoMoons(noise=-0.1), ValueError, r"^noise: "),
    Bad(
        "log_prob x (batch, 3)",
        lambda: four_modes().log_prob(torch.zeros(3, 3, dtype=F64)),
        ValueError,
        r"^x: .*\(batch, 2\)",
    ),
    Bad(
        "log_prob x int",
        lambda: Rings().log_prob(torch.zeros(3, 2, dtype=torch.long)),
        ValueError,
        r"^x: .*floating",
    ),
    Bad(
        "log_prob x NaN",
        lambda: Checkerboard().log_prob(torch.full((1, 2), math.nan)),
        ValueError,
        r"^x: .*finite",
    ),
    Bad(
        "log_prob x numpy",
        lambda: four_modes().log_prob(np.zeros((3, 2))),
        ValueError,
        r"^x: .*torch.Tensor",
    ),
    Bad(
        "two moons has no log_prob",
        lambda: TwoMoons().log_prob(torch.zeros(1, 2)),
        NotImplementedError,
        r"two moons",
    ),
]


# ------------------------------------------------------------------------------- MNIST

_TMP = Path(tempfile.mkdtemp(prefix="coursekit-bad-inputs-"))
_A_FILE = _TMP / "a_file"
_A_FILE.write_text("not a directory")
_HALF = _TMP / "half"  # holds the test images but not the test labels
_HALF.mkdir()
(_HALF / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"\0\0\x08\x01\0\0\0\0"))
_CORRUPT = _TMP / "corrupt"
_CORRUPT.mkdir()
for _name in mn.FILES["test"]:
    (_CORRUPT / _name).write_bytes(b"garbage")


@contextmanager
def _env(value: str | None) -> Iterator[None]:
    before = os.environ.get(mn.ENV_VAR)
    if value is None:
        os.environ.pop(mn.ENV_VAR, None)
    else:
        os.environ[mn.ENV_VAR] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(mn.ENV_VAR, None)
        else:
            os.environ[mn.ENV_VAR] = before


def _with_env(value: str, fn: Callable[[], object]) -> Callable[[], object]:
    def run() -> object:
        with _env(value):
            return fn()

    return run


_offline = dict(mirrors=["http://127.0.0.1:9/"], timeout=0.5)

MNIST_TABLE = [
    Bad(
        "fallback='False' (a true string before)",
        lambda: load_mnist(split="test", fallback="False"),
        TypeError,
        r"^fallback: expected True or False, got str",
    ),
    Bad(
        "download 0",
        lambda: load_mnist(split="test", download=0),
        TypeError,
        r"^download: ",
    ),
    Bad("split a list", lambda: load_mnist(split=["test"]), ValueError, r"^split: "),
    Bad(
        "explicit root lacking a file, stale COURSEKIT_MNIST_DIR set",
        _with_env("/nonexistent/stale", lambda: load_mnist(_HALF, split="test")),
        FileNotFoundError,
        r"^root: .*lacks",
    ),
    Bad(
        "explicit root that does not exist",
        lambda: load_mnist("/nonexistent/typo", split="test"),
        FileNotFoundError,
        r"^root: .*does not exist",
    ),
    Bad(
        "explicit root that is a file",
        lambda: load_mnist(_A_FILE, split="test"),
        FileNotFoundError,
        r"^root: .*is a file",
    ),
    Bad(
        "explicit root lacking a file",
        lambda: load_mnist(_HALF, split="test"),
        FileNotFoundError,
        r"^root: .*lacks t10k-labels-idx1-ubyte",
    ),
    Bad(
        "explicit root for the other split",
        lambda: load_mnist(_HALF, split="train"),
        FileNotFoundError,
        r"^root: .*train-images",
    ),
    Bad(
        "explicit root corrupt",
        lambda: load_mnist(_CORRUPT, split="test"),
        MNISTIntegrityError,
        r"t10k-images-idx3-ubyte",
    ),
    Bad(
        "root not a path",
        lambda: load_mnist(123, split="test"),
        ValueError,
        r"^root: .*directory path",
    ),
    Bad(
        "COURSEKIT_MNIST_DIR names a file",
        _with_env(str(_A_FILE), lambda: load_mnist(split="test")),
        FileNotFoundError,
        r"^COURSEKIT_MNIST_DIR .*is a file",
    ),
    Bad(
        "COURSEKIT_MNIST_DIR does not exist",
        _with_env("/nonexistent/mnist", lambda: load_mnist(split="test")),
        FileNotFoundError,
        r"^COURSEKIT_MNIST_DIR .*does not exist",
    ),
    Bad(
        "COURSEKIT_MNIST_DIR lacks a file",
        _with_env(str(_HALF), lambda: load_mnist(split="test")),
        FileNotFoundError,
        r"^COURSEKIT_MNIST_DIR .*lacks",
    ),
    Bad("split 'validation'", lambda: load_mnist(split="validation"), ValueError, r"^split: "),
    Bad(
        "cache_dir under a file",
        _with_env("", lambda: load_mnist(split="test", cache_dir=_A_FILE / "sub", **_offline)),
        NotADirectoryError,
        r"^cache_dir: .*a_file.* is a file",
    ),
    Bad(
        "cache_dir is a file",
        _with_env("", lambda: load_mnist(split="test", cache_dir=_A_FILE, **_offline)),
        NotADirectoryError,
        r"^cache_dir: ",
    ),
    Bad("timeout 0", lambda: load_mnist(split="test", timeout=0), ValueError, r"^timeout: "),
    Bad(
        "timeout negative",
        lambda: load_mnist(split="test", timeout=-1.0),
        ValueError,
        r"^timeout: ",
    ),
    Bad(
        "mirrors a string (iterated by letter before)",
        lambda: load_mnist(split="test", mirrors="http://x/"),
        ValueError,
        r"^mirrors: ",
    ),
    Bad("md5 a list", lambda: load_mnist(split="test", md5=["abc"]), ValueError, r"^md5: "),
    Bad(
        "parse_idx bad magic",
        lambda: mn.parse_idx(b"\x01\x02\x03\x04", "thing"),
        MNISTIntegrityError,
        r"^thing: .*magic",
    ),
    Bad(
        "offline, no fallback",
        _with_env(
            "",
            lambda: load_mnist(split="test", fallback=False, cache_dir=_TMP / "empty", **_offline),
        ),
        ConnectionError,
        r"^MNIST test: no local copy",
    ),
]


PRACTICE = [
    Bad(
        "gap_region target None",
        lambda: pr.gap_region(torch.zeros(2, 2), None, 0.1, 2.0),
        TypeError,
        r"^target: .*log_prob",
    ),
    Bad(
        "gap_mass target a string",
        lambda: pr.gap_mass(torch.zeros(2, 2), "4 modes", 0.1, 2.0),
        TypeError,
        r"^target: ",
    ),
    Bad("summarise a float", lambda: pr.summarise(3.0), TypeError, r"^values: .*list"),
    Bad("summarise strings", lambda: pr.summarise(["a", "b"]), TypeError, r"^values: .*numbers"),
    Bad(
        "summarise a tensor",
        lambda: pr.summarise(torch.tensor([1.0, 2.0])),
        TypeError,
        r"^values: ",
    ),
    Bad(
        "summarise_runs runs a dict",
        lambda: pr.summarise_runs({"kl": 1.0}, ("model",), "kl"),
        TypeError,
        r"^runs: .*list of dicts",
    ),
    Bad(
        "summarise_runs by a string",
        lambda: pr.summarise_runs([{"model": "a", "kl": 1.0}], "model", "kl"),
        TypeError,
        r"^by: .*\('model',\)",
    ),
    Bad(
        "summarise_runs a row not a dict",
        lambda: pr.summarise_runs([3], ("model",), "kl"),
        TypeError,
        r"^runs: row 0 ",
    ),
    Bad(
        "summarise_runs value not a number",
        lambda: pr.summarise_runs([{"model": "a", "kl": "x"}], ("model",), "kl"),
        TypeError,
        r"^runs: row 0's 'kl'",
    ),
    Bad(
        "summarise_runs unhashable field",
        lambda: pr.summarise_runs([{"model": [1], "kl": 1.0}], ("model",), "kl"),
        TypeError,
        r"^runs: row 0's fields",
    ),
    Bad("parameter_count of an int", lambda: pr.parameter_count(3), TypeError, r"^model: "),
    Bad("build_flow name an int", lambda: pr.build_flow(3), TypeError, r"^name: "),
    Bad(
        "build_flow seed a string",
        lambda: pr.build_flow("zuko MAF", seed="0"),
        TypeError,
        r"^seed: ",
    ),
    Bad(
        "build_flow seed 2**63",
        lambda: pr.build_flow("zuko MAF", seed=2**63),
        ValueError,
        r"^seed: .*2\*\*63",
    ),
    Bad("zuko_flow name a list", lambda: pr.zuko_flow(["NSF"]), TypeError, r"^name: "),
]


# --------------------------------------------------------------- the maintainer tools

_TOOLS_TMP = Path(tempfile.mkdtemp(prefix="coursekit-bad-tools-"))


def _build_book_module():
    path = Path(__file__).resolve().parents[1] / "tools" / "build_book.py"
    spec = importlib.util.spec_from_file_location("build_book_for_bad_inputs", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class ToolFailed(Exception):
    """A tool's ``main`` returned a non-zero status; the message is its status and stderr."""


def _run_tool(main: Callable[[list[str]], int], argv: list[str]) -> None:
    err = io.StringIO()
    with redirect_stdout(io.StringIO()), redirect_stderr(err):
        status = main(argv)
    if status != 0:
        raise ToolFailed(f"exit {status}: {err.getvalue()}")


def _solutions(root: Path) -> Path:
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    sol = root / "solutions"
    sol.mkdir(parents=True, exist_ok=True)
    nb = new_notebook(
        cells=[new_code_cell("### BEGIN SOLUTION Exercise 9.1: f\nx = 1\n### END SOLUTION")]
    )
    nbformat.write(nb, sol / "09_a.ipynb")
    return sol


def _foreign_exercises() -> list[str]:
    """Solutions, and a folder X holding a notebook of the same name that someone wrote."""
    root = Path(tempfile.mkdtemp(dir=_TOOLS_TMP))
    x = root / "X"
    x.mkdir()
    (x / "09_a.ipynb").write_text("{}")
    return ["build", "--solutions", str(_solutions(root)), "--exercises", str(x)]


def _foreign_book_out() -> Path:
    out = Path(tempfile.mkdtemp(dir=_TOOLS_TMP))
    (out / "src").mkdir()
    (out / "src" / "mine.txt").write_text("not the book's")
    return out


def _empty_dir() -> str:
    return tempfile.mkdtemp(dir=_TOOLS_TMP)


TOOLS = [
    Bad(
        "exercises build over notebooks it did not write (overwrote 8 before)",
        lambda: _run_tool(exb.main, _foreign_exercises()),
        ToolFailed,
        r"^exit 2: error: exercises: .*09_a\.ipynb.*not written by this generator.*--overwrite",
    ),
    Bad(
        "exercises build --check on an empty folder (checked 0, exit 0 before)",
        lambda: _run_tool(exb.main, ["build", "--check", "--solutions", _empty_dir()]),
        ToolFailed,
        r"^exit 2: error: solutions: no \*\.ipynb notebook",
    ),
    Bad(
        "exercises build from an empty folder",
        lambda: exb.build(Path(_empty_dir()), Path(_empty_dir())),
        FileNotFoundError,
        r"^solutions: no \*\.ipynb",
    ),
    Bad(
        "notebook_tools execute a missing notebook (skip, exit 0 before)",
        lambda: _run_tool(notebook_tools.main, ["execute", str(_TOOLS_TMP / "typo.ipynb")]),
        ToolFailed,
        r"^exit 2: error: .*typo\.ipynb: no such notebook",
    ),
    Bad(
        "build_book --out a folder it did not make (deleted its files before)",
        lambda: _build_book_module().check_out(_foreign_book_out()),
        FileExistsError,
        r"^--out: .*not empty and no book build made it.*--overwrite",
    ),
    Bad(
        "build_book --out a file",
        lambda: _build_book_module().check_out(Path(__file__)),
        FileExistsError,
        r"^--out: .*is a file",
    ),
]


@pytest.mark.parametrize("case", TOOLS, ids=ids(TOOLS))
def test_tools_bad_inputs(case: Bad) -> None:
    assert_named_error(case)


def test_tools_never_remove_or_replace_files_they_did_not_write(tmp_path) -> None:
    """An unrelated notebook in X survives exercises build; a foreign file in a staging
    tree survives the book's staging, which still removes what it staged before."""
    sol = _solutions(tmp_path)
    x = tmp_path / "X"
    x.mkdir()
    (x / "01_mine.ipynb").write_text("{}")
    assert exb.build(sol, x) == []
    assert (x / "01_mine.ipynb").read_text() == "{}" and (x / "09_a.ipynb").is_file()
    (sol / "09_a.ipynb").rename(sol / "10_b.ipynb")
    assert exb.build(sol, x) == []  # its own stale 09_a goes, the unrelated notebook stays
    assert sorted(p.name for p in x.glob("*.ipynb")) == ["01_mine.ipynb", "10_b.ipynb"]
    (x / "12_c.ipynb").write_text("{}")
    (sol / "12_c.ipynb").write_bytes((sol / "10_b.ipynb").read_bytes())
    with pytest.raises(FileExistsError):
        exb.build(sol, x)
    assert (x / "12_c.ipynb").read_text() == "{}"
    assert exb.build(sol, x, overwrite=True) == [] and (x / "12_c.ipynb").read_text() != "{}"

    book = _build_book_module()
    repo = tmp_path / "repo"
    (repo / "book").mkdir(parents=True)
    (repo / "book" / "index.md").write_text("# Index\n")
    (repo / "book" / "old.md").write_text("# Old\n")
    src = tmp_path / "out" / "src"
    src.mkdir(parents=True)
    (src / "mine.txt").write_text("keep")
    book.stage(repo, src)
    (repo / "book" / "old.md").unlink()
    book.stage(repo, src)
    assert sorted(p.name for p in src.iterdir()) == ["index.md", "mine.txt"]
    assert book.check_out(tmp_path / "out") == (tmp_path / "out").resolve()  # made by a build


@pytest.mark.parametrize("case", PRACTICE, ids=ids(PRACTICE))
def test_practice_bad_inputs(case: Bad) -> None:
    assert_named_error(case)


@pytest.mark.parametrize("case", CHANGEVAR, ids=ids(CHANGEVAR))
def test_changevar_bad_inputs(case: Bad) -> None:
    assert_named_error(case)


@pytest.mark.parametrize("case", MAPS1D, ids=ids(MAPS1D))
def test_maps1d_bad_inputs(case: Bad) -> None:
    assert_named_error(case)


@pytest.mark.parametrize("case", TOY, ids=ids(TOY))
def test_toy_bad_inputs(case: Bad) -> None:
    assert_named_error(case)


@pytest.mark.parametrize("case", MNIST_TABLE, ids=ids(MNIST_TABLE))
def test_mnist_bad_inputs(case: Bad) -> None:
    assert_named_error(case)


# ------------------------------------------------------------ right answers, not errors


def test_constant_and_connected_maps_still_differentiate() -> None:
    """A constant map has derivative 0 (right); a map mixing torch and a constant branch too."""
    x = _x()
    assert torch.equal(cv.derivative(lambda v: torch.full_like(v, 3.0), x), torch.zeros_like(x))
    assert torch.equal(
        cv.jacobian(lambda v: torch.ones_like(v), _xd()), torch.zeros(4, 2, 2, dtype=F64)
    )
    # second output constant, first connected: the zero row is right
    jac = cv.jacobian(lambda v: torch.stack([2 * v[:, 0], torch.ones_like(v[:, 1])], 1), _xd())
    assert torch.equal(jac[:, 0], torch.tensor([2.0, 0.0], dtype=F64).expand(4, 2))
    assert torch.equal(jac[:, 1], torch.zeros(4, 2, dtype=F64))
    lp = cv.pullback_log_prob(_normal_2d, lambda v: 2 * v, _xd())
    want = _normal_2d(2 * _xd()) + 2 * math.log(2.0)
    assert (lp - want).abs().max() < 1e-12


def test_maps1d_boundaries_give_the_limits() -> None:
    """Closed intervals: the boundary of the domain/image maps to ±inf, not an error."""
    assert _EXP.inverse(torch.tensor([0.0], dtype=F64)).item() == -math.inf
    assert _CDF.inverse(torch.tensor([0.0, 1.0], dtype=F64)).tolist() == [-math.inf, math.inf]
    assert _LOGIT.forward(torch.tensor([0.0, 1.0], dtype=F64)).tolist() == [-math.inf, math.inf]
    lo, hi = _EXP.x_range(q=0.25)
    assert lo < hi


def test_numpy_integers_are_integers() -> None:
    assert four_modes().sample(np.int64(3)).shape == (3, 2)
    x, z = _EXP.sample(np.int32(4), generator=torch.Generator().manual_seed(0))
    assert x.shape == z.shape == (4,)
    assert modes(np.int64(2)).name == "2 modes"
    assert Checkerboard(size=np.float32(2.0)).size == 2.0


def _fake_split(split: str) -> dict[str, bytes]:
    img_name, lab_name = mn.FILES[split]
    images = np.zeros((3, 28, 28), np.uint8)
    labels = np.array([1, 2, 3], np.uint8)
    img = b"\0\0\x08\x03" + (3).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2 + images.tobytes()
    lab = b"\0\0\x08\x01" + (3).to_bytes(4, "big") + labels.tobytes()
    return {img_name: img, lab_name: lab}


def test_mnist_download_kept_when_the_default_cache_cannot_be_written(
    tmp_path, monkeypatch
) -> None:
    files = _fake_split("test")
    md5 = {n: hashlib.md5(d).hexdigest() for n, d in files.items()}
    monkeypatch.delenv(mn.ENV_VAR, raising=False)
    blocker = tmp_path / "xdg"
    blocker.write_text("a file where the cache directory should be")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    monkeypatch.setattr(mn, "_download", lambda name, *a: (gzip.compress(files[name]), files[name]))
    with pytest.warns(UserWarning, match="could not cache"):
        data = load_mnist(split="test", md5=md5)
    assert data.complete and data.labels.tolist() == [1, 2, 3]


def test_an_explicit_root_wins_over_a_stale_environment_variable(tmp_path, monkeypatch) -> None:
    """A valid ``root`` loads even when COURSEKIT_MNIST_DIR names a folder that is gone."""
    files = _fake_split("test")
    md5 = {n: hashlib.md5(d).hexdigest() for n, d in files.items()}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    monkeypatch.setenv(mn.ENV_VAR, str(tmp_path / "gone"))
    data = load_mnist(tmp_path, split="test", md5=md5, download=False)
    assert data.complete and data.labels.tolist() == [1, 2, 3]
    assert data.source == f"root: {tmp_path}"


def test_mnist_corrupt_cache_offline_keeps_the_valid_file(tmp_path, monkeypatch) -> None:
    files = _fake_split("test")
    md5 = {n: hashlib.md5(d).hexdigest() for n, d in files.items()}
    monkeypatch.delenv(mn.ENV_VAR, raising=False)
    cache = tmp_path / "cache"
    cache.mkdir()
    img_name, lab_name = mn.FILES["test"]
    (cache / img_name).write_bytes(files[img_name][:-5])  # truncated
    (cache / lab_name).write_bytes(files[lab_name])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = load_mnist(split="test", md5=md5, cache_dir=cache, **_offline)
    assert not data.complete  # the offline fallback
    assert not (cache / img_name).exists()
    assert (cache / lab_name).read_bytes() == files[lab_name]


def test_the_principle_is_written_and_the_tables_are_large() -> None:
    """README states the principle; the tables hold at least 150 bad inputs in all."""
    import test_bad_inputs_checkers as checker_tables
    import test_bad_inputs_flows as flow_tables

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## coursekit: a right answer or a named error", 1)[1].split("\n## ")[0]
    for phrase in (
        "named error",
        "never a silent wrong answer",
        "before training",
        "exits with code 2",
        "tests/test_bad_inputs_",
    ):
        assert phrase in section, phrase
    tables = [CHANGEVAR, MAPS1D, TOY, MNIST_TABLE, PRACTICE, TOOLS, checker_tables.CHECKER_ARGS]
    tables += [flow_tables.FLOWS, flow_tables.PREPROCESSING, flow_tables.CHECKPOINTS]
    tables += [flow_tables.TRAINING, flow_tables.FLAGS, checker_tables.SPECIFIC]
    assert sum(len(t) for t in tables) >= 150
