"""The MNIST command's checkpoints: writing them, and restarting from the last one after a
divergence (:func:`restart_after`: reload it, halve the learning rate, at most
``--max-restarts`` times, then :class:`RunStopped`)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch
from tqdm.auto import tqdm

from coursekit.flows.checkpoint import atomic_save
from coursekit.flows.preprocessing import LEVELS
from coursekit.metrics import bits_per_dim
from coursekit.train_mnist_checks import read_run
from coursekit.training import TrainingDivergedError


class RunStopped(RuntimeError):
    """The training diverged more often than ``--max-restarts`` allows, or a checkpoint could
    not be written (the last good one is kept); the message says how to continue."""


def batch_bits_per_dim(loss: float, num_dims: int) -> float:
    """Bits/dim of the dequantized 8-bit data from a batch loss ``−mean log p(x)`` in nats."""
    return float(bits_per_dim(torch.tensor(-loss, dtype=torch.float64), num_dims, levels=LEVELS))


def max_loss(max_bpd: float, num_dims: int) -> float:
    """The batch loss in nats of ``max_bpd`` bits/dim (``--max-bpd``)."""
    return num_dims * (max_bpd * math.log(2) - math.log(LEVELS))


def run_record(saved: dict) -> dict:
    """What a run keeps besides the training state: its log, learning-rate scale, restarts."""
    return dict(
        log=saved["log"], lr_scale=saved.get("lr_scale", 1.0), restarts=saved.get("restarts", [])
    )


def restart_after(
    error: TrainingDivergedError, args: argparse.Namespace, run: dict, num_dims: int
) -> dict:
    """The checkpoint policy on a divergence: the state to resume from, or :class:`RunStopped`.

    Reloads the last checkpoint (checked like ``--resume``: the same run) and halves the
    learning rate (``run`` records the restart and the checkpoint is rewritten with it), at
    most ``--max-restarts`` times; the training time keeps counting.
    """
    ckpt_path = Path(args.out) / "checkpoint.pt"
    steps_done = error.step - 1
    bpd = batch_bits_per_dim(error.loss, num_dims)
    if len(run["restarts"]) >= args.max_restarts or not ckpt_path.exists():
        kept = f" ({ckpt_path}, saved before the divergence)" if ckpt_path.exists() else ""
        raise RunStopped(
            f"training diverged at step {steps_done}: batch loss {bpd:.4g} bits/dim "
            f"(--max-bpd {args.max_bpd:g}); rerun the same command with --resume and a larger "
            f"--max-restarts (each restart halves the learning rate) to continue from the last "
            f"checkpoint{kept}"
        )
    saved = read_run(ckpt_path, args, torch.device(args.torch_device))
    run.update(run_record(saved))
    run["lr_scale"] /= 2
    restart = dict(diverged_at_step=steps_done, bpd=bpd, resumed_at_step=saved["step"])
    run["restarts"].append(dict(restart, lr_scale=run["lr_scale"]))
    tqdm.write(
        f"training diverged at step {steps_done} (batch loss {bpd:.4g} bits/dim): restarting "
        f"from the checkpoint at step {saved['step']} with the learning rate "
        f"x{run['lr_scale']:g} (restart {len(run['restarts'])} of at most {args.max_restarts})"
    )
    save_checkpoint({**saved, **run}, ckpt_path)  # the halved rate survives a later --resume
    return {**saved, "elapsed": error.elapsed}


def save_checkpoint(state: dict, path: Path) -> None:
    """``atomic_save``; a failed write (full disk, read-only folder…) raises :class:`RunStopped`
    and leaves the last good checkpoint in place."""
    try:
        atomic_save(state, path)
    except OSError as error:
        raise RunStopped(
            f"--out: cannot write the checkpoint {path} ({error.strerror or error}); the last "
            "good checkpoint is kept: free space or fix the folder, then rerun with --resume"
        ) from None
