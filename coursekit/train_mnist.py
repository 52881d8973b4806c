"""Train an :class:`~coursekit.flows.image.ImageRealNVP` on MNIST by maximum likelihood.

Usage::

    python -m coursekit.train_mnist --out runs/mnist --steps 6000 --max-minutes 70
    python -m coursekit.train_mnist --out runs/mnist --resume      # after an interruption
    python -m coursekit.train_mnist --quick --out runs/quick        # a CI-sized run

The training is :func:`coursekit.training_run.fit_run` on dequantized images ``x = (k + u) / 256``
(:class:`~coursekit.flows.preprocessing.DequantizedImages`), loss ``−mean log p_θ(x)``
(eq. 4/14; reported in bits/dim of the 8-bit data), warm-up then cosine decay, and an EMA
of the weights, which is what gets evaluated and saved. With ``--dequantization
variational`` the flow is trained together with a learned noise distribution ``q(u | k)``
(:mod:`coursekit.flows.dequantization`) on the bound ``E_q[log p(k + u) − log q(u | k)]``, and
the pair is what gets evaluated and saved (:class:`~coursekit.flows.DequantizedImageFlow`).
Value checks are off during training (:func:`coursekit.validation`).

Before anything is loaded or trained, :func:`parse_args` checks every option, the data
directory, that ``--out`` can be written and the checkpoint ``--resume`` would read
(:mod:`coursekit.train_mnist_checks`): a problem raises ``UsageError`` naming the option, so
that no run is lost at its end. :func:`run` is the command as a function; only :func:`main`
turns its errors into exit codes (2: a bad option; 1: a divergence after the restarts, or a
checkpoint that cannot be written, the last good one kept).

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
from coursekit.flows.dequantization import (
    DequantizedImageFlow,
    ImagesAndNoise,
    VariationalDequantizer,
    negative_elbo_given_noise,
)
from coursekit.flows.image import ImageRealNVP
from coursekit.flows.image_config import ImageFlowConfig
from coursekit.flows.importance import importance_weighted_bits_per_dim
from coursekit.flows.preprocessing import (
    LEVELS,
    DequantizedImages,
    dequantize,
    image_bits_per_dim,
)
from coursekit.metrics import nll
from coursekit.train_mnist_checkpoints import (
    RunStopped,
    batch_bits_per_dim,
    max_loss,
    restart_after,
    run_record,
    save_checkpoint,
)
from coursekit.train_mnist_checks import PROG, UsageError, make_parser, read_run, validate_args
from coursekit.training import FitState, History, TrainingDivergedError, seed_everything
from coursekit.training_run import Callback, fit_run

#: The architecture of the shipped pretrained model (and the default here), as a dict.
DEFAULT_CONFIG = ImageFlowConfig().as_dict()

#: the dequantization noise of every evaluation (so that evaluations are comparable)
EVAL_SEED = 1234

#: The learned noise distribution of ``--dequantization variational``.
DEQUANTIZER_CONFIG = dict(hidden=16, n_couplings=4, context_channels=8)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, fully validated (:func:`~coursekit.train_mnist_checks.validate_args`):
    a bad option, data directory, output directory or checkpoint raises ``UsageError`` before
    anything is trained, with a message naming the option (``--lr: expected ...``)."""
    args = make_parser().parse_args(argv)
    if args.quick:
        args.steps = min(args.steps, 120)
        args.warmup = min(args.warmup, 20)
        args.eval_every = min(args.eval_every, 60)
        args.eval_images = min(args.eval_images, 500)
        args.final_eval_images = args.final_eval_images or 1000
        args.checkpoint_every = min(args.checkpoint_every, 30.0)
    validate_args(args, DEFAULT_CONFIG)
    return args


def evaluate(model: ImageRealNVP | DequantizedImageFlow, images: torch.Tensor) -> float:
    """Test bits/dim with a fixed dequantization seed (so evaluations are comparable): the
    single-sample bound, with uniform noise or with the model's learned ``q(u | k)``."""
    generator = torch.Generator().manual_seed(EVAL_SEED)
    if isinstance(model, DequantizedImageFlow):
        return importance_weighted_bits_per_dim(model, images, 1, generator=generator)
    return image_bits_per_dim(model, images, generator=generator)


def build_model(
    config: dict,
    seed: int,
    images: torch.Tensor,
    device: torch.device,
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


def load_data(args: argparse.Namespace) -> tuple:
    """The train and test splits (``UsageError`` naming ``--data-dir`` if they cannot be read)."""
    try:
        return load_mnist(args.data_dir, split="train"), load_mnist(args.data_dir, split="test")
    except (FileNotFoundError, MNISTIntegrityError) as error:
        raise UsageError(f"{'--data-dir: ' if args.data_dir else ''}{error}") from None


def make_callbacks(
    args: argparse.Namespace, run: dict, eval_images: torch.Tensor, window: dict
) -> list[Callback]:
    """Every ``--checkpoint-every`` seconds (and at the end) the full state to
    ``OUT/checkpoint.pt``; every ``--eval-every`` steps an evaluation of the EMA model, logged
    in ``run["log"]``. ``window``: the time and step of the last evaluation (for the rate)."""
    ckpt_path, num_dims = Path(args.out) / "checkpoint.pt", math.prod(args.config["image_shape"])

    def save(state: FitState) -> None:
        extra = dict(config=args.config, args=vars(args), dequantization=args.dequantization)
        save_checkpoint({**state.state_dict(), **run, **extra}, ckpt_path)

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

    return [
        Callback(save, every_seconds=args.checkpoint_every, at_end=True),
        Callback(log_evaluation, every_steps=args.eval_every),
    ]


def train(args: argparse.Namespace, model, train_images: torch.Tensor, eval_images, run: dict):
    """:func:`~coursekit.training_run.fit_run` with the checkpoint and evaluation callbacks,
    restarted from the last checkpoint after a divergence (:func:`restart_after`)."""
    ckpt_path, num_dims = Path(args.out) / "checkpoint.pt", math.prod(args.config["image_shape"])
    variational = args.dequantization == "variational"
    resume = None
    if args.resume:
        resume = read_run(ckpt_path, args, torch.device(args.torch_device))
        run.update(run_record(resume))
        print(
            f"resumed from {ckpt_path} at step {resume['step']} "
            f"({resume['elapsed'] / 60:.1f} min trained)"
        )
    window = dict(time=time.perf_counter(), step=resume["step"] if resume else 0)

    def loss_of_batch(model: ImageRealNVP, x: torch.Tensor) -> torch.Tensor:
        # uniform: x = (k + u) / 256 (DequantizedImages); variational: x = [k, ε] (ImagesAndNoise)
        return negative_elbo_given_noise(model, x) if variational else nll(model, x)

    data = (ImagesAndNoise if variational else DequantizedImages)(train_images)
    options = dict(
        steps=args.steps,
        batch_size=args.batch_size,
        clip_grad=args.clip_grad,
        seed=args.seed,
        max_seconds=60 * args.max_minutes if args.max_minutes else None,
        log_every=20,
        warmup=args.warmup,
        ema=args.ema,
        callbacks=make_callbacks(args, run, eval_images, window),
        max_loss=max_loss(args.max_bpd, num_dims),
        loss_fn=torch.compile(loss_of_batch) if args.compile else loss_of_batch,
    )
    with validation(False):
        while True:
            try:
                return fit_run(model, data, lr=args.lr * run["lr_scale"], resume=resume, **options)
            except TrainingDivergedError as error:
                resume = restart_after(error, args, run, num_dims)
                window.update(time=time.perf_counter(), step=resume["step"])


def report(args, argv, history: History, model, train, test, run: dict) -> dict:
    """The final evaluation of the EMA model, saved with its metrics as ``OUT/model.pt`` and
    ``OUT/metrics.json``; the metrics."""
    out = Path(args.out)
    final_images = test.images[: args.final_eval_images] if args.final_eval_images else test.images
    t0 = time.perf_counter()
    test_bpd = evaluate(history.ema_model, final_images)
    rates = [e["images_per_s"] for e in run["log"]]
    command = f"{PROG} " + " ".join(shlex.quote(a) for a in argv)
    metrics = dict(
        command=command,
        config=args.config,
        data=dict(train=train.source, test=test.source, n_train=int(train.images.shape[0])),
        test_images=int(final_images.shape[0]),
        test_bits_per_dim=round(test_bpd, 4),
        eval_seed=EVAL_SEED,
        seed=args.seed,
        steps=history.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        restarts=run["restarts"],
        ema=args.ema,
        train_minutes=round(history.seconds / 60, 2),
        images_per_s=round(sum(rates) / len(rates), 1) if rates else None,
        eval_seconds=round(time.perf_counter() - t0, 1),
        parameters=model.num_parameters(),
        device=args.torch_device,
        threads=torch.get_num_threads(),
        hardware=hardware(),
        log=run["log"],
    )
    history.ema_model.save(
        out / "model.pt", metadata={k: v for k, v in metrics.items() if k != "log"}
    )
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    print(
        f"final test bits/dim {test_bpd:.4f} on {final_images.shape[0]:,} test images "
        f"after {history.steps} steps ({history.seconds / 60:.1f} min); saved {out / 'model.pt'}"
    )
    return metrics


def run(argv: list[str] | None = None) -> dict:
    """The command as a function: returns the metrics written to ``OUT/metrics.json``.

    Raises:
        UsageError: a bad option, data directory, output directory or checkpoint.
        RunStopped: a divergence after the restarts, or a checkpoint that cannot be written.
    """
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    for stale in Path(args.out).glob("checkpoint.pt*.tmp"):  # left by a run killed while saving
        stale.unlink()
    train_split, test = load_data(args)
    model = build_model(
        args.config,
        args.seed,
        train_split.images,
        torch.device(args.torch_device),
        args.dequantization,
    )
    print(
        f"data: train {train_split.images.shape[0]:,} ({train_split.source}), test {len(test):,};"
        f" model {model.num_parameters():,} parameters; device {args.torch_device}; threads "
        f"{torch.get_num_threads()}"
    )
    record: dict = dict(log=[], lr_scale=1.0, restarts=[])  # saved with every checkpoint
    history = train(args, model, train_split.images, test.images[: args.eval_images], record)
    if history.stopped_by_time:
        print(f"time budget of {args.max_minutes} min reached at step {history.steps}")
    return report(args, argv, history, model, train_split, test, record)


def main(argv: list[str] | None = None) -> int:
    """Run the command; the exit code: 0, 2 for a bad option (argparse's code), 1 for a run
    stopped by divergence or a failed checkpoint write."""
    try:
        run(argv)
    except UsageError as error:
        make_parser().print_usage(sys.stderr)
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    except RunStopped as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
