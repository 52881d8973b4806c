"""Short MNIST training probes: which image-flow configuration learns fastest on 2 CPU cores.

Each probe builds an :class:`~coursekit.flows.ImageRealNVP` from a named preset (the shipped
architecture of ``coursekit.flows.ImageFlowConfig()``, optionally with some keys changed),
initialises its ActNorm layers from 512 training images, and trains it for a fixed budget of
*training* wall time (evaluations excluded) with :func:`coursekit.training.fit`: Adam, batch
64, a linear warm-up and a cosine learning-rate decay that reaches 0 at the end of the budget.
Every ``--eval-every`` minutes and at the end it reports the test bits/dim of the current
weights on the first ``--eval-images`` test images (dequantization noise from a fixed seed,
so probes are comparable).

Usage (repository root; one training at a time, nothing else running)::

    python benchmarks/mnist_probe.py                        # shipped vs alpha=0.05, 4 min each
    python benchmarks/mnist_probe.py --presets shipped realnvp --minutes 4
    python benchmarks/mnist_probe.py --presets shipped --set n_channel=[8,8] --minutes 2

Prints one line per evaluation and a Markdown table (one row per preset) at the end.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime, timezone

import torch

from coursekit._validation import parse_key_json, validation
from coursekit.datasets import load_mnist
from coursekit.device import hardware
from coursekit.flows import (
    DequantizedImages,
    ImageFlowConfig,
    ImageRealNVP,
    dequantize,
    image_bits_per_dim,
)
from coursekit.metrics import nll
from coursekit.train_mnist import EVAL_SEED
from coursekit.training import FitState
from coursekit.training_run import Callback, fit_run

#: Changes to the shipped configuration, by name.
PRESETS: dict[str, dict[str, object]] = {
    # the shipped architecture: Glow-style steps (ActNorm, 1x1 conv, coupling), learned split
    # prior, cheap 3x3 / residual 1x1 / 3x3 conditioners, alpha = 1e-5
    "shipped": {},
    # the same with RealNVP's alpha = 0.05 for the logit
    "alpha_0.05": {"alpha": 0.05},
    # Glow steps only at the last scale (no checkerboard couplings at 7x7) and ReLU
    # conditioners: cheaper per step
    "glow_relu": {"n_final": 4, "n_final_checker": 0, "activation": "relu"},
    # RealNVP's checkerboard + channel couplings with 3x3 residual conditioners, ActNorm,
    # with the small alpha
    "realnvp": {
        "hidden": [16, 48, 64],
        "n_checker": 2,
        "n_channel": 2,
        "n_final": 2,
        "actnorm": True,
        "invconv": False,
        "block_kernel": 3,
        "split_prior": False,
    },
}


def build(preset: str, overrides: dict[str, object]) -> ImageRealNVP:
    """``ImageRealNVP`` of the shipped config, changed by the preset then by ``overrides``."""
    if preset not in PRESETS:
        raise ValueError(f"preset: expected one of {sorted(PRESETS)}, got {preset!r}")
    config = {**ImageFlowConfig().as_dict(), **PRESETS[preset], **overrides}
    return ImageRealNVP(**config)


def probe(
    model: ImageRealNVP,
    train_images: torch.Tensor,
    test_images: torch.Tensor,
    minutes: float,
    lr: float = 5e-3,
    batch_size: int = 64,
    warmup: int = 100,
    eval_every: float = 1.0,
    seed: int = 0,
    log=print,
    compile_loss: bool = False,
) -> dict[str, object]:
    """Train ``model`` with :func:`coursekit.training.fit` for ``minutes`` of training time;
    return its bits/dim curve.

    ``train_images``: (n, 1, 28, 28) uint8; ``test_images``: the evaluation images (uint8).
    ``fit`` runs with a linear warm-up of ``warmup`` steps, then a cosine decay that ends
    with the time budget, gradient norms clipped at 50, no EMA (the current weights are
    evaluated). With ``compile_loss`` the loss goes through ``torch.compile`` (its
    compilation counts as training time).
    Returns ``{"steps", "images_per_s", "final_bpd", "curve": [(minutes, step, bpd), …]}``.
    """
    g = torch.Generator().manual_seed(seed + 1)
    init = train_images[torch.randperm(train_images.shape[0], generator=g)[:512]]
    model.initialize(dequantize(init, generator=g) / 256)
    budget = 60.0 * minutes
    curve: list[tuple[float, int, float]] = []
    next_eval = [60.0 * eval_every]

    def evaluate() -> float:
        return image_bits_per_dim(
            model, test_images, generator=torch.Generator().manual_seed(EVAL_SEED)
        )

    def evaluate_when_due(state: FitState) -> None:
        if next_eval[0] <= state.elapsed < budget:
            next_eval[0] += 60.0 * eval_every
            curve.append((round(state.elapsed / 60, 2), state.step, round(evaluate(), 4)))
            log(f"  {curve[-1][0]:.2f} min, step {state.step}: {curve[-1][2]:.4f} bits/dim")

    loss_fn = torch.compile(nll) if compile_loss else nll
    with validation(False):  # pixels in [0, 1) by construction
        history = fit_run(
            model,
            DequantizedImages(train_images),
            steps=10**9,
            batch_size=batch_size,
            lr=lr,
            clip_grad=50.0,
            max_seconds=budget,
            seed=seed,
            loss_fn=loss_fn,
            progress=False,
            warmup=warmup,
            callbacks=[Callback(evaluate_when_due, every_steps=1)],
        )
        final = evaluate()
    curve.append((round(history.seconds / 60, 2), history.steps, round(final, 4)))
    return {
        "steps": history.steps,
        "images_per_s": round(history.steps * batch_size / history.seconds, 1),
        "final_bpd": round(final, 4),
        "curve": curve,
    }


def _parse_overrides(items: list[str]) -> dict[str, object]:
    try:
        return parse_key_json(items, None, "--set")
    except ValueError as error:
        raise SystemExit(str(error)) from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=["shipped", "alpha_0.05"])
    parser.add_argument("--set", nargs="*", default=[], help="config changes, KEY=JSON")
    parser.add_argument("--minutes", type=float, default=4.0, help="training time per probe")
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--eval-images", type=int, default=1000)
    parser.add_argument("--eval-every", type=float, default=1.0, help="minutes")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--compile", action="store_true", help="torch.compile the loss")
    parser.add_argument("--data-dir", default=None, help="MNIST IDX folder (default: load_mnist's)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    overrides = _parse_overrides(args.set)
    train = load_mnist(args.data_dir, split="train")
    test = load_mnist(args.data_dir, split="test")
    rows = []
    for preset in args.presets:
        torch.manual_seed(0)
        model = build(preset, overrides)
        print(f"{preset}: {model.num_parameters():,} parameters, config {model.config}", flush=True)
        result = probe(
            model,
            train.images,
            test.images[: args.eval_images],
            args.minutes,
            lr=args.lr,
            batch_size=args.batch_size,
            eval_every=args.eval_every,
            log=lambda line: print(line, flush=True),
            compile_loss=args.compile,
        )
        rows.append((preset, model.num_parameters(), result))
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(
        f"\n{args.minutes:g} min of training per probe, lr {args.lr:g}, batch {args.batch_size}"
        f"{', torch.compile' if args.compile else ''}; test bits/dim "
        f"on the first {args.eval_images} test images of {test.source}; {stamp}; "
        f"{hardware()}, {torch.get_num_threads()} threads\n"
    )
    print("| preset | parameters | steps | images/s | bits/dim per minute | final bits/dim |")
    print("|---|---:|---:|---:|---|---:|")
    for preset, n_params, r in rows:
        curve = " → ".join(f"{bpd:.3f}" for _, _, bpd in r["curve"])
        print(
            f"| {preset} | {n_params:,} | {r['steps']} | {r['images_per_s']} | {curve} "
            f"| **{r['final_bpd']:.4f}** |"
        )
    return 0


if __name__ == "__main__":
    start = time.perf_counter()
    code = main()
    print(f"total wall time {time.perf_counter() - start:.0f} s", file=sys.stderr)
    sys.exit(code)
