"""The image RealNVP against a vector RealNVP on flattened pixels, at the same budget (notebook 06).

The slides train RealNVP on vectors and say that images call for "d'autres architectures plus
appropriées". This benchmark shows it on MNIST. Both models see the same data the same way:
minibatches of 64 training images, dequantized afresh each step (``v = k + u``), scaled
(``x = v / 256``) and passed through the same logit (``α = 1e-5``); both are trained by ``fit``
with the same optimiser settings and scored by the same test bits/dim (every Jacobian term).

* ``image``: notebook 06's plain image RealNVP (checkerboard and channel couplings with
  convolutional conditioners, squeezes, multi-scale), ``SETTINGS["image"]``;
* ``vector``: ``coursekit.flows.RealNVP`` on the flattened logit image, ``D = 784``, alternating
  half masks and MLP conditioners, sized to about the same number of parameters
  (``SETTINGS["vector"]``), trained for the same number of steps (the same data);
* ``vector_cpu``: the same vector model trained for ``SETTINGS["vector_cpu_steps"]`` steps, about
  the image model's training CPU time (a vector step is much cheaper than an image step).

Each run records the test bits/dim on the 10,000 MNIST test images (for the table in
benchmarks/README.md and notebook 06) and on the notebook's 500 (the bands of its live
training), the parameter counts and the training CPU time. Notebook 06 trains ``image`` and
``vector`` live with training seed 0 and asserts that its settings equal ``SETTINGS``.

Usage (repository root, full MNIST; about 70 CPU seconds per seed, one thread)::

    COURSEKIT_MNIST_DIR=path/to/mnist OMP_NUM_THREADS=1 \\
        python benchmarks/vector_vs_image_mnist.py --seeds 0 1 2 3 4
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from coursekit.datasets import load_mnist
from coursekit.flows import ImageRealNVP, RealNVP, image_bits_per_dim
from coursekit.flows.flattened import FlattenedImageFlow
from coursekit.metrics import mean_and_se
from coursekit.training import fit, seed_everything

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "benchmarks" / "vector_vs_image_mnist.json"
MODELS = ("image", "vector", "vector_cpu")

#: The notebook's settings (notebook 06 asserts that its own equal these).
SETTINGS = {
    "alpha": 1e-5,
    "image": {"hidden": [8, 24, 32], "n_blocks": 1, "n_checker": 2, "n_channel": 2, "n_final": 2},
    "vector": {"dim": 784, "n_layers": 8, "hidden": [16]},
    "fit": {"steps": 400, "batch_size": 64, "lr": 5e-3, "warmup": 50, "clip_grad": 10.0},
    "vector_cpu_steps": 7200,
    "notebook_test_images": 500,
    "eval_seed": 1234,
}


def image_model() -> ImageRealNVP:
    """Notebook 06's plain image RealNVP (fresh weights; every coupling starts as the identity)."""
    s = SETTINGS["image"]
    return ImageRealNVP(
        hidden=tuple(s["hidden"]),
        n_blocks=s["n_blocks"],
        n_checker=s["n_checker"],
        n_channel=s["n_channel"],
        n_final=s["n_final"],
        alpha=SETTINGS["alpha"],
    )


def vector_model() -> FlattenedImageFlow:
    """coursekit's vector RealNVP on the flattened logit image (same logit as the image model)."""
    s = SETTINGS["vector"]
    flow = RealNVP(s["dim"], n_layers=s["n_layers"], hidden=tuple(s["hidden"]))
    return FlattenedImageFlow(flow, alpha=SETTINGS["alpha"])


def dequantized_nll(model: torch.nn.Module, batch: torch.Tensor) -> torch.Tensor:
    """``−mean log p(x)``, ``x = (k + u) / 256``, fresh noise ``u`` each step (notebook 06)."""
    x = (batch + torch.rand_like(batch)) / 256
    return -model.log_prob(x).mean()


def test_bits(model: torch.nn.Module, images: torch.Tensor) -> float:
    """Test bits/dim with the notebook's fixed dequantization seed."""
    g = torch.Generator().manual_seed(SETTINGS["eval_seed"])
    return image_bits_per_dim(model, images, generator=g)


def train(model: torch.nn.Module, train_images: torch.Tensor, seed: int, steps: int) -> float:
    """Train with ``SETTINGS["fit"]`` for ``steps`` steps; returns the training CPU seconds."""
    settings = {**SETTINGS["fit"], "steps": steps}
    start = time.process_time()
    fit(model, train_images, seed=seed, loss_fn=dequantized_nll, progress=False, **settings)
    return time.process_time() - start


def run(seed: int, train_images: torch.Tensor, test_images: torch.Tensor) -> dict[str, object]:
    """The three trainings with training seed ``seed``; their figures."""
    data = train_images.float()
    few = test_images[: SETTINGS["notebook_test_images"]]
    row: dict[str, object] = {"seed": seed}
    for name in MODELS:
        seed_everything(seed)
        model = image_model() if name == "image" else vector_model()
        steps = SETTINGS["vector_cpu_steps"] if name == "vector_cpu" else SETTINGS["fit"]["steps"]
        before = test_bits(model, few)
        cpu = train(model, data, seed, steps)
        row[name] = {
            "parameters": model.num_parameters(),
            "steps": steps,
            "train_cpu_s": cpu,
            "before_500": before,
            "after_500": test_bits(model, few),
            "test_bits_per_dim": test_bits(model, test_images),
        }
    return row


def summary(data: dict) -> dict[str, dict[str, float]]:
    """Mean ± standard error over the seeds of each model's test bits/dim and CPU time."""
    out = {}
    for name in MODELS:
        rows = [r[name] for r in data["runs"]]
        est = mean_and_se([r["test_bits_per_dim"] for r in rows])
        out[name] = {
            "parameters": rows[0]["parameters"],
            "steps": rows[0]["steps"],
            "test_bits_per_dim": est.mean,
            "se": est.se,
            "train_cpu_s": sum(r["train_cpu_s"] for r in rows) / len(rows),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    train_images = load_mnist(split="train").images
    test_images = load_mnist(split="test").images
    if len(train_images) != 60_000 or len(test_images) != 10_000:
        raise SystemExit("this benchmark needs the full MNIST (set COURSEKIT_MNIST_DIR)")
    runs = []
    for seed in args.seeds:
        row = run(seed, train_images, test_images)
        runs.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    data = {
        "settings": SETTINGS,
        "command": "python benchmarks/vector_vs_image_mnist.py --seeds "
        + " ".join(map(str, args.seeds)),
        "test_images": len(test_images),
        "torch": torch.__version__,
        "runs": runs,
    }
    args.out.write_text(json.dumps(data, indent=1) + "\n")
    for name, s in summary(data).items():
        print(
            f"{name:>10}: {s['parameters']:,} parameters, {s['steps']} steps, "
            f"{s['train_cpu_s']:.0f} CPU s; test bits/dim {s['test_bits_per_dim']:.3f} "
            f"± {s['se']:.3f} (SE, {len(runs)} seeds)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
