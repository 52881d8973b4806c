"""The seed statistics of notebook 07: the course's RealNVP against zuko's RealNVP, MAF and
NSF on three toy targets, the filament mass on the 4 modes, the bands of the notebook's own two
trainings, and the training recipe's effect.

Usage (from the repository root)::

    python benchmarks/flows_in_practice.py                 # full run, ~23 CPU-minutes
    python benchmarks/flows_in_practice.py --quick --out /tmp/quick.json   # smoke test

Every model is trained by :func:`coursekit.training.fit` (fresh target samples each step,
fit's defaults: Adam at lr 1e-2 with a cosine decay, batch 1,024, gradient clipping at 10)
for a budget of **CPU time of the process** (``fit_run(..., clock=time.process_time)``) with one
torch thread, so that other programs running beside it do not shrink the budget. After
training:

* ``KL(p ‖ p_θ)`` on 20,000 fresh target samples, the same for every model of a seed
  (:func:`coursekit.metrics.kl_with_se`, with its Monte Carlo standard error);
* on the 4 modes, the gap mass: the share of 50,000 model samples in the gap region ``G`` of
  :mod:`coursekit.experiments` (the square through the four centres minus a disc of radius
  3σ around each, :func:`coursekit.experiments.in_gap_region`; notebooks 05 and 07), with its
  standard error (:func:`coursekit.experiments.gap_share`), and the same share for 50,000
  samples of the truth.

The live part repeats notebook 07's own two trainings (zuko's NSF for 400 steps and the
course's RealNVP for 1,000, ``fit``'s defaults, a fixed number of steps) for ten seeds, with
the notebook's evaluation samples (KL: generator seed 4; gap mass: generator seed 6), so that
the notebook prints its run beside its band (:class:`coursekit.bands.Band`).

The recipe part trains zuko's NSF on the 4 modes for 10 s of CPU time with fit's defaults,
with them changed one at a time (lr 1e-3; batch 256; constant learning rate) and with zuko's
usual loop (Adam at lr 1e-3, batch 256, constant learning rate, no clipping).

Runs go one at a time. Results are appended to the JSON file (``--out``, default
``benchmarks/flows_in_practice.json``) after every run; runs already there are skipped,
so an interrupted run resumes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from coursekit.datasets import gallery
from coursekit.experiments import gap_share
from coursekit.metrics import kl_with_se
from coursekit.practice import (
    FLOW_NAMES,
    build_flow,
    parameter_count,
    summarise_runs,
)
from coursekit.training import fit
from coursekit.training_run import fit_run

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "benchmarks" / "flows_in_practice.json"

#: Targets and their CPU budgets in seconds (4 modes: the issue's "within 30 s" bar).
BUDGETS = {"4 modes": 30.0, "rings": 10.0, "checkerboard": 10.0}
#: CPU budget of each run of the recipe part (shorter, so that five recipes fit in the run).
RECIPE_BUDGET = 10.0
SEEDS = (0, 1, 2, 3, 4)
KL_SAMPLES = 20_000
GAP_SAMPLES = 50_000
#: The live part: notebook 07's two trainings (steps) and the generator seeds of its samples.
LIVE_STEPS = {"zuko NSF": 400, "course RealNVP": 1_000}
LIVE_SEEDS = tuple(range(10))
LIVE_KL_SEED, LIVE_GAP_SEED = 4, 6

#: Training recipes of the recipe part (overrides of fit's defaults), by name.
RECIPES: dict[str, dict[str, object]] = {
    "fit defaults": {},
    "lr 1e-3": {"lr": 1e-3},
    "batch 256": {"batch_size": 256},
    "constant lr": {"schedule": "constant"},
    "zuko's usual loop": {
        "lr": 1e-3,
        "batch_size": 256,
        "schedule": "constant",
        "clip_grad": None,
    },
}
RECIPE_MODEL = "zuko NSF"
RECIPE_TARGET = "4 modes"


def run_one(
    model_name: str,
    target_name: str,
    seed: int,
    budget: float,
    recipe: dict[str, object],
    kl_samples: int,
    gap_samples: int,
) -> dict[str, object]:
    """Train one model for ``budget`` CPU seconds and measure it."""
    target = gallery()[target_name]
    model = build_flow(model_name, seed=seed)
    history = fit_run(
        model,
        target,
        max_seconds=budget,
        steps=10**9 if "steps" not in recipe else int(recipe["steps"]),
        seed=seed,
        progress=False,
        clock=time.process_time,
        **{k: v for k, v in recipe.items() if k != "steps"},
    )
    kl = kl_with_se(
        model, target, n=kl_samples, generator=torch.Generator().manual_seed(10_000 + seed)
    )
    row: dict[str, object] = {
        "model": model_name,
        "target": target_name,
        "seed": seed,
        "budget_cpu_s": budget,
        "recipe": recipe,
        "kl": kl.mean,
        "kl_se": kl.se,
        "steps": history.steps,
        "train_cpu_s": history.seconds,
        "final_loss": history.losses[-1],
        "parameters": parameter_count(model),
    }
    if target_name == "4 modes" and gap_samples:
        with torch.no_grad():
            x = model.sample(gap_samples, generator=torch.Generator().manual_seed(20_000 + seed))
        gm = gap_share(x)
        truth = gap_share(
            target.sample(gap_samples, generator=torch.Generator().manual_seed(30_000 + seed))
        )
        row.update(
            gap_mass=gm.mean, gap_mass_se=gm.se, true_gap_mass=truth.mean, true_gap_mass_se=truth.se
        )
    return row


def run_live(
    model_name: str, seed: int, steps: int, kl_samples: int, gap_samples: int
) -> dict[str, object]:
    """One of notebook 07's two trainings, ``steps`` steps of ``fit`` with ``seed``, measured
    with the notebook's evaluation samples."""
    target = gallery()["4 modes"]
    model = build_flow(model_name, seed=seed)
    start = time.process_time()
    history = fit(model, target, steps=steps, seed=seed, progress=False)
    train_cpu = time.process_time() - start
    kl = kl_with_se(
        model, target, n=kl_samples, generator=torch.Generator().manual_seed(LIVE_KL_SEED)
    )
    with torch.no_grad():
        x = model.sample(gap_samples, generator=torch.Generator().manual_seed(LIVE_GAP_SEED))
    gm = gap_share(x)
    return {
        "model": model_name,
        "target": "4 modes",
        "seed": seed,
        "steps": history.steps,
        "kl": kl.mean,
        "kl_se": kl.se,
        "gap_mass": gm.mean,
        "gap_mass_se": gm.se,
        "train_cpu_s": train_cpu,
    }


def report(data: dict[str, object]) -> str:
    """Markdown tables of the results: KL mean ± SE per (target, model), the gap mass on the
    4 modes, and the recipes."""
    runs = data["runs"]
    models = [r for r in runs if r["part"] == "models"]
    lines = ["| target (CPU budget) | " + " | ".join(FLOW_NAMES) + " |"]
    lines.append("|---" * (len(FLOW_NAMES) + 1) + "|")
    kl = summarise_runs(models, by=("target", "model"), value="kl")
    budgets = data["settings"]["budgets_cpu_s"]
    for target in dict.fromkeys(r["target"] for r in models):
        cells = [str(kl[(target, m)]) if (target, m) in kl else "" for m in FLOW_NAMES]
        lines.append(f"| {target} ({budgets[target]:g} s) | " + " | ".join(cells) + " |")
    four = [r for r in models if "gap_mass" in r]
    if four:
        gap = summarise_runs(four, by=("model",), value="gap_mass")
        truth = summarise_runs(four, by=("target",), value="true_gap_mass")[("4 modes",)]
        lines += ["", f"| gap mass, 4 modes (truth {truth}) | " + " | ".join(FLOW_NAMES) + " |"]
        lines.append("|---" * (len(FLOW_NAMES) + 1) + "|")
        cells = [str(gap[(m,)]) if (m,) in gap else "" for m in FLOW_NAMES]
        lines.append("| model | " + " | ".join(cells) + " |")
    live = [r for r in runs if r["part"] == "live"]
    if live:
        lines += ["", "| notebook 07's live run, over seeds | steps | KL (nats) | gap mass |"]
        lines.append("|---|---|---|---|")
        kl_live = summarise_runs(live, by=("model",), value="kl")
        gap_live = summarise_runs(live, by=("model",), value="gap_mass")
        steps_live = {r["model"]: r["steps"] for r in live}
        for (m,), est in kl_live.items():
            lines.append(f"| {m} ({est.n} seeds) | {steps_live[m]} | {est} | {gap_live[(m,)]} |")
    recipes = [r for r in runs if r["part"] == "recipes"]
    if recipes:
        table = summarise_runs(recipes, by=("recipe_name",), value="kl")
        lines += ["", "| recipe (zuko NSF, 4 modes) | KL (nats) | seeds |", "|---|---|---|"]
        lines += [f"| {name} | {est} | {est.n} |" for (name,), est in table.items()]
    return "\n".join(lines)


def key(row: dict[str, object]) -> tuple:
    return (row["part"], row["model"], row["target"], row["seed"], row.get("recipe_name", ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--quick", action="store_true", help="1 s budgets, 2 seeds (smoke test)")
    parser.add_argument("--skip-recipes", action="store_true")
    parser.add_argument("--skip-live", action="store_true")
    parser.add_argument(
        "--report", action="store_true", help="print the tables of --out, run nothing"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    budgets = {t: 1.0 for t in BUDGETS} if args.quick else dict(BUDGETS)
    recipe_budget = 1.0 if args.quick else RECIPE_BUDGET
    seeds = SEEDS[:2] if args.quick else SEEDS
    live_seeds = LIVE_SEEDS[:2] if args.quick else LIVE_SEEDS
    live_steps = {m: 5 for m in LIVE_STEPS} if args.quick else dict(LIVE_STEPS)
    kl_n = 2_000 if args.quick else KL_SAMPLES
    gap_n = 5_000 if args.quick else GAP_SAMPLES

    data: dict[str, object] = {"runs": []}
    if args.out.exists():
        data = json.loads(args.out.read_text())
    if args.report:
        print(report(data))
        return 0
    done = {key(r) for r in data["runs"]}
    import zuko

    data["settings"] = {
        "command": "python benchmarks/flows_in_practice.py" + (" --quick" if args.quick else ""),
        "clock": "CPU time of the process (time.process_time), 1 torch thread",
        "budgets_cpu_s": budgets,
        "seeds": list(seeds),
        "kl_samples": kl_n,
        "gap_samples": gap_n,
        "gap_region": "coursekit.experiments.in_gap_region",
        "live_steps": live_steps,
        "live_seeds": list(live_seeds),
        "live_kl_seed": LIVE_KL_SEED,
        "live_gap_seed": LIVE_GAP_SEED,
        "recipes": RECIPES,
        "recipe_budget_cpu_s": recipe_budget,
        "recipe_model": RECIPE_MODEL,
        "recipe_target": RECIPE_TARGET,
        "torch": torch.__version__,
        "zuko": zuko.__version__,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.processor() or ''}",
    }

    jobs = []
    if not args.skip_live:
        for seed in live_seeds:
            for model_name in LIVE_STEPS:
                jobs.append(("live", model_name, "4 modes", seed, 0.0, "fit defaults"))
    for target_name, budget in budgets.items():
        for seed in seeds:
            for model_name in FLOW_NAMES:
                jobs.append(("models", model_name, target_name, seed, budget, "fit defaults"))
    if not args.skip_recipes:
        # recipe by recipe (each over every seed), zuko's usual loop first
        for recipe_name in sorted(RECIPES, key=lambda r: r != "zuko's usual loop"):
            for seed in seeds:
                jobs.append(
                    (
                        "recipes",
                        RECIPE_MODEL,
                        RECIPE_TARGET,
                        seed,
                        recipe_budget,
                        recipe_name,
                    )
                )
    for part, model_name, target_name, seed, budget, recipe_name in jobs:
        k = (part, model_name, target_name, seed, recipe_name if part == "recipes" else "")
        if k in done:
            continue
        load = os.getloadavg()[0]
        start = time.perf_counter()
        if part == "live":
            row = run_live(model_name, seed, live_steps[model_name], kl_n, gap_n)
        else:
            row = run_one(model_name, target_name, seed, budget, RECIPES[recipe_name], kl_n, gap_n)
        row.update(
            part=part,
            wall_s=time.perf_counter() - start,
            load_avg=load,
            finished=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        )
        if part == "recipes":
            row["recipe_name"] = recipe_name
        data["runs"].append(row)
        args.out.write_text(json.dumps(data, indent=1) + "\n")
        print(
            f"{part:>7} {target_name:>12} seed {seed} {model_name:>14} {recipe_name:>18}: "
            f"KL {row['kl']:.4f} ± {row['kl_se']:.4f}, {row['steps']} steps, "
            f"{row['train_cpu_s']:.1f} CPU s, {row['wall_s']:.0f} wall s",
            file=sys.stderr,
            flush=True,
        )
    print(report(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
