"""coursekit: the companion package of the course on normalizing flows and INNs.

Convention: a bijection maps data to noise, ``forward(x) -> (z, log|det ∂z/∂x|)``, as in the
slides (``torch.distributions`` uses the opposite direction).

Equation → code (slide equation, what, function and file in coursekit); each is written once:

| eq. | what | function | file |
|---|---|---|---|
| (1) | KL(p ‖ p_θ), Monte Carlo | metrics.kl_to_target | metrics.py |
| (1) | the same with its standard error | metrics.kl_with_se | metrics.py |
| (2)–(4) | negative log-likelihood L(θ) | metrics.nll | metrics.py |
| (4) | minimising L(θ) with Adam | training.fit | training.py |
| (5)–(9) | density of Z = f(X), 1-D | changevar.pushforward_log_prob | changevar.py |
| (10) | p_X(x) = p_Z(f(x))·abs(f'(x)) | changevar.pullback_log_prob | changevar.py |
| (11) | log abs det J_f(x), autograd | changevar.log_abs_det_jacobian | changevar.py |
| (12) | coupling: forward, log-det | flows.coupling.affine_forward | flows/coupling.py |
| (12) | coupling: inverse, log-det | flows.coupling.affine_inverse | flows/coupling.py |
| (12) | coupling layer: split, s, t, join | flows.coupling.AffineCouplingBase | flows/coupling.py |
| (13) | log-det of a composition | flows.base.compose | flows/base.py |
| (14) | log p_X(x) of a flow | flows.base.Flow.log_prob | flows/base.py |
| (14) | log N(z; 0, I) | flows.base.standard_normal_log_prob | flows/base.py |
| — | dequantization v = k + u | flows.preprocessing.dequantize | flows/preprocessing.py |
| (11) | noise density q | flows.dequantization.VariationalDequantizer | flows/dequantization.py |
| — | bound with q | flows.dequantization.DequantizedImageFlow.elbo | flows/dequantization.py |
| — | IW bound L_K | flows.importance.importance_weighted_log_prob | flows/importance.py |
| — | bits per dimension, every term | metrics.bits_per_dim | metrics.py |

Modules:

* :mod:`coursekit.flows`: bijections and flows.
  :mod:`~coursekit.flows.base` (``Bijection``, ``FlowSequence``, ``Permutation``, ``Flow``),
  :mod:`~coursekit.flows.coupling` (eq. 12, ``AffineCoupling``),
  :mod:`~coursekit.flows.nets` (conditioner networks),
  :mod:`~coursekit.flows.realnvp` (``RealNVP`` on vectors),
  :mod:`~coursekit.flows.flattened` (a vector flow on flattened images),
  :mod:`~coursekit.flows.image_coupling` (checkerboard and channel couplings, squeeze),
  :mod:`~coursekit.flows.glow` (``ActNorm``, ``InvertibleConv1x1``),
  :mod:`~coursekit.flows.multiscale` (one scale of the multi-scale architecture),
  :mod:`~coursekit.flows.image` (``ImageRealNVP``),
  :mod:`~coursekit.flows.image_config` (``ImageFlowConfig``: its architecture, the shipped one),
  :mod:`~coursekit.flows.preprocessing` (dequantization, logit, bits/dim of images),
  :mod:`~coursekit.flows.importance` (importance-weighted bits/dim, ``K`` dequantization draws),
  :mod:`~coursekit.flows.dequantization` (variational dequantization, ``q(u | k)``),
  :mod:`~coursekit.flows.checkpoint` (saving, loading, ``CheckpointError``).
* :mod:`coursekit.changevar`: change of variable by autograd (eq. 5–11).
* :mod:`coursekit.maps1d`: 1-D bijections with the exact law of ``f(X)`` (notebook 02).
* :mod:`coursekit.datasets`: :mod:`~coursekit.datasets.toy` (2-D distributions),
  :mod:`~coursekit.datasets.in_dimension` (the four modes in d dimensions),
  :mod:`~coursekit.datasets.mnist` (MNIST loader; its IDX files in
  :mod:`~coursekit.datasets.idx`).
* :mod:`coursekit.metrics`: NLL, bits/dim, KL.
* :mod:`coursekit.bands`: a trained figure's band over a committed benchmark's seeds.
* :mod:`coursekit.training`: ``fit`` and its loop ``train_loop``;
  :mod:`coursekit.training_run` (``fit_run``: EMA, callbacks, resume, clock around it);
  :mod:`coursekit.training_checks` (its argument checks);
  :mod:`coursekit.optim` (``FlatAdam``, the learning-rate schedule).
* :mod:`coursekit.train_mnist`: the MNIST training command;
  :mod:`coursekit.train_mnist_checks` (its options, checked before training);
  :mod:`coursekit.train_mnist_checkpoints` (checkpoints, restarts after a divergence).
* :mod:`coursekit.pretrained`: the shipped MNIST model.
* :mod:`coursekit.mlp_density`: the MLP density model of notebook 01 and its normalisers;
  :mod:`coursekit.grid`: densities on 2-D grids.
* :mod:`coursekit.experiments`: the experiments of notebooks 04–05 (the gap region, the grid's
  cost; KL with its Monte Carlo standard error is in :mod:`coursekit.metrics`).
* :mod:`coursekit.practice`: zuko's flows with the course's interface, KL with its standard
  error, the gap mass of filaments (notebook 07).
* :mod:`coursekit.plots`: :mod:`~coursekit.plots.density`, :mod:`~coursekit.plots.flows`
  (helpers in :mod:`~coursekit.plots._arrays`); :mod:`coursekit.animation`;
  :mod:`coursekit.widgets` (interactive demos;
  the 2-D demo's state in :mod:`coursekit.transport2d`).
* Notebook 09: :mod:`coursekit.triangular` (the Knothe–Rosenblatt map), :mod:`coursekit.reverse_kl`
  (reverse KL, importance-weighted log Z), :mod:`~coursekit.flows.conditional` and
  :mod:`~coursekit.datasets.conditional` (conditional flows, their targets),
  :mod:`coursekit.flow_matching` (a continuous flow), :mod:`coursekit.classical` (KDE, EM);
  its exercise checkers :mod:`~coursekit.checkers.ch09`, :mod:`~coursekit.checkers.ch09_transport`.
* :mod:`coursekit.checkers`: exercise checkers :mod:`~coursekit.checkers.ch01` …
  :mod:`~coursekit.checkers.ch08` (:mod:`~coursekit.checkers.ch01_held_out`,
  :mod:`~coursekit.checkers.ch02`,
  :mod:`~coursekit.checkers.ch03`, :mod:`~coursekit.checkers.ch04`,
  :mod:`~coursekit.checkers.ch04_structure`,
  :mod:`~coursekit.checkers.ch05`, :mod:`~coursekit.checkers.ch05_generation`,
  :mod:`~coursekit.checkers.ch05_train`, :mod:`~coursekit.checkers.ch05_flow_checks`,
  :mod:`~coursekit.checkers.ch06`, :mod:`~coursekit.checkers.ch06_layers`,
  :mod:`~coursekit.checkers.ch07`, :mod:`~coursekit.checkers.ch08_importance`),
  on :mod:`~coursekit.checkers._common`, :mod:`~coursekit.checkers._hints`,
  :mod:`~coursekit.checkers._answers`, :mod:`~coursekit.checkers._inputs`,
  :mod:`~coursekit.checkers._sections` (where each exercise's idea is taught) and
  :mod:`~coursekit.checkers._time_limit`;
  :mod:`coursekit.exercises` (builds the exercise notebooks).
* :mod:`coursekit.notebook_tools` (refreshes stored outputs), :mod:`coursekit.device`
  (device choice, machine description), :mod:`coursekit._files` (atomic writes),
  :mod:`coursekit._validation` (input checks; the value checks are switchable with
  :func:`set_validation` and :func:`validation`).
"""

from coursekit._validation import set_validation, validation, validation_enabled

__version__ = "0.1.0"

__all__ = ["set_validation", "validation", "validation_enabled"]
