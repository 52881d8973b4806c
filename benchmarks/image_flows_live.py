"""The band of notebook 08's live training: a small image flow trained with variational
dequantization, over seeds.

The notebook trains a flow of the shipped model's family together with a dequantizer
``q(u | k)`` (``coursekit.flows.DequantizedImageFlow``) for a fixed number of steps and scores
500 test images: the bound with ``q`` before and after training, with ``K = 8`` draws of
``q``, and the same flow with uniform noise. A training's figures depend on the rounding of
the CPU's arithmetic (README, "Portable outputs"), so the notebook prints them beside the
band of this script: the same run, everything as in the notebook except the training seed,
for each of ``--seeds``; the notebook asserts its settings equal ``SETTINGS``.

Usage (repository root, full MNIST; about 45 CPU seconds per seed, one thread)::

    COURSEKIT_MNIST_DIR=path/to/mnist OMP_NUM_THREADS=1 \\
        python benchmarks/image_flows_live.py --seeds 0 1 2 3 4   # image_flows_live.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from coursekit.datasets import load_mnist
from coursekit.flows import (
    DequantizedImageFlow,
    ImageFlowConfig,
    ImageRealNVP,
    VariationalDequantizer,
    dequantize,
    importance_weighted_log_prob,
    negative_elbo,
)
from coursekit.metrics import bits_per_dim
from coursekit.training import fit, seed_everything

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "benchmarks" / "image_flows_live.json"
D = 28 * 28

#: The notebook's flow: the shipped architecture, narrower (notebook 08 builds the same).
FLOW = replace(ImageFlowConfig(), hidden=(16, 32, 32), n_channel=(2, 2))

#: The notebook's settings (notebook 08 asserts that its own equal these).
SETTINGS = {
    "flow": FLOW.as_dict(),
    "dequantizer": {"hidden": 8, "n_couplings": 2, "context_channels": 4},
    "fit": {"steps": 250, "batch_size": 64, "lr": 5e-3, "warmup": 50},
    "init_images": 512,
    "held_out_images": 500,
    "eval_seed": 1234,
}


def bound_bits_per_dim(model: torch.nn.Module, images: torch.Tensor, n_draws: int) -> float:
    """Bits/dim of the ``K = n_draws`` importance-weighted bound on ``images``."""
    log_p = importance_weighted_log_prob(
        model, images, n_draws, generator=torch.Generator().manual_seed(SETTINGS["eval_seed"])
    )
    return float(bits_per_dim(log_p.mean(), D, levels=256))


def run(seed: int, train: torch.Tensor, test: torch.Tensor) -> dict[str, float]:
    """The notebook's training with training seed ``seed``; its printed figures."""
    seed_everything(seed)
    flow = ImageRealNVP.from_config(FLOW)
    init = train[: SETTINGS["init_images"]]
    flow.initialize(dequantize(init, generator=torch.Generator().manual_seed(1)) / 256)
    pair = DequantizedImageFlow(
        flow, VariationalDequantizer((1, 28, 28), **SETTINGS["dequantizer"])
    )
    held_out = test[: SETTINGS["held_out_images"]]
    before = bound_bits_per_dim(pair, held_out, 1)
    start = time.process_time()
    history = fit(
        pair, train.float(), seed=seed, loss_fn=negative_elbo, progress=False, **SETTINGS["fit"]
    )
    cpu = time.process_time() - start
    return {
        "seed": seed,
        "steps": history.steps,
        "before": before,
        "after": bound_bits_per_dim(pair, held_out, 1),
        "after_k8": bound_bits_per_dim(pair, held_out, 8),
        "uniform": bound_bits_per_dim(pair.flow, held_out, 1),
        "train_cpu_s": cpu,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    train = load_mnist(split="train").images
    test = load_mnist(split="test").images
    if len(train) != 60_000:
        raise SystemExit("this benchmark needs the full MNIST (set COURSEKIT_MNIST_DIR)")
    runs = []
    for seed in args.seeds:
        row = run(seed, train, test)
        runs.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    data = {
        "settings": SETTINGS,
        "command": "python benchmarks/image_flows_live.py --seeds "
        + " ".join(map(str, args.seeds)),
        "torch": torch.__version__,
        "runs": runs,
    }
    args.out.write_text(json.dumps(data, indent=1) + "\n")
    for key in ("before", "after", "after_k8", "uniform"):
        values = [r[key] for r in runs]
        mean = sum(values) / len(values)
        sd = math.sqrt(sum((v - mean) ** 2 for v in values) / max(len(values) - 1, 1))
        print(f"{key:>9}: mean {mean:.4f}, sd {sd:.4f} over {len(values)} seeds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
