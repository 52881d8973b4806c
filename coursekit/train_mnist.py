"""Train an :class:`~coursekit.flows.image.ImageRealNVP` on MNIST by maximum likelihood.

Usage::

    python -m coursekit.train_mnist --out runs/mnist --steps 6000 --max-minutes 70
    python -m coursekit.train_mnist --out runs/mnist --resume      # after an interruption
    python -m coursekit.train_mnist --quick --out runs/quick        # a CI-sized run (~1-2 min)

Each step draws a minibatch of training images ``k`` (uint8), dequantizes them
(``v = k + u``), scales them to ``x = v / 256`` and minimises ``−mean log p_θ(x)``; the loss is
reported in bits/dim of the dequantized data (``+ 8`` bits for the 256 levels). The learning
rate warms up linearly, then follows a cosine decay over ``--steps`` or ``--max-minutes``
(whichever comes first). An exponential moving average (EMA) of the weights is kept and is
what gets evaluated and saved.

Every ``--checkpoint-every`` seconds the full state (weights, EMA, optimizer, step, random
generator, elapsed time, log) is written atomically (temporary file + ``os.replace``) to
``OUT/checkpoint.pt``; ``--resume`` continues from it, so a killed run loses at most one
checkpoint interval. A checkpoint is written only once its weights have given a sane loss on
the next batch. A batch loss that is NaN, infinite or above ``--max-bpd`` bits/dim (a blow-up
can stay finite) is a divergence: the run reloads its last checkpoint and goes on with half the
learning rate (``--max-restarts`` times at most, recorded in ``restarts``; the wall-time budget
keeps counting), then stops with a message (rerun with ``--resume`` and a smaller ``--lr``).
At the end ``OUT/model.pt`` (EMA weights + config, loadable with
``weights_only=True``) and ``OUT/metrics.json`` are written.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import os
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from coursekit._validation import parse_key_json
from coursekit.datasets.mnist import load_mnist
from coursekit.device import default_device
from coursekit.flows.base import standard_normal_log_prob
from coursekit.flows.image import ImageRealNVP
from coursekit.flows.preprocessing import (
    LEVELS,
    bits_per_dim_from_unit_log_prob,
    dequantize,
    image_bits_per_dim,
)
from coursekit.training import seed_everything

#: The architecture of the shipped pretrained model (and the default here).
DEFAULT_CONFIG = dict(
    image_shape=[1, 28, 28],
    n_scales=3,
    hidden=[64, 128, 128],
    n_blocks=1,
    n_checker=0,
    n_channel=[6, 8],
    n_final=2,
    scale_bound=3.0,
    alpha=1e-5,
    actnorm=True,
    invconv=True,
    block_kernel=1,
    split_prior=True,
)

EVAL_SEED = 1234


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m coursekit.train_mnist",
        description="Train a multi-scale RealNVP on MNIST (maximum likelihood).",
    )
    p.add_argument("--out", default="runs/mnist", help="run directory (checkpoints, logs)")
    p.add_argument("--data-dir", default=None, help="directory with the MNIST IDX files")
    p.add_argument("--steps", type=int, default=6000, help="optimisation steps")
    p.add_argument("--max-minutes", type=float, default=None, help="wall-time budget")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (Adam)")
    p.add_argument("--warmup", type=int, default=200, help="linear warm-up steps")
    p.add_argument("--ema", type=float, default=0.999, help="EMA decay of the weights")
    p.add_argument("--clip-grad", type=float, default=50.0, help="max gradient norm")
    p.add_argument(
        "--max-bpd",
        type=float,
        default=16.0,
        help="a training batch above this many bits/dim (default: twice the 8 of a uniform "
        "model) counts as a divergence, like NaN or Inf (see --max-restarts)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | mps")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--checkpoint-every", type=float, default=180.0, help="seconds")
    p.add_argument("--eval-every", type=int, default=500, help="steps between test evals")
    p.add_argument("--eval-images", type=int, default=2000, help="test images per eval")
    p.add_argument("--final-eval-images", type=int, default=None, help="default: all")
    p.add_argument("--hidden", default=None, help="conditioner widths per scale, e.g. 16,48,64")
    p.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=JSON",
        help="architecture changes to the default ImageRealNVP config, e.g. n_final=4 "
        'activation="relu"',
    )
    p.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the training loss (faster steps after ~2 min of compilation)",
    )
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument(
        "--max-restarts",
        type=int,
        default=2,
        help="on divergence, reload the last checkpoint and halve the learning rate, at most "
        "this many times (0: stop the run instead)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="CI-sized run: 120 steps, small evals, 30 s checkpoints (about 1-2 minutes)",
    )
    args = p.parse_args(argv)
    if args.quick:
        args.steps = min(args.steps, 120)
        args.warmup = min(args.warmup, 20)
        args.eval_every = min(args.eval_every, 60)
        args.eval_images = min(args.eval_images, 500)
        args.final_eval_images = args.final_eval_images or 1000
        args.checkpoint_every = min(args.checkpoint_every, 30.0)
    for name in ("steps", "batch_size", "eval_every", "eval_images"):
        if getattr(args, name) <= 0:
            p.error(f"--{name.replace('_', '-')}: expected a positive integer")
    if not args.lr > 0:
        p.error("--lr: expected a positive number")
    if args.max_restarts < 0:
        p.error("--max-restarts: expected a non-negative integer")
    if not args.max_bpd > 8:
        p.error("--max-bpd: expected a number above 8 (the bits/dim of a uniform model)")
    allowed = set(inspect.signature(ImageRealNVP).parameters) - {"image_shape"}
    try:
        args.overrides = parse_key_json(args.set, allowed, "--set")
    except ValueError as error:
        p.error(str(error))
    return args


def atomic_save(obj: object, path: Path) -> None:
    """``torch.save`` to a temporary file in the same folder, then ``os.replace`` it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def learning_rate(args: argparse.Namespace, step: int, elapsed: float) -> float:
    """Linear warm-up, then cosine decay to 0 over the steps or the time budget."""
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    frac = (step - args.warmup) / max(1, args.steps - args.warmup)
    if args.max_minutes:
        frac = max(frac, elapsed / (60 * args.max_minutes))
    return 0.5 * args.lr * (1 + math.cos(math.pi * min(frac, 1.0)))


def training_loss(model: ImageRealNVP, x: torch.Tensor) -> torch.Tensor:
    """``−mean log p(x)`` (nats), as ``-model.log_prob(x).mean()`` without its input checks.

    ``x = dequantize(k) / 256`` lies in ``[0, 1)`` by construction, so the checks (which read
    the data back, ``Tensor.item()``) are skipped: ``torch.compile`` then traces the whole loss
    as one graph instead of breaking it at each check.
    """
    z, log_det = model.transform._forward(x)
    return -(standard_normal_log_prob(z) + log_det).mean()


def cpu_model(cpuinfo: str | Path = "/proc/cpuinfo") -> str | None:
    """The processor's model name from ``cpuinfo`` (Linux), or ``None`` where it is not known."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Model", "cpu model") and value.strip():
            return value.strip()
    return None


def hardware() -> str:
    """``"Linux x86_64 (AMD EPYC), 2 CPUs, torch 2.13.0+cpu"``: where the run's speed comes from.

    The processor model is part of it because machines with the same core count differ a lot
    (images/s of the same run on two 2-core machines here: about 160 and about 650).
    """
    machine = platform.processor() or platform.machine()
    model = cpu_model()
    cpu = f"{machine} ({model})" if model else machine
    return f"{platform.system()} {cpu}, {os.cpu_count()} CPUs, torch {torch.__version__}"


def evaluate(model: ImageRealNVP, images: torch.Tensor) -> float:
    """Test bits/dim with a fixed dequantization seed (so evaluations are comparable)."""
    return image_bits_per_dim(model, images, generator=torch.Generator().manual_seed(EVAL_SEED))


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = default_device(args.device)
    out = Path(args.out)
    ckpt_path = out / "checkpoint.pt"
    command = "python -m coursekit.train_mnist " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)
    )

    for stale in out.glob("checkpoint.pt*.tmp"):  # left by a run killed while saving
        stale.unlink()
    train = load_mnist(args.data_dir, split="train")
    test = load_mnist(args.data_dir, split="test")
    config = dict(DEFAULT_CONFIG)
    if args.hidden:
        config["hidden"] = [int(v) for v in args.hidden.split(",")]
    config.update(args.overrides)
    num_dims = math.prod(config["image_shape"])  # D = 784 for MNIST

    seed_everything(args.seed)
    try:
        model = ImageRealNVP(**config).to(device)
    except ValueError as error:
        raise SystemExit(f"--set/--hidden: {error}") from None
    init_generator = torch.Generator().manual_seed(args.seed + 1)
    init_idx = torch.randperm(train.images.shape[0], generator=init_generator)[:512]
    model.initialize(
        (dequantize(train.images[init_idx], generator=init_generator) / LEVELS).to(device)
    )
    ema = ImageRealNVP(**config).to(device)
    ema.load_state_dict(model.state_dict())
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    generator = torch.Generator().manual_seed(args.seed)
    step, elapsed, log = 0, 0.0, []
    lr_scale, restarts = 1.0, []  # halved at each restart after a divergence

    def load_checkpoint() -> tuple[int, float, list, float, list]:
        state = torch.load(ckpt_path, map_location=device, weights_only=True)
        if state["config"] != config:
            raise SystemExit(
                f"--resume: checkpoint architecture {state['config']} differs from {config}"
            )
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        return (
            state["step"],
            state["elapsed"],
            state["log"],
            state.get("lr_scale", 1.0),
            state.get("restarts", []),
        )

    if args.resume:
        if not ckpt_path.exists():
            raise SystemExit(f"--resume: no checkpoint at {ckpt_path}")
        step, elapsed, log, lr_scale, restarts = load_checkpoint()
        print(f"resumed from {ckpt_path} at step {step} ({elapsed / 60:.1f} min trained)")

    def save_checkpoint(generator_state: torch.Tensor | None = None) -> None:
        atomic_save(
            dict(
                model=model.state_dict(),
                ema=ema.state_dict(),
                optimizer=optimizer.state_dict(),
                generator=generator.get_state() if generator_state is None else generator_state,
                step=step,
                elapsed=elapsed,
                log=log,
                lr_scale=lr_scale,
                restarts=restarts,
                config=config,
                args=vars(args),
            ),
            ckpt_path,
        )

    n_train = train.images.shape[0]
    eval_images = test.images[: args.eval_images]
    print(
        f"data: train {n_train:,} ({train.source}), test {len(test):,}; model "
        f"{model.num_parameters():,} parameters; device {device}; threads "
        f"{torch.get_num_threads()}"
    )
    params = list(model.parameters())
    ema_params = list(ema.parameters())

    def loss_of_batch(x: torch.Tensor) -> torch.Tensor:
        return training_loss(model, x)

    loss_fn = torch.compile(loss_of_batch) if args.compile else loss_of_batch
    bar = tqdm(total=args.steps, initial=step, desc="training", dynamic_ncols=True)
    last_ckpt, checkpoint_due = time.perf_counter(), False
    window_start, window_images = time.perf_counter(), 0
    start = time.perf_counter() - elapsed
    model.train()
    try:
        while step < args.steps:
            elapsed = time.perf_counter() - start
            if args.max_minutes and elapsed >= 60 * args.max_minutes:
                print(f"time budget of {args.max_minutes} min reached at step {step}")
                break
            lr = lr_scale * learning_rate(args, step, elapsed)
            for group in optimizer.param_groups:
                group["lr"] = lr
            batch_generator_state = generator.get_state() if checkpoint_due else None
            idx = torch.randint(0, n_train, (args.batch_size,), generator=generator)
            x = dequantize(train.images[idx], generator=generator) / LEVELS
            x = x.to(device)
            loss = loss_fn(x)
            train_bpd = float(bits_per_dim_from_unit_log_prob(-loss.detach().double(), num_dims))
            if not train_bpd <= args.max_bpd:  # NaN, Inf, or a blow-up that stays finite
                if len(restarts) < args.max_restarts and ckpt_path.exists():
                    diverged_at = step
                    # the weights go back; the clock does not (--max-minutes is wall time)
                    step, _, log, lr_scale, restarts = load_checkpoint()
                    lr_scale /= 2
                    restarts.append(
                        dict(diverged_at_step=diverged_at, bpd=train_bpd, resumed_at_step=step,
                             lr_scale=lr_scale)
                    )  # fmt: skip
                    tqdm.write(
                        f"training diverged at step {diverged_at} (batch loss {train_bpd:.4g} "
                        f"bits/dim): restarting from the checkpoint at step {step} with the "
                        f"learning rate x{lr_scale:g} (restart {len(restarts)} of at most "
                        f"{args.max_restarts})"
                    )
                    save_checkpoint()  # the halved rate survives a later --resume
                    bar.n = step
                    bar.refresh()
                    window_start, window_images = time.perf_counter(), 0
                    continue
                raise SystemExit(
                    f"training diverged at step {step}: batch loss {train_bpd:.4g} bits/dim "
                    f"(--max-bpd {args.max_bpd:g}); rerun the same command with --resume and a "
                    "smaller --lr to continue from the last checkpoint"
                    + (f" ({ckpt_path}, saved before the divergence)" if ckpt_path.exists() else "")
                )
            if checkpoint_due:
                # Saved only now that these weights gave a sane loss, with the generator as it
                # was before this step's batch: a resumed run redoes exactly this step.
                save_checkpoint(batch_generator_state)
                last_ckpt, checkpoint_due = time.perf_counter(), False
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, args.clip_grad)
            optimizer.step()
            decay = min(args.ema, (1 + step) / (10 + step))
            with torch.no_grad():
                for pe, p in zip(ema_params, params, strict=True):
                    pe.lerp_(p, 1 - decay)
            step += 1
            window_images += args.batch_size
            bar.update(1)
            if step % 20 == 0:
                bar.set_postfix(bpd=f"{train_bpd:.3f}", lr=f"{lr:.1e}")
            if step % args.eval_every == 0 or step == args.steps:
                now = time.perf_counter()
                rate = window_images / (now - window_start)
                test_bpd = evaluate(ema, eval_images)
                model.train()
                elapsed = time.perf_counter() - start
                entry = dict(
                    step=step,
                    minutes=round(elapsed / 60, 2),
                    train_bpd=round(train_bpd, 4),
                    test_bpd=round(test_bpd, 4),
                    images_per_s=round(rate, 1),
                    lr=lr,
                )
                log.append(entry)
                tqdm.write(json.dumps(entry))
                sys.stdout.flush()
                window_start, window_images = time.perf_counter(), 0
            checkpoint_due = time.perf_counter() - last_ckpt >= args.checkpoint_every
    finally:
        bar.close()
    elapsed = time.perf_counter() - start
    save_checkpoint()

    final_images = test.images[: args.final_eval_images] if args.final_eval_images else test.images
    t0 = time.perf_counter()
    test_bpd = evaluate(ema, final_images)
    rates = [e["images_per_s"] for e in log]
    metrics = dict(
        command=command,
        config=config,
        data=dict(train=train.source, test=test.source, n_train=n_train),
        test_images=int(final_images.shape[0]),
        test_bits_per_dim=round(test_bpd, 4),
        eval_seed=EVAL_SEED,
        seed=args.seed,
        steps=step,
        batch_size=args.batch_size,
        lr=args.lr,
        restarts=restarts,
        ema=args.ema,
        train_minutes=round(elapsed / 60, 2),
        images_per_s=round(sum(rates) / len(rates), 1) if rates else None,
        eval_seconds=round(time.perf_counter() - t0, 1),
        parameters=model.num_parameters(),
        device=str(device),
        threads=torch.get_num_threads(),
        hardware=hardware(),
        log=log,
    )
    ema.save(str(out / "model.pt"), metadata={k: v for k, v in metrics.items() if k != "log"})
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    print(
        f"final test bits/dim {test_bpd:.4f} on {final_images.shape[0]:,} test images "
        f"after {step} steps ({elapsed / 60:.1f} min); saved {out / 'model.pt'}"
    )
    return metrics


if __name__ == "__main__":
    main()
