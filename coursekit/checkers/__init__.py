"""Exercise checkers: ``check_xxx(fn)`` runs the student's function and prints one line.

Each checker prints ``✅ Exercise N.M passed: …``, a ``❌ Exercise N.M: <hint>`` line saying
what is wrong (never the solution, never a traceback), or ``Exercise N.M: not done yet — …``
while the exercise still raises ``NotImplementedError``. It returns True on a pass. It never
raises, whatever the student's function returns, and stops a function that runs longer than
60 s (:func:`set_time_limit` changes the limit).
One module per chapter, :mod:`.ch01` … :mod:`.ch09` (chapter 1's held-out exercises in
:mod:`.ch01_held_out`; chapter 4's structure questions, 5's
generation and build-and-train, 6's image layers, 8's importance-weighted bounds and 9's
transport maps in :mod:`.ch04_structure`, :mod:`.ch05_generation`, :mod:`.ch05_train` with
:mod:`.ch05_flow_checks`, :mod:`.ch06_layers`, :mod:`.ch08_importance`, :mod:`.ch09_transport`).
"""

from coursekit.checkers._common import (
    EXERCISES,
    RESULTS,
    assert_all_passed,
    set_time_limit,
    show_progress,
)
from coursekit.checkers.ch01 import (
    check_gaussian_mle,
    check_gaussian_nll,
    check_kl_gaussians,
    check_mc_log_normalizer,
    check_monte_carlo_kl,
)
from coursekit.checkers.ch01_held_out import check_early_stopping, check_paired_comparison
from coursekit.checkers.ch02 import (
    check_density_1d,
    check_density_neg_log_uniform,
    check_log_density_composed,
    check_log_density_logistic,
    check_peak_density,
    check_sample_exponential,
)
from coursekit.checkers.ch03 import (
    check_integrate_grid,
    check_log_abs_det_jacobian,
    check_log_density_linear,
    check_polar_density,
    check_transform_with_log_prob,
    check_triangular_log_det,
)
from coursekit.checkers.ch04 import check_compose, check_coupling_forward, check_coupling_inverse
from coursekit.checkers.ch04_structure import check_jacobian_zeros, check_never_transformed
from coursekit.checkers.ch05 import (
    check_kl_from_nll,
    check_stack_log_prob,
    check_standardised_nll,
)
from coursekit.checkers.ch05_generation import (
    check_sample_with_log_prob,
    check_sample_with_temperature,
)
from coursekit.checkers.ch05_train import check_build_and_train
from coursekit.checkers.ch06 import (
    check_bits_per_dim,
    check_dequantize,
    check_logit_transform,
)
from coursekit.checkers.ch06_layers import check_conv1x1, check_mask_coupling, check_squeeze
from coursekit.checkers.ch07 import (
    check_gap_mass,
    check_maf_inverse,
    check_mean_and_se,
    check_sequential_passes,
    check_zuko_sample,
)
from coursekit.checkers.ch08 import (
    check_dequantized_elbo,
    check_log_q_of_sigmoid,
    check_multiscale_log_prob,
)
from coursekit.checkers.ch08_importance import check_iw_bound, check_iw_log_prob
from coursekit.checkers.ch09 import (
    check_conditional_coupling,
    check_iw_log_z,
    check_reverse_kl_loss,
)
from coursekit.checkers.ch09_transport import check_hutchinson, check_triangular_gaussian

__all__ = [
    "check_triangular_gaussian",
    "check_reverse_kl_loss",
    "check_iw_log_z",
    "check_hutchinson",
    "check_conditional_coupling",
    "EXERCISES",
    "RESULTS",
    "assert_all_passed",
    "check_bits_per_dim",
    "check_build_and_train",
    "check_compose",
    "check_conv1x1",
    "check_coupling_forward",
    "check_coupling_inverse",
    "check_density_1d",
    "check_density_neg_log_uniform",
    "check_dequantize",
    "check_dequantized_elbo",
    "check_early_stopping",
    "check_gap_mass",
    "check_gaussian_mle",
    "check_gaussian_nll",
    "check_integrate_grid",
    "check_iw_bound",
    "check_iw_log_prob",
    "check_jacobian_zeros",
    "check_kl_from_nll",
    "check_kl_gaussians",
    "check_log_abs_det_jacobian",
    "check_log_density_composed",
    "check_log_density_linear",
    "check_log_density_logistic",
    "check_log_q_of_sigmoid",
    "check_logit_transform",
    "check_maf_inverse",
    "check_mask_coupling",
    "check_mc_log_normalizer",
    "check_mean_and_se",
    "check_monte_carlo_kl",
    "check_multiscale_log_prob",
    "check_never_transformed",
    "check_paired_comparison",
    "check_peak_density",
    "check_polar_density",
    "check_sample_exponential",
    "check_sample_with_log_prob",
    "check_sample_with_temperature",
    "check_sequential_passes",
    "check_squeeze",
    "check_stack_log_prob",
    "check_standardised_nll",
    "check_transform_with_log_prob",
    "check_triangular_log_det",
    "check_zuko_sample",
    "set_time_limit",
    "show_progress",
]
