"""Exercise checkers: ``check_xxx(fn)`` runs the student's function and prints one line.

Each checker prints ``✅ Exercise N.M passed: …``, a ``❌ Exercise N.M: <hint>`` line saying
what is wrong (never the solution, never a traceback), or ``Exercise N.M: not done yet — …``
while the exercise still raises ``NotImplementedError``. It returns True on a pass. It never
raises, whatever the student's function returns, and stops a function that runs longer than
60 s (:func:`set_time_limit` changes the limit).
One module per chapter: :mod:`.ch01` … :mod:`.ch09`.
"""

from coursekit.checkers._common import (
    EXERCISES,
    RESULTS,
    assert_all_passed,
    set_time_limit,
    show_progress,
)
from coursekit.checkers.ch01 import (
    check_early_stopping,
    check_gaussian_mle,
    check_gaussian_nll,
    check_kl_gaussians,
    check_mc_log_normalizer,
    check_monte_carlo_kl,
    check_nll_with_se,
)
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
from coursekit.checkers.ch04 import (
    check_compose,
    check_coupling_forward,
    check_coupling_inverse,
    check_jacobian_zeros,
    check_never_transformed,
)
from coursekit.checkers.ch05 import (
    check_flow_log_prob,
    check_inverse_trajectory,
    check_kl_from_nll,
    check_nll_loss,
    check_sample_with_temperature,
)
from coursekit.checkers.ch05_train import check_build_and_train
from coursekit.checkers.ch06 import (
    check_actnorm,
    check_bits_per_dim,
    check_dequantize,
    check_logit_transform,
    check_nearest_distances,
    check_squeeze,
)
from coursekit.checkers.ch07 import (
    check_gap_mass,
    check_mean_and_se,
    check_sequential_passes,
    check_zuko_log_prob,
    check_zuko_sample,
)
from coursekit.checkers.ch08 import (
    check_dequantized_elbo,
    check_iw_bound,
    check_iw_log_prob,
    check_log_q_of_sigmoid,
    check_split_levels,
)
from coursekit.checkers.ch09 import (
    check_conditional_coupling,
    check_hutchinson,
    check_iw_log_z,
    check_reverse_kl_loss,
    check_triangular_gaussian,
)

__all__ = [
    "check_triangular_gaussian",
    "check_reverse_kl_loss",
    "check_iw_log_z",
    "check_hutchinson",
    "check_conditional_coupling",
    "EXERCISES",
    "RESULTS",
    "assert_all_passed",
    "check_actnorm",
    "check_bits_per_dim",
    "check_build_and_train",
    "check_compose",
    "check_coupling_forward",
    "check_coupling_inverse",
    "check_density_1d",
    "check_density_neg_log_uniform",
    "check_dequantize",
    "check_dequantized_elbo",
    "check_early_stopping",
    "check_flow_log_prob",
    "check_gap_mass",
    "check_gaussian_mle",
    "check_gaussian_nll",
    "check_integrate_grid",
    "check_inverse_trajectory",
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
    "check_mc_log_normalizer",
    "check_mean_and_se",
    "check_monte_carlo_kl",
    "check_nearest_distances",
    "check_never_transformed",
    "check_nll_loss",
    "check_nll_with_se",
    "check_peak_density",
    "check_polar_density",
    "check_sample_exponential",
    "check_sample_with_temperature",
    "check_sequential_passes",
    "check_split_levels",
    "check_squeeze",
    "check_transform_with_log_prob",
    "check_triangular_log_det",
    "check_zuko_log_prob",
    "check_zuko_sample",
    "set_time_limit",
    "show_progress",
]
