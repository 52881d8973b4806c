"""The slides' claim in dimension: a flow against the MLP density of notebook 01, d = 2 … 8.

Target: :class:`coursekit.datasets.in_dimension.PlaneFourModes` — the slides' four modes
(σ = 0.5) on a rotated plane of ``R^d``, width σ in every other direction; exact density in
every ``d``. For each ``d`` and seed, three models, each trained by
``coursekit.training_run.fit_run`` on fresh samples for the same budget of process CPU time
(one torch thread, ``fit_run(..., max_seconds=..., clock=time.process_time)``):

* ``flow``: ``RealNVP(d)`` (12 affine couplings, hidden (32, 32)) with ``fit``'s defaults;
* ``mc_mlp``: the MLP ``g_θ: R^d → R`` (hidden (64, 64)) normalised on ``[−5, 5]^d`` by a
  Monte Carlo estimate with a fixed budget of ``K = 1,024`` uniform points per step
  (``MonteCarloMLPDensity``): affordable in any ``d``;
* ``grid_mlp``: the same MLP normalised on an ``m^d`` grid (``m = 40``, ``MLPDensity``),
  run while one training step needs at most ``--grid-memory-gb`` (the points and the
  activations kept for the backward pass, ``grid_normalizer_cost``); beyond, the memory it
  would need is recorded instead.

``KL(p ‖ p_θ)`` (eq. 1) of each trained model by Monte Carlo on the same 20,000 samples of
``p`` per seed, with its standard error. For an MLP, ``p_θ = exp(g_θ) / Z_θ`` with its true
``Z_θ`` estimated by importance sampling (200,000 draws of ``½ p + ½ U(box)``,
``importance_log_normalizer``): that estimate can only err low in expectation, so an MLP's KL is,
if anything, too small.

Usage (repository root; about 12 minutes of CPU on one thread)::

    OMP_NUM_THREADS=1 python benchmarks/density_in_dimension.py

writes ``benchmarks/density_in_dimension.json`` (per-run rows, mean ± SE per method and
``d``, the grid's memory, the command). ``--dims``, ``--seeds``, ``--seconds`` and ``--out``
make a shorter run.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch

from coursekit.datasets.in_dimension import PlaneFourModes
from coursekit.flows import RealNVP
from coursekit.metrics import mean_and_se
from coursekit.mlp_density import (
    MLPDensity,
    MonteCarloMLPDensity,
    grid_normalizer_cost,
    importance_log_normalizer,
)
from coursekit.training_run import fit_run

OUT = Path(__file__).resolve().with_name("density_in_dimension.json")
DIMS = (2, 3, 4, 6, 8)
SEEDS = (0, 1, 2, 3, 4)
SECONDS = 10.0
MLP = {"hidden": [64, 64], "lo": -5.0, "hi": 5.0}
MLP_FIT = {"batch_size": 512, "lr": 3e-3}
MC_SAMPLES = 1024
GRID_SIZE = 40
GRID_MEMORY_GB = 1.0
KL_SAMPLES = 20_000
Z_SAMPLES = 200_000
METHODS = ("flow", "mc_mlp", "grid_mlp")
MANY_STEPS = 10**7  # the CPU-time budget, not the step count, ends every training


def grid_bytes(dim: int) -> int:
    """Memory of one training step of the grid-normalised MLP in ``dim`` dimensions."""
    return grid_normalizer_cost(dim, GRID_SIZE, MLP["hidden"])["training_bytes"]


def make_model(method: str, dim: int, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    if method == "flow":
        return RealNVP(dim)
    hidden = tuple(MLP["hidden"])
    if method == "mc_mlp":
        return MonteCarloMLPDensity(
            hidden=hidden, lo=MLP["lo"], hi=MLP["hi"], samples=MC_SAMPLES, seed=seed, dim=dim
        )
    return MLPDensity(hidden=hidden, lo=MLP["lo"], hi=MLP["hi"], grid_size=GRID_SIZE, dim=dim)


@torch.no_grad()
def kl_of(model: torch.nn.Module, method: str, target: PlaneFourModes, seed: int) -> dict:
    """KL ± SE on 20,000 samples of ``p``; for an MLP with its true ``log Z`` (importance)."""
    x = target.sample(KL_SAMPLES, generator=torch.Generator().manual_seed(10_000 + seed))
    log_p = target.log_prob(x)
    out: dict = {}
    if method == "flow":
        log_q = model.log_prob(x.float()).double()
    else:
        log_z = importance_log_normalizer(
            model, target, n=Z_SAMPLES, generator=torch.Generator().manual_seed(20_000 + seed)
        )
        log_q = model.unnormalized_log_prob(x.float()).double() - log_z.mean
        out["log_z"], out["log_z_se"] = log_z.mean, log_z.se
        out["log_z_believed"] = float(model.log_normalizer())
    diff = log_p - log_q
    out["kl"] = float(diff.mean())
    out["kl_se"] = float(diff.std() / math.sqrt(len(diff)))
    return out


def run_one(method: str, dim: int, seed: int, seconds: float) -> dict:
    target = PlaneFourModes(dim)
    model = make_model(method, dim, seed)
    kwargs = {} if method == "flow" else MLP_FIT
    cpu0 = time.process_time()
    history = fit_run(
        model,
        target,
        steps=MANY_STEPS,
        max_seconds=seconds,
        seed=seed,
        progress=False,
        clock=time.process_time,
        **kwargs,
    )
    row = {
        "method": method,
        "dim": dim,
        "seed": seed,
        "steps": history.steps,
        "cpu_s": round(time.process_time() - cpu0, 2),
    }
    row.update(kl_of(model, method, target, seed))
    return row


def summarise(rows: list[dict], dims: list[int]) -> dict:
    out: dict = {}
    for method in METHODS:
        out[method] = {}
        for dim in dims:
            runs = [r for r in rows if r["method"] == method and r["dim"] == dim]
            if len(runs) < 2:
                continue
            kl = mean_and_se([r["kl"] for r in runs])
            out[method][str(dim)] = {
                "kl_mean": kl.mean,
                "kl_se": kl.se,
                "seeds": kl.n,
                "steps_mean": sum(r["steps"] for r in runs) / len(runs),
            }
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dims", type=int, nargs="+", default=list(DIMS))
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--seconds", type=float, default=SECONDS)
    parser.add_argument("--grid-memory-gb", type=float, default=GRID_MEMORY_GB)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    for dim in args.dims:
        for method in METHODS:
            if method == "grid_mlp" and grid_bytes(dim) > args.grid_memory_gb * 1e9:
                continue
            for seed in args.seeds:
                rows.append(run_one(method, dim, seed, args.seconds))
                r = rows[-1]
                print(
                    f"d = {dim} {method:8s} seed {seed}: KL {r['kl']:.4g} ± {r['kl_se']:.2g} "
                    f"({r['steps']} steps)",
                    flush=True,
                )
    given = sys.argv[1:] if argv is None else argv
    result = {
        "command": "OMP_NUM_THREADS=1 python benchmarks/density_in_dimension.py"
        + (" " + " ".join(given) if given else ""),
        "budget": "process CPU time per training, one torch thread",
        "seconds": args.seconds,
        "dims": args.dims,
        "seeds": args.seeds,
        "settings": {
            "target": "PlaneFourModes(d): 4 modes, std 0.5, on a rotated plane of R^d",
            "flow": "RealNVP(d) with fit() defaults",
            "mlp": MLP | MLP_FIT,
            "mc_samples": MC_SAMPLES,
            "grid_size": GRID_SIZE,
            "grid_memory_gb": args.grid_memory_gb,
            "kl_samples": KL_SAMPLES,
            "z_samples": Z_SAMPLES,
        },
        "grid_memory_bytes": {str(d): grid_bytes(d) for d in args.dims},
        "rows": rows,
        "summary": summarise(rows, args.dims),
    }
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
