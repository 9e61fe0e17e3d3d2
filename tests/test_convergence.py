"""The plateau rule, the endpoint of a validation curve, and the power arithmetic of claim 2."""

from __future__ import annotations

import math

import numpy as np
import pytest

from seqgan.config import ConvergenceParams
from seqgan.report.convergence import endpoint, plateau_check, tokenizer_plateau, transformer_convergence
from seqgan.report.stats import power_of, seeds_for_half_width

RULE = ConvergenceParams(plateau_window=0.2, plateau_max_improvement=0.01, endpoint_evaluations=3)


def test_plateau_window_starts_at_the_last_evaluation_before_its_boundary():
    # 500 steps, window 0.2: the boundary is step 400; 3.00 -> 2.98 is 0.67 % < 1 %
    check = plateau_check([100, 200, 300, 400, 500], [4.0, 3.5, 3.1, 3.0, 2.98], 0.2, 0.01)
    assert check.holds is True and check.window_start_step == 400
    assert check.relative_improvement == pytest.approx(0.02 / 3.0)
    # an evaluation grid that misses the boundary: the window starts earlier (step 350 <= 400)
    check = plateau_check([350, 700, 1050], [3.0, 2.99, 2.985], 0.5, 0.01)
    assert check.window_start_step == 350 and check.holds is True
    # still improving: 3.1 -> 2.9 is 6.5 %
    still = plateau_check([100, 200, 300, 400, 500], [4.0, 3.5, 3.2, 3.1, 2.9], 0.2, 0.01)
    assert (
        still.holds is False and "still improving" in still.describe() and "-> 2.9000 at step 500" in still.describe()
    )
    # getting worse counts as a plateau (nothing more to gain by training longer)
    assert plateau_check([100, 200], [3.0, 3.1], 0.5, 0.01).holds is True
    # exactly at the threshold does not hold ("less than")
    assert plateau_check([50, 100], [1.0, 0.99], 0.5, 0.01).holds is False


def test_a_curve_without_an_evaluation_before_the_window_cannot_decide():
    check = plateau_check([450, 500], [3.0, 2.9], 0.2, 0.01)
    assert check.holds is None and "not checkable" in check.describe()
    with pytest.raises(ValueError, match="must increase"):
        plateau_check([200, 100], [1.0, 1.0], 0.2, 0.01)
    with pytest.raises(ValueError, match="finite"):
        plateau_check([100, 200], [1.0, math.nan], 0.2, 0.01)


def test_endpoint_is_the_mean_of_the_last_evaluations():
    assert endpoint([5.0, 4.0, 3.3, 3.2, 3.1], 3) == pytest.approx(3.2)
    assert endpoint([2.0], 1) == 2.0
    with pytest.raises(ValueError, match="last 3 evaluations, but the curve has 2"):
        endpoint([2.0, 1.0], 3)


def test_convergence_read_from_recorded_metrics_names_the_file_without_a_curve():
    metrics = {"val_curve": {"step": [100, 200, 300, 400, 500], "val_loss": [4.0, 3.5, 3.3, 3.2, 3.1]}}
    value, check = transformer_convergence(metrics, RULE, "model.json")
    assert value == pytest.approx(3.2) and check.holds is False
    with pytest.raises(ValueError, match="old.json: no validation curve recorded"):
        transformer_convergence({"final_val_loss": 3.0}, RULE, "old.json")
    with pytest.raises(ValueError, match="short.json: .*endpoint_evaluations"):
        transformer_convergence({"val_curve": {"step": [10, 20], "val_loss": [3, 2]}}, RULE, "short.json")
    tokenizer = {"tokenizer": {"val_curve": {"step": [100, 200], "val_loss": [0.5, 0.499]}}}
    assert tokenizer_plateau(tokenizer, RULE, "t.json").holds is True


def test_power_numbers_match_a_simulated_paired_t_test():
    """The minimum detectable effect is what it says: simulated paired differences with that true mean
    are detected by the t-interval (it excludes 0) in about `power` of the draws."""
    from scipy.stats import t as student_t

    power = power_of([-0.2, -0.25, -0.15], 0.95, 0.8)
    assert power.count == 3 and power.paired_sd == pytest.approx(0.05)
    assert power.half_width == pytest.approx(student_t.ppf(0.975, 2) * 0.05 / math.sqrt(3))
    rng = np.random.default_rng(0)
    n, sd = 5, 0.1
    mde = power_of(list(rng.normal(0, sd, n)), 0.95, 0.8)  # a sample sd, then simulate at the true sd
    effect = (student_t.ppf(0.975, n - 1) + student_t.ppf(0.8, n - 1)) * sd / math.sqrt(n)
    assert mde.minimum_detectable_effect == pytest.approx(effect * mde.paired_sd / sd)
    draws = rng.normal(effect, sd, size=(20000, n))
    half = student_t.ppf(0.975, n - 1) * draws.std(axis=1, ddof=1) / math.sqrt(n)
    detected = np.mean(draws.mean(axis=1) - half > 0)
    assert 0.75 <= detected <= 0.85  # the approximation is close for the one-sided exceedance
    assert power_of([0.1], 0.95, 0.8).half_width is None


def test_seeds_for_half_width_is_the_smallest_sufficient_count():
    from scipy.stats import t as student_t

    n = seeds_for_half_width(0.1, 0.95, 0.05)
    assert student_t.ppf(0.975, n - 1) * 0.1 / math.sqrt(n) <= 0.05
    assert student_t.ppf(0.975, n - 2) * 0.1 / math.sqrt(n - 1) > 0.05
    assert seeds_for_half_width(0.001, 0.95, 0.05, at_least=5) == 5


def test_power_at_two_seeds_and_below_and_the_seed_count_at_its_edges():
    """Two seeds are enough for a t-interval (1 degree of freedom); one gives no power at all, with the
    count and levels kept. The seed count starts at 2 (a zero or tiny sd needs no more), stops at the
    first n whose half-width is at most the target (equal counts: it is "at most"), and refuses a
    negative sd or a target that is not positive."""
    from scipy.stats import t as student_t

    from seqgan.report.stats import Power, power_at

    two = power_at(0.1, 2, 0.95, 0.8)
    scale = 0.1 / math.sqrt(2)
    assert two.half_width == pytest.approx(student_t.ppf(0.975, 1) * scale)
    assert two.minimum_detectable_effect == pytest.approx((student_t.ppf(0.975, 1) + student_t.ppf(0.8, 1)) * scale)
    assert power_at(0.1, 1, 0.95, 0.8) == Power(1, None, None, None, 0.95, 0.8)

    assert seeds_for_half_width(0.0, 0.95, 0.05) == 2
    assert seeds_for_half_width(0.001, 0.95, 0.05) == 2
    exactly_three = float(student_t.ppf(0.975, 2)) * 0.1 / math.sqrt(3)  # the half-width of 3 seeds, bit for bit
    assert seeds_for_half_width(0.1, 0.95, exactly_three) == 3
    for sd, half_width in ((-0.1, 0.05), (0.1, 0.0), (0.1, -0.05)):
        with pytest.raises(ValueError, match="need paired_sd >= 0 and half_width > 0"):
            seeds_for_half_width(sd, 0.95, half_width)


def test_power_of_two_one_and_no_differences():
    """Two paired differences have a sample sd and so a power; one or none give a Power without one,
    counting what there was (claim 2 states it for whatever seeds the variants share, possibly none)."""
    from seqgan.report.stats import Power, power_at

    assert power_of([0.1, 0.3], 0.95, 0.8) == power_at(math.sqrt(0.02), 2, 0.95, 0.8)
    assert power_of([0.1], 0.95, 0.8) == Power(1, None, None, None, 0.95, 0.8)
    assert power_of([], 0.95, 0.8) == Power(0, None, None, None, 0.95, 0.8)
