"""The bar of exercise 5.6 (build and train your own RealNVP), measured.

The checker (:mod:`coursekit.checkers.ch05_train`) trains a fresh flow of the student's for
``TRAIN_STEPS`` steps in one torch thread and asks for ``KL(p ‖ p_θ) < KL_BAR`` nats. This
script runs the checker's own training and KL estimate (``train_with_cpu_limit``,
``kl_after_training``) on the reference solution of ``solutions/05_realnvp_toy.ipynb`` and on
the lecture's plain loop (notebook 05, section 3: Adam at a constant 3e-3, batches of 256, on
the reference's flow), for several seeds of the flow, the data and the KL samples, under
several numeric set-ups (each in a fresh process, since the variables act when torch loads):

* ``native``: the machine's fastest kernels;
* ``portable``: ``ATEN_CPU_CAPABILITY=default MKL_CBWR=COMPATIBLE`` (torch's scalar kernels and
  MKL's compatible path), as ``make notebooks`` stores outputs;
* ``portable, OMP 2``: the same with ``OMP_NUM_THREADS=2`` — the checker sets one torch thread
  itself, so this must give the ``portable`` figures exactly.

Command (repository root; about 10 s of CPU per run, 60 runs by default):

    python benchmarks/exercise_build_and_train.py --seeds 10

writes ``benchmarks/exercise_build_and_train.json``; ``--smoke`` runs 3 steps of one seed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOLUTION = ROOT / "solutions" / "05_realnvp_toy.ipynb"
BEGIN = "### BEGIN SOLUTION Exercise 5.6: build and train your own RealNVP"
OUT = Path(__file__).with_suffix(".json")

SETUPS = {
    "native": {},
    "portable": {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE"},
    "portable, OMP 2": {
        "ATEN_CPU_CAPABILITY": "default",
        "MKL_CBWR": "COMPATIBLE",
        "OMP_NUM_THREADS": "2",
    },
}

#: the lecture's train_by_hand (notebook 05, section 3) in the exercise's signature
LECTURE_LOOP = """
def train(flow, sampler, steps):
    optimizer = torch.optim.Adam(flow.parameters(), lr=3e-3)
    for _ in range(steps):
        x = sampler.sample(256)
        z, log_det = flow(x)
        loss = -flow_log_prob(z, log_det).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
"""


def reference_source() -> str:
    """The code of exercise 5.6 in the solution notebook, solution markers removed, without
    the final print and checker call."""
    import nbformat

    nb = nbformat.read(SOLUTION, as_version=4)
    cells = [c.source for c in nb.cells if c.cell_type == "code" and BEGIN in c.source]
    if len(cells) != 1:
        raise RuntimeError(f"expected one cell with {BEGIN!r} in {SOLUTION}, got {len(cells)}")
    lines = [line for line in cells[0].split("\n") if "SOLUTION" not in line]
    return "\n".join(lines).split('print(f"the checker trains')[0]


def load(recipe: str) -> dict:
    """``build_flow`` and ``train`` of ``recipe`` ("reference" or "lecture loop")."""
    import torch
    from torch import nn

    def flow_log_prob(z, log_det):
        return -0.5 * (z**2).sum(dim=1) - 0.5 * z.shape[1] * math.log(2 * math.pi) + log_det

    ns = {"torch": torch, "nn": nn, "math": math, "flow_log_prob": flow_log_prob}
    exec(compile(reference_source(), str(SOLUTION), "exec"), ns)
    if recipe == "lecture loop":
        exec(LECTURE_LOOP, ns)
    return ns


def run_one(recipe: str, seed: int, steps: int | None) -> dict:
    """One training as the checker runs it, with ``seed`` for the flow, the batches and the
    KL samples (seed 0 is the checker's own: flow 0, batches 4, KL samples 5)."""
    import torch

    from coursekit.checkers import ch05_train

    if steps is not None:
        ch05_train.TRAIN_STEPS = steps
    ns = load(recipe)
    torch.set_num_threads(1)
    flow = ns["build_flow"](seed)
    torch.manual_seed(seed)
    cpu = ch05_train.train_with_cpu_limit(ns["train"], flow, seed=4 + 10 * seed)
    kl, se = ch05_train.kl_after_training(flow, seed=5 + 10 * seed)
    return {"recipe": recipe, "seed": seed, "kl": kl, "kl_se": se, "cpu_seconds": cpu}


def child(args: argparse.Namespace) -> None:
    rows = [
        run_one(recipe, seed, args.steps)
        for recipe in ("reference", "lecture loop")
        for seed in range(args.seeds)
    ]
    print(json.dumps(rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--smoke", action="store_true", help="3 steps of one seed, no file")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    if args.smoke:
        args.seeds, args.steps = 1, 3
    import torch

    from coursekit.checkers.ch05_train import KL_BAR, MAX_CPU_SECONDS, TRAIN_STEPS

    runs = []
    start = time.time()
    for name, extra in SETUPS.items():
        env = {**os.environ, **extra}
        if "OMP_NUM_THREADS" not in extra:
            env.pop("OMP_NUM_THREADS", None)
        cmd = [sys.executable, __file__, "--child", "--seeds", str(args.seeds)]
        if args.steps is not None:
            cmd += ["--steps", str(args.steps)]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
        for row in json.loads(out.stdout.strip().splitlines()[-1]):
            runs.append({"setup": name, **row})
            print(
                f"{name:>16} {row['recipe']:>12} seed {row['seed']}: KL {row['kl']:.4f} ± "
                f"{row['kl_se']:.4f}, {row['cpu_seconds']:.1f} s CPU",
                flush=True,
            )
    summary = {}
    for recipe in ("reference", "lecture loop"):
        kls = [r["kl"] for r in runs if r["recipe"] == recipe]
        cpus = [r["cpu_seconds"] for r in runs if r["recipe"] == recipe]
        summary[recipe] = {
            "runs": len(kls),
            "kl_max": max(kls),
            "kl_min": min(kls),
            "kl_mean": sum(kls) / len(kls),
            "cpu_max": max(cpus),
            "passed": sum(k < KL_BAR for k in kls),
        }
    same = all(
        a["kl"] == b["kl"]
        for a in runs
        if a["setup"] == "portable"
        for b in runs
        if b["setup"] == "portable, OMP 2" and (b["recipe"], b["seed"]) == (a["recipe"], a["seed"])
    )
    result = {
        "command": "python benchmarks/exercise_build_and_train.py --seeds " + str(args.seeds),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}",
        "train_steps": TRAIN_STEPS if args.steps is None else args.steps,
        "kl_bar": KL_BAR,
        "max_cpu_seconds": MAX_CPU_SECONDS,
        "setups": {k: v for k, v in SETUPS.items()},
        "omp_threads_change_nothing": same,
        "summary": summary,
        "runs": runs,
        "wall_seconds": round(time.time() - start, 1),
    }
    print(json.dumps(summary, indent=1), "OMP 2 identical:", same)
    if not args.smoke:
        OUT.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
