"""Train an :class:`~coursekit.flows.image.ImageRealNVP` on MNIST by maximum likelihood.

Usage::

    python -m coursekit.train_mnist --out runs/mnist --steps 6000 --max-minutes 70
    python -m coursekit.train_mnist --out runs/mnist --resume      # after an interruption
    python -m coursekit.train_mnist --quick --out runs/quick        # a CI-sized run

The training is :func:`coursekit.training.fit` on dequantized images ``x = (k + u) / 256``
(:class:`~coursekit.flows.preprocessing.DequantizedImages`), loss ``−mean log p_θ(x)``
(eq. 4/14; reported in bits/dim of the 8-bit data), warm-up then cosine decay, and an EMA
of the weights, which is what gets evaluated and saved. With ``--dequantization
variational`` the flow is trained together with a learned noise distribution ``q(u | k)``
(:mod:`coursekit.flows.dequantization`) on the bound ``E_q[log p(k + u) − log q(u | k)]``, and
the pair is what gets evaluated and saved (:class:`~coursekit.flows.DequantizedImageFlow`).
Value checks are off during training (:func:`coursekit.validation`).

Before anything is loaded or trained, :func:`parse_args` checks every option, the data
directory, that ``--out`` can be written and the checkpoint ``--resume`` would read
(:mod:`coursekit.train_mnist_checks`): a problem exits with code 2 and a message naming the
option, so that no run is lost at its end.

This module adds the arguments and the checkpoint policy: every ``--checkpoint-every``
seconds the full state is written atomically to ``OUT/checkpoint.pt`` (only once its weights
gave a sane loss on the next batch; ``--resume`` continues from it); a batch loss that is
NaN, infinite or above ``--max-bpd`` reloads the last checkpoint with half the learning rate
(``--max-restarts`` times at most), then stops with a message. At the end ``OUT/model.pt``
(EMA weights + config, ``weights_only=True``) and ``OUT/metrics.json`` are written.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from coursekit._validation import validation
from coursekit.datasets.mnist import MNISTIntegrityError, load_mnist
from coursekit.device import hardware
from coursekit.flows.checkpoint import atomic_save
from coursekit.flows.dequantization import (
    DequantizedImageFlow,
    ImagesAndNoise,
    VariationalDequantizer,
    negative_elbo_given_noise,
)
from coursekit.flows.image import ImageRealNVP
from coursekit.flows.importance import importance_weighted_bits_per_dim
from coursekit.flows.preprocessing import (
    LEVELS,
    DequantizedImages,
    dequantize,
    image_bits_per_dim,
)
from coursekit.metrics import bits_per_dim, nll
from coursekit.train_mnist_checks import UsageError, read_run, validate_args
from coursekit.training import Callback, FitState, TrainingDivergedError, fit, seed_everything

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

#: The learned noise distribution of ``--dequantization variational``.
DEQUANTIZER_CONFIG = dict(hidden=16, n_couplings=4, context_channels=8)

#: The training loss: the NLL of :func:`coursekit.metrics.nll` (a module attribute, so that
#: tests can replace it).
training_loss = nll


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, fully validated (:func:`~coursekit.train_mnist_checks.validate_args`):
    a bad option, data directory,
    output directory or checkpoint exits with code 2 before anything is trained, with a
    message naming the option (``--lr: expected a positive number``)."""
    p = argparse.ArgumentParser(
        prog="python -m coursekit.train_mnist",
        description="Train a multi-scale RealNVP on MNIST (maximum likelihood).",
    )
    options = [  # flag, type, default, help
        ("--out", str, "runs/mnist", "run directory (checkpoints, logs)"),
        ("--data-dir", str, None, "directory with the MNIST IDX files"),
        ("--steps", int, 6000, "optimisation steps"),
        ("--max-minutes", float, None, "training-time budget (evaluations, checkpoints apart)"),
        ("--batch-size", int, 64, None),
        ("--lr", float, 1e-3, "peak learning rate (Adam)"),
        ("--warmup", int, 200, "linear warm-up steps"),
        ("--ema", float, 0.999, "EMA decay of the weights"),
        ("--clip-grad", float, 50.0, "max gradient norm"),
        ("--max-bpd", float, 16.0, "a training batch above this many bits/dim (default: twice "
         "the 8 of a uniform model) counts as a divergence, like NaN or Inf (--max-restarts)"),
        ("--seed", int, 0, None),
        ("--device", str, "auto", "auto | cpu | cuda | mps"),
        ("--threads", int, None, "torch CPU threads"),
        ("--checkpoint-every", float, 180.0, "seconds"),
        ("--eval-every", int, 500, "steps between test evals"),
        ("--eval-images", int, 2000, "test images per eval"),
        ("--final-eval-images", int, None, "default: all"),
        ("--hidden", str, None, "conditioner widths per scale, e.g. 16,48,64"),
        ("--dequantization", str, "uniform", "uniform | variational (a learned q(u | k), "
         "trained with the flow on the bound E_q[log p(k + u) - log q(u | k)])"),
        ("--max-restarts", int, 2, "on divergence, reload the last checkpoint and halve the "
         "learning rate, at most this many times (0: stop the run instead)"),
    ]  # fmt: skip
    for flag, kind, default, text in options:
        p.add_argument(flag, type=kind, default=default, help=text)
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
    validate_args(args, p, DEFAULT_CONFIG)
    return args


def evaluate(model: ImageRealNVP | DequantizedImageFlow, images: torch.Tensor) -> float:
    """Test bits/dim with a fixed dequantization seed (so evaluations are comparable): the
    single-sample bound, with uniform noise or with the model's learned ``q(u | k)``."""
    generator = torch.Generator().manual_seed(EVAL_SEED)
    if isinstance(model, DequantizedImageFlow):
        return importance_weighted_bits_per_dim(model, images, 1, generator=generator)
    return image_bits_per_dim(model, images, generator=generator)


def batch_bits_per_dim(loss: float, num_dims: int) -> float:
    """Bits/dim of the dequantized 8-bit data from a batch loss ``−mean log p(x)`` in nats."""
    return float(bits_per_dim(torch.tensor(-loss, dtype=torch.float64), num_dims, levels=LEVELS))


def build_model(
    config: dict, seed: int, images: torch.Tensor, device: torch.device,
    dequantization: str = "uniform",
) -> ImageRealNVP | DequantizedImageFlow:
    """``ImageRealNVP(**config)`` with its ActNorms initialised on 512 dequantized images,
    paired with a :class:`VariationalDequantizer` when ``dequantization == "variational"``."""
    seed_everything(seed)
    model = ImageRealNVP(**config).to(device)  # the config was checked by parse_args
    init_generator = torch.Generator().manual_seed(seed + 1)
    init_idx = torch.randperm(images.shape[0], generator=init_generator)[:512]
    model.initialize((dequantize(images[init_idx], generator=init_generator) / LEVELS).to(device))
    if dequantization == "variational":
        dequantizer = VariationalDequantizer(config["image_shape"], **DEQUANTIZER_CONFIG)
        return DequantizedImageFlow(model, dequantizer.to(device))
    return model


def run_record(saved: dict) -> dict:
    """What a run keeps besides the training state: its log, learning-rate scale, restarts."""
    return dict(
        log=saved["log"], lr_scale=saved.get("lr_scale", 1.0), restarts=saved.get("restarts", [])
    )


def restart_after(
    error: TrainingDivergedError, args: argparse.Namespace, run: dict, ckpt_path: Path, **kw
) -> dict:
    """The checkpoint policy on a divergence: the state to resume from, or ``SystemExit``.

    Reloads the last checkpoint and halves the learning rate (``run`` records the restart and
    the checkpoint is rewritten with it), at most ``--max-restarts`` times; the training time
    keeps counting. ``kw``: ``config``, ``device``, ``num_dims``.
    """
    steps_done = error.step - 1
    bpd = batch_bits_per_dim(error.loss, kw["num_dims"])
    if len(run["restarts"]) >= args.max_restarts or not ckpt_path.exists():
        raise SystemExit(
            f"training diverged at step {steps_done}: batch loss {bpd:.4g} bits/dim "
            f"(--max-bpd {args.max_bpd:g}); rerun the same command with --resume and a "
            "smaller --lr to continue from the last checkpoint"
            + (f" ({ckpt_path}, saved before the divergence)" if ckpt_path.exists() else "")
        )
    saved = read_run(ckpt_path, kw["config"], kw["device"])
    run.update(run_record(saved))
    run["lr_scale"] /= 2
    run["restarts"].append(
        dict(diverged_at_step=steps_done, bpd=bpd, resumed_at_step=saved["step"],
             lr_scale=run["lr_scale"])
    )  # fmt: skip
    tqdm.write(
        f"training diverged at step {steps_done} (batch loss {bpd:.4g} bits/dim): restarting "
        f"from the checkpoint at step {saved['step']} with the learning rate "
        f"x{run['lr_scale']:g} (restart {len(run['restarts'])} of at most {args.max_restarts})"
    )
    atomic_save({**saved, **run}, ckpt_path)  # the halved rate survives a later --resume
    return {**saved, "elapsed": error.elapsed}


def main(argv: list[str] | None = None) -> dict:
    """Run the command; returns the metrics written to ``OUT/metrics.json``."""
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.torch_device)
    out = Path(args.out)
    ckpt_path = out / "checkpoint.pt"
    command = "python -m coursekit.train_mnist " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)
    )
    for stale in out.glob("checkpoint.pt*.tmp"):  # left by a run killed while saving
        stale.unlink()
    try:
        train = load_mnist(args.data_dir, split="train")
        test = load_mnist(args.data_dir, split="test")
    except (FileNotFoundError, MNISTIntegrityError) as error:
        flag = "--data-dir: " if args.data_dir else ""
        print(f"python -m coursekit.train_mnist: error: {flag}{error}", file=sys.stderr)
        raise UsageError(f"{flag}{error}") from None
    config = args.config
    num_dims = math.prod(config["image_shape"])  # D = 784 for MNIST
    model = build_model(config, args.seed, train.images, device, args.dequantization)
    variational = args.dequantization == "variational"

    run: dict = dict(log=[], lr_scale=1.0, restarts=[])  # saved with every checkpoint
    resume = None
    if args.resume:
        resume = read_run(ckpt_path, config, device, args.dequantization)
        run.update(run_record(resume))
        minutes = resume["elapsed"] / 60
        print(f"resumed from {ckpt_path} at step {resume['step']} ({minutes:.1f} min trained)")
    eval_images = test.images[: args.eval_images]
    print(
        f"data: train {train.images.shape[0]:,} ({train.source}), test {len(test):,}; model "
        f"{model.num_parameters():,} parameters; device {device}; threads "
        f"{torch.get_num_threads()}"
    )
    window = dict(time=time.perf_counter(), step=resume["step"] if resume else 0)

    def save(state: FitState) -> None:
        atomic_save(
            {**state.state_dict(), **run, "config": config, "args": vars(args),
             "dequantization": args.dequantization},
            ckpt_path,
        )  # fmt: skip

    def log_evaluation(state: FitState) -> None:
        now = time.perf_counter()
        rate = (state.step - window["step"]) * args.batch_size / max(now - window["time"], 1e-9)
        entry = dict(
            step=state.step,
            minutes=round(state.elapsed / 60, 2),
            train_bpd=round(batch_bits_per_dim(state.loss, num_dims), 4),
            test_bpd=round(evaluate(state.ema_model, eval_images), 4),
            images_per_s=round(rate, 1),
            lr=state.lr,
        )
        run["log"].append(entry)
        tqdm.write(json.dumps(entry))
        sys.stdout.flush()
        window.update(time=time.perf_counter(), step=state.step)

    def loss_of_batch(model: ImageRealNVP, x: torch.Tensor) -> torch.Tensor:
        # uniform: x = (k + u) / 256 (DequantizedImages); variational: x = [k, ε] (ImagesAndNoise)
        return negative_elbo_given_noise(model, x) if variational else training_loss(model, x)

    callbacks = [
        Callback(save, every_seconds=args.checkpoint_every, at_end=True),
        Callback(log_evaluation, every_steps=args.eval_every),
    ]
    with validation(False):
        loss_fn = torch.compile(loss_of_batch) if args.compile else loss_of_batch
        while True:
            try:
                history = fit(
                    model, (ImagesAndNoise if variational else DequantizedImages)(train.images),
                    steps=args.steps,
                    batch_size=args.batch_size, lr=args.lr, clip_grad=args.clip_grad,
                    max_seconds=60 * args.max_minutes if args.max_minutes else None,
                    seed=args.seed, loss_fn=loss_fn, log_every=20, warmup=args.warmup,
                    ema=args.ema, callbacks=callbacks, resume=resume, lr_scale=run["lr_scale"],
                    max_loss=num_dims * (args.max_bpd * math.log(2) - math.log(LEVELS)),
                )  # fmt: skip
                break
            except TrainingDivergedError as error:
                kw = dict(config=config, device=device, num_dims=num_dims)
                resume = restart_after(error, args, run, ckpt_path, **kw)
                window.update(time=time.perf_counter(), step=resume["step"])
    if history.stopped_by_time:
        print(f"time budget of {args.max_minutes} min reached at step {history.steps}")
    ema = history.ema_model
    final_images = test.images[: args.final_eval_images] if args.final_eval_images else test.images
    t0 = time.perf_counter()
    test_bpd = evaluate(ema, final_images)
    rates = [e["images_per_s"] for e in run["log"]]
    metrics = dict(
        command=command, config=config,
        data=dict(train=train.source, test=test.source, n_train=int(train.images.shape[0])),
        test_images=int(final_images.shape[0]), test_bits_per_dim=round(test_bpd, 4),
        eval_seed=EVAL_SEED, seed=args.seed, steps=history.steps, batch_size=args.batch_size,
        lr=args.lr, restarts=run["restarts"], ema=args.ema,
        train_minutes=round(history.seconds / 60, 2),
        images_per_s=round(sum(rates) / len(rates), 1) if rates else None,
        eval_seconds=round(time.perf_counter() - t0, 1), parameters=model.num_parameters(),
        device=str(device), threads=torch.get_num_threads(), hardware=hardware(),
        log=run["log"],
    )  # fmt: skip
    ema.save(out / "model.pt", metadata={k: v for k, v in metrics.items() if k != "log"})
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    print(
        f"final test bits/dim {test_bpd:.4f} on {final_images.shape[0]:,} test images "
        f"after {history.steps} steps ({history.seconds / 60:.1f} min); saved {out / 'model.pt'}"
    )
    return metrics


if __name__ == "__main__":
    main()
