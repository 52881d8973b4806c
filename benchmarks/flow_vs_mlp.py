"""The slides' comparison, measured: RealNVP against the grid-normalised MLP density of
notebook 01 at equal CPU time, over several seeds, in D = 2; and RealNVP in D = 10 on the same
4 modes plus 8 standard-normal coordinates, where a grid normaliser is infeasible.

For each seed:

* D = 2: ``RealNVP(2)`` (its defaults) and ``MLPDensity(hidden=(64, 64, 64), lo=-5, hi=5,
  grid_size=60)`` are each trained by ``fit`` for ``--seconds`` of process CPU time (one torch
  thread; ``fit_run(..., clock=time.process_time)``), fresh samples every step. Both KLs
  are estimated on the SAME 20,000 samples, so the per-seed difference is paired. The mass in
  the gap region ``G`` (:mod:`coursekit.experiments`) is integrated on a grid for both models
  and for the truth.
* D = 10: ``RealNVP(10)`` on :class:`coursekit.experiments.NoisyFourModes` for
  ``--seconds-10d`` of CPU time; KL ± SE on 20,000 samples; the share of 20,000 generated
  points in ``G`` against the true mass.

Usage (repository root)::

    OMP_NUM_THREADS=1 python benchmarks/flow_vs_mlp.py --seeds 0 1 2 3 4 \
        --seconds 15 --seconds-10d 30 --out benchmarks/flow_vs_mlp.json

Writes a JSON file (per-seed rows, mean ± SE summaries, the grid cost, the command) and prints
a summary. Runs one training at a time.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from datetime import datetime, timezone

import torch

from coursekit.datasets import four_modes
from coursekit.experiments import (
    NoisyFourModes,
    gap_mass_on_grid,
    gap_share,
    grid_cost,
    log_ratio_samples,
    mean_and_se,
)
from coursekit.flows import RealNVP
from coursekit.mlp_density import MLPDensity
from coursekit.training_run import fit_run

MLP = dict(hidden=(64, 64, 64), lo=-5.0, hi=5.0, grid_size=60)
MLP_FIT = dict(batch_size=512, lr=2e-3)
MANY_STEPS = 10**7  # the CPU-time budget, not the step count, ends every training


def _train(model: torch.nn.Module, target: object, seconds: float, seed: int, **kw) -> dict:
    cpu0 = time.process_time()
    history = fit_run(
        model,
        target,
        steps=MANY_STEPS,
        max_seconds=seconds,
        seed=seed,
        progress=False,
        clock=time.process_time,
        **kw,
    )
    return {"steps": history.steps, "cpu_s": round(time.process_time() - cpu0, 2)}


def run_seed(seed: int, seconds: float, seconds_10d: float) -> dict:
    target = four_modes()
    row: dict = {"seed": seed}
    torch.manual_seed(seed)
    flow = RealNVP(2)
    row["flow_train"] = _train(flow, target, seconds, seed)
    torch.manual_seed(seed)
    mlp = MLPDensity(**MLP)
    row["mlp_train"] = _train(mlp, target, seconds, seed, **MLP_FIT)
    g = 10_000 + seed
    d_flow = log_ratio_samples(flow, target, n=20_000, generator=torch.Generator().manual_seed(g))
    d_mlp = log_ratio_samples(mlp, target, n=20_000, generator=torch.Generator().manual_seed(g))
    n = d_flow.numel()
    diff = d_flow - d_mlp
    row["kl_flow"] = [float(d_flow.mean()), float(d_flow.std() / math.sqrt(n))]
    row["kl_mlp"] = [float(d_mlp.mean()), float(d_mlp.std() / math.sqrt(n))]
    row["kl_flow_minus_mlp"] = [float(diff.mean()), float(diff.std() / math.sqrt(n))]
    with torch.no_grad():
        row["gap_mass_flow"] = gap_mass_on_grid(lambda x: flow.log_prob(x.float()))
        row["gap_mass_mlp"] = gap_mass_on_grid(lambda x: mlp.log_prob(x.float()))

    target10 = NoisyFourModes(10)
    torch.manual_seed(seed)
    flow10 = RealNVP(10)
    row["flow10_train"] = _train(flow10, target10, seconds_10d, seed)
    d10 = log_ratio_samples(flow10, target10, n=20_000, generator=torch.Generator().manual_seed(g))
    row["kl_flow10"] = [float(d10.mean()), float(d10.std() / math.sqrt(d10.numel()))]
    with torch.no_grad():
        x10 = flow10.sample(20_000, generator=torch.Generator().manual_seed(g))
    share = gap_share(x10)
    row["gap_share_flow10"] = [share.mean, share.se]
    return row


def summarise(rows: list[dict]) -> dict:
    def col(key: str) -> list[float]:
        return [r[key][0] if isinstance(r[key], list) else r[key] for r in rows]

    out = {}
    for key in (
        "kl_flow",
        "kl_mlp",
        "kl_flow_minus_mlp",
        "kl_flow10",
        "gap_mass_flow",
        "gap_mass_mlp",
        "gap_share_flow10",
    ):
        est = mean_and_se(col(key))
        out[key] = {"mean": est.mean, "se": est.se, "n_seeds": est.n}
    for key in ("flow_train", "mlp_train", "flow10_train"):
        out[key + "_steps"] = mean_and_se([r[key]["steps"] for r in rows]).mean
        out[key + "_cpu_s"] = mean_and_se([r[key]["cpu_s"] for r in rows]).mean
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument(
        "--seconds", type=float, default=15.0, help="CPU seconds of training per model in D = 2"
    )
    parser.add_argument(
        "--seconds-10d", type=float, default=30.0, help="CPU seconds of training of the D = 10 flow"
    )
    parser.add_argument("--out", default="benchmarks/flow_vs_mlp.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    started = datetime.now(timezone.utc)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    rows = []
    for seed in args.seeds:
        rows.append(run_seed(seed, args.seconds, args.seconds_10d))
        r = rows[-1]
        print(
            f"seed {seed}: KL flow {r['kl_flow'][0]:.4f} ± {r['kl_flow'][1]:.4f}, "
            f"MLP {r['kl_mlp'][0]:.4f} ± {r['kl_mlp'][1]:.4f}, "
            f"D=10 flow {r['kl_flow10'][0]:.4f} ± {r['kl_flow10'][1]:.4f}",
            flush=True,
        )
    true_gap = gap_mass_on_grid(four_modes().log_prob)
    points2, bytes2 = grid_cost(MLP["grid_size"], 2)
    points10, bytes10 = grid_cost(MLP["grid_size"], 10)
    result = {
        "command": "OMP_NUM_THREADS=1 python benchmarks/flow_vs_mlp.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "started_utc": started.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, load average at start {load:.1f}"
        if load is not None
        else platform.machine(),
        "torch": torch.__version__,
        "budget": "process CPU time, one torch thread",
        "seconds_2d": args.seconds,
        "seconds_10d": args.seconds_10d,
        "mlp": {k: list(v) if isinstance(v, tuple) else v for k, v in MLP.items()} | MLP_FIT,
        "flow": "RealNVP(dim) and fit() defaults",
        "true_gap_mass": true_gap,
        "grid_cost": {
            "points_per_axis": MLP["grid_size"],
            "d2_points": points2,
            "d2_bytes": bytes2,
            "d10_points": points10,
            "d10_bytes": bytes10,
        },
        "rows": rows,
        "summary": summarise(rows),
    }
    with open(args.out, "w") as fh:
        json.dump(result, fh, indent=1)
    print(json.dumps(result["summary"], indent=1))


if __name__ == "__main__":
    main()
