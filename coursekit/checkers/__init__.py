"""Exercise checkers: ``check_xxx(fn)`` runs the student's function and prints one line.

Each checker prints ``✅ Exercise N.M passed: …``, a ``❌ Exercise N.M: <hint>`` line saying
what is wrong (never the solution, never a traceback), or ``Exercise N.M: not done yet — …``
while the exercise still raises ``NotImplementedError``. It returns True on a pass. It never
raises, whatever the student's function returns, and stops a function that runs longer than
60 s (:func:`set_time_limit` changes the limit).
One module per chapter: :mod:`.ch01` … :mod:`.ch06`.
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
    check_grid_points,
    check_kl_gaussians,
    check_monte_carlo_kl,
)
from coursekit.checkers.ch02 import (
    check_density_1d,
    check_density_neg_log_uniform,
    check_log_density_logistic,
    check_peak_density,
    check_sample_exponential,
)
from coursekit.checkers.ch03 import (
    check_area_factor,
    check_integrate_grid,
    check_log_abs_det_jacobian,
    check_log_density_linear,
    check_polar_density,
)
from coursekit.checkers.ch04 import (
    check_compose,
    check_coupling_forward,
    check_coupling_inverse,
    check_jacobian_zeros,
    check_largest_log_det_layer,
)
from coursekit.checkers.ch05 import (
    check_flow_log_prob,
    check_inverse_trajectory,
    check_kl_from_nll,
    check_nll_loss,
    check_sample_with_temperature,
)
from coursekit.checkers.ch06 import (
    check_bits_per_dim,
    check_dequantize,
    check_logit_transform,
    check_nats_per_image,
    check_squeeze,
)

__all__ = [
    "EXERCISES",
    "RESULTS",
    "assert_all_passed",
    "check_area_factor",
    "check_bits_per_dim",
    "check_compose",
    "check_coupling_forward",
    "check_coupling_inverse",
    "check_density_1d",
    "check_density_neg_log_uniform",
    "check_dequantize",
    "check_flow_log_prob",
    "check_gaussian_mle",
    "check_gaussian_nll",
    "check_grid_points",
    "check_integrate_grid",
    "check_inverse_trajectory",
    "check_jacobian_zeros",
    "check_kl_from_nll",
    "check_kl_gaussians",
    "check_largest_log_det_layer",
    "check_log_abs_det_jacobian",
    "check_log_density_linear",
    "check_log_density_logistic",
    "check_logit_transform",
    "check_monte_carlo_kl",
    "check_nats_per_image",
    "check_nll_loss",
    "check_peak_density",
    "check_polar_density",
    "check_sample_exponential",
    "check_sample_with_temperature",
    "check_squeeze",
    "set_time_limit",
    "show_progress",
]
