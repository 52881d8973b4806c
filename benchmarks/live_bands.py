"""The bands of the figures that notebooks 01 and 05 print from their live trainings.

A training's figures are not reproducible digit for digit across machines (README, "Portable
outputs"): a run on another CPU behaves like a run with another seed. This script reruns each
live training of a notebook exactly as the notebook does — same models, same settings, same
evaluation samples — with the seed replaced by each of ``--seeds`` (0–9; the notebook's own
seed is one of them), and records every figure the notebook prints or asserts. The notebook
then prints its own figure beside ``coursekit.bands.Band.from_runs`` of these values (mean ±
4 sd) and asserts that it lies inside.

The code a notebook writes in view (notebook 05's ``Coupling``, ``OurRealNVP`` and
``train_by_hand``; notebook 01's ``train_on_fixed_data``) is read from the notebook itself and
executed here, so that the band is the band of that very code.

Usage (repository root; about 1 minute of CPU for 01, 4 minutes for 05, one thread)::

    OMP_NUM_THREADS=1 python benchmarks/live_bands.py --notebook 01  # live_bands_01.json
    OMP_NUM_THREADS=1 python benchmarks/live_bands.py --notebook 05  # live_bands_05.json
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path

import nbformat
import torch

from coursekit.datasets import MODE_CENTRES, four_modes, gallery, modes
from coursekit.experiments import gap_mass_on_grid, gap_share
from coursekit.flows import RealNVP
from coursekit.grid import integrate_on_grid, log_prob_on_grid, make_grid
from coursekit.metrics import kl_with_se, log_ratio_samples
from coursekit.mlp_density import GridRenormalized, MLPDensity, MonteCarloMLPDensity
from coursekit.training import fit, seed_everything

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = {"01": "01_density_estimation.ipynb", "05": "05_realnvp_toy.ipynb"}
SEEDS = list(range(10))
NAMESPACES: dict[str, dict] = {}  # the notebook's code, read once per run

#: The notebooks' settings (each notebook asserts that its own equal these).
SETTINGS = {
    "01": {
        "grid_size": 50,
        "hidden": [32, 32],
        "steps": 500,
        "lr": 1e-2,
        "batch_size": 256,
        "raw_steps": 300,
        "mc_samples": 16,
        "kl_samples": 20_000,
        "kl_seed": 7,
    },
    "05": {
        "flow": {"n_layers": 12, "hidden": [32, 32]},
        "hand_steps": 1500,
        "fit_steps": 1500,
        "gallery_fit": {"steps": 300, "batch_size": 256, "lr": 0.003},
        "temperatures": [0.5, 0.75, 1.0],
    },
}


def notebook_namespace(name: str, defines: list[str], extra: dict | None = None) -> dict:
    """Execute the code cells of a notebook that define ``defines``, after the import
    statements of its first code cell; return the namespace."""
    nb = nbformat.read(ROOT / "notebooks" / NOTEBOOKS[name], as_version=4)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    namespace: dict = dict(extra or {})
    first = "\n".join(line for line in code[0].splitlines() if not line.startswith("%"))
    tree = ast.parse(first)
    tree.body = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    exec(compile(tree, f"{name}:imports", "exec"), namespace)  # noqa: S102
    for source in code[1:]:
        if any(f"class {d}(" in source or f"def {d}(" in source for d in defines):
            exec(compile(source, f"{name}:cell", "exec"), namespace)  # noqa: S102
    missing = [d for d in defines if d not in namespace]
    if missing:
        raise RuntimeError(f"notebook {name} defines none of {missing}")
    return namespace


def _kl_01(log_prob: Callable, target, s: dict) -> float:
    """Notebook 01's ``kl_with_se``: mean of log p − log p_θ over 20,000 samples (seed 7)."""
    x = target.sample(s["kl_samples"], generator=torch.Generator().manual_seed(s["kl_seed"]))
    with torch.no_grad():
        diff = target.log_prob(x.double()) - log_prob(x.float()).double()
    return float(diff.mean())


def run_01(seed: int) -> dict[str, float]:
    s = SETTINGS["01"]
    hidden = tuple(s["hidden"])
    out: dict[str, float] = {}
    torch.manual_seed(seed)
    raw = MLPDensity(hidden=hidden, grid_size=s["grid_size"], normalize=False)
    history = fit(
        raw,
        modes(4),
        steps=s["raw_steps"],
        batch_size=s["batch_size"],
        lr=s["lr"],
        seed=seed,
        schedule="constant",
        progress=False,
    )
    out["raw_nll_last20"] = sum(history.losses[-20:]) / 20
    out["raw_log_z"] = GridRenormalized(raw, grid_size=400).log_z
    for k in (1, 2, 3, 4):
        target = modes(k)
        torch.manual_seed(seed)
        mc = MonteCarloMLPDensity(hidden=hidden, samples=s["mc_samples"], seed=seed)
        fit(
            mc,
            target,
            steps=s["steps"],
            batch_size=s["batch_size"],
            lr=s["lr"],
            seed=seed,
            progress=False,
        )
        true = GridRenormalized(mc, grid_size=400)
        out[f"mc_kl_{k}"] = _kl_01(true.log_prob, target, s)
        with torch.no_grad():
            out[f"mc_log_z_believed_{k}"] = float(mc.log_normalizer())
        out[f"mc_log_z_true_{k}"] = true.log_z
        torch.manual_seed(seed)
        grid = MLPDensity(hidden=hidden, grid_size=s["grid_size"])
        history = fit(
            grid,
            target,
            steps=s["steps"],
            batch_size=s["batch_size"],
            lr=s["lr"],
            seed=seed,
            progress=False,
        )
        out[f"grid_kl_{k}"] = _kl_01(grid.log_prob, target, s)
        if k == 4:
            last = torch.tensor(history.losses[-20:], dtype=torch.float64)
            out["grid_nll_last20"] = float(last.mean())
            out["grid_nll_last20_se"] = float(last.std() / math.sqrt(len(last)))
    finite = json.loads((ROOT / "benchmarks" / "mlp_density_failure.json").read_text())
    ns = notebook_namespace("01", ["train_on_fixed_data"], {"bench": finite})
    steps, train, test = ns["train_on_fixed_data"](200, seed=seed)
    best = int(test.argmin())
    out["finite_best_step"] = float(steps[best])
    out["finite_best_held_out"] = float(test[best])
    out["finite_final_train"] = float(train[-1])
    out["finite_final_held_out"] = float(test[-1])
    return out


def run_05(seed: int) -> dict[str, float]:
    s = SETTINGS["05"]
    flow_kw = {"n_layers": s["flow"]["n_layers"], "hidden": tuple(s["flow"]["hidden"])}
    target = four_modes()
    out: dict[str, float] = {}
    if "05" not in NAMESPACES:
        NAMESPACES["05"] = notebook_namespace("05", ["Coupling", "OurRealNVP", "train_by_hand"])
    ns = NAMESPACES["05"]
    torch.manual_seed(seed)
    ours = ns["OurRealNVP"](2, **flow_kw)
    ns["train_by_hand"](ours, target, steps=s["hand_steps"], seed=seed)
    out["hand_kl"] = kl_with_se(
        ours, target, n=20_000, generator=torch.Generator().manual_seed(4)
    ).mean

    seed_everything(seed)
    flow = RealNVP(2, **flow_kw, scale_bound=3.0)
    history = fit(flow, target, steps=s["fit_steps"], seed=seed, progress=False)
    out["fit_nll_last100"] = sum(history.losses[-100:]) / 100
    d = log_ratio_samples(flow, target, n=20_000, generator=torch.Generator().manual_seed(4))
    out["kl"] = float(d.mean())
    out["share_negative_d"] = float((d < 0).double().mean())
    x_held_out = target.sample(20_000, generator=torch.Generator().manual_seed(5)).float()
    with torch.no_grad():
        out["test_nll"] = float(-flow.log_prob(x_held_out).double().mean())
        grid = make_grid(-4.0, 4.0, 200)
        log_p_flow = log_prob_on_grid(lambda p: flow.log_prob(p.float()), grid).double()
        out["mass_on_grid"] = integrate_on_grid(log_p_flow.exp(), grid)
        out["gap_mass"] = gap_mass_on_grid(lambda x: flow.log_prob(x.float()))
        z = torch.randn(2000, 2, generator=torch.Generator().manual_seed(6))
        x_new, _ = flow.inverse(z)
    centres = torch.tensor(MODE_CENTRES[4], dtype=torch.float64)
    nearest = lambda x: torch.cdist(x.double(), centres).min(dim=1).values  # noqa: E731
    quadrant = (x_new[:, 0] > 0).long() * 2 + (x_new[:, 1] > 0).long()
    shares = torch.bincount(quadrant, minlength=4).double() / len(x_new)
    for q in range(4):
        out[f"quadrant_share_{q}"] = float(shares[q])
    out["far_share"] = float((nearest(x_new) > 1.5).double().mean())
    out["gap_share"] = gap_share(x_new).mean
    for t in s["temperatures"]:
        with torch.no_grad():
            x_t = flow.sample(2000, temperature=t, generator=torch.Generator().manual_seed(8))
        out[f"spread_T{t:g}"] = float(nearest(x_t).mean())

    gallery_fit = dict(s["gallery_fit"], seed=seed)
    for name, dist in gallery().items():
        if name == "4 modes" or not dist.has_log_prob:
            continue
        seed_everything(seed)
        model = RealNVP(2, **flow_kw, scale_bound=3.0)
        fit(model, dist, **gallery_fit, progress=False)
        out[f"gallery_kl_{name}"] = kl_with_se(
            model, dist, n=10_000, generator=torch.Generator().manual_seed(4)
        ).mean
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notebook", choices=sorted(NOTEBOOKS), required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=SEEDS)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    run = run_01 if args.notebook == "01" else run_05
    per_seed = []
    for seed in args.seeds:
        per_seed.append(run(seed))
        print(f"notebook {args.notebook}, seed {seed}: done", flush=True)
    figures = {key: [row[key] for row in per_seed] for key in per_seed[0]}
    given = sys.argv[1:] if argv is None else argv
    result = {
        "command": "OMP_NUM_THREADS=1 python benchmarks/live_bands.py " + " ".join(given),
        "notebook": NOTEBOOKS[args.notebook],
        "seeds": args.seeds,
        "settings": SETTINGS[args.notebook],
        "figures": figures,
    }
    out = args.out or ROOT / "benchmarks" / f"live_bands_{args.notebook}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
