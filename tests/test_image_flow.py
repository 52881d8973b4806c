"""Image RealNVP and image preprocessing: exactness in float64 (round trip, log-det against
the autograd Jacobian), identity at initialisation, float32 round trip on 28×28 images,
save/load with weights_only=True, bits/dim bookkeeping and bad-input errors."""

from __future__ import annotations

import math

import pytest
import torch

from coursekit.flows import (
    ChannelCoupling,
    CheckerboardCoupling,
    ImageRealNVP,
    InvertibleConv1x1,
    Logit,
    Squeeze,
    UnitScale,
    bits_per_dim_from_unit_log_prob,
    checkerboard_mask,
    dequantize,
    image_bits_per_dim,
    squeeze,
    unsqueeze,
)

TINY = dict(
    image_shape=(1, 4, 4), n_scales=2, hidden=8, n_blocks=1, n_checker=2, n_channel=2, n_final=2
)


def randomise(module: torch.nn.Module, std: float = 0.1, seed: int = 0) -> None:
    """Non-zero weights, so that no layer is the identity (the last convs start at zero)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * std)


def autograd_log_det(bijection, x: torch.Tensor) -> torch.Tensor:
    """``log|det ∂f/∂x|`` of every example from the full autograd Jacobian.

    Examples are independent, so one backward pass through ``D`` copies of each example,
    weighted by the rows of the identity, gives every row of every Jacobian at once.
    """
    n, shape = x.shape[0], x.shape[1:]
    d = x[0].numel()
    xr = x.flatten(1).repeat_interleave(d, 0).requires_grad_(True)
    out = bijection._forward(xr.view(-1, *shape))[0].flatten(1)
    eye = torch.eye(d, dtype=x.dtype).repeat(n, 1)
    (rows,) = torch.autograd.grad((out * eye).sum(), xr)
    return torch.linalg.slogdet(rows.view(n, d, d))[1]


def assert_model_is_exact(model: ImageRealNVP, x: torch.Tensor) -> None:
    """Round trip within 1e-10, log-dets cancel, log-det equals the autograd one (float64)."""
    z, log_det = model(x)
    x_back, inv = model.inverse(z)
    assert torch.allclose(x_back, x, atol=1e-10)
    assert torch.allclose(inv, -log_det, atol=1e-9)
    assert torch.allclose(log_det, autograd_log_det(model.transform, x), atol=1e-8)


def images01(n: int, shape=(1, 4, 4), seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand((n, *shape), generator=g, dtype=dtype)


@pytest.fixture
def tiny() -> ImageRealNVP:
    torch.manual_seed(0)
    model = ImageRealNVP(**TINY).double()
    randomise(model)
    return model


def test_tiny_model_round_trip_and_log_det_match_autograd(tiny):
    x = images01(3)
    z, log_det = tiny(x)
    assert z.shape == x.shape and log_det.shape == (3,)
    x_back, inv_log_det = tiny.inverse(z)
    assert torch.allclose(x_back, x, atol=1e-12, rtol=0)
    assert torch.allclose(inv_log_det, -log_det, atol=1e-10, rtol=0)
    assert torch.allclose(log_det, autograd_log_det(tiny.transform, x), atol=1e-9, rtol=0)
    # not an accident of a trivial model: the Jacobian is far from the identity
    assert float(log_det.detach().abs().min()) > 1.0


def test_log_prob_is_change_of_variable(tiny):
    x = images01(4, seed=1)
    z, log_det = tiny(x)
    base = -0.5 * z.pow(2).flatten(1).sum(1) - 0.5 * 16 * math.log(2 * math.pi)
    assert torch.allclose(tiny.log_prob(x), base + log_det, atol=1e-12)


@pytest.mark.parametrize(
    "layer",
    [
        lambda: CheckerboardCoupling((2, 4, 6), hidden=8, n_blocks=1, parity=1),
        lambda: ChannelCoupling((4, 3, 3), hidden=8, n_blocks=1, parity=1),
        lambda: ChannelCoupling((4, 3, 3), hidden=8, n_blocks=2, parity=0, block_kernel=1),
        lambda: InvertibleConv1x1(4),
        lambda: Squeeze(),
        lambda: Logit(0.05),
        lambda: UnitScale(256),
    ],
)
def test_each_layer_is_exact(layer):
    torch.manual_seed(0)
    b = layer().double()
    randomise(b, std=0.2)
    shapes = {
        CheckerboardCoupling: (2, 4, 6),
        ChannelCoupling: (4, 3, 3),
        InvertibleConv1x1: (4, 3, 3),
    }
    shape = shapes.get(type(b), (2, 4, 4))
    x = images01(2, shape=shape, seed=3)
    z, ld = b(x)
    x_back, ild = b.inverse(z)
    assert torch.allclose(x_back, x, atol=1e-12)
    assert torch.allclose(ild, -ld, atol=1e-10)
    assert torch.allclose(ld, autograd_log_det(b, x), atol=1e-9)


def test_logit_and_unit_scale_log_dets_by_hand():
    x = torch.tensor([[[[0.0, 0.5], [1.0, 0.25]]]], dtype=torch.float64)
    a = 0.05
    y, ld = Logit(a)(x)
    p = a + (1 - 2 * a) * x
    assert torch.allclose(y, torch.log(p / (1 - p)))
    expected = (math.log(1 - 2 * a) - torch.log(p) - torch.log(1 - p)).sum()
    assert torch.allclose(ld, expected.view(1))
    _, ld = UnitScale(256)(x * 256)
    assert float(ld) == pytest.approx(-4 * math.log(256))


def test_couplings_start_as_identity():
    model = ImageRealNVP(**TINY).double()
    x = images01(2)
    z, log_det = model.core(x)
    assert torch.equal(z, x) and torch.equal(log_det, torch.zeros(2, dtype=torch.float64))


def test_squeeze_is_a_permutation_and_checkerboard_alternates():
    x = torch.arange(2 * 3 * 4 * 6, dtype=torch.float64).view(2, 3, 4, 6)
    s = squeeze(x)
    assert s.shape == (2, 12, 2, 3)
    assert torch.equal(unsqueeze(s), x)
    assert torch.equal(s.flatten().sort().values, x.flatten())
    # channel 4c + 2i + j of the squeeze holds pixel (2h + i, 2w + j) of channel c
    assert s[0, 4 * 1 + 2 * 1 + 0, 1, 2] == x[0, 1, 3, 4]
    m0, m1 = checkerboard_mask(3, 3, 0), checkerboard_mask(3, 3, 1)
    assert torch.equal(m0 + m1, torch.ones(1, 1, 3, 3)) and m1[0, 0, 0, 0] == 1


def test_scale_is_bounded():
    layer = ChannelCoupling((2, 2, 2), hidden=4, n_blocks=1, scale_bound=0.5).double()
    randomise(layer, std=10.0)
    s, _ = layer.scale_and_shift(images01(3, shape=(1, 2, 2)) * 100)
    assert float(s.detach().abs().max()) <= 0.5


def test_mnist_sized_float32_round_trip_within_1e_4():
    torch.manual_seed(0)
    model = ImageRealNVP(hidden=(8, 16, 16), n_blocks=1, n_checker=2, n_channel=2, n_final=2)
    randomise(model, std=0.05)
    g = torch.Generator().manual_seed(0)
    x = dequantize(torch.randint(0, 256, (4, 1, 28, 28), generator=g), generator=g) / 256
    with torch.no_grad():
        z, ld = model(x)
        x_back, ild = model.inverse(z)
    assert float((x_back - x).abs().max()) < 1e-4
    assert float((ld + ild).abs().max()) < 1e-2 * max(1.0, float(ld.abs().max()) * 1e-3)
    samples = model.sample(3, temperature=0.7, generator=torch.Generator().manual_seed(1))
    assert samples.shape == (3, 1, 28, 28) and bool(torch.isfinite(samples).all())


def test_save_load_weights_only(tmp_path, tiny):
    path = tmp_path / "m.pt"
    tiny.save(str(path), note="test")
    loaded = ImageRealNVP.load(str(path)).double()
    x = images01(2, seed=5)
    assert torch.allclose(loaded.log_prob(x), tiny.log_prob(x))
    raw = torch.load(path, weights_only=True)
    assert raw["note"] == "test" and raw["config"]["n_scales"] == 2
    # a checkpoint whose weights do not fit its config is refused clearly
    raw["config"] = dict(raw["config"], hidden=[8, 12])
    with pytest.raises(ValueError, match="do not match the architecture"):
        ImageRealNVP.from_checkpoint(raw)


def test_bits_per_dim_accounts_for_every_term(tiny):
    """bits/dim = −[log p_Z(z) + log|det core| + log|det logit| − D log 256] / (D ln 2)."""
    k = torch.randint(0, 256, (5, 1, 4, 4), generator=torch.Generator().manual_seed(0))
    v = dequantize(k, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    x, ld_scale = UnitScale(256)(v)
    y, ld_logit = tiny.logit(x)
    z, ld_core = tiny.core(y)
    log_pz = -0.5 * z.pow(2).flatten(1).sum(1) - 8 * math.log(2 * math.pi)
    by_hand = -(log_pz + ld_core + ld_logit + ld_scale).mean() / (16 * math.log(2))
    bpd = image_bits_per_dim(tiny, k, generator=torch.Generator().manual_seed(7), batch_size=2)
    assert bpd == pytest.approx(float(by_hand.detach()), abs=1e-9)
    from_unit = bits_per_dim_from_unit_log_prob(tiny.log_prob(x), 16)
    assert float(from_unit.detach()) == pytest.approx(float(by_hand.detach()), abs=1e-9)
    # a uniform density on [0, 256)^D has exactly 8 bits/dim
    assert float(bits_per_dim_from_unit_log_prob(torch.zeros(3), 16)) == pytest.approx(8.0)


def test_dequantize_stays_in_the_pixel_cell():
    k = torch.randint(0, 256, (50, 1, 4, 4), dtype=torch.uint8)
    v = dequantize(k, generator=torch.Generator().manual_seed(0))
    assert v.dtype == torch.float32
    assert bool((v >= k.float()).all()) and bool((v < k.float() + 1).all())


def test_bad_inputs():
    model = ImageRealNVP(**TINY)
    with pytest.raises(ValueError, match=r"x: expected shape \(batch, 1, 4, 4\)"):
        model.log_prob(torch.rand(2, 1, 28, 28))
    with pytest.raises(ValueError, match="x: expected a floating-point"):
        model.log_prob(torch.zeros(2, 1, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"x: expected values in \[0, 1\]"):
        model.log_prob(torch.full((2, 1, 4, 4), 3.0))
    with pytest.raises(ValueError, match="image_shape"):
        ImageRealNVP(image_shape=(1, 6, 6), n_scales=3)
    with pytest.raises(ValueError, match="hidden"):
        ImageRealNVP(image_shape=(1, 4, 4), n_scales=2, hidden=(8, 8, 8))
    with pytest.raises(ValueError, match="alpha"):
        Logit(0.5)
    with pytest.raises(ValueError, match="parity"):
        CheckerboardCoupling((1, 4, 4), parity=2)
    with pytest.raises(ValueError, match="even number of channels"):
        ChannelCoupling((3, 4, 4))
    with pytest.raises(ValueError, match="images: expected integer pixel values in 0..255"):
        dequantize(torch.full((1, 1, 2, 2), 256.0))
    with pytest.raises(ValueError, match="images: expected integer"):
        dequantize(torch.full((1, 1, 2, 2), 0.5))
    with pytest.raises(ValueError, match="images"):
        image_bits_per_dim(model, torch.zeros(0, 1, 4, 4))
    with pytest.raises(ValueError, match="temperature"):
        model.sample(2, temperature=0.0)


def test_shipped_pretrained_model_loads_with_its_recorded_architecture(tmp_path):
    from coursekit.pretrained import (
        MNIST_CHECKPOINT,
        load_pretrained_mnist,
        pretrained_mnist_metadata,
    )

    if not MNIST_CHECKPOINT.is_file():
        pytest.skip("no pretrained checkpoint in this checkout")
    model = load_pretrained_mnist()
    meta = pretrained_mnist_metadata()
    assert model.config == meta["config"] and not model.training
    k = torch.randint(0, 256, (2, 1, 28, 28), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.isfinite(model.log_prob(dequantize(k) / 256)).all()
    # another architecture's weights are refused with a clear message
    raw = torch.load(MNIST_CHECKPOINT, weights_only=True)
    raw["config"] = dict(raw["config"], n_blocks=raw["config"]["n_blocks"] + 1)
    torch.save(raw, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="do not match the architecture"):
        load_pretrained_mnist(tmp_path / "other.pt")
    with pytest.raises(ValueError, match="path"):
        load_pretrained_mnist(tmp_path / "missing.pt")


def test_training_command_pieces(tmp_path):
    from coursekit import train_mnist as tm
    from coursekit.flows.checkpoint import atomic_save
    from coursekit.optim import learning_rate
    from coursekit.train_mnist_checks import UsageError

    args = tm.parse_args(["--quick", "--out", str(tmp_path)])
    assert args.steps == 120 and args.final_eval_images == 1000
    lrs = [learning_rate(s, args.steps, args.lr, args.warmup) for s in range(args.steps)]
    assert lrs[0] < lrs[args.warmup - 1] == pytest.approx(args.lr)
    assert lrs[-1] < 0.01 * args.lr and max(lrs) <= args.lr
    timed = tm.parse_args(["--max-minutes", "1"])
    budget = 60 * timed.max_minutes
    assert learning_rate(
        5000, timed.steps, timed.lr, timed.warmup, elapsed=60.0, max_seconds=budget
    ) == pytest.approx(0.0)
    atomic_save({"a": torch.ones(2)}, tmp_path / "c.pt")
    assert torch.load(tmp_path / "c.pt", weights_only=True)["a"].sum() == 2
    assert not list(tmp_path.glob("*.tmp"))
    with pytest.raises(UsageError):
        tm.parse_args(["--steps", "0"])


def test_actnorm_is_exact_and_initialize_standardises():
    from coursekit.flows.glow import ActNorm

    for per_pixel in (False, True):
        layer = ActNorm((2, 3, 4), per_pixel=per_pixel).double()
        x = 3.0 + 0.5 * images01(64, shape=(2, 3, 4), seed=4)
        layer.pending_init = True
        z, _ = layer(x)
        dims = (0,) if per_pixel else (0, 2, 3)
        assert torch.allclose(z.mean(dims), torch.zeros(1, dtype=x.dtype), atol=1e-10)
        assert torch.allclose(z.std(dims), torch.ones(1, dtype=x.dtype), atol=1e-10)
        assert not layer.pending_init
        x = images01(2, shape=(2, 3, 4), seed=5)
        z, ld = layer(x)
        x_back, ild = layer.inverse(z)
        assert torch.allclose(x_back, x, atol=1e-12)
        assert torch.allclose(ild, -ld, atol=1e-10)
        assert torch.allclose(ld, autograd_log_det(layer, x), atol=1e-9)


def test_model_with_actnorm_initialize_round_trip_and_log_det():
    torch.manual_seed(0)
    model = ImageRealNVP(**TINY, actnorm=True).double()
    assert model.config["actnorm"] is True
    x = images01(32, seed=6)
    model.initialize(x)
    z, _ = model(x)
    # after the data-dependent init the noise is roughly standardised
    z = z.detach()
    assert abs(float(z.mean())) < 0.2 and abs(float(z.std()) - 1) < 0.2
    randomise(model, std=0.05)
    assert_model_is_exact(model, x[:3])
    with pytest.raises(ValueError, match="at least 2"):
        model.initialize(x[:1])
    # without ActNorm, initialize changes nothing and the config records actnorm=False
    plain = ImageRealNVP(**TINY)
    before = {k: v.clone() for k, v in plain.state_dict().items()}
    plain.initialize(images01(4, dtype=torch.float32))
    assert plain.config["actnorm"] is False
    assert all(torch.equal(before[k], v) for k, v in plain.state_dict().items())


def test_invertible_conv_1x1_log_det_gradcheck_and_start():
    torch.manual_seed(0)
    layer = InvertibleConv1x1(3).double()
    # starts as a rotation (drawn in float32): log|det W| = 0 and W Wᵀ = I to float32 precision
    eye = torch.eye(3, dtype=torch.float64)
    assert torch.allclose(layer.weight @ layer.weight.T, eye, atol=1e-6)
    x = images01(2, shape=(3, 2, 5), seed=7)
    assert torch.allclose(layer(x)[1], torch.zeros(2, dtype=x.dtype), atol=1e-5)
    with torch.no_grad():  # a general (non-orthogonal) matrix: log|det| = H·W·log|det W|
        layer.weight.copy_(torch.tensor([[2.0, 0.3, 0.0], [0.1, 1.5, -0.4], [0.0, 0.2, 0.7]]))
    z, ld = layer(x)
    expected = 10 * torch.linalg.slogdet(layer.weight)[1]
    assert torch.allclose(ld, expected.expand(2), atol=1e-12)
    assert torch.allclose(ld, autograd_log_det(layer, x), atol=1e-10)
    assert torch.allclose(layer.inverse(z)[0], x, atol=1e-12)
    # pixel (i, j) of z is W times pixel (i, j) of x
    assert torch.allclose(z[1, :, 1, 3], layer.weight @ x[1, :, 1, 3], atol=1e-12)

    def fn(inp, weight):
        return torch.func.functional_call(layer, {"weight": weight}, (inp,))

    weight = layer.weight.detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(fn, (x.clone().requires_grad_(True), weight))
    with pytest.raises(ValueError, match=r"x: expected shape \(batch, 3, H, W\)"):
        layer(torch.rand(2, 4, 2, 2, dtype=torch.float64))


def assert_trained_model_is_exact_and_rebuilds(model: ImageRealNVP, x: torch.Tensor) -> None:
    """Initialise on ``x``, perturb every weight, check exactness on 3 images, and check that
    ``ImageRealNVP(**model.config)`` with the same state gives the same ``log_prob``."""
    model.initialize(x)
    randomise(model, std=0.05)
    assert_model_is_exact(model, x[:3])
    rebuilt = ImageRealNVP(**model.config).double()
    rebuilt.load_state_dict(model.state_dict())
    assert torch.equal(rebuilt.log_prob(x[:3]), model.log_prob(x[:3]))


def test_glow_style_model_is_exact_and_records_its_options():
    torch.manual_seed(0)
    cfg = dict(
        TINY,
        n_checker=0,
        n_channel=[3],
        actnorm=True,
        invconv=True,
        block_kernel=1,
        split_prior=True,
    )
    model = ImageRealNVP(**cfg).double()
    assert model.config["invconv"] is True and model.config["block_kernel"] == 1
    assert model.config["n_channel"] == [3] and model.config["split_prior"] is True
    convs = [m for m in model.modules() if isinstance(m, InvertibleConv1x1)]
    assert len(convs) == 3 + 2  # 3 steps at the first scale, n_final = 2 at the last
    couplings = [m for m in model.modules() if isinstance(m, ChannelCoupling)]
    assert len(couplings) == 3 + 1 + 2  # the learned prior of the split is one more
    assert not [m for m in model.modules() if isinstance(m, CheckerboardCoupling)][2:]
    assert_trained_model_is_exact_and_rebuilds(model, images01(32, seed=8))
    with pytest.raises(ValueError, match=r"n_channel: expected a non-negative integer or 1"):
        ImageRealNVP(**dict(cfg, n_channel=[2, 2]))
    with pytest.raises(ValueError, match="n_checker"):
        ImageRealNVP(**dict(cfg, n_checker=-1))
    with pytest.raises(ValueError, match="block_kernel: expected 1 or 3"):
        ImageRealNVP(**dict(cfg, block_kernel=2))
    with pytest.raises(ValueError, match="channels"):
        InvertibleConv1x1(0)


def test_relu_conditioners_and_glow_steps_only_at_the_last_scale():
    """``activation="relu"`` and ``n_final_checker=0``: exact, recorded, rebuilt, validated."""
    torch.manual_seed(0)
    cfg = dict(
        TINY,
        n_checker=0,
        n_channel=[2],
        n_final=3,
        n_final_checker=0,
        actnorm=True,
        invconv=True,
        block_kernel=1,
        split_prior=True,
        activation="relu",
    )
    model = ImageRealNVP(**cfg).double()
    assert model.config["activation"] == "relu" and model.config["n_final_checker"] == 0
    assert not [m for m in model.modules() if isinstance(m, CheckerboardCoupling)]
    assert len([m for m in model.modules() if isinstance(m, InvertibleConv1x1)]) == 2 + 3
    assert [m for m in model.modules() if isinstance(m, torch.nn.ReLU)]
    assert not [m for m in model.modules() if isinstance(m, torch.nn.SiLU)]
    assert_trained_model_is_exact_and_rebuilds(model, images01(32, seed=9))
    # a config records every field, defaults included; a partial (older) config takes the
    # constructor's defaults for the fields it lacks
    default = ImageRealNVP(**dict(cfg, n_final_checker=None, activation="silu"))
    assert default.config["activation"] == "silu" and default.config["n_final_checker"] is None
    partial = {k: v for k, v in default.config.items() if k not in ("activation", "split_prior")}
    assert ImageRealNVP(**partial).config == dict(default.config, split_prior=False)
    with pytest.raises(ValueError, match="activation: expected one of"):
        ImageRealNVP(**dict(cfg, activation="tanh"))
    with pytest.raises(ValueError, match="n_final_checker: expected an integer >= 0"):
        ImageRealNVP(**dict(cfg, n_final_checker=-1))
