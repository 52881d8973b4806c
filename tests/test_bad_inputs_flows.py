"""Bad inputs of the flows, the image preprocessing, checkpoints, ``fit`` and the MNIST
command: a named error naming the argument (the principle: README.md, section "coursekit").

One table per public area; then the inputs that now give the right answer (dtype agreement
between toy data and models, empty batches, samples of the image models in their domain),
and the training command's promise: every bad flag exits with code 2 before training.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from _bad_inputs import Bad, assert_named_error, ids
from torch import nn

from coursekit import train_mnist as tm
from coursekit.datasets import four_modes
from coursekit.datasets.mnist import ENV_VAR, FILES
from coursekit.flows import (
    AffineCoupling,
    CheckpointError,
    DequantizedImageFlow,
    DequantizedImages,
    FlowSequence,
    ImageFlowConfig,
    ImageRealNVP,
    Logit,
    Permutation,
    RealNVP,
    Squeeze,
    UnitScale,
    VariationalDequantizer,
    dequantize,
    image_bits_per_dim,
    importance_weighted_bits_per_dim,
    squeeze,
    unsqueeze,
)
from coursekit.flows.checkpoint import read_checkpoint
from coursekit.practice import ZukoDensity
from coursekit.pretrained import MNIST_CHECKPOINT, load_pretrained_mnist
from coursekit.train_mnist_checks import UsageError
from coursekit.training import TrainingDivergedError, fit
from coursekit.training_run import Callback, fit_run

pytestmark = pytest.mark.usefixtures("one_torch_thread")

F64 = torch.float64
TINY = dict(
    image_shape=[1, 8, 8],
    n_scales=2,
    hidden=[4, 4],
    n_blocks=1,
    n_checker=1,
    n_channel=1,
    n_final=1,
    actnorm=True,
    invconv=True,
    block_kernel=1,
    split_prior=True,
)


def _flow() -> RealNVP:
    torch.manual_seed(0)
    return RealNVP(2, n_layers=2, hidden=(8,))


def _image_model() -> ImageRealNVP:
    torch.manual_seed(0)
    return ImageRealNVP(**TINY)


def _images(n: int = 4) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (n, 1, 8, 8), generator=g, dtype=torch.uint8)


def _unit(n: int = 4) -> torch.Tensor:
    return dequantize(_images(n), generator=torch.Generator().manual_seed(1)) / 256


def _zuko(**kw) -> nn.Module:
    import zuko

    torch.manual_seed(0)
    return zuko.flows.NSF(2, **kw)


def _pair(levels: int = 16, flow: nn.Module | None = None) -> DequantizedImageFlow:
    """A tiny 8×8 flow and variational dequantizer for ``levels`` pixel levels."""
    torch.manual_seed(0)
    q = VariationalDequantizer(
        (1, 8, 8), hidden=4, n_couplings=1, context_channels=2, levels=levels
    )
    return DequantizedImageFlow(_image_model() if flow is None else flow, q)


_CKPT_TMP = Path(__import__("tempfile").mkdtemp(prefix="coursekit-bad-pair-"))


def _flow_16() -> RealNVP:
    torch.manual_seed(0)
    return RealNVP(64, n_layers=2, hidden=(8,))


class _FailingFlow(nn.Module):
    """A flow whose ``log_prob`` fails: ``image_bits_per_dim`` must still restore its mode."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        raise ArithmeticError("log_prob failed")


def _bits_then_mode() -> None:
    model = _FailingFlow().train()
    try:
        image_bits_per_dim(model, _images())
    except ArithmeticError:
        pass
    if model.training:
        raise ValueError("model: back in training mode after the error")
    raise AssertionError("model: left in eval mode after the error")


FLOWS = [
    Bad(
        "ZukoDensity of a conditional zuko flow (every call failed before)",
        lambda: ZukoDensity(_zuko(context=3)),
        ValueError,
        r"^flow: .*unconditional",
    ),
    Bad(
        "ZukoDensity of an nn.Linear",
        lambda: ZukoDensity(nn.Linear(2, 2)),
        TypeError,
        r"^flow: .*zuko flow",
    ),
    Bad(
        "ZukoDensity log_prob x of 3 features",
        lambda: ZukoDensity(_zuko()).log_prob(torch.zeros(4, 3)),
        ValueError,
        r"^x: ",
    ),
    Bad(
        "ZukoDensity sample generator a seed",
        lambda: ZukoDensity(_zuko()).sample(3, generator=1),
        ValueError,
        r"^generator: ",
    ),
    Bad(
        "log_prob x (batch, 3)",
        lambda: _flow().log_prob(torch.zeros(3, 3)),
        ValueError,
        r"^x: .*\(batch, 2\)",
    ),
    Bad(
        "log_prob x (2,) without batch",
        lambda: _flow().log_prob(torch.zeros(2)),
        ValueError,
        r"^x: .*\(batch, 2\)",
    ),
    Bad(
        "log_prob x int",
        lambda: _flow().log_prob(torch.zeros(3, 2, dtype=torch.long)),
        ValueError,
        r"^x: .*floating",
    ),
    Bad(
        "log_prob x NaN",
        lambda: _flow().log_prob(torch.full((1, 2), math.nan)),
        ValueError,
        r"^x: .*finite",
    ),
    Bad(
        "log_prob x numpy",
        lambda: _flow().log_prob(np.zeros((3, 2))),
        ValueError,
        r"^x: .*torch.Tensor",
    ),
    Bad(
        "inverse z (batch, 3)",
        lambda: _flow().inverse(torch.zeros(3, 3)),
        ValueError,
        r"^z: .*\(batch, 2\)",
    ),
    Bad("RealNVP dim 1", lambda: RealNVP(1), ValueError, r"^dim: .*at least 2"),
    Bad("RealNVP dim 2.5", lambda: RealNVP(2.5), ValueError, r"^dim: "),
    Bad("RealNVP n_layers 0", lambda: RealNVP(2, n_layers=0), ValueError, r"^n_layers: "),
    Bad("RealNVP hidden a string", lambda: RealNVP(2, hidden="64"), ValueError, r"^hidden: "),
    Bad("RealNVP hidden 0", lambda: RealNVP(2, hidden=(0,)), ValueError, r"^hidden: "),
    Bad("RealNVP hidden 8.5", lambda: RealNVP(2, hidden=(8.5,)), ValueError, r"^hidden: "),
    Bad(
        "RealNVP permutation",
        lambda: RealNVP(2, permutation="shuffle"),
        ValueError,
        r"^permutation: ",
    ),
    Bad(
        "RealNVP scale_bound 0", lambda: RealNVP(2, scale_bound=0.0), ValueError, r"^scale_bound: "
    ),
    Bad("sample n 0", lambda: _flow().sample(0), ValueError, r"^n: "),
    Bad("sample n 2.5", lambda: _flow().sample(2.5), ValueError, r"^n: "),
    Bad(
        "sample temperature 0",
        lambda: _flow().sample(3, temperature=0.0),
        ValueError,
        r"^temperature: ",
    ),
    Bad(
        "sample temperature NaN",
        lambda: _flow().sample(3, temperature=math.nan),
        ValueError,
        r"^temperature: ",
    ),
    Bad(
        "sample generator a seed",
        lambda: _flow().sample(3, generator=0),
        ValueError,
        r"^generator: ",
    ),
    Bad("FlowSequence empty", lambda: FlowSequence([]), ValueError, r"^layers: .*at least one"),
    Bad(
        "FlowSequence of a Linear",
        lambda: FlowSequence([nn.Linear(2, 2)]),
        ValueError,
        r"^layers: .*Bijection",
    ),
    Bad(
        "FlowSequence 2 then 3 (do not chain)",
        lambda: FlowSequence([AffineCoupling([1, 0]), AffineCoupling([1, 0, 1])]),
        ValueError,
        r"^layers: .*do not chain.*\(2,\).*\(3,\)",
    ),
    Bad(
        "FlowSequence permutation 3 after coupling 2",
        lambda: FlowSequence([AffineCoupling([1, 0]), Permutation([2, 0, 1])]),
        ValueError,
        r"^layers: .*chain",
    ),
    Bad("Permutation repeated", lambda: Permutation([0, 0]), ValueError, r"^perm: "),
    Bad("Permutation.reverse(0)", lambda: Permutation.reverse(0), ValueError, r"^dim: "),
    Bad("AffineCoupling mask 2", lambda: AffineCoupling([2, 0]), ValueError, r"^mask: "),
    Bad("AffineCoupling mask all kept", lambda: AffineCoupling([1, 1]), ValueError, r"^mask: "),
    Bad("AffineCoupling mask empty", lambda: AffineCoupling([]), ValueError, r"^mask: "),
    Bad(
        "AffineCoupling hidden a string",
        lambda: AffineCoupling([1, 0], hidden="64"),
        ValueError,
        r"^hidden: ",
    ),
    Bad(
        "squeeze odd height",
        lambda: squeeze(torch.zeros(1, 1, 3, 4)),
        ValueError,
        r"^x: .*even H and W",
    ),
    Bad("squeeze 2-D", lambda: squeeze(torch.zeros(2, 2)), ValueError, r"^x: "),
    Bad("squeeze a list", lambda: squeeze([1.0]), ValueError, r"^x: .*list"),
    Bad(
        "unsqueeze 3 channels",
        lambda: unsqueeze(torch.zeros(1, 3, 2, 2)),
        ValueError,
        r"^z: .*multiple of 4",
    ),
    Bad("Squeeze() odd width", lambda: Squeeze()(torch.zeros(1, 1, 4, 5)), ValueError, r"^x: "),
    Bad(
        "Squeeze().inverse 6 channels",
        lambda: Squeeze().inverse(torch.zeros(1, 6, 2, 2)),
        ValueError,
        r"^z: ",
    ),
]

PREPROCESSING = [
    Bad(
        "UnitScale x (3,) without batch",
        lambda: UnitScale()(torch.rand(3)),
        ValueError,
        r"^x: .*\(batch, \.\.\.\)",
    ),
    Bad("UnitScale levels 0", lambda: UnitScale(0), ValueError, r"^levels: "),
    Bad(
        "Logit x (3,) without batch",
        lambda: Logit()(torch.rand(3)),
        ValueError,
        r"^x: .*\(batch, \.\.\.\)",
    ),
    Bad("Logit x above 1", lambda: Logit()(2 * torch.ones(2, 3)), ValueError, r"^x: .*\[0, 1\]"),
    Bad("Logit inverse z 1-D", lambda: Logit().inverse(torch.zeros(3)), ValueError, r"^z: "),
    Bad("Logit alpha 0.5", lambda: Logit(alpha=0.5), ValueError, r"^alpha: "),
    Bad("Logit alpha 0", lambda: Logit(alpha=0.0), ValueError, r"^alpha: "),
    Bad("dequantize a list", lambda: dequantize([1, 2]), ValueError, r"^images: .*torch.Tensor"),
    Bad(
        "dequantize dtype int64",
        lambda: dequantize(_images(), dtype=torch.int64),
        ValueError,
        r"^dtype: .*floating",
    ),
    Bad(
        "dequantize dtype a string",
        lambda: dequantize(_images(), dtype="float32"),
        ValueError,
        r"^dtype: ",
    ),
    Bad(
        "dequantize pixel 256",
        lambda: dequantize(torch.tensor([[256]])),
        ValueError,
        r"^images: .*0\.\.255",
    ),
    Bad("dequantize pixel -1", lambda: dequantize(torch.tensor([[-1]])), ValueError, r"^images: "),
    Bad(
        "dequantize already dequantized",
        lambda: dequantize(torch.tensor([[1.5]])),
        ValueError,
        r"^images: .*integer",
    ),
    Bad(
        "dequantize generator a seed",
        lambda: dequantize(_images(), generator=1),
        ValueError,
        r"^generator: ",
    ),
    Bad(
        "DequantizedImages empty",
        lambda: DequantizedImages(torch.zeros(0, 1, 2, 2)),
        ValueError,
        r"^images: ",
    ),
    Bad(
        "DequantizedImages levels 0",
        lambda: DequantizedImages(_images(), levels=0),
        ValueError,
        r"^levels: ",
    ),
    Bad(
        "DequantizedImages.sample(0)",
        lambda: DequantizedImages(_images()).sample(0),
        ValueError,
        r"^n: ",
    ),
    Bad(
        "image_bits_per_dim no images",
        lambda: image_bits_per_dim(_image_model(), torch.zeros(0, 1, 8, 8)),
        ValueError,
        r"^images: ",
    ),
    Bad(
        "image_bits_per_dim batch_size 0",
        lambda: image_bits_per_dim(_image_model(), _images(), batch_size=0),
        ValueError,
        r"^batch_size: ",
    ),
    Bad(
        "ImageRealNVP hidden '64' (digits before)",
        lambda: ImageRealNVP(hidden="64"),
        TypeError,
        r"^hidden: .*'64'",
    ),
    Bad("ImageRealNVP hidden '128'", lambda: ImageRealNVP(hidden="128"), TypeError, r"^hidden: "),
    Bad(
        "ImageRealNVP hidden 128.5 (truncated before)",
        lambda: ImageRealNVP(hidden=128.5),
        TypeError,
        r"^hidden: ",
    ),
    Bad(
        "ImageRealNVP hidden [64.5, 64, 64]",
        lambda: ImageRealNVP(hidden=[64.5, 64, 64]),
        TypeError,
        r"^hidden: ",
    ),
    Bad(
        "ImageRealNVP hidden 2 widths for 3 scales",
        lambda: ImageRealNVP(hidden=[64, 64]),
        ValueError,
        r"^hidden: .*3",
    ),
    Bad("ImageRealNVP hidden True", lambda: ImageRealNVP(hidden=True), TypeError, r"^hidden: "),
    Bad("ImageRealNVP hidden 0", lambda: ImageRealNVP(hidden=0), ValueError, r"^hidden: "),
    Bad(
        "ImageRealNVP image 27 high",
        lambda: ImageRealNVP(image_shape=(1, 27, 28)),
        ValueError,
        r"^image_shape: ",
    ),
    Bad(
        "ImageRealNVP image 2-D",
        lambda: ImageRealNVP(image_shape=(28, 28)),
        ValueError,
        r"^image_shape: ",
    ),
    Bad(
        "ImageRealNVP image '128' (read as (1, 2, 8) before)",
        lambda: ImageRealNVP(image_shape="128", n_scales=1),
        TypeError,
        r"^image_shape: ",
    ),
    Bad(
        "ImageRealNVP image 28.5 high",
        lambda: ImageRealNVP(image_shape=(1, 28.5, 28)),
        TypeError,
        r"^image_shape: ",
    ),
    Bad("ImageRealNVP n_scales 0", lambda: ImageRealNVP(n_scales=0), ValueError, r"^n_scales: "),
    Bad(
        "ImageRealNVP block_kernel 2",
        lambda: ImageRealNVP(**{**TINY, "block_kernel": 2}),
        ValueError,
        r"^block_kernel: ",
    ),
    Bad(
        "ImageRealNVP activation tanh",
        lambda: ImageRealNVP(**{**TINY, "activation": "tanh"}),
        ValueError,
        r"^activation: ",
    ),
    Bad(
        "ImageRealNVP n_checker -1",
        lambda: ImageRealNVP(**{**TINY, "n_checker": -1}),
        ValueError,
        r"^n_checker: ",
    ),
    Bad(
        "ImageRealNVP n_final_checker -1",
        lambda: ImageRealNVP(**{**TINY, "n_final_checker": -1}),
        ValueError,
        r"^n_final_checker: ",
    ),
    Bad(
        "ImageRealNVP n_scales 2.5",
        lambda: ImageRealNVP(n_scales=2.5),
        TypeError,
        r"^n_scales: ",
    ),
    Bad(
        "ImageRealNVP actnorm 1 (bool(1) before)",
        lambda: ImageRealNVP(**{**TINY, "actnorm": 1}),
        TypeError,
        r"^actnorm: ",
    ),
    Bad(
        "ImageRealNVP split_prior 'no' (True before)",
        lambda: ImageRealNVP(**{**TINY, "split_prior": "no"}),
        TypeError,
        r"^split_prior: ",
    ),
    Bad(
        "ImageRealNVP block_kernel '3'",
        lambda: ImageRealNVP(**{**TINY, "block_kernel": "3"}),
        TypeError,
        r"^block_kernel: ",
    ),
    Bad(
        "ImageRealNVP activation None",
        lambda: ImageRealNVP(**{**TINY, "activation": None}),
        TypeError,
        r"^activation: ",
    ),
    Bad(
        "ImageRealNVP n_channel '2'",
        lambda: ImageRealNVP(**{**TINY, "n_channel": "2"}),
        TypeError,
        r"^n_channel: ",
    ),
    Bad(
        "ImageRealNVP n_final_checker 1.0",
        lambda: ImageRealNVP(**{**TINY, "n_final_checker": 1.0}),
        TypeError,
        r"^n_final_checker: ",
    ),
    Bad("ImageRealNVP alpha 0.5", lambda: ImageRealNVP(alpha=0.5), ValueError, r"^alpha: "),
    Bad(
        "ImageRealNVP scale_bound 0",
        lambda: ImageRealNVP(scale_bound=0.0),
        ValueError,
        r"^scale_bound: ",
    ),
    Bad("ImageRealNVP n_blocks 0", lambda: ImageRealNVP(n_blocks=0), ValueError, r"^n_blocks: "),
    Bad(
        "ImageFlowConfig n_final 0",
        lambda: ImageFlowConfig(n_final=0),
        ValueError,
        r"^n_final: ",
    ),
    Bad(
        "ImageFlowConfig hidden 2 widths for 3 scales",
        lambda: ImageFlowConfig(hidden=(64, 64)),
        ValueError,
        r"^hidden: .*3",
    ),
    Bad(
        "ImageFlowConfig invconv None",
        lambda: ImageFlowConfig(invconv=None),
        TypeError,
        r"^invconv: ",
    ),
    Bad(
        "ImageRealNVP.from_config a dict",
        lambda: ImageRealNVP.from_config(dict(TINY)),
        TypeError,
        r"^config: ",
    ),
    Bad(
        "initialize on k/256 (no noise)",
        lambda: _image_model().initialize(_images(16).float() / 256),
        ValueError,
        r"^x: .*dequantized",
    ),
    Bad(
        "initialize on constant images",
        lambda: _image_model().initialize(torch.full((8, 1, 8, 8), 0.3)),
        ValueError,
        r"^x: .*constant",
    ),
    Bad(
        "initialize on one image",
        lambda: _image_model().initialize(_unit(1)),
        ValueError,
        r"^x: .*at least 2",
    ),
    Bad(
        "initialize on 0..255 images",
        lambda: _image_model().initialize(_images(8).float()),
        ValueError,
        r"^x: .*\[0, 1\]",
    ),
    Bad(
        "image log_prob x above 1",
        lambda: _image_model().log_prob(_unit() * 2),
        ValueError,
        r"^x: .*\[0, 1\]",
    ),
    Bad(
        "image log_prob x wrong size",
        lambda: _image_model().log_prob(torch.rand(2, 1, 28, 28)),
        ValueError,
        r"^x: .*\(batch, 1, 8, 8\)",
    ),
    Bad(
        "importance_weighted_bits_per_dim levels 256 for a 16-level pair (10.49 bits/dim before)",
        lambda: importance_weighted_bits_per_dim(_pair(16), _images() // 16, levels=256),
        ValueError,
        r"^levels: .*16 pixel levels",
    ),
    Bad(
        "importance_weighted_bits_per_dim pixel 16 for a 16-level pair",
        lambda: importance_weighted_bits_per_dim(_pair(16), _images()),
        ValueError,
        r"^images: .*0\.\.15",
    ),
    Bad(
        "importance_weighted_bits_per_dim levels 1.5",
        lambda: importance_weighted_bits_per_dim(_image_model(), _images(), levels=1.5),
        ValueError,
        r"^levels: .*integer",
    ),
    Bad(
        "importance_weighted_bits_per_dim model a function",
        lambda: importance_weighted_bits_per_dim(lambda x: x, _images()),
        TypeError,
        r"^model: ",
    ),
    Bad(
        "elbo_given_noise images in [0, 1] (finite -40 nats before)",
        lambda: _pair(16).elbo_given_noise(_unit(), torch.randn(4, 1, 8, 8)),
        ValueError,
        r"^images: .*integer pixel values in 0\.\.15",
    ),
    Bad(
        "elbo_given_noise eps of another shape",
        lambda: _pair(16).elbo_given_noise(_images() // 16, torch.randn(4, 1, 4, 4)),
        ValueError,
        r"^eps: ",
    ),
    Bad(
        "elbo_given_noise one eps for four images",
        lambda: _pair(16).elbo_given_noise(_images() // 16, torch.randn(1, 1, 8, 8)),
        ValueError,
        r"^eps: .*one draw per image",
    ),
    Bad(
        "VariationalDequantizer levels 1 (NaN u before)",
        lambda: VariationalDequantizer((1, 8, 8), levels=1),
        ValueError,
        r"^levels: .*at least 2",
    ),
    Bad(
        "VariationalDequantizer levels 1.5 (accepted before)",
        lambda: VariationalDequantizer((1, 8, 8), levels=1.5),
        ValueError,
        r"^levels: .*integer",
    ),
    Bad(
        "VariationalDequantizer levels a string",
        lambda: VariationalDequantizer((1, 8, 8), levels="256"),
        TypeError,
        r"^levels: ",
    ),
    Bad(
        "DequantizedImages levels 1",
        lambda: DequantizedImages(_images(), levels=1),
        ValueError,
        r"^levels: ",
    ),
    Bad(
        "image_bits_per_dim restores training mode after an error",
        _bits_then_mode,
        ValueError,
        r"^model: back in training mode",
    ),
    Bad(
        "DequantizedImageFlow.save with a flow without config (AttributeError before)",
        lambda: _pair(256, flow=_flow_16()).save(_CKPT_TMP / "pair.pt"),
        TypeError,
        r"^flow: .*no config",
    ),
]


# ----------------------------------------------------------------------------- checkpoints

_CKPT = Path(__import__("tempfile").mkdtemp(prefix="coursekit-bad-ckpt-"))


def _saved(name: str, **metadata) -> Path:
    path = _CKPT / name
    _image_model().save(path, **metadata)
    return path


def _corrupt(name: str, content: bytes) -> Path:
    path = _CKPT / name
    path.write_bytes(content)
    return path


def _truncated() -> Path:
    good = _saved("good.pt").read_bytes()
    return _corrupt("truncated.pt", good[: len(good) // 2])


def _unknown_key() -> Path:
    path = _CKPT / "unknown_key.pt"
    torch.save({"config": {**TINY, "colour": 3}, "state_dict": {}}, path)
    return path


def _other_weights() -> Path:
    path = _CKPT / "other_weights.pt"
    state = _image_model().state_dict()
    torch.save({"config": {**TINY, "hidden": [6, 6]}, "state_dict": state}, path)
    return path


def _not_a_dict() -> Path:
    path = _CKPT / "list.pt"
    torch.save([1, 2, 3], path)
    return path


CHECKPOINTS = [
    Bad(
        "load_pretrained_mnist map_location cuda on a machine without CUDA (corrupt before)",
        lambda: load_pretrained_mnist(map_location="cuda:63"),
        ValueError,
        r"^map_location: 'cuda:63' ",
    ),
    Bad(
        "load_pretrained_mnist map_location bogus",
        lambda: load_pretrained_mnist(map_location="bogus"),
        ValueError,
        r"^map_location: .*'bogus'",
    ),
    Bad(
        "load_pretrained_mnist map_location an int list",
        lambda: load_pretrained_mnist(map_location=[0]),
        TypeError,
        r"^map_location: ",
    ),
    Bad(
        "ImageRealNVP.load of the shipped file on cuda:63 (a device check, not 'corrupt')",
        lambda: ImageRealNVP.load(MNIST_CHECKPOINT, map_location="cuda:63"),
        ValueError,
        r"^map_location: 'cuda:63' ",
    ),
    Bad(
        "read_checkpoint map_location an int",
        lambda: read_checkpoint(MNIST_CHECKPOINT, map_location=0),
        TypeError,
        r"^map_location: ",
    ),
    Bad(
        "load_pretrained_mnist path an int",
        lambda: load_pretrained_mnist(path=3),
        TypeError,
        r"^path: ",
    ),
    Bad(
        "DequantizedImageFlow.load map_location meta",
        lambda: DequantizedImageFlow.load(_CKPT_TMP / "none.pt", map_location="meta"),
        ValueError,
        r"^map_location: ",
    ),
    Bad(
        "save bpd a Path",
        lambda: _saved("p.pt", bpd=Path("x")),
        ValueError,
        r"^bpd: .*PosixPath|^bpd: .*Path",
    ),
    Bad(
        "save bpd an ndarray",
        lambda: _saved("a.pt", bpd=np.ones(2)),
        ValueError,
        r"^bpd: .*ndarray",
    ),
    Bad(
        "save nested object",
        lambda: _saved("n.pt", metadata={"where": Path("x")}),
        ValueError,
        r"^metadata\['where'\]: ",
    ),
    Bad(
        "save nested in a list",
        lambda: _saved("l.pt", log=[1.0, object()]),
        ValueError,
        r"^log\[1\]: ",
    ),
    Bad("save path an int", lambda: _image_model().save(123), ValueError, r"^path: "),
    Bad(
        "load a missing file",
        lambda: ImageRealNVP.load(_CKPT / "missing.pt"),
        CheckpointError,
        r"missing\.pt: no checkpoint",
    ),
    Bad(
        "load an empty file",
        lambda: ImageRealNVP.load(_corrupt("empty.pt", b"")),
        CheckpointError,
        r"empty\.pt: .*empty",
    ),
    Bad(
        "load a truncated file",
        lambda: ImageRealNVP.load(_truncated()),
        CheckpointError,
        r"truncated\.pt: .*(truncated|corrupt)",
    ),
    Bad(
        "load random bytes",
        lambda: ImageRealNVP.load(_corrupt("random.pt", bytes(range(256)) * 4)),
        CheckpointError,
        r"random\.pt: .*corrupt",
    ),
    Bad(
        "load a text file",
        lambda: ImageRealNVP.load(_corrupt("text.pt", b"hello, this is not a model\n")),
        CheckpointError,
        r"text\.pt: .*corrupt",
    ),
    Bad(
        "load an unknown config key",
        lambda: ImageRealNVP.load(_unknown_key()),
        CheckpointError,
        r"unknown_key\.pt: .*config",
    ),
    Bad(
        "load weights of another architecture",
        lambda: ImageRealNVP.load(_other_weights()),
        CheckpointError,
        r"other_weights\.pt: .*weights do not match",
    ),
    Bad(
        "load a list",
        lambda: ImageRealNVP.load(_not_a_dict()),
        CheckpointError,
        r"list\.pt: .*dict",
    ),
]


# -------------------------------------------------------------------------------- training


def _data() -> torch.Tensor:
    return four_modes().sample(64, generator=torch.Generator().manual_seed(0))


class _NumpySampler:
    def sample(self, n, generator=None):
        return np.zeros((n, 2))


class _ShortSampler:
    def sample(self, n, generator=None):
        return torch.zeros(n - 1, 2)


def _fit(**kw):
    args = dict(steps=3, batch_size=8, progress=False)
    args.update(kw)
    model = args.pop("model", None) or _flow()
    data = args.pop("data", None)
    return fit(model, _data() if data is None else data, **args)


def _nll(m, b):
    return -m.log_prob(b).mean()


def _fit_run(**kw):
    args = dict(steps=3, batch_size=8, progress=False)
    args.update(kw)
    return fit_run(_flow(), _data(), **args)


def _state_of(model) -> dict:
    saved: dict = {}
    callback = Callback(lambda state: saved.update(state.state_dict()), at_end=True)
    fit_run(model, _data(), steps=1, batch_size=8, progress=False, callbacks=callback)
    return saved


TRAINING = [
    Bad(
        "log_every 0 (ZeroDivisionError before)",
        lambda: _fit(log_every=0),
        ValueError,
        r"^log_every: ",
    ),
    Bad(
        "model without log_prob",
        lambda: _fit(model=nn.Linear(2, 2)),
        ValueError,
        r"^model: .*log_prob",
    ),
    Bad("model a string", lambda: _fit(model="flow"), TypeError, r"^model: .*Module"),
    Bad(
        "loss_fn returns (batch,)",
        lambda: _fit(loss_fn=lambda m, b: -m.log_prob(b)),
        ValueError,
        r"^loss_fn: .*scalar.*\(8,\)",
    ),
    Bad(
        "loss_fn returns a float",
        lambda: _fit(loss_fn=lambda m, b: float(_nll(m, b).detach())),
        ValueError,
        r"^loss_fn: .*float",
    ),
    Bad(
        "loss_fn detached",
        lambda: _fit(loss_fn=lambda m, b: _nll(m, b).detach()),
        ValueError,
        r"^loss_fn: .*not connected",
    ),
    Bad("loss_fn not callable", lambda: _fit(loss_fn="nll"), TypeError, r"^loss_fn: "),
    Bad("seed 1.5", lambda: _fit(seed=1.5), TypeError, r"^seed: "),
    Bad("seed -1", lambda: _fit(seed=-1), ValueError, r"^seed: "),
    Bad("seed a string", lambda: _fit(seed="0"), TypeError, r"^seed: "),
    Bad(
        "sampler returning numpy",
        lambda: _fit(data=_NumpySampler()),
        ValueError,
        r"^data: .*ndarray",
    ),
    Bad(
        "sampler returning n - 1 points",
        lambda: _fit(data=_ShortSampler()),
        ValueError,
        r"^data: .*\(8, \.\.\.\)",
    ),
    Bad("data a list", lambda: _fit(data=[[0.0, 1.0]]), TypeError, r"^data: "),
    Bad("data empty", lambda: _fit(data=torch.zeros(0, 2)), ValueError, r"^data: .*empty"),
    Bad(
        "data int",
        lambda: _fit(data=torch.zeros(4, 2, dtype=torch.long)),
        ValueError,
        r"^data: .*floating",
    ),
    Bad(
        "data NaN", lambda: _fit(data=torch.full((4, 2), math.nan)), ValueError, r"^data: .*finite"
    ),
    Bad(
        "data of another dimension",
        lambda: _fit(data=torch.zeros(4, 3)),
        ValueError,
        r"^x: .*\(batch, 2\)",
    ),
    Bad("weight_decay -1", lambda: _fit(weight_decay=-1.0), ValueError, r"^weight_decay: "),
    Bad("weight_decay NaN", lambda: _fit(weight_decay=math.nan), ValueError, r"^weight_decay: "),
    Bad(
        "max_seconds 1e-9 (0 steps before)",
        lambda: _fit(max_seconds=1e-9),
        ValueError,
        r"^max_seconds: .*before the first step",
    ),
    Bad("max_seconds -1", lambda: _fit(max_seconds=-1.0), ValueError, r"^max_seconds: "),
    Bad("steps 0", lambda: _fit(steps=0), ValueError, r"^steps: "),
    Bad("batch_size 0", lambda: _fit(batch_size=0), ValueError, r"^batch_size: "),
    Bad("lr 0", lambda: _fit(lr=0.0), ValueError, r"^lr: "),
    Bad("lr NaN", lambda: _fit(lr=math.nan), ValueError, r"^lr: "),
    Bad("clip_grad 0", lambda: _fit(clip_grad=0.0), ValueError, r"^clip_grad: "),
    Bad("clip_grad -1", lambda: _fit(clip_grad=-1.0), ValueError, r"^clip_grad: "),
    Bad("schedule linear", lambda: _fit(schedule="linear"), ValueError, r"^schedule: "),
    Bad("warmup -1", lambda: _fit(warmup=-1), ValueError, r"^warmup: "),
    Bad("seed 2**63", lambda: _fit(seed=2**63), ValueError, r"^seed: .*2\*\*63"),
    Bad("optimizer sgd", lambda: _fit(optimizer="sgd"), ValueError, r"^optimizer: "),
    Bad("ema -5", lambda: _fit_run(ema=-5.0), ValueError, r"^ema: "),
    Bad("ema 1", lambda: _fit_run(ema=1.0), ValueError, r"^ema: "),
    Bad("ema a string", lambda: _fit_run(ema="0.9"), TypeError, r"^ema: "),
    Bad("callbacks a function", lambda: _fit_run(callbacks=[print]), TypeError, r"^callbacks: "),
    Bad("callbacks a function, no list", lambda: _fit_run(callbacks=print), TypeError, r"^callb"),
    Bad("Callback(every_steps=0)", lambda: Callback(print, every_steps=0), ValueError, r"^every_s"),
    Bad("Callback(every_steps=-1)", lambda: Callback(print, every_steps=-1), ValueError, r"^every"),
    Bad("Callback(every_seconds=-1)", lambda: Callback(print, every_seconds=-1), ValueError, "^ev"),
    Bad("Callback(every_steps=1.5)", lambda: Callback(print, every_steps=1.5), TypeError, "^every"),
    Bad("Callback of a string", lambda: Callback("save"), TypeError, r"^fn: "),
    Bad("max_loss a string", lambda: _fit_run(max_loss="10"), TypeError, r"^max_loss: "),
    Bad("max_loss NaN", lambda: _fit_run(max_loss=math.nan), ValueError, r"^max_loss: "),
    Bad("clock not callable", lambda: _fit_run(clock=3.0), TypeError, r"^clock: "),
    Bad("resume {}", lambda: _fit_run(resume={}), ValueError, r"^resume: .*keys"),
    Bad("resume a path", lambda: _fit_run(resume="run/checkpoint.pt"), TypeError, r"^resume: "),
    Bad(
        "resume of another model",
        lambda: _fit_run(resume=_state_of(RealNVP(2, n_layers=2, hidden=(4,)))),
        ValueError,
        r"^resume: .*does not fit",
    ),
    Bad("an unknown option", lambda: _fit_run(lr_scale=0.5), TypeError, r"lr_scale"),
]


# ------------------------------------------------------------------------ the MNIST command

TINY_MNIST = dict(TINY, image_shape=[1, 28, 28])


@pytest.fixture
def command_env(monkeypatch, tmp_path):
    """A tiny default architecture (fast checks) and no MNIST directory in the environment."""
    monkeypatch.setattr(tm, "DEFAULT_CONFIG", TINY_MNIST)
    monkeypatch.setenv(ENV_VAR, "")  # restored after the test, whatever it was
    return tmp_path


def _mnist_dir(root: Path, splits=("train", "test")) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for split in splits:
        for name in FILES[split]:
            (root / name).write_bytes(b"x")
    return root


def _setup_afile(tmp: Path, monkeypatch=None) -> list[str]:
    (tmp / "afile").write_text("a file")
    return ["--out", str(tmp / "afile" / "sub")]


def _setup_out_is_file(tmp: Path, monkeypatch=None) -> list[str]:
    (tmp / "afile").write_text("a file")
    return ["--out", str(tmp / "afile")]


def _setup_corrupt_resume(tmp: Path, monkeypatch=None) -> list[str]:
    (tmp / "run").mkdir()
    (tmp / "run" / "checkpoint.pt").write_bytes(b"PK\x03\x04 truncated")
    return ["--out", str(tmp / "run"), "--resume"]


def _setup_empty_resume(tmp: Path, monkeypatch=None) -> list[str]:
    (tmp / "run").mkdir()
    (tmp / "run" / "checkpoint.pt").write_bytes(b"")
    return ["--out", str(tmp / "run"), "--resume"]


def _setup_other_resume(tmp: Path, monkeypatch=None) -> list[str]:
    (tmp / "run").mkdir()
    torch.save({"config": {"hidden": [1]}, "step": 3}, tmp / "run" / "checkpoint.pt")
    return ["--out", str(tmp / "run"), "--resume"]


def _setup_half_data(tmp: Path, monkeypatch=None) -> list[str]:
    return ["--data-dir", str(_mnist_dir(tmp / "half", splits=("train",)))]


def _setup_env_file(tmp: Path, monkeypatch) -> list[str]:
    (tmp / "afile").write_text("a file")
    monkeypatch.setenv(ENV_VAR, str(tmp / "afile"))
    return []


#: (name, setup(tmp) -> extra argv, argv, the message's pattern)
FLAGS = [
    ("--ema -5 (NaN model before)", None, ["--ema", "-5"], r"^--ema: .*\(0, 1\)"),
    ("--ema 1", None, ["--ema", "1"], r"^--ema: "),
    ("--ema 0", None, ["--ema", "0"], r"^--ema: "),
    ("--clip-grad 0 (trained nothing before)", None, ["--clip-grad", "0"], r"^--clip-grad: "),
    ("--clip-grad -1 (ascended before)", None, ["--clip-grad", "-1"], r"^--clip-grad: "),
    ("--clip-grad nan", None, ["--clip-grad", "nan"], r"^--clip-grad: "),
    ("--clip-grad 1e300 (unbounded before)", None, ["--clip-grad", "1e300"], r"^--clip-grad: "),
    (
        "--max-minutes -1 (untrained model before)",
        None,
        ["--max-minutes", "-1"],
        r"^--max-minutes: ",
    ),
    ("--max-minutes 0", None, ["--max-minutes", "0"], r"^--max-minutes: "),
    ("--max-minutes inf", None, ["--max-minutes", "inf"], r"^--max-minutes: "),
    (
        "--final-eval-images -5 (9,995 images before)",
        None,
        ["--final-eval-images", "-5"],
        r"^--final-eval-images: ",
    ),
    ("--final-eval-images 0", None, ["--final-eval-images", "0"], r"^--final-eval-images: "),
    ("--device bogus", None, ["--device", "bogus"], r"^--device: .*bogus"),
    ("--device cuda:x", None, ["--device", "cuda:x"], r"^--device: "),
    ("--hidden 16,abc", None, ["--hidden", "16,abc"], r"^--hidden: .*16,abc"),
    ("--hidden 0,16", None, ["--hidden", "0,16"], r"^--hidden: "),
    ("--hidden 16 for 2 scales", None, ["--hidden", "16,16,16"], r"^--set/--hidden: hidden: "),
    ("--threads -1", None, ["--threads", "-1"], r"^--threads: "),
    ("--threads 0", None, ["--threads", "0"], r"^--threads: "),
    ("--steps 0", None, ["--steps", "0"], r"^--steps: "),
    ("--batch-size -1", None, ["--batch-size", "-1"], r"^--batch-size: "),
    ("--lr 0", None, ["--lr", "0"], r"^--lr: "),
    ("--lr nan", None, ["--lr", "nan"], r"^--lr: "),
    ("--warmup -1", None, ["--warmup", "-1"], r"^--warmup: "),
    ("--seed -1", None, ["--seed", "-1"], r"^--seed: "),
    ("--max-restarts -1", None, ["--max-restarts", "-1"], r"^--max-restarts: "),
    ("--max-bpd 8", None, ["--max-bpd", "8"], r"^--max-bpd: .*above 8"),
    ("--max-bpd inf", None, ["--max-bpd", "inf"], r"^--max-bpd: "),
    ("--checkpoint-every -1", None, ["--checkpoint-every", "-1"], r"^--checkpoint-every: "),
    (
        "--checkpoint-every 10**30 (unbounded before)",
        None,
        ["--checkpoint-every", str(10**30)],
        r"^--checkpoint-every: ",
    ),
    ("--eval-every 0", None, ["--eval-every", "0"], r"^--eval-every: "),
    ("--eval-images 0", None, ["--eval-images", "0"], r"^--eval-images: "),
    (
        '--set hidden="128" (digits before)',
        None,
        ["--set", 'hidden="128"'],
        r"^--set/--hidden: hidden: ",
    ),
    (
        "--set hidden=128.5 (truncated before)",
        None,
        ["--set", "hidden=128.5"],
        r"^--set/--hidden: hidden: ",
    ),
    ("--set widths=3", None, ["--set", "widths=3"], r"^--set: expected KEY=JSON"),
    ("--set n_final", None, ["--set", "n_final"], r"^--set: "),
    ("--set alpha=1e-5x", None, ["--set", "alpha=1e-5x"], r"^--set: the value of alpha"),
    (
        "--set activation=tanh",
        None,
        ["--set", 'activation="tanh"'],
        r"^--set/--hidden: activation: ",
    ),
    ("--set n_scales=0", None, ["--set", "n_scales=0"], r"^--set/--hidden: n_scales: "),
    ("--set alpha=0.7", None, ["--set", "alpha=0.7"], r"^--set/--hidden: alpha: "),
    ("--out under a file (lost the run before)", _setup_afile, [], r"^--out: .*afile.* is a file"),
    ("--out is a file", _setup_out_is_file, [], r"^--out: "),
    (
        "--out on a read-only filesystem",
        None,
        ["--out", "/proc/coursekit-run"],
        r"^--out: cannot write",
    ),
    (
        "--data-dir /nonexistent (fell back before)",
        None,
        ["--data-dir", "/nonexistent/typo"],
        r"^--data-dir: .*does not exist",
    ),
    ("--data-dir lacks the test split", _setup_half_data, [], r"^--data-dir: .*lacks t10k"),
    ("COURSEKIT_MNIST_DIR names a file", _setup_env_file, [], r"^COURSEKIT_MNIST_DIR .*is a file"),
    ("--resume without a checkpoint", None, ["--resume"], r"^--resume: .*no checkpoint"),
    (
        "--set n_blocks=1000000 (hung before)",
        None,
        ["--set", "n_blocks=1000000"],
        r"n_blocks: .*64",
    ),
    ("--hidden 99999999999,4,4 (raw before)", None, ["--hidden", "99999999999,4,4"], r"hidden: "),
    ("--hidden 4096 x3: too many parameters", None, ["--set", "n_final=64", "hidden=4096"], "para"),
    ("--lr 1e300 (raw at step 2 before)", None, ["--lr", "1e300"], r"^--lr: .*\(0, 1\]"),
    ("--seed 2**63 (raw before)", None, ["--seed", str(2**63)], r"^--seed: "),
    ("--threads 10**30 (raw before)", None, ["--threads", str(10**30)], r"^--threads: "),
    ("--batch-size 10**400 (raw before)", None, ["--batch-size", str(10**400)], r"^--batch-size"),
    ("--device meta (raw before)", None, ["--device", "meta"], r"^--device: "),
    ("--steps abc (argparse)", None, ["--steps", "abc"], r"--steps.*abc"),
    ("--bogus-flag (argparse)", None, ["--bogus-flag"], r"--bogus-flag"),
    (
        "--resume on a corrupt checkpoint",
        _setup_corrupt_resume,
        [],
        r"^--resume: .*(truncated|corrupt)",
    ),
    ("--resume on an empty checkpoint", _setup_empty_resume, [], r"^--resume: .*empty"),
    ("--resume on another architecture", _setup_other_resume, [], r"^--resume: .*architecture"),
]


if not torch.cuda.is_available():  # the machine has no CUDA: asking for it is an error
    FLAGS.append(("--device cuda (absent)", None, ["--device", "cuda"], r"^--device: .*CUDA"))


@pytest.mark.parametrize("case", FLOWS, ids=ids(FLOWS))
def test_flows_bad_inputs(case: Bad) -> None:
    assert_named_error(case)


@pytest.mark.parametrize("case", PREPROCESSING, ids=ids(PREPROCESSING))
def test_preprocessing_and_image_model_bad_inputs(case: Bad) -> None:
    assert_named_error(case)


@pytest.mark.parametrize("case", CHECKPOINTS, ids=ids(CHECKPOINTS))
def test_checkpoint_bad_inputs(case: Bad) -> None:
    assert_named_error(case)


@pytest.mark.parametrize("case", TRAINING, ids=ids(TRAINING))
def test_fit_bad_inputs(case: Bad) -> None:
    assert_named_error(case)


@pytest.mark.parametrize("case", FLAGS, ids=[c[0] for c in FLAGS])
def test_train_mnist_rejects_bad_flags_with_exit_code_2(case, command_env, monkeypatch) -> None:
    name, setup, argv, pattern = case
    extra = setup(command_env, monkeypatch) if setup else []
    base = ["--out", str(command_env / "out")] if "--out" not in argv + extra else []
    with pytest.raises(UsageError) as info:
        tm.parse_args(base + argv + extra)
    assert re.search(pattern, str(info.value)), str(info.value)


def test_train_mnist_argparse_errors_exit_2(command_env) -> None:
    for argv in (["--steps", "abc"], ["--lr", "fast"], ["--bogus-flag"]):
        with pytest.raises(UsageError):
            tm.parse_args(["--out", str(command_env)] + argv)
        assert tm.main(["--out", str(command_env)] + argv) == 2


def test_a_bad_run_fails_before_loading_or_training(command_env, monkeypatch, capsys) -> None:
    """An unwritable output folder or a corrupt checkpoint: nothing is loaded or trained."""
    touched = []
    monkeypatch.setattr(tm, "load_mnist", lambda *a, **k: touched.append("load"))
    monkeypatch.setattr(tm, "fit_run", lambda *a, **k: touched.append("fit"))
    for argv in (_setup_afile(command_env), ["--out", str(command_env / "x"), "--ema", "-5"]):
        assert tm.main(argv + ["--device", "cpu"]) == 2
    assert touched == []
    assert "error: " in capsys.readouterr().err


def test_good_flags_pass_and_the_output_folder_is_created(command_env) -> None:
    out = command_env / "deep" / "run"
    args = tm.parse_args(["--out", str(out), "--hidden", "6,6", "--device", "cpu"])
    assert out.is_dir() and list(out.iterdir()) == []
    assert args.config["hidden"] == [6, 6] and args.torch_device == "cpu"


# -------------------------------------------------------------- right answers, not errors


def test_toy_data_and_models_agree_on_dtype() -> None:
    """The natural first call works: float64 toy data into a float32 model (cast to the
    model's dtype), float32 data into a .double() model, float16 data too."""
    flow = _flow()
    x = four_modes().sample(100, generator=torch.Generator().manual_seed(0))
    assert x.dtype == F64
    lp = flow.log_prob(x)
    assert lp.dtype == torch.float32 and torch.equal(lp, flow.log_prob(x.float()))
    assert flow.log_prob(x.half()).dtype == torch.float32
    double = _flow().double()
    lp64 = double.log_prob(x.float())
    assert lp64.dtype == F64 and torch.equal(lp64, double.log_prob(x.float().double()))
    z, _ = flow.inverse(torch.randn(5, 2, dtype=F64))
    assert z.dtype == torch.float32
    image = _image_model()
    assert image.log_prob(_unit().double()).dtype == torch.float32


def test_empty_batches_give_empty_results() -> None:
    flow = _flow()
    assert flow.log_prob(torch.zeros(0, 2)).shape == (0,)
    out, ld = UnitScale()(torch.rand(0, 3))
    assert out.shape == (0, 3) and ld.shape == (0,)
    assert Logit()(torch.rand(0, 1, 2, 2))[1].shape == (0,)


def test_dequantize_stays_below_the_next_level() -> None:
    k = torch.full((50_000,), 255, dtype=torch.uint8)
    for dtype in (torch.float16, torch.float32, torch.float64):
        v = dequantize(k, generator=torch.Generator().manual_seed(0), dtype=dtype)
        assert v.dtype == dtype and bool((v >= 255).all()) and bool((v < 256).all())


def test_save_converts_numpy_scalars(tmp_path) -> None:
    model = _image_model()
    model.save(tmp_path / "m.pt", bpd=np.float64(1.1), steps=np.int64(3), ok=np.bool_(True))
    state = torch.load(tmp_path / "m.pt", weights_only=True)
    assert state["bpd"] == 1.1 and state["steps"] == 3 and state["ok"] is True
    assert ImageRealNVP.load(tmp_path / "m.pt").config == model.config


def test_a_finite_blow_up_stops_fit_naming_the_step() -> None:
    calls = []

    def explodes(m, b):
        calls.append(None)
        loss = _nll(m, b)
        return loss * 1e12 if len(calls) == 3 else loss

    with pytest.raises(TrainingDivergedError, match="at step 3") as info:
        _fit(loss_fn=explodes, steps=5)
    assert info.value.step == 3


def test_a_nan_gradient_with_a_finite_loss_stops_fit_and_keeps_the_weights() -> None:
    flow = _flow()
    before = [p.detach().clone() for p in flow.parameters()]

    def nan_gradient(m, b):
        first = next(m.parameters())
        return _nll(m, b) + torch.sqrt(first.sum() * 0.0)  # value 0, gradient 0 · inf = NaN

    with pytest.raises(TrainingDivergedError, match="gradient became nan at step 1"):
        fit(flow, _data(), steps=3, batch_size=8, progress=False, loss_fn=nan_gradient)
    assert all(torch.equal(a, b.detach()) for a, b in zip(before, flow.parameters(), strict=True))
    assert all(bool(torch.isfinite(p).all()) for p in flow.parameters())


def test_samples_of_the_shipped_model_are_in_its_domain() -> None:
    """Issue 18: log_prob(sample(n)) works for the pretrained model (samples in [0, 1])."""
    from coursekit.pretrained import load_pretrained_mnist

    model = load_pretrained_mnist()
    x = model.sample(4, generator=torch.Generator().manual_seed(0))
    assert x.shape == (4, 1, 28, 28) and float(x.min()) >= 0 and float(x.max()) <= 1
    with torch.no_grad():
        lp = model.log_prob(x)
    assert lp.shape == (4,) and bool(torch.isfinite(lp).all())
    tiny = _image_model()
    tiny.initialize(_unit(8))
    y = tiny.sample(3, temperature=2.0, generator=torch.Generator().manual_seed(1))
    assert 0 <= float(y.min()) and float(y.max()) <= 1
    assert bool(torch.isfinite(tiny.log_prob(y)).all())


def test_importance_weighting_uses_the_dequantizers_levels() -> None:
    """K = 1 on a 16-level pair is its one-draw bound in bits/dim, with log 16 per dimension;
    a flow on 1024 levels is accepted."""
    pair = _pair(16).double().eval()
    k = _images(6) // 16
    got = importance_weighted_bits_per_dim(
        pair, k, num_samples=1, generator=torch.Generator().manual_seed(3)
    )
    with torch.no_grad():
        elbo = pair.elbo(k, generator=torch.Generator().manual_seed(3))
    d = k[0].numel()
    want = -(float(elbo.mean()) - d * math.log(16)) / (d * math.log(2))
    assert got == pytest.approx(want, rel=1e-12)
    k1024 = torch.randint(0, 1024, (3, 1, 8, 8), generator=torch.Generator().manual_seed(0))
    assert math.isfinite(importance_weighted_bits_per_dim(_image_model(), k1024, levels=1024))


def test_zuko_density_accepts_what_realnvp_accepts() -> None:
    """float64 toy data into a float32 zuko flow gives its float32 log-density; a trainable
    base that has moved is where samples come from (they map back to its mean and scale)."""
    import zuko

    model = ZukoDensity(_zuko())
    x = four_modes().sample(64, generator=torch.Generator().manual_seed(0))
    assert x.dtype == F64
    assert torch.equal(model.log_prob(x), model.log_prob(x.float()))
    torch.manual_seed(0)
    base = zuko.flows.UnconditionalDistribution(
        zuko.distributions.DiagNormal, torch.zeros(2), torch.ones(2), buffer=False
    )
    flow = zuko.flows.Flow(zuko.flows.NSF(2).transform, base)
    model = ZukoDensity(flow)
    with torch.no_grad():
        base._0.fill_(3.0)
        base._1.fill_(0.2)
    z, _ = model(model.sample(4000, generator=torch.Generator().manual_seed(0)))
    assert torch.allclose(z.mean(0), torch.full((2,), 3.0), atol=0.03)
    assert torch.allclose(z.std(0), torch.full((2,), 0.2), atol=0.02)
