"""Short MNIST training probes: which image-flow configuration learns fastest on 2 CPU cores.

Each probe builds an :class:`~coursekit.flows.ImageRealNVP` from a named preset (the shipped
architecture of ``coursekit.train_mnist.DEFAULT_CONFIG``, optionally with some keys changed),
initialises its ActNorm layers from 512 training images, and trains it for a fixed budget of
*training* wall time (evaluations excluded) with Adam, batch 64, a linear warm-up and a cosine
learning-rate decay that reaches 0 at the end of the budget. Every ``--eval-every`` minutes and
at the end it reports the test bits/dim of the current weights on the first ``--eval-images``
test images (dequantization noise from a fixed seed, so probes are comparable).

Usage (repository root; one training at a time, nothing else running)::

    python benchmarks/mnist_probe.py                        # shipped vs alpha=0.05, 4 min each
    python benchmarks/mnist_probe.py --presets shipped realnvp --minutes 4
    python benchmarks/mnist_probe.py --presets shipped --set n_channel=[8,8] --minutes 2

Prints one line per evaluation and a Markdown table (one row per preset) at the end.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from datetime import datetime, timezone

import torch

from coursekit._validation import parse_key_json
from coursekit.datasets import load_mnist
from coursekit.flows import ImageRealNVP, dequantize, image_bits_per_dim
from coursekit.train_mnist import DEFAULT_CONFIG, training_loss

#: Changes to the shipped configuration, by name.
PRESETS: dict[str, dict[str, object]] = {
    # the shipped architecture: Glow-style steps (ActNorm, 1x1 conv, coupling), learned split
    # prior, cheap 3x3 / residual 1x1 / 3x3 conditioners, alpha = 1e-5
    "shipped": {},
    # the same with RealNVP's alpha = 0.05 for the logit
    "alpha_0.05": {"alpha": 0.05},
    # the previous shipped architecture (RealNVP checkerboard + channel couplings with 3x3
    # residual conditioners, ActNorm), with the small alpha
    # Glow steps only at the last scale (no checkerboard couplings at 7x7) and ReLU
    # conditioners: cheaper per step
    "glow_relu": {"n_final": 4, "n_final_checker": 0, "activation": "relu"},
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
    config = {**DEFAULT_CONFIG, **PRESETS[preset], **overrides}
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
    """Train ``model`` for ``minutes`` of training wall time; return its bits/dim curve.

    ``train_images``: (n, 1, 28, 28) uint8; ``test_images``: the evaluation images (uint8).
    With ``compile_loss`` the loss ``−mean log p(x)`` goes through ``torch.compile`` (its
    compilation, about 2 minutes on 2 cores, counts as training time).
    Returns ``{"steps", "images_per_s", "final_bpd", "curve": [(minutes, step, bpd), …]}``.
    """
    g = torch.Generator().manual_seed(seed + 1)
    init = train_images[torch.randperm(train_images.shape[0], generator=g)[:512]]
    model.initialize(dequantize(init, generator=g) / 256)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    budget = 60.0 * minutes

    def loss_of(x: torch.Tensor) -> torch.Tensor:
        return training_loss(model, x)  # −mean log p(x), one graph for torch.compile

    loss_fn = torch.compile(loss_of) if compile_loss else loss_of

    def evaluate() -> float:
        value = image_bits_per_dim(
            model, test_images, generator=torch.Generator().manual_seed(1234)
        )
        model.train()
        return value

    trained, step, next_eval, curve = 0.0, 0, 60.0 * eval_every, []
    model.train()
    while trained < budget:
        start = time.perf_counter()
        frac = min(1.0, trained / budget)
        rate = lr * min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * frac))
        for group in optimizer.param_groups:
            group["lr"] = rate
        idx = torch.randint(0, train_images.shape[0], (batch_size,), generator=g)
        x = dequantize(train_images[idx], generator=g) / 256
        loss = loss_fn(x)
        if not torch.isfinite(loss):
            raise RuntimeError(f"loss became {float(loss)} at step {step}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 50.0)
        optimizer.step()
        step += 1
        trained += time.perf_counter() - start
        if trained >= next_eval and trained < budget:
            next_eval += 60.0 * eval_every
            curve.append((round(trained / 60, 2), step, round(evaluate(), 4)))
            log(f"  {curve[-1][0]:.2f} min, step {step}: {curve[-1][2]:.4f} bits/dim")
    final = evaluate()
    curve.append((round(trained / 60, 2), step, round(final, 4)))
    return {
        "steps": step,
        "images_per_s": round(step * batch_size / trained, 1),
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
        f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads\n"
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
