"""The seed statistics of notebook 09 (beyond density estimation).

Usage (from the repository root)::

    python benchmarks/beyond_density.py                       # full run, ~10 CPU-minutes
    python benchmarks/beyond_density.py --quick --out /tmp/quick.json   # smoke test

Parts, each over the seeds ``SEEDS`` (one torch thread, runs one at a time):

* ``live``: the notebook's live trainings, for a fixed number of steps, exactly as the
  notebook runs them with seed 0 — their spread over the seeds is the band each live figure
  is printed with (:class:`coursekit.bands.Band`):

  - ``triangular``: a one-layer autoregressive spline flow (zuko's NSF, 1 transform) fitted to
    the 3 modes; the mean distance ``‖f_θ(x) − T(x)‖`` between its map and the
    Knothe–Rosenblatt map ``T`` on target samples, and its KL;
  - ``reverse``/``forward``: the course's RealNVP fitted to the four wells at (±3, ±3) by the
    reverse KL on the energy, or by maximum likelihood (forward KL) on samples; per flow the
    mass of each well, KL both ways and the importance-weighted ``log Ẑ`` with its standard
    error;
  - ``conditional``: a conditional RealNVP on the 4 modes at (±c, ±c) trained on
    c ∈ {1, 1.5, 2.5, 3}; KL at c = 1 … 3.5, held-out c = 2 and 3.5 included;
  - ``flow matching``: the notebook's velocity field on the 4 modes; its KL.

* ``equal cpu``: on the 4 modes, the flow-matching model, the course's RealNVP and zuko's NSF
  each trained by :func:`coursekit.training.fit` for the same **CPU time** ``EQUAL_BUDGET``
  (``clock=time.process_time``); KL on 20,000 fresh samples. Beside them a KDE (Scott's
  bandwidth) and a 4-component Gaussian mixture (EM) on ``CLASSICAL_POINTS`` samples.

Results are appended to the JSON file (``--out``, default ``benchmarks/beyond_density.json``)
after every run; runs already there are skipped, so an interrupted run resumes.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from coursekit.classical import GaussianKDE, fit_gmm
from coursekit.datasets import four_modes, modes
from coursekit.datasets.conditional import SpreadModesFamily
from coursekit.flow_matching import (
    FlowMatchingModel,
    InterpolantPairs,
    VelocityField,
    flow_matching_loss,
)
from coursekit.flows import RealNVP
from coursekit.flows.conditional import ConditionalRealNVP, conditional_nll_loss
from coursekit.metrics import kl_with_se
from coursekit.practice import ZukoDensity, build_flow, summarise_runs
from coursekit.reverse_kl import (
    StandardNormal,
    Wells,
    effective_sample_size,
    importance_log_z,
    kl_both_ways,
    mode_masses,
    reverse_kl_loss,
    sample_with_log_q,
)
from coursekit.training import fit
from coursekit.training_run import fit_run
from coursekit.triangular import MixtureTriangularMap

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "benchmarks" / "beyond_density.json"
SEEDS = (0, 1, 2, 3, 4)

#: The live runs of notebook 09 (the notebook asserts that it uses these settings).
LIVE = {
    "triangular": {"steps": 800, "batch_size": 1024, "hidden": [64, 64], "map_points": 5000},
    "wells": {"centres": [[-3, -3], [3, 3], [3, -3], [-3, 3]], "std": 0.5},
    "reverse": {"steps": 1000, "batch_size": 512, "lr": 5e-3},
    "forward": {"steps": 1000, "batch_size": 512, "lr": 1e-2},
    "conditional": {
        "steps": 1000,
        "batch_size": 512,
        "n_layers": 8,
        "hidden": [64, 64],
        "train_contexts": [1.0, 1.5, 2.5, 3.0],
        "eval_contexts": [1.0, 1.5, 2.0, 2.5, 3.0, 3.5],
    },
    "flow_matching": {"steps": 1500, "batch_size": 1024, "hidden": [64, 64], "ode_steps": 20},
    "samples": 20_000,
}
#: CPU seconds of each model of the equal-CPU comparison.
EQUAL_BUDGET = 20.0
EQUAL_MODELS = ("flow matching", "course RealNVP", "zuko NSF")
CLASSICAL_POINTS = 5_000


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def nsf_one_layer(seed: int, hidden: list[int]) -> ZukoDensity:
    """zuko's NSF with one autoregressive transform (x₁ first): a monotone triangular map."""
    import zuko

    torch.manual_seed(seed)
    return ZukoDensity(zuko.flows.NSF(2, transforms=1, hidden_features=tuple(hidden)))


def run_triangular(seed: int, n: int) -> dict[str, object]:
    cfg = LIVE["triangular"]
    target = modes(3)
    flow = nsf_one_layer(seed, cfg["hidden"])
    fit(flow, target, steps=cfg["steps"], batch_size=cfg["batch_size"], seed=seed, progress=False)
    x = target.sample(cfg["map_points"], generator=gen(1))
    z_kr, _ = MixtureTriangularMap(target)(x)
    with torch.no_grad():
        z, _ = flow(x.float())
    kl = kl_with_se(flow, target, n=n, generator=gen(10_000 + seed))
    return {"map_distance": float((z.double() - z_kr).norm(dim=1).mean()), "kl": kl.mean}


def train_wells_flow(direction: str, seed: int) -> tuple[RealNVP, Wells]:
    """The notebook's flow on the four wells, by the reverse KL or by maximum likelihood."""
    wells = Wells(LIVE["wells"]["centres"], LIVE["wells"]["std"])
    cfg = LIVE[direction]
    torch.manual_seed(seed)
    flow = RealNVP(2)
    if direction == "reverse":
        fit(
            flow,
            StandardNormal(2),
            steps=cfg["steps"],
            batch_size=cfg["batch_size"],
            lr=cfg["lr"],
            seed=seed,
            progress=False,
            loss_fn=lambda model, eps: reverse_kl_loss(model, wells.energy, eps),
        )
    else:
        fit(
            flow,
            wells,
            steps=cfg["steps"],
            batch_size=cfg["batch_size"],
            lr=cfg["lr"],
            seed=seed,
            progress=False,
        )
    return flow, wells


def measure_wells_flow(flow: RealNVP, wells: Wells, seed: int, n: int) -> dict[str, object]:
    x, log_q = sample_with_log_q(flow, n, gen(20_000 + seed))
    masses = [m.mean for m in mode_masses(x, wells.centres)]
    log_w = -wells.energy(x) - log_q
    log_z = importance_log_z(log_w)
    forward, reverse = kl_both_ways(flow, wells, n=n, generator=gen(30_000 + seed))
    return {
        "masses": masses,
        "largest_mass": max(masses),
        "wells_found": sum(m > 0.05 for m in masses),
        "kl_forward": forward.mean,
        "kl_reverse": reverse.mean,
        "log_z": log_z.mean,
        "log_z_se": log_z.se,
        "ess_share": effective_sample_size(log_w) / n,
    }


def run_conditional(seed: int, n: int) -> dict[str, object]:
    cfg = LIVE["conditional"]
    family = SpreadModesFamily(cfg["train_contexts"])
    torch.manual_seed(seed)
    flow = ConditionalRealNVP(2, 1, n_layers=cfg["n_layers"], hidden=cfg["hidden"])
    fit(
        flow,
        family,
        steps=cfg["steps"],
        batch_size=cfg["batch_size"],
        seed=seed,
        progress=False,
        loss_fn=conditional_nll_loss,
    )
    return {"kl": {str(c): conditional_kl(flow, family, c, n, seed) for c in cfg["eval_contexts"]}}


def conditional_kl(
    flow: ConditionalRealNVP, family: SpreadModesFamily, c: float, n: int, seed: int
) -> float:
    target = family.member(c)
    x = target.sample(n, generator=gen(40_000 + seed))
    with torch.no_grad():
        return float((target.log_prob(x) - flow.log_prob(x.float(), c).double()).mean())


def train_flow_matching(seed: int, steps: int, budget: float | None = None):
    cfg = LIVE["flow_matching"]
    torch.manual_seed(seed)
    velocity = VelocityField(2, cfg["hidden"])
    history = fit_run(
        velocity,
        InterpolantPairs(four_modes()),
        steps=steps,
        batch_size=cfg["batch_size"],
        seed=seed,
        progress=False,
        loss_fn=flow_matching_loss,
        max_seconds=budget,
        clock=time.process_time if budget else None,
    )
    return FlowMatchingModel(velocity, steps=cfg["ode_steps"]), history


def run_flow_matching(seed: int, n: int) -> dict[str, object]:
    model, _ = train_flow_matching(seed, LIVE["flow_matching"]["steps"])
    return {"kl": kl_with_se(model, four_modes(), n=n, generator=gen(10_000 + seed)).mean}


def run_equal_cpu(model_name: str, seed: int, budget: float, n: int) -> dict[str, object]:
    target = four_modes()
    if model_name == "flow matching":
        model, history = train_flow_matching(seed, 10**9, budget)
    else:
        model = build_flow(model_name, seed=seed)
        history = fit_run(
            model,
            target,
            steps=10**9,
            max_seconds=budget,
            seed=seed,
            progress=False,
            clock=time.process_time,
        )
    kl = kl_with_se(model, target, n=n, generator=gen(10_000 + seed))
    return {"kl": kl.mean, "kl_se": kl.se, "steps": history.steps, "train_cpu_s": history.seconds}


def run_classical(model_name: str, seed: int, points: int, n: int) -> dict[str, object]:
    target = four_modes()
    x = target.sample(points, generator=gen(50_000 + seed))
    model = GaussianKDE(x) if model_name == "KDE" else fit_gmm(x, 4, generator=gen(seed))
    kl = kl_with_se(model, target, n=n, generator=gen(10_000 + seed))
    return {"kl": kl.mean, "kl_se": kl.se, "points": points}


def report(data: dict[str, object]) -> str:
    """Markdown tables: the live runs' means ± SE (and bands' spread), the equal-CPU table."""
    runs = data["runs"]
    lines = ["| live run (notebook 09) | figure | mean ± SE over seeds | sd |", "|---|---|---|---|"]
    for part, field in [
        ("triangular", "map_distance"),
        ("triangular", "kl"),
        ("reverse", "largest_mass"),
        ("reverse", "wells_found"),
        ("reverse", "log_z"),
        ("reverse", "kl_reverse"),
        ("forward", "largest_mass"),
        ("forward", "wells_found"),
        ("forward", "log_z"),
        ("forward", "kl_forward"),
        ("forward", "kl_reverse"),
        ("flow matching", "kl"),
    ]:
        rows = [r for r in runs if r["part"] == part]
        if rows:
            est = summarise_runs(rows, by=("part",), value=field)[(part,)]
            sd = est.se * math.sqrt(est.n)
            lines.append(f"| {part} | {field} | {est} | {sd:.4f} |")
    cond = [r for r in runs if r["part"] == "conditional"]
    for c in cond[0]["kl"] if cond else []:
        rows = [{"c": c, "kl": r["kl"][c]} for r in cond]
        est = summarise_runs(rows, by=("c",), value="kl")[(c,)]
        lines.append(f"| conditional | KL at c = {c} | {est} | {est.se * math.sqrt(est.n):.4f} |")
    eq = [r for r in runs if r["part"] == "equal cpu"]
    if eq:
        table = summarise_runs(eq, by=("model",), value="kl")
        steps = summarise_runs([r for r in eq if "steps" in r], by=("model",), value="steps")
        lines += ["", "| 4 modes, equal CPU / classical | KL (nats) | steps |", "|---|---|---|"]
        for (name,), est in table.items():
            s = f"{steps[(name,)].mean:,.0f}" if (name,) in steps and name in EQUAL_MODELS else "–"
            lines.append(f"| {name} | {est} | {s} |")
    return "\n".join(lines)


def key(row: dict[str, object]) -> tuple:
    return (row["part"], row.get("model", ""), row["seed"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--quick", action="store_true", help="tiny runs, 2 seeds (smoke test)")
    parser.add_argument("--report", action="store_true", help="print --out's tables, run nothing")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    data: dict[str, object] = {"runs": []}
    if args.out.exists():
        data = json.loads(args.out.read_text())
    if args.report:
        print(report(data))
        return 0
    import zuko

    global LIVE
    if args.quick:  # a copy with 5 steps per live run
        LIVE = copy.deepcopy(LIVE)
        for cfg in LIVE.values():
            if isinstance(cfg, dict) and "steps" in cfg:
                cfg["steps"] = 5
    seeds = SEEDS[:2] if args.quick else SEEDS
    n = 2_000 if args.quick else LIVE["samples"]
    budget = 0.5 if args.quick else EQUAL_BUDGET
    points = 500 if args.quick else CLASSICAL_POINTS
    data["settings"] = {
        "command": "python benchmarks/beyond_density.py" + (" --quick" if args.quick else ""),
        "live": LIVE,
        "seeds": list(seeds),
        "equal_budget_cpu_s": budget,
        "clock": "CPU time of the process (time.process_time), 1 torch thread",
        "classical_points": points,
        "torch": torch.__version__,
        "zuko": zuko.__version__,
    }
    done = {key(r) for r in data["runs"]}
    jobs: list[tuple[str, str, int]] = []
    for seed in seeds:
        jobs += [
            ("triangular", "", seed),
            ("reverse", "", seed),
            ("forward", "", seed),
            ("conditional", "", seed),
            ("flow matching", "", seed),
        ]
        jobs += [("equal cpu", m, seed) for m in (*EQUAL_MODELS, "KDE", "GMM")]
    for part, model_name, seed in jobs:
        if (part, model_name, seed) in done:
            continue
        start = time.perf_counter()
        if part == "triangular":
            row = run_triangular(seed, n)
        elif part in ("reverse", "forward"):
            row = measure_wells_flow(*train_wells_flow(part, seed), seed, n)
        elif part == "conditional":
            row = run_conditional(seed, n)
        elif part == "flow matching":
            row = run_flow_matching(seed, n)
        elif model_name in EQUAL_MODELS:
            row = run_equal_cpu(model_name, seed, budget, n)
        else:
            row = run_classical(model_name, seed, points, n)
        row.update(
            part=part,
            model=model_name,
            seed=seed,
            wall_s=time.perf_counter() - start,
            finished=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        )
        data["runs"].append(row)
        args.out.write_text(json.dumps(data, indent=1) + "\n")
        print(
            f"{part:>13} {model_name:>14} seed {seed}: {row['wall_s']:.0f} wall s",
            file=sys.stderr,
            flush=True,
        )
    print(report(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
