"""Image flows on MNIST at a fixed CPU budget: Glow's additions and variational dequantization.

Usage (from the repository root, with the full MNIST; one run at a time, one thread)::

    COURSEKIT_MNIST_DIR=/work/shared/data/mnist OMP_NUM_THREADS=1 \\
        python benchmarks/image_flow_ablation.py --seeds 0 1 2 --seconds 150 \\
        --out benchmarks/image_flow_ablation.json

Every variant is the same small multi-scale flow of the shipped model's family (3 scales,
conditioner widths 32/64/64, Glow steps at the two finest scales, checkerboard + channel
couplings at the last), changed in one respect:

* ``glow_like``: ActNorm, invertible 1×1 convolutions, learned split priors, logit α = 1e-5
  (the shipped model's choices), uniform dequantization: the reference;
* ``no_actnorm``, ``no_invconv``, ``no_split_prior``: that one addition removed;
* ``alpha_0.05``: the logit's α of Dinh et al. (2017) instead of 1e-5;
* ``plain_realnvp``: none of Glow's additions, checkerboard couplings at every scale (the
  slides' RealNVP, as notebook 06 writes it);
* ``variational_dequantization``: ``glow_like`` trained jointly with a
  :class:`~coursekit.flows.dequantization.VariationalDequantizer` (its training time counts
  in the budget).

Each variant trains with :func:`coursekit.training.fit` (Adam 5e-3, 200 warm-up steps, cosine
decay to the budget, batch 64, gradient clipping at 10) for ``--seconds`` of process CPU time
(``clock=time.process_time``, so other processes on the machine do not change the budget),
once per seed. Then bits/dim on the first ``--test-images`` test images, with the
dequantization noise from ``torch.Generator().manual_seed(1234)``: ``K = 1`` (the bound that
was trained: uniform, or the ELBO with ``q``) and ``K = 8`` importance samples
(:func:`~coursekit.flows.importance.importance_weighted_log_prob`). The summary gives every
variant's mean ± standard error over seeds and its paired difference from ``glow_like``
(same seed: same initial weights where the architectures agree, same minibatches).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import replace
from pathlib import Path

import torch

from coursekit.datasets import load_mnist
from coursekit.flows import (
    DequantizedImageFlow,
    DequantizedImages,
    ImageFlowConfig,
    ImageRealNVP,
    VariationalDequantizer,
    importance_weighted_log_prob,
    negative_elbo,
)
from coursekit.flows.preprocessing import LEVELS, dequantize
from coursekit.metrics import mean_and_se, nll
from coursekit.train_mnist import EVAL_SEED
from coursekit.training import TrainingDivergedError, seed_everything
from coursekit.training_run import fit_run

#: The shipped model's configuration (coursekit.flows.ImageFlowConfig()), narrower and with fewer
#: channel steps: about a quarter of its parameters.
BASE = replace(ImageFlowConfig(), hidden=(32, 64, 64), n_channel=(4, 4)).as_dict()
VARIANTS: dict[str, dict] = {
    "glow_like": {},
    "no_actnorm": dict(actnorm=False),
    "no_invconv": dict(invconv=False),
    "no_split_prior": dict(split_prior=False),
    "alpha_0.05": dict(alpha=0.05),
    "plain_realnvp": dict(actnorm=False, invconv=False, split_prior=False, n_checker=2),
    "variational_dequantization": dict(),
}
DEQUANTIZER = dict(hidden=8, n_couplings=2, context_channels=4)


def build(variant: str, seed: int, train_images: torch.Tensor) -> torch.nn.Module:
    """The variant's model, seeded, its ActNorms (if any) initialised on 512 training images."""
    seed_everything(seed)
    flow = ImageRealNVP(**{**BASE, **VARIANTS[variant]})
    init = torch.Generator().manual_seed(seed + 1)
    idx = torch.randperm(len(train_images), generator=init)[:512]
    flow.initialize(dequantize(train_images[idx], generator=init) / LEVELS)
    if variant == "variational_dequantization":
        return DequantizedImageFlow(flow, VariationalDequantizer((1, 28, 28), **DEQUANTIZER))
    return flow


def run_one(variant: str, seed: int, seconds: float, train, test_images) -> dict:
    model = build(variant, seed, train.images)
    if isinstance(model, DequantizedImageFlow):
        data, loss_fn = train.images.float(), negative_elbo
    else:
        data, loss_fn = DequantizedImages(train.images), nll
    result = dict(variant=variant, seed=seed, parameters=sum(p.numel() for p in model.parameters()))
    try:
        history = fit_run(
            model,
            data,
            steps=100_000,
            batch_size=64,
            lr=5e-3,
            warmup=200,
            max_seconds=seconds,
            seed=seed,
            loss_fn=loss_fn,
            clock=time.process_time,
            progress=False,
        )
    except TrainingDivergedError as error:
        return dict(result, steps=error.step, diverged=True, bpd_K1=None, bpd_K8=None)
    result.update(steps=history.steps, diverged=False)
    d = test_images[0].numel()
    start = time.process_time()
    for k in (1, 8):
        log_p = importance_weighted_log_prob(
            model, test_images, k, generator=torch.Generator().manual_seed(EVAL_SEED)
        )
        bpd = -(log_p - d * math.log(LEVELS)) / (d * math.log(2))
        result[f"bpd_K{k}"] = float(bpd.mean())
        result[f"bpd_K{k}_per_image_se"] = float(bpd.std() / math.sqrt(len(bpd)))
    result["eval_cpu_seconds"] = round(time.process_time() - start, 1)
    return result


def _mean_se(values: list[float]) -> list[float | None]:
    """``[mean, standard error]`` (the error ``None`` for a single value)."""
    if len(values) < 2:
        return [float(values[0]), None]
    estimate = mean_and_se(values)
    return [estimate.mean, estimate.se]


def summarise(runs: list[dict]) -> dict:
    """Mean ± SE over seeds per variant, and the paired difference from ``glow_like``."""
    by = {(r["variant"], r["seed"]): r for r in runs}
    seeds = sorted({r["seed"] for r in runs})
    out = {}
    for variant in VARIANTS:
        rows = [by[(variant, s)] for s in seeds if (variant, s) in by]
        if not rows:
            continue
        entry = dict(
            seeds=len(rows),
            steps=_mean_se([r["steps"] for r in rows])[0],
            parameters=rows[0]["parameters"],
            diverged=sum(bool(r.get("diverged")) for r in rows),
        )
        for k in (1, 8):
            values = [r[f"bpd_K{k}"] for r in rows]
            if any(v is None for v in values):
                entry[f"K{k}"] = None
                continue
            entry[f"K{k}"] = _mean_se(values)
            pairs = [
                by[(variant, s)][f"bpd_K{k}"] - by[("glow_like", s)][f"bpd_K{k}"]
                for s in seeds
                if (variant, s) in by and by[("glow_like", s)][f"bpd_K{k}"] is not None
            ]
            if variant != "glow_like" and pairs:
                entry[f"K{k}_minus_glow_like"] = _mean_se(pairs)
        out[variant] = entry
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--seconds", type=float, default=150.0, help="CPU seconds per run")
    parser.add_argument("--test-images", type=int, default=2000)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    train = load_mnist(split="train")
    test = load_mnist(split="test")
    test_images = test.images[: args.test_images]
    runs = []
    previous = json.loads(args.out.read_text()) if args.out and args.out.exists() else None
    if previous and previous.get("settings") == _settings(args, train, test_images):
        runs = [r for r in previous["runs"] if r["variant"] in args.variants]
    done = {(r["variant"], r["seed"]) for r in runs}
    for seed in args.seeds:
        for variant in args.variants:
            if (variant, seed) in done:
                continue
            runs.append(run_one(variant, seed, args.seconds, train, test_images))
            print(json.dumps(runs[-1]), flush=True)
            results = dict(
                settings=_settings(args, train, test_images), runs=runs, summary=summarise(runs)
            )
            if args.out is not None:  # after every run: an interrupted benchmark resumes
                args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return dict(settings=_settings(args, train, test_images), runs=runs, summary=summarise(runs))


def _settings(args: argparse.Namespace, train, test_images: torch.Tensor) -> dict:
    return dict(
        seconds=args.seconds,
        test_images=int(len(test_images)),
        train_source=str(train.source),
        base=BASE,
        dequantizer=DEQUANTIZER,
        lr=5e-3,
        warmup=200,
        batch_size=64,
        threads=1,
    )


if __name__ == "__main__":
    main()
