"""KL coefficient controllers: a fixed ``beta``, or one that adapts to hit a target KL.

The adaptive rule is the one of Ziegler et al. 2019, "Fine-Tuning Language Models from Human
Preferences" (arXiv:1909.08593), section 2.2, also used by TRL's former PPOTrainer
(``adap_kl_ctrl``, ``target``, ``horizon``).
"""

from __future__ import annotations

import math

#: Ziegler et al. clip the proportional error to +-20% so that one noisy KL estimate cannot
#: move beta by more than 20% * n_steps / horizon.
PROPORTIONAL_ERROR_CLIP = 0.2


class FixedKLController:
    """``beta`` stays constant.

    :param beta: the KL coefficient.
    """

    def __init__(self, beta: float) -> None:
        if beta < 0:
            raise ValueError(f"beta must be >= 0, got {beta}")
        self.value = float(beta)

    def update(self, current_kl: float, n_steps: int) -> float:
        """Nothing to adapt; returns ``beta``."""
        return self.value


class AdaptiveKLController:
    """``beta <- beta * (1 + clip(KL / target - 1, -0.2, 0.2) * n_steps / horizon)``.

    KL above the target raises beta (pulls the policy back to the reference), KL below it
    lowers beta.

    :param init_beta: starting coefficient (must be > 0: a multiplicative rule cannot leave 0).
    :param target: the KL (per token, as logged in ``train/kl``) to hold.
    :param horizon: number of samples over which the error is corrected (10_000 in Ziegler et al.).
    """

    def __init__(self, init_beta: float, target: float, horizon: int = 10_000) -> None:
        if init_beta <= 0 or target <= 0 or horizon <= 0:
            raise ValueError(
                "the adaptive KL controller needs init_beta, target and horizon > 0, "
                f"got {init_beta}, {target}, {horizon}"
            )
        self.value, self.target, self.horizon = float(init_beta), float(target), int(horizon)

    def update(self, current_kl: float, n_steps: int) -> float:
        """Adapt to the KL measured over the last ``n_steps`` samples; returns the new beta."""
        if math.isnan(current_kl):  # no reference log-probs were computed
            return self.value
        error = min(max(current_kl / self.target - 1, -PROPORTIONAL_ERROR_CLIP), PROPORTIONAL_ERROR_CLIP)
        self.value *= 1 + error * n_steps / self.horizon
        return self.value
