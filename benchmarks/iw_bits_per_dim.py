"""Importance-weighted test bits/dim of the shipped MNIST model for several K (1, 8, 32).

Usage (from the repository root, with the full MNIST)::

    COURSEKIT_MNIST_DIR=/work/shared/data/mnist OMP_NUM_THREADS=1 \\
        python benchmarks/iw_bits_per_dim.py --ks 1 8 32 --out benchmarks/iw_bits_per_dim.json

For each ``K``: :func:`coursekit.flows.importance.importance_weighted_log_prob` on the test
images (the dequantization noise from ``torch.Generator().manual_seed(1234)``, the seed of the
shipped model's recorded figure), then bits/dim with the standard error of the mean over the
images, and for each ``K`` after the first the per-image difference from the first ``K`` (mean and
standard error: the draws are shared in part, so this paired error is far smaller than either
figure's). One torch thread; the CPU time of the process is recorded.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch

from coursekit.datasets import load_mnist
from coursekit.flows.importance import importance_weighted_log_prob
from coursekit.pretrained import load_pretrained_mnist
from coursekit.train_mnist import EVAL_SEED


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--n-images", type=int, default=None, help="first N test images")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    test = load_mnist(split="test")
    images = test.images if args.n_images is None else test.images[: args.n_images]
    model = load_pretrained_mnist()
    d = images[0].numel()
    results = {"test_source": str(test.source), "n_images": int(images.shape[0]), "runs": []}
    first = None
    for k in args.ks:
        start = time.process_time()
        log_p = importance_weighted_log_prob(
            model, images, k, generator=torch.Generator().manual_seed(EVAL_SEED)
        )
        cpu = time.process_time() - start
        bpd = -(log_p - d * math.log(256)) / (d * math.log(2))
        run = {
            "K": k,
            "bits_per_dim": float(bpd.mean()),
            "standard_error": float(bpd.std() / math.sqrt(len(bpd))),
            "cpu_seconds": round(cpu, 1),
        }
        if first is None:
            first = (k, bpd)
        else:
            gap = bpd - first[1]
            run[f"minus_K{first[0]}"] = float(gap.mean())
            run[f"minus_K{first[0]}_standard_error"] = float(gap.std() / math.sqrt(len(gap)))
        results["runs"].append(run)
        print(json.dumps(run), flush=True)
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
