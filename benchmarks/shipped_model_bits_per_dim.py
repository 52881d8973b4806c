"""Test bits/dim of the shipped MNIST model, measured by the course's own evaluation.

Usage (repository root, the full MNIST; about 30 CPU seconds, one thread)::

    COURSEKIT_MNIST_DIR=path/to/mnist OMP_NUM_THREADS=1 \\
        python benchmarks/shipped_model_bits_per_dim.py \\
        --out benchmarks/shipped_model_bits_per_dim.json

:func:`coursekit.train_mnist.evaluate`, the function that wrote ``test_bits_per_dim`` into the
model's record (``coursekit/pretrained/realnvp_mnist.json``): one uniform dequantization draw
per image from ``torch.Generator().manual_seed(EVAL_SEED)``, ``−mean log p(k + u)`` in bits per
dimension of the 8-bit data, on every test image, with the shipped weights
(:func:`coursekit.pretrained.load_pretrained_mnist`). Prints the figure beside the recorded one.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from coursekit.datasets import load_mnist
from coursekit.pretrained import load_pretrained_mnist, pretrained_mnist_metadata
from coursekit.train_mnist import EVAL_SEED, evaluate


def measure(images: torch.Tensor) -> dict[str, object]:
    """The shipped model's test bits/dim on ``images`` (uint8, (n, 1, 28, 28)), with the
    recorded figure beside it."""
    recorded = pretrained_mnist_metadata()
    return {
        "bits_per_dim": evaluate(load_pretrained_mnist(), images),
        "n_images": int(images.shape[0]),
        "eval_seed": EVAL_SEED,
        "recorded_test_bits_per_dim": recorded["test_bits_per_dim"],
        "recorded_test_images": recorded["test_images"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="write the result as JSON")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    test = load_mnist(split="test")
    if not test.complete:
        raise SystemExit("this benchmark needs the full MNIST (set COURSEKIT_MNIST_DIR)")
    result = {
        "command": "python benchmarks/shipped_model_bits_per_dim.py"
        + ("" if args.out is None else f" --out {args.out}"),
        **measure(test.images),
        "test_source": test.source.split(":")[0],  # where the images came from, no path
        "torch": torch.__version__,
    }
    print(
        f"shipped model: {result['bits_per_dim']:.4f} test bits/dim on {result['n_images']:,} "
        f"images (recorded: {result['recorded_test_bits_per_dim']})"
    )
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
