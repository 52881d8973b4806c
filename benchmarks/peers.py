"""coursekit side by side with zuko, nflows and normflows: quality per second and throughput.

Usage (from the repository root, with the peers installed, see benchmarks/README.md)::

    python benchmarks/peers.py            # full run, about 14 minutes on 2 cores
    python benchmarks/peers.py --quick    # tiny budgets, about a minute (development)

Everything is measured in one run on one machine, with the libraries interleaved, so each
figure is best read as a ratio to coursekit's figure measured next to it.

1. Toy quality per second. For the 4-mode mixture and the checkerboard, every library's
   RealNVP-style affine coupling flow (same number of couplings, same conditioner network;
   see ``peer_models.py``) is trained by the same loop, :func:`coursekit.training.fit`
   (Adam with gradient-norm clipping) at a constant learning rate (``fit``'s default
   ``lr``, ``batch_size`` and ``clip_grad``), fresh samples each step, and ``fit``'s
   exponential moving average (EMA) of the weights with decay ``EMA_DECAY``. One run per
   (dataset, seed, library) is snapshotted after 10, 30 and 60 s
   of training wall time (the time spent evaluating a snapshot is not counted), which with a
   constant learning rate is exactly a 10 s, a 30 s and a 60 s run; a per-budget cosine
   schedule would need separate runs and ~1.7x the time. At a constant learning rate the
   weights keep jittering around the optimum, so a snapshot of the raw weights is noisy; the
   EMA weights are what is evaluated (the same for every library). At each snapshot,
   ``KL(p ‖ p_θ)`` is estimated in nats with ``coursekit.metrics.kl_to_target`` on 20,000
   fresh samples (the same samples for every library of a seed); the table reports the
   median over 3 seeds. Runs go two at a time (one per core, one thread each), in the order
   seed → dataset → libraries, with the library order permuted so that every library shares
   the machine with every other one.
2. Throughput, in the main process (one torch thread), libraries interleaved in a
   rotated order, median of repeated timings: training steps per second (log-density,
   backward, Adam step) for a batch of 512 2-D points and for a batch of 64 1×28×28 images,
   and samples per second.

The Markdown table is written to ``--out`` (default ``benchmarks/results.md``).
"""

from __future__ import annotations

import argparse
import inspect
import math
import multiprocessing as mp
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import torch
from peer_models import (
    LIBRARIES,
    TOY_BUILDERS,
    ImageConfig,
    ToyConfig,
    available_libraries,
    count_parameters,
    coursekit_image_full,
    image_models,
)
from torch import Tensor, nn

from coursekit.datasets import Checkerboard, four_modes
from coursekit.device import hardware
from coursekit.metrics import kl_to_target
from coursekit.training import FitState, TrainingDivergedError, fit
from coursekit.training_run import Callback, fit_run

#: Decay of the moving average of the weights evaluated at each snapshot (about 200 steps).
EMA_DECAY = 0.995

FULL_TRAIN = "train image, coursekit's own ImageRealNVP() (steps/s, batch 64)"
FULL_SAMPLE = "sample image, coursekit's own ImageRealNVP() (samples/s)"

DATASETS: dict[str, Callable[[], object]] = {
    "4 modes": four_modes,
    "checkerboard": Checkerboard,
}


# --------------------------------------------------------------------------- settings


@dataclass
class Settings:
    """What one benchmark run measures."""

    budgets: tuple[float, ...] = (10.0, 30.0, 60.0)
    seeds: tuple[int, ...] = (0, 1, 2)
    kl_samples: int = 20_000
    workers: int = 2
    toy_batch: int = 512
    image_batch: int = 64
    toy_sample_n: int = 10_000
    image_sample_n: int = 64
    repeats: int = 5
    seconds_per_timing: float = 0.3
    threads: int = 1
    libraries: tuple[str, ...] = LIBRARIES
    quick: bool = False

    @classmethod
    def quick_settings(cls) -> Settings:
        return cls(
            budgets=(1.0, 2.0, 3.0),
            seeds=(0,),
            kl_samples=2_000,
            repeats=2,
            seconds_per_timing=0.1,
            quick=True,
        )


def loop_hyperparameters() -> dict[str, float]:
    """``lr``, ``batch_size`` and ``clip_grad`` from ``coursekit.training.fit``'s defaults."""
    params = inspect.signature(fit).parameters
    return {
        "lr": float(params["lr"].default),
        "batch_size": int(params["batch_size"].default),
        "clip_grad": params["clip_grad"].default,
    }


# --------------------------------------------------------------------------- quality


@dataclass
class Snapshot:
    """KL after ``budget`` seconds of training."""

    library: str
    dataset: str
    seed: int
    budget: float
    kl: float
    steps: int
    seconds: float
    diverged: bool = False


def train_with_snapshots(
    model: nn.Module,
    target: object,
    budgets: Sequence[float],
    seed: int,
    lr: float,
    batch_size: int,
    clip_grad: float | None,
    evaluate: Callable[[nn.Module], float],
    ema_decay: float | None = EMA_DECAY,
) -> list[tuple[float, float, int, float, bool]]:
    """Train by maximum likelihood with :func:`coursekit.training.fit`, evaluating after
    each training-time budget.

    The loop is the same for every library: ``fit`` at a constant ``lr`` (its optimizer,
    ``FlatAdam``: Adam with gradient-norm clipping at ``clip_grad``), ``batch_size`` fresh
    samples from ``target`` per step, loss ``−mean log p_θ(x)``. With ``ema_decay``, fit's
    moving average of the weights (decay ``min(ema_decay, k / (k + 9))`` after step ``k``)
    is what ``evaluate`` sees (buffers copied from the model); ``None`` evaluates the raw
    weights. A callback after every step takes the snapshots whose budget has passed (fit
    does not count a callback's time as training time) and stops the run after the last.

    Returns:
        ``[(budget, evaluate(model), steps, trained_seconds, diverged), …]``.
    """
    budgets = sorted(float(b) for b in budgets)
    out: list[tuple[float, float, int, float, bool]] = []

    def snapshot(state: FitState) -> bool:
        averaged = state.ema_model if state.ema_model is not None else state.model
        while len(out) < len(budgets) and state.elapsed >= budgets[len(out)]:
            if averaged is not state.model:
                with torch.no_grad():
                    for b_avg, b in zip(averaged.buffers(), state.model.buffers(), strict=True):
                        b_avg.copy_(b)
            averaged.eval()
            value = evaluate(averaged)
            averaged.train()
            out.append(
                (budgets[len(out)], value, state.step, state.elapsed, not math.isfinite(value))
            )
        return len(out) == len(budgets)

    try:
        fit_run(
            model,
            target,
            steps=10**9,
            batch_size=batch_size,
            lr=lr,
            clip_grad=clip_grad,
            schedule="constant",
            seed=seed,
            progress=False,
            ema=ema_decay,
            callbacks=[Callback(snapshot, every_steps=1)],
        )
    except TrainingDivergedError as error:
        steps, elapsed = error.step - 1, error.elapsed
        out += [(b, math.inf, steps, elapsed, True) for b in budgets[len(out) :]]
    model.eval()
    return out


def _init_worker(threads: int) -> None:
    torch.set_num_threads(threads)


def quality_run(
    library: str,
    dataset: str,
    seed: int,
    budgets: Sequence[float],
    kl_samples: int,
) -> list[Snapshot]:
    """One training run of ``library`` on ``dataset`` with snapshots at ``budgets``."""
    target = DATASETS[dataset]()
    cfg = ToyConfig.from_coursekit()
    torch.manual_seed(seed)
    model = TOY_BUILDERS[library](cfg)
    hp = loop_hyperparameters()

    def evaluate(m: nn.Module) -> float:
        # Common random numbers: the same evaluation samples for every library.
        gen = torch.Generator().manual_seed(10_000 + seed)
        try:
            value = kl_to_target(m, target, n=kl_samples, generator=gen)
        except (RuntimeError, ValueError):
            return math.inf
        return value if math.isfinite(value) else math.inf

    rows = train_with_snapshots(
        model,
        target,
        budgets,
        seed=seed,
        lr=hp["lr"],
        batch_size=hp["batch_size"],
        clip_grad=hp["clip_grad"],
        evaluate=evaluate,
    )
    return [
        Snapshot(library, dataset, seed, b, kl, steps, secs, div)
        for b, kl, steps, secs, div in rows
    ]


def library_orders(libraries: Sequence[str], n: int) -> list[list[str]]:
    """``n`` orders of ``libraries`` such that consecutive pairs meet every partner.

    Jobs run two at a time, so the pairs (order[0], order[1]), (order[2], order[3]) share
    the machine; cycling through the perfect matchings of 4 libraries (AB|CD, AC|BD, AD|BC),
    each reversed every other time, spreads that interference evenly.
    """
    libs = list(libraries)
    if len(libs) != 4:
        return [libs[i % len(libs) :] + libs[: i % len(libs)] for i in range(n)]
    a, b, c, d = libs
    matchings = [[a, b, c, d], [a, c, b, d], [a, d, b, c]]
    orders = []
    for i in range(n):
        order = matchings[i % 3]
        orders.append(order[::-1] if (i // 3) % 2 else order)
    return orders


def run_quality(settings: Settings, log: Callable[[str], None]) -> list[Snapshot]:
    """Every (seed, dataset, library) run, two processes at a time, interleaved."""
    jobs = []
    orders = library_orders(settings.libraries, len(settings.seeds) * len(DATASETS))
    k = 0
    for seed in settings.seeds:
        for dataset in DATASETS:
            for library in orders[k]:
                jobs.append((library, dataset, seed))
            k += 1
    results: list[Snapshot] = []
    ctx = mp.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=settings.workers, mp_context=ctx, initializer=_init_worker, initargs=(1,)
    ) as pool:
        futures = [
            pool.submit(quality_run, lib, ds, seed, settings.budgets, settings.kl_samples)
            for lib, ds, seed in jobs
        ]
        for (lib, ds, seed), fut in zip(jobs, futures, strict=True):
            snaps = fut.result()
            results += snaps
            kls = ", ".join(f"{s.budget:g}s: {s.kl:.3f}" for s in snaps)
            log(f"  quality {ds:>12} seed {seed} {lib:>9}: KL {kls} ({snaps[-1].steps} steps)")
    return results


# --------------------------------------------------------------------------- throughput


def rate(
    fn: Callable[[], None], seconds: float, per_call: int = 1, warm: bool = True
) -> tuple[float, float]:
    """Calls (times ``per_call``) per wall-clock second and per CPU second of this process.

    Timed over about ``seconds``; one untimed warm-up call when ``warm``; a call slower than
    ``seconds`` is timed alone. The CPU-time rate (``time.process_time``, one torch thread)
    is what neighbours on a shared machine disturb least.
    """
    if warm:
        fn()
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    one = max(time.perf_counter() - t0, 1e-9)
    n = int(seconds / one)
    if n < 1:
        cpu = max(time.process_time() - c0, 1e-9)
        return per_call / one, per_call / cpu
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n):
        fn()
    wall = time.perf_counter() - t0
    cpu = max(time.process_time() - c0, 1e-9)
    return n * per_call / wall, n * per_call / cpu


def train_step_fn(model: nn.Module, batch: Tensor) -> Callable[[], None]:
    """One training step: ``−mean log p_θ(batch)``, backward, Adam step."""
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    model.train()

    def step() -> None:
        loss = -model.log_prob(batch).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def sample_fn(model: nn.Module, n: int) -> Callable[[], None]:
    def draw() -> None:
        model.sample(n)

    return draw


@dataclass
class Throughput:
    """Median of repeated rates per (measurement, library); ``None`` = not available."""

    rates: dict[str, dict[str, float | None]] = field(default_factory=dict)
    cpu_rates: dict[str, dict[str, float | None]] = field(default_factory=dict)
    notes: dict[str, dict[str, str]] = field(default_factory=dict)


def run_throughput(settings: Settings, log: Callable[[str], None]) -> Throughput:
    """Training and sampling throughput, 2-D and images, libraries interleaved."""
    torch.manual_seed(0)
    cfg = ToyConfig.from_coursekit()
    toy = {lib: TOY_BUILDERS[lib](cfg) for lib in settings.libraries}
    toy_batch = four_modes().sample(settings.toy_batch).float()
    icfg = ImageConfig.from_coursekit()
    images = {
        lib: model_note
        for lib, model_note in image_models(icfg).items()
        if lib in settings.libraries
    }
    # Dequantized pixels in (0, 1), MNIST-shaped.
    gen = torch.Generator().manual_seed(0)
    image_batch = (
        torch.randint(0, 256, (settings.image_batch, 1, 28, 28), generator=gen).float()
        + torch.rand(settings.image_batch, 1, 28, 28, generator=gen)
    ) / 256.0

    measures: dict[str, dict[str, Callable[[], None] | None]] = {
        "train 2-D (steps/s, batch 512)": {
            lib: train_step_fn(m, toy_batch) for lib, m in toy.items()
        },
        "sample 2-D (samples/s)": {
            lib: sample_fn(m, settings.toy_sample_n) for lib, m in toy.items()
        },
        "train image (steps/s, batch 64)": {
            lib: (train_step_fn(m, image_batch) if m is not None else None)
            for lib, (m, _) in images.items()
        },
        "sample image (samples/s)": {
            lib: (sample_fn(m, settings.image_sample_n) if m is not None else None)
            for lib, (m, _) in images.items()
        },
    }
    full, full_note = coursekit_image_full()
    if full is not None and "coursekit" in settings.libraries:
        measures[FULL_TRAIN] = {"coursekit": train_step_fn(full, image_batch)}
        measures[FULL_SAMPLE] = {"coursekit": sample_fn(full, settings.image_sample_n)}
    per_call = {
        "train 2-D (steps/s, batch 512)": 1,
        "sample 2-D (samples/s)": settings.toy_sample_n,
        "train image (steps/s, batch 64)": 1,
        "sample image (samples/s)": settings.image_sample_n,
        FULL_TRAIN: 1,
        FULL_SAMPLE: settings.image_sample_n,
    }
    samples: dict[str, dict[str, list[float]]] = {k: {} for k in measures}
    cpu_samples: dict[str, dict[str, list[float]]] = {k: {} for k in measures}
    libs = list(settings.libraries)
    for r in range(settings.repeats):
        order = libs[r % len(libs) :] + libs[: r % len(libs)]
        for name, fns in measures.items():
            for lib in order:
                fn = fns.get(lib)
                if fn is None or (name in (FULL_TRAIN, FULL_SAMPLE) and r >= 2):
                    continue  # the full multi-scale model takes ~10 s a step: 2 timings
                wall, cpu = rate(fn, settings.seconds_per_timing, per_call[name], warm=r == 0)
                samples[name].setdefault(lib, []).append(wall)
                cpu_samples[name].setdefault(lib, []).append(cpu)
        log(f"  throughput repeat {r + 1}/{settings.repeats} done")
    result = Throughput()
    for name in measures:
        result.rates[name] = {
            lib: (statistics.median(samples[name][lib]) if lib in samples[name] else None)
            for lib in libs
        }
        result.cpu_rates[name] = {
            lib: (statistics.median(cpu_samples[name][lib]) if lib in cpu_samples[name] else None)
            for lib in libs
        }
    result.notes["image models"] = {
        lib: (f"{note} ({count_parameters(m):,} parameters)" if m is not None else note)
        for lib, (m, note) in images.items()
    }
    result.notes["coursekit ImageRealNVP"] = {"coursekit": full_note}
    result.notes["toy models"] = {
        lib: f"{count_parameters(m):,} parameters" for lib, m in toy.items()
    }
    return result


# --------------------------------------------------------------------------- report


def _fmt_kl(values: list[float]) -> str:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return "diverged"
    med = statistics.median(values) if len(finite) == len(values) else math.inf
    spread = f" [{min(values):.3f}–{max(values):.3f}]" if len(values) > 1 else ""
    note = f" ({len(values) - len(finite)} diverged)" if len(finite) < len(values) else ""
    return (f"{med:.3f}" if math.isfinite(med) else "inf") + spread + note


def quality_table(snaps: list[Snapshot], settings: Settings) -> tuple[str, dict]:
    """Markdown table of median KL (and steps) and ``{(dataset, budget): {lib: median}}``."""
    libs = [lib for lib in settings.libraries if any(s.library == lib for s in snaps)]
    lines = [
        "| dataset | budget | " + " | ".join(libs) + " |",
        "|---|---|" + "---|" * len(libs),
    ]
    medians: dict[tuple[str, float], dict[str, float]] = {}
    for dataset in DATASETS:
        for budget in settings.budgets:
            cells = []
            for lib in libs:
                vals = [
                    s.kl
                    for s in snaps
                    if s.library == lib and s.dataset == dataset and s.budget == budget
                ]
                steps = [
                    s.steps
                    for s in snaps
                    if s.library == lib and s.dataset == dataset and s.budget == budget
                ]
                medians.setdefault((dataset, budget), {})[lib] = (
                    statistics.median(vals) if vals else math.nan
                )
                cells.append(
                    f"{_fmt_kl(vals)}<br>{int(statistics.median(steps)):,} steps" if vals else "–"
                )
            lines.append(f"| {dataset} | {budget:g} s | " + " | ".join(cells) + " |")
    return "\n".join(lines), medians


def _fmt_rate(v: float) -> str:
    return f"{v:,.0f}" if v >= 100 else (f"{v:.1f}" if v >= 10 else f"{v:.2f}")


def throughput_table(rates: dict[str, dict[str, float | None]], settings: Settings) -> str:
    libs = list(settings.libraries)
    lines = [
        "| measurement | " + " | ".join(libs) + " |",
        "|---|" + "---|" * len(libs),
    ]
    for name, by_lib in rates.items():
        ref = by_lib.get("coursekit")
        cells = []
        for lib in libs:
            v = by_lib.get(lib)
            if v is None:
                cells.append("n/a")
            elif lib == "coursekit" or not ref:
                cells.append(_fmt_rate(v))
            else:
                cells.append(f"{_fmt_rate(v)} ({v / ref:.2f}×)")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def check_bars(medians: dict, tp: Throughput | None, settings: Settings) -> list[str]:
    """The issue's bars, one line each, ``PASS`` or ``FAIL`` (or ``n/a``)."""
    lines = []
    mid = sorted(settings.budgets)[len(settings.budgets) // 2]
    for dataset in DATASETS:
        row = medians.get((dataset, mid))
        if not row or "coursekit" not in row:
            lines.append(f"- KL at {mid:g} s on {dataset}: n/a")
            continue
        peers = {k: v for k, v in row.items() if k != "coursekit" and math.isfinite(v)}
        if not peers:
            lines.append(f"- KL at {mid:g} s on {dataset}: n/a (no peer result)")
            continue
        best = min(peers, key=peers.get)
        ok = row["coursekit"] <= peers[best]
        lines.append(
            f"- {'PASS' if ok else 'FAIL'}: KL at {mid:g} s on {dataset}: coursekit "
            f"{row['coursekit']:.3f} vs best peer {best} {peers[best]:.3f} nats"
        )
    if tp is not None:
        for clock, rates in (("wall clock", tp.rates), ("CPU time", tp.cpu_rates)):
            for name in ("train 2-D (steps/s, batch 512)", "train image (steps/s, batch 64)"):
                by_lib = rates.get(name, {})
                ck = by_lib.get("coursekit")
                peers = {k: v for k, v in by_lib.items() if k != "coursekit" and v is not None}
                if ck is None or not peers:
                    why = "coursekit model missing" if ck is None else "no peer"
                    lines.append(f"- training throughput ({clock}), {name}: n/a ({why})")
                    continue
                best = max(peers, key=peers.get)
                ratio = ck / peers[best]
                lines.append(
                    f"- {'PASS' if ratio >= 0.9 else 'FAIL'} ({clock}): {name}: coursekit "
                    f"{_fmt_rate(ck)} = {ratio:.2f}× the fastest peer ({best}, "
                    f"{_fmt_rate(peers[best])}); bar 0.90×"
                )
    return lines


def machine_description() -> str:
    return (
        f"{hardware()}, Python {platform.python_version()} "
        f"({torch.get_num_threads()} threads in the main process)"
    )


def render(
    settings: Settings,
    versions: dict[str, str],
    snaps: list[Snapshot] | None,
    tp: Throughput | None,
    started: datetime,
    loads: tuple[tuple[float, ...], tuple[float, ...]],
    wall: float,
    command: str,
) -> str:
    cfg = ToyConfig.from_coursekit()
    hp = loop_hyperparameters()
    out = [
        f"### Peers results{' (--quick: NOT representative)' if settings.quick else ''}",
        "",
        f"- date: {started:%Y-%m-%d %H:%M} UTC; wall time {wall / 60:.1f} min",
        f"- command: `{command}`",
        f"- machine: {machine_description()}",
        f"- load average (1, 5, 15 min) at start {loads[0]}, at end {loads[1]}",
        "- libraries: " + ", ".join(f"{k} {v}" for k, v in versions.items()),
        f"- toy flow (every library): {cfg.describe()}",
        f"- training loop (every library): `fit` (FlatAdam: Adam, gradient norm "
        f"clipped at {hp['clip_grad']}), constant lr {hp['lr']:g}, batch {hp['batch_size']}, "
        f"fresh samples each step, float32, 1 thread per run, {settings.workers} runs at a "
        f"time; the KL is that of the moving average of the weights (decay {EMA_DECAY:g})",
        "",
    ]
    if snaps is not None:
        table, medians = quality_table(snaps, settings)
        out += [
            f"KL(p ‖ p_θ) in nats after each training budget: median over seeds "
            f"{list(settings.seeds)} [min–max], {settings.kl_samples:,} fresh samples; "
            "and the steps done in that time (lower KL is better).",
            "",
            table,
            "",
        ]
    else:
        medians = {}
    if tp is not None:
        out += [
            f"Throughput: median of {settings.repeats} interleaved timings (≈"
            f"{settings.seconds_per_timing:g} s each); in brackets the ratio to coursekit "
            "(higher is faster). A training step = log-density, backward, Adam step. "
            f"Sampling: {settings.toy_sample_n:,} 2-D points or {settings.image_sample_n} "
            "images per call.",
            "",
            throughput_table(tp.rates, settings),
            "",
            "The same timings per CPU second of the benchmark process (`time.process_time`, "
            "one torch thread): less sensitive to the other processes on the machine.",
            "",
            throughput_table(tp.cpu_rates, settings),
            "",
        ]
        for what, notes in tp.notes.items():
            out.append(f"- {what}: " + "; ".join(f"{k}: {v}" for k, v in notes.items()))
        out.append("")
    bars = check_bars(medians, tp, settings)
    if bars:
        out += ["Bars:", "", *bars, ""]
    return "\n".join(out)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny budgets, for development")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results.md"))
    p.add_argument("--skip-quality", action="store_true")
    p.add_argument("--skip-throughput", action="store_true")
    p.add_argument(
        "--libraries",
        default=",".join(LIBRARIES),
        help="comma-separated subset of " + ",".join(LIBRARIES),
    )
    p.add_argument("--workers", type=int, default=None, help="parallel training runs")
    p.add_argument(
        "--threads", type=int, default=None, help="torch threads for the throughput timings"
    )
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    settings = Settings.quick_settings() if args.quick else Settings()
    versions = available_libraries()
    wanted = [lib.strip() for lib in args.libraries.split(",") if lib.strip()]
    unknown = [lib for lib in wanted if lib not in LIBRARIES]
    if unknown:
        raise ValueError(f"--libraries: unknown {unknown}, expected a subset of {LIBRARIES}")
    missing = [lib for lib in wanted if lib not in versions]
    for lib in missing:
        print(f"note: {lib} is not importable, skipped (pip install it, see README)")
    settings.libraries = tuple(lib for lib in wanted if lib in versions)
    if args.workers is not None:
        settings.workers = args.workers
    command = "python " + " ".join([sys.argv[0], *(argv if argv is not None else sys.argv[1:])])
    started = datetime.now(timezone.utc)
    load0 = tuple(round(x, 2) for x in os.getloadavg())
    t0 = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t0:6.1f}s] {msg}", flush=True)

    if args.threads is not None:
        settings.threads = args.threads
    # One thread per process: on a shared 2-core machine, a second intra-op thread that
    # waits for a busy core makes every step 10-50x slower (measured), which would time
    # the neighbours rather than the libraries.
    torch.set_num_threads(settings.threads)
    log(f"libraries: {versions}; settings: {asdict(settings)}")
    tp = None if args.skip_throughput else run_throughput(settings, log)
    snaps = None if args.skip_quality else run_quality(settings, log)
    load1 = tuple(round(x, 2) for x in os.getloadavg())
    text = render(
        settings,
        {k: v for k, v in versions.items() if k in settings.libraries},
        snaps,
        tp,
        started,
        (load0, load1),
        time.perf_counter() - t0,
        command,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n", encoding="utf-8")
    print(text)
    log(f"written {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
