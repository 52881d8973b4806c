"""Smoke test of benchmarks/peers.py on the coursekit side only (peers are optional extras).

Runs the shared training loop, the KL snapshots, the throughput timing and the report
rendering for a fraction of a second, so the benchmark's code path is tested without zuko,
nflows or normflows; the peer builders are checked too when the peer is importable.
"""

from __future__ import annotations

import importlib
import math
import sys

import pytest
import torch
from _benchmarks import BENCHMARKS, import_benchmark


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        peer_models = importlib.import_module("peer_models")
        peers = importlib.import_module("peers")
        yield peers, peer_models
    finally:
        sys.path.remove(str(BENCHMARKS))


def test_toy_config_follows_realnvp_defaults(bench):
    _, pm = bench
    import inspect

    from coursekit.flows import RealNVP

    cfg = pm.ToyConfig.from_coursekit()
    params = inspect.signature(RealNVP.__init__).parameters
    assert cfg.n_layers == params["n_layers"].default
    assert cfg.hidden == tuple(params["hidden"].default)
    assert "affine couplings" in cfg.describe()


def test_quality_run_coursekit_two_snapshots(bench):
    peers, _ = bench
    torch.set_num_threads(1)
    snaps = peers.quality_run("coursekit", "4 modes", seed=0, budgets=(0.2, 0.4), kl_samples=500)
    assert [s.budget for s in snaps] == [0.2, 0.4]
    assert all(s.library == "coursekit" and not s.diverged for s in snaps)
    assert snaps[0].steps >= 1 and snaps[1].steps >= snaps[0].steps
    # KL of a barely trained flow: finite, non-negative up to Monte Carlo error, not huge.
    assert all(math.isfinite(s.kl) and -0.1 < s.kl < 10 for s in snaps)


def test_train_with_snapshots_reports_divergence(bench):
    peers, _ = bench

    class Broken(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(()))

        def log_prob(self, x):
            return self.w + torch.full((x.shape[0],), float("nan"))

    from coursekit.datasets import four_modes

    rows = peers.train_with_snapshots(
        Broken(),
        four_modes(),
        budgets=(0.1, 0.2),
        seed=0,
        lr=1e-3,
        batch_size=8,
        clip_grad=None,
        evaluate=lambda m: 0.0,
    )
    assert [r[0] for r in rows] == [0.1, 0.2]
    assert all(r[1] == math.inf and r[4] for r in rows)


def test_train_with_snapshots_evaluates_the_moving_average_of_the_weights(bench):
    """With a constant gradient, Adam moves w by lr per step: w_k = k·lr, so the evaluated
    EMA after n steps follows fit's recursion w̄_k = d_k w̄_(k−1) + (1 − d_k) k·lr with
    d_k = min(d, k / (k + 9)); without EMA the raw weight n·lr is seen."""
    peers, _ = bench

    class Linear(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros((), dtype=torch.float64))

        def log_prob(self, x):
            return self.w + torch.zeros(x.shape[0], dtype=torch.float64)

    from coursekit.datasets import four_modes

    lr, d = 1e-3, 0.9
    for ema_decay in (d, None):
        model = Linear()
        seen = []
        rows = peers.train_with_snapshots(
            model,
            four_modes(),
            budgets=(0.05,),
            seed=0,
            lr=lr,
            batch_size=4,
            clip_grad=None,
            evaluate=lambda m, seen=seen: seen.append(m) or float(m.w.detach()),
            ema_decay=ema_decay,
        )
        ((_, value, n, _, diverged),) = rows
        assert n > 5 and not diverged
        assert float(model.w.detach()) == pytest.approx(n * lr, rel=1e-6)
        if ema_decay is None:
            assert seen[0] is model and value == pytest.approx(n * lr, rel=1e-6)
        else:
            expected = 0.0
            for k in range(1, n + 1):
                d_k = min(d, k / (k + 9))
                expected = d_k * expected + (1 - d_k) * k * lr
            assert seen[0] is not model and value == pytest.approx(expected, rel=1e-6)
            assert value < n * lr - 5 * lr  # the average lags the raw weight


def test_throughput_and_report_coursekit_only(bench, tmp_path):
    peers, _ = bench
    torch.set_num_threads(1)
    settings = peers.Settings.quick_settings()
    settings.libraries = ("coursekit",)
    settings.repeats = 1
    settings.seconds_per_timing = 0.01
    settings.toy_sample_n = 100
    settings.image_sample_n = 2
    settings.image_batch = 2
    tp = peers.run_throughput(settings, log=lambda msg: None)
    rates = tp.rates["train 2-D (steps/s, batch 512)"]
    assert rates["coursekit"] is not None and rates["coursekit"] > 0
    assert tp.rates["sample 2-D (samples/s)"]["coursekit"] > 0
    snaps = [
        peers.Snapshot("coursekit", ds, 0, b, 0.5, 10, b)
        for ds in peers.DATASETS
        for b in settings.budgets
    ]
    from datetime import datetime, timezone

    text = peers.render(
        settings,
        {"coursekit": "0"},
        snaps,
        tp,
        datetime.now(timezone.utc),
        ((0.0,), (0.0,)),
        1.0,
        "python benchmarks/peers.py --quick",
    )
    assert "| 4 modes | 2 s | 0.500" in text
    assert "train 2-D (steps/s, batch 512)" in text
    assert "n/a (no peer result)" in text


def test_library_orders_pair_everyone(bench):
    peers, _ = bench
    libs = ("a", "b", "c", "d")
    orders = peers.library_orders(libs, 6)
    pairs = set()
    for order in orders:
        assert sorted(order) == sorted(libs)
        pairs |= {frozenset(order[:2]), frozenset(order[2:])}
    assert len(pairs) == 6  # every library shares the machine with every other one


@pytest.mark.parametrize("library", ["zuko", "nflows", "normflows"])
def test_peer_log_prob_is_a_density(bench, library):
    """Each peer's log_prob integrates to 1 and matches its own samples (direction check)."""
    _, pm = bench
    pytest.importorskip(library)
    torch.manual_seed(0)
    model = pm.TOY_BUILDERS[library](pm.ToyConfig(n_layers=4, hidden=(16,)))
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, torch.nn.Linear) and mod.out_features == 2:
                mod.bias.copy_(torch.tensor([0.3, 0.4]))
                mod.weight.normal_(0, 0.03)
    assert pm.check_density(model, half_width=10, n=401) == pytest.approx(1.0, abs=5e-3)
    x = model.sample(50_000)
    in_box = float((x.abs() < 1).all(1).float().mean())
    xs = torch.linspace(-1, 1, 201)[:-1] + 1 / 200
    with torch.no_grad():
        mass = float(torch.exp(model.log_prob(torch.cartesian_prod(xs, xs))).sum()) * 1e-4
    assert in_box == pytest.approx(mass, abs=0.01)


def test_mnist_probe_trains_and_reports_a_curve():
    mnist_probe = import_benchmark("mnist_probe")
    torch.manual_seed(0)
    small = {"hidden": [4, 4, 4], "n_channel": [1, 1], "n_final": 1}
    model = mnist_probe.build("shipped", small)
    assert model.config["alpha"] == 1e-5 and model.config["invconv"] is True
    assert mnist_probe.build("alpha_0.05", small).config["alpha"] == 0.05
    g = torch.Generator().manual_seed(0)
    train = torch.randint(0, 256, (600, 1, 28, 28), generator=g, dtype=torch.uint8)
    test = torch.randint(0, 256, (10, 1, 28, 28), generator=g, dtype=torch.uint8)
    lines = []
    result = mnist_probe.probe(model, train, test, minutes=0.03, eval_every=0.01, log=lines.append)
    assert result["steps"] >= 2 and result["images_per_s"] > 0
    assert len(result["curve"]) == len(lines) + 1  # one line per intermediate evaluation
    # random pixels: about 8 bits/dim (uniform), never NaN
    assert all(math.isfinite(bpd) and 6 < bpd < 12 for _, _, bpd in result["curve"])
    with pytest.raises(ValueError, match="preset"):
        mnist_probe.build("nope", {})
    with pytest.raises(SystemExit, match="KEY=JSON"):
        mnist_probe._parse_overrides(["alpha"])
    assert mnist_probe._parse_overrides(["n_channel=[2,3]"]) == {"n_channel": [2, 3]}


def test_toy_kl_runs_a_seed_with_overrides_and_rejects_bad_ones():
    toy_kl = import_benchmark("toy_kl")
    from coursekit.flows import RealNVP
    from coursekit.training import fit

    model_overrides = toy_kl.parse_overrides(
        ["n_layers=2", "hidden=[4]"], RealNVP.__init__, "--model"
    )
    fit_overrides = toy_kl.parse_overrides(["batch_size=16", "steps=5"], fit, "--fit")
    assert model_overrides == {"n_layers": 2, "hidden": [4]}
    row = toy_kl.run_seed("four_modes", 0, 600.0, 500, model_overrides, fit_overrides)
    assert row["steps"] == 5 and math.isfinite(row["final_loss"])
    # 5 steps from the identity: far from the target, KL well above the bar but finite
    assert 0.03 < row["kl"] < 20
    with pytest.raises(SystemExit, match="--fit: expected KEY=JSON"):
        toy_kl.parse_overrides(["seed=3"], fit, "--fit")  # fixed by the benchmark itself
    with pytest.raises(SystemExit, match="--model: the value of hidden is not JSON"):
        toy_kl.parse_overrides(["hidden=[3"], RealNVP.__init__, "--model")
