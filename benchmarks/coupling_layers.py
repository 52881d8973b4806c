"""The seed statistics behind notebook 04's two trainings, so that the notebook can print
each trained figure with its band (:class:`coursekit.bands.Band`) instead of one run's digits.

Usage (from the repository root)::

    python benchmarks/coupling_layers.py                 # 10 seeds, about 10 CPU-seconds
    python benchmarks/coupling_layers.py --quick --out /tmp/quick.json   # smoke test

For every seed ``s``, exactly the notebook's runs with ``torch.manual_seed(s)`` for the
weights and ``fit(..., seed=s)`` for the data (the notebook is seed 0), one torch thread:

* **masks** (section 5): a 4-layer flow of ``AffineCoupling(mask, hidden=(32, 32))`` with the
  mask ``[1, 0]`` in every layer, and one with alternating masks, each trained by ``fit`` for
  300 steps (batch 256, lr 5e-3) on the slides' 4 modes; ``KL(p ‖ p_θ)`` on 20,000 samples of
  the target drawn from ``torch.Generator().manual_seed(6)`` (the notebook's), with its Monte
  Carlo standard error;
* **bound** (section 6): ``RealNVP(2, n_layers=4, hidden=(64, 64))`` trained by ``fit`` at the
  too-large constant lr 0.05 for 200 steps (batch 256), once with ``scale_bound=1e6`` (no
  bound: the step at which the loss became NaN/Inf, or none) and once with the default bound 3
  (whether every loss is finite, and the mean loss of the last 20 steps).

Results go to ``benchmarks/coupling_layers.json`` (``--out``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch

from coursekit.datasets import four_modes
from coursekit.flows import AffineCoupling, Flow, FlowSequence, RealNVP, alternating_masks
from coursekit.metrics import kl_with_se
from coursekit.training import TrainingDivergedError, fit

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "benchmarks" / "coupling_layers.json"
SEEDS = tuple(range(10))
MASK_STEPS, MASK_BATCH, MASK_LR = 300, 256, 5e-3
KL_SAMPLES, KL_SEED = 20_000, 6
BOUND_STEPS, BOUND_BATCH, BOUND_LR, LAST = 200, 256, 0.05, 20
MASKS = {"same mask [1, 0]": [[1, 0]] * 4, "alternating": alternating_masks(2, 4)}


def mask_run(name: str, seed: int, steps: int = MASK_STEPS, kl_samples: int = KL_SAMPLES) -> dict:
    """Section 5: train the 4-layer flow with the masks ``MASKS[name]``; its KL ± SE."""
    torch.manual_seed(seed)
    model = Flow(
        FlowSequence([AffineCoupling(m, hidden=(32, 32)) for m in MASKS[name]]), event_shape=(2,)
    )
    target = four_modes()
    fit(model, target, steps=steps, batch_size=MASK_BATCH, lr=MASK_LR, seed=seed, progress=False)
    kl = kl_with_se(model, target, n=kl_samples, generator=torch.Generator().manual_seed(KL_SEED))
    return {
        "part": "masks",
        "model": name,
        "seed": seed,
        "steps": steps,
        "kl": kl.mean,
        "kl_se": kl.se,
    }


def bound_run(scale_bound: float, seed: int, steps: int = BOUND_STEPS) -> dict:
    """Section 6: train at the too-large lr; the step of divergence or the last losses."""
    torch.manual_seed(seed)
    model = RealNVP(2, n_layers=4, hidden=(64, 64), scale_bound=scale_bound)
    row = {"part": "bound", "scale_bound": scale_bound, "seed": seed, "steps": steps}
    try:
        history = fit(
            model,
            four_modes(),
            steps=steps,
            batch_size=BOUND_BATCH,
            lr=BOUND_LR,
            schedule="constant",
            seed=seed,
            progress=False,
        )
    except TrainingDivergedError as err:
        return {**row, "diverged_at": err.step}
    losses = history.losses
    return {
        **row,
        "diverged_at": None,
        "all_finite": all(math.isfinite(v) for v in losses),
        "last_mean_loss": sum(losses[-LAST:]) / LAST,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--quick", action="store_true", help="3 seeds, 30 steps (smoke test)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    seeds = SEEDS[:3] if args.quick else SEEDS
    mask_steps = 30 if args.quick else MASK_STEPS
    bound_steps = 30 if args.quick else BOUND_STEPS
    kl_n = 2_000 if args.quick else KL_SAMPLES
    runs = []
    for seed in seeds:
        start = time.process_time()
        runs += [mask_run(name, seed, mask_steps, kl_n) for name in MASKS]
        runs += [bound_run(b, seed, bound_steps) for b in (1e6, 3.0)]
        print(
            f"seed {seed}: "
            + ", ".join(
                f"{r.get('model', r.get('scale_bound'))}: "
                f"{r.get('kl', r.get('last_mean_loss', r.get('diverged_at')))}"
                for r in runs[-4:]
            )
            + f" ({time.process_time() - start:.0f} CPU s)",
            file=sys.stderr,
            flush=True,
        )
    data = {
        "settings": {
            "command": "python benchmarks/coupling_layers.py" + (" --quick" if args.quick else ""),
            "seeds": list(seeds),
            "mask_steps": mask_steps,
            "mask_batch": MASK_BATCH,
            "mask_lr": MASK_LR,
            "kl_samples": kl_n,
            "kl_generator_seed": KL_SEED,
            "bound_steps": bound_steps,
            "bound_batch": BOUND_BATCH,
            "bound_lr": BOUND_LR,
            "last": LAST,
            "torch": torch.__version__,
            "threads": 1,
        },
        "runs": runs,
    }
    args.out.write_text(json.dumps(data, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
