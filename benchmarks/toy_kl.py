"""KL(p ‖ p_θ) reached by ``RealNVP`` with its defaults, trained by ``fit`` with its defaults.

The bar of issue 3: on the slides' 4-mode mixture, ``RealNVP(2)`` trained by
``fit(model, target, max_seconds=60)`` reaches ``KL(p ‖ p_θ) ≤ 0.03`` nats (20,000 fresh
samples, :func:`coursekit.metrics.kl_to_target`) for every seed, with no NaN.

Usage (from the repository root)::

    python benchmarks/toy_kl.py                          # 5 seeds, 60 s each, 4 modes
    python benchmarks/toy_kl.py --seeds 0 1 --seconds 20 --dataset checkerboard
    python benchmarks/toy_kl.py --seeds 1 4 --fit batch_size=512 --model 'hidden=[64, 64]'

``--model KEY=JSON`` / ``--fit KEY=JSON`` change one argument of ``RealNVP(2, ...)`` /
``fit(...)`` for tuning runs (the bar is about the defaults: run it without them).

Prints a Markdown table: one row per seed with the KL in nats, the steps done and the
training wall time, then the median KL. Runs one training at a time.
"""

from __future__ import annotations

import argparse
import inspect
import math
import os
import statistics
import sys
import time
from datetime import datetime, timezone

import torch

from coursekit._validation import parse_key_json
from coursekit.datasets import gallery
from coursekit.device import hardware
from coursekit.flows import RealNVP
from coursekit.metrics import kl_to_target
from coursekit.training import fit, seed_everything

#: Distributions with an exact density, by command-line name.
DATASETS = {
    "four_modes": "4 modes",
    "checkerboard": "checkerboard",
    "rings": "rings",
    "one_mode": "1 mode",
    "two_modes": "2 modes",
    "three_modes": "3 modes",
}


def parse_overrides(items: list[str], target: object, flag: str) -> dict[str, object]:
    """``["KEY=JSON", ...]`` -> ``{KEY: value}``; every KEY must be an argument of ``target``."""
    fixed = {"self", "dim", "model", "data", "max_seconds", "seed", "progress"}  # set here
    try:
        return parse_key_json(items, set(inspect.signature(target).parameters) - fixed, flag)
    except ValueError as error:
        raise SystemExit(str(error)) from None


def run_seed(
    dataset: str,
    seed: int,
    seconds: float,
    kl_samples: int,
    model_overrides: dict[str, object] | None = None,
    fit_overrides: dict[str, object] | None = None,
) -> dict[str, float]:
    """Train ``RealNVP(2)`` (defaults unless overridden) for at most ``seconds`` and
    estimate its KL."""
    target = gallery()[DATASETS[dataset]]
    seed_everything(seed)  # the initial weights depend on the seed too
    model = RealNVP(2, **(model_overrides or {}))
    cpu_start = time.process_time()
    history = fit(
        model, target, max_seconds=seconds, seed=seed, progress=False, **(fit_overrides or {})
    )
    cpu = time.process_time() - cpu_start
    kl = kl_to_target(
        model, target, n=kl_samples, generator=torch.Generator().manual_seed(10_000 + seed)
    )
    return {
        "seed": seed,
        "kl": kl,
        "steps": history.steps,
        "seconds": history.seconds,
        "cpu": cpu,
        "final_loss": history.losses[-1],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--seconds", type=float, default=60.0, help="training budget per seed")
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="four_modes")
    parser.add_argument("--kl-samples", type=int, default=20_000)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (default 1: tiny model, shared CPU)"
    )
    parser.add_argument("--bar", type=float, default=0.03, help="KL bar in nats (exit 1 if missed)")
    parser.add_argument(
        "--model", nargs="*", default=[], metavar="KEY=JSON", help="RealNVP(2, KEY=value) override"
    )
    parser.add_argument(
        "--fit", nargs="*", default=[], metavar="KEY=JSON", help="fit(..., KEY=value) override"
    )
    args = parser.parse_args(argv)
    model_overrides = parse_overrides(args.model, RealNVP.__init__, "--model")
    fit_overrides = parse_overrides(args.fit, fit, "--fit")
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    load = os.getloadavg()
    rows = []
    for seed in args.seeds:
        row = run_seed(
            args.dataset, seed, args.seconds, args.kl_samples, model_overrides, fit_overrides
        )
        rows.append(row)
        print(
            f"seed {seed}: KL {row['kl']:.4f} nats, {row['steps']} steps, {row['seconds']:.1f} s",
            file=sys.stderr,
            flush=True,
        )

    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    changed = ", ".join(
        [f"model {k}={v!r}" for k, v in model_overrides.items()]
        + [f"fit {k}={v!r}" for k, v in fit_overrides.items()]
    )
    print(
        f"RealNVP(2) defaults + fit(max_seconds={args.seconds:g}) defaults"
        f"{' except ' + changed if changed else ''} on "
        f"`{args.dataset}`; {stamp}; {hardware()}, {torch.get_num_threads()} threads; "
        "load average at start "
        f"{load[0]:.1f} (a train CPU time well below the wall time means a shared machine)\n"
    )
    print("| seed | KL(p ‖ p_θ) (nats) | steps | train wall (s) | train CPU (s) | final loss |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['seed']} | {r['kl']:.4f} | {r['steps']} | {r['seconds']:.1f} "
            f"| {r['cpu']:.1f} | {r['final_loss']:.4f} |"
        )
    kls = [r["kl"] for r in rows]
    median = statistics.median(kls)
    print(f"| **median** | **{median:.4f}** | | | | |")
    print(f"\nmax KL {max(kls):.4f} nats; bar {args.bar:g}")
    ok = all(math.isfinite(k) and k <= args.bar for k in kls)
    return 0 if ok else 1


if __name__ == "__main__":
    start = time.perf_counter()
    code = main()
    print(f"total wall time {time.perf_counter() - start:.0f} s", file=sys.stderr)
    sys.exit(code)
