"""What each ingredient of ``coursekit.training.fit`` buys: an ablation at equal CPU time.

``RealNVP(2)`` (its defaults) on the slides' 4 modes, trained for ``--seconds`` of process CPU
time (one torch thread) per run, for every seed and every variant:

* ``fit``: ``fit``'s defaults (batch 1,024, lr 1e-2, cosine schedule, clipping at norm 10,
  ``FlatAdam``);
* ``batch 256``, ``constant lr``, ``no clipping``, ``lr 1e-3``: the defaults with one change;
* ``torch Adam``: the defaults, but the loop written with ``torch.optim.Adam`` and
  ``torch.nn.utils.clip_grad_norm_`` (same update as ``FlatAdam``; measures its speed).

KL(p ‖ p_θ) is estimated on 20,000 samples shared by every variant of a seed, so differences
to ``fit`` are paired. A run whose loss becomes NaN/Inf counts as diverged.

Usage (repository root)::

    OMP_NUM_THREADS=1 python benchmarks/fit_ablation.py --seeds 0 1 2 3 4 --seconds 10 \
        --out benchmarks/fit_ablation.json
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import os
import platform
import sys
import time
from datetime import datetime, timezone

import torch

from coursekit.datasets import four_modes
from coursekit.flows import RealNVP
from coursekit.metrics import log_ratio_samples, mean_and_se
from coursekit.training import TrainingDivergedError, fit, seed_everything
from coursekit.training_run import fit_run

#: ``fit``'s defaults (batch_size, lr, clip_grad, ...), read from its signature, never retyped
FIT_DEFAULTS = {
    name: p.default
    for name, p in inspect.signature(fit).parameters.items()
    if p.default is not inspect.Parameter.empty
}

VARIANTS: dict[str, dict] = {
    "fit": {},
    "batch 256": {"batch_size": 256},
    "constant lr": {"schedule": "constant"},
    "no clipping": {"clip_grad": None},
    "lr 1e-3": {"lr": 1e-3},
    "torch Adam": {"loop": "torch"},
}


def torch_adam_loop(
    model: torch.nn.Module,
    target: object,
    seconds: float,
    seed: int,
    batch_size: int = FIT_DEFAULTS["batch_size"],
    lr: float = FIT_DEFAULTS["lr"],
    clip: float = FIT_DEFAULTS["clip_grad"],
) -> int:
    """``fit``'s defaults (read from its signature) written with ``torch.optim.Adam``;
    returns the steps done."""
    g = seed_everything(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    start, steps = time.process_time(), 0
    while (elapsed := time.process_time() - start) < seconds:
        for group in opt.param_groups:
            group["lr"] = 0.5 * lr * (1 + math.cos(math.pi * min(elapsed / seconds, 1.0)))
        x = target.sample(batch_size, generator=g, dtype=torch.float32)
        loss = -model.log_prob(x).mean()
        if not math.isfinite(loss.item()):
            raise TrainingDivergedError(f"loss became {loss.item()} at step {steps + 1}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        steps += 1
    model.eval()
    return steps


def run(variant: str, seed: int, seconds: float) -> dict:
    target = four_modes()
    torch.manual_seed(seed)
    model = RealNVP(2)
    options = dict(VARIANTS[variant])
    cpu0 = time.process_time()
    try:
        if options.pop("loop", None) == "torch":
            steps = torch_adam_loop(model, target, seconds, seed)
        else:
            steps = fit_run(
                model,
                target,
                steps=10**7,
                max_seconds=seconds,
                seed=seed,
                progress=False,
                clock=time.process_time,
                **options,
            ).steps
    except TrainingDivergedError:
        return {"variant": variant, "seed": seed, "diverged": True}
    cpu = time.process_time() - cpu0
    d = log_ratio_samples(
        model, target, n=20_000, generator=torch.Generator().manual_seed(10_000 + seed)
    )
    return {
        "variant": variant,
        "seed": seed,
        "diverged": False,
        "steps": steps,
        "cpu_s": round(cpu, 2),
        "kl": float(d.mean()),
        "kl_se": float(d.std() / math.sqrt(d.numel())),
        "d": d,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--out", default="benchmarks/fit_ablation.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    started = datetime.now(timezone.utc)
    rows, per_sample = [], {}
    for seed in args.seeds:
        for variant in VARIANTS:
            row = run(variant, seed, args.seconds)
            if "d" in row:
                per_sample[(variant, seed)] = row.pop("d")
            rows.append(row)
            print(
                f"seed {seed} {variant:12s}: "
                + (
                    "diverged"
                    if row["diverged"]
                    else f"KL {row['kl']:.4f} ± {row['kl_se']:.4f}, {row['steps']} steps"
                ),
                flush=True,
            )
    summary = {}
    for variant in VARIANTS:
        ok = [r for r in rows if r["variant"] == variant and not r["diverged"]]
        entry: dict = {
            "diverged": sum(r["diverged"] for r in rows if r["variant"] == variant),
            "runs": sum(r["variant"] == variant for r in rows),
        }
        if len(ok) >= 2:
            kl = mean_and_se([r["kl"] for r in ok])
            steps = mean_and_se([r["steps"] for r in ok])
            entry |= {
                "kl_mean": kl.mean,
                "kl_se": kl.se,
                "steps_mean": steps.mean,
                "steps_se": steps.se,
            }
            paired = [
                float((per_sample[(variant, r["seed"])] - per_sample[("fit", r["seed"])]).mean())
                for r in ok
                if ("fit", r["seed"]) in per_sample
            ]
            if variant != "fit" and len(paired) >= 2:
                diff = mean_and_se(paired)
                entry |= {"kl_minus_fit_mean": diff.mean, "kl_minus_fit_se": diff.se}
        summary[variant] = entry
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    result = {
        "command": "OMP_NUM_THREADS=1 python benchmarks/fit_ablation.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "started_utc": started.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, load average at start "
        f"{load:.1f}",
        "torch": torch.__version__,
        "budget": "process CPU time, one torch thread",
        "seconds": args.seconds,
        "rows": rows,
        "summary": summary,
    }
    with open(args.out, "w") as fh:
        json.dump(result, fh, indent=1)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
