"""EATA: sample-efficient entropy minimisation with an anti-forgetting term.

Niu et al., Efficient Test-Time Model Adaptation without Forgetting,
ICML 2022 (https://arxiv.org/abs/2204.02610); code after
mr-eggplant/EATA. For segmentation a pixel is EATA's sample for the
reliability filter and the re-weighting; the redundancy filter acts on
whole images, whose prediction is the softmax averaged over pixels.
"""
import copy
from typing import Any, Dict, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.logging import MMLogger
from torch import Tensor

from ..registry import TTA_METHODS
from .fisher import fisher_penalty, load_fisher
from .losses import entropy_map, entropy_threshold
from .tent import TENT_OPTIMIZER, Tent

# EATA adapts TENT's parameters with TENT's objective; on Cityscapes->ACDC
# the baselines share CoTTA's Adam settings (see tent.py), so EATA differs
# from TENT only by its filters, weights and regulariser.
EATA_OPTIMIZER = TENT_OPTIMIZER


@TTA_METHODS.register_module()
class EATA(Tent):
    """Entropy of reliable, non-redundant pixels, re-weighted, + Fisher.

    Loss (EATA Eq. 8 and 9)::

        mean_{selected pixels} H / exp(H - E0)
            + beta * sum_i F_i (theta_i - theta0_i)^2

    Selected pixels have entropy ``H < E0`` (Eq. 6) and lie in an image
    whose mean prediction has cosine similarity ``< epsilon`` to the moving
    average of the previously selected images' mean predictions (Eq. 7).
    When no pixel is selected the step is skipped altogether (EATA calls no
    backward then): not even the optimizer's momentum moves the weights.

    With ``fisher_file=None`` this is EATA's "ETA" variant (filters and
    weights, no anti-forgetting regulariser).

    Args:
        model (nn.Module): The segmentor, source weights loaded.
        e0_factor (float): ``E0 = e0_factor * ln C`` (Eq. 6). Defaults to
            0.4 (EATA's ``e_margin``).
        redundancy_margin (float): epsilon of Eq. 7: an image is redundant
            when the cosine similarity of its mean prediction to the moving
            average is at least this. Defaults to 0.05 (EATA's
            ``d_margin``, tuned on 1000 ImageNet classes).
        average_momentum (float): Weight of the new images in the moving
            average of predictions. Defaults to 0.1 (EATA's
            ``update_model_probs``: ``0.9 * old + 0.1 * new``).
        fisher_file (str, optional): Fisher file from
            ``tools/compute_fisher.py``. Defaults to None (ETA).
        fisher_alpha (float): beta of Eq. 9. Defaults to 2000 (EATA's
            ``fisher_alpha``).
        optimizer (dict): Optimizer config. Defaults to TENT's (Adam,
            lr 6e-5/8): EATA's paper uses TENT's optimizer.
        **kwargs: Passed to :class:`TTAMethod`.
    """

    def __init__(self,
                 model: nn.Module,
                 e0_factor: float = 0.4,
                 redundancy_margin: float = 0.05,
                 average_momentum: float = 0.1,
                 fisher_file: Optional[str] = None,
                 fisher_alpha: float = 2000.0,
                 optimizer: dict = EATA_OPTIMIZER,
                 **kwargs) -> None:
        if not 0 < average_momentum <= 1:
            raise ValueError(f'average_momentum={average_momentum}: must be '
                             'in (0, 1], EATA uses 0.1')
        self.threshold = entropy_threshold(model.num_classes, e0_factor)
        self.redundancy_margin = redundancy_margin
        self.average_momentum = average_momentum
        self.fisher_alpha = fisher_alpha
        # Moving average of selected images' mean predictions, (C, ).
        self.average_prediction: Optional[Tensor] = None
        self._num_selected = 0
        super().__init__(model, optimizer=optimizer, **kwargs)
        self.stats['skipped_filtered'] = 0
        # theta0 of Eq. 9: the weights as loaded (the hook builds the
        # method after the checkpoint is loaded).
        self.theta0 = {n: p.detach().clone() for n, p in self.named_params}
        data = load_fisher(fisher_file, self.named_params)
        self.fisher = None if data is None else data['fisher']
        if data is not None:
            self._check_fisher_weights(fisher_file, data.get('params', {}))

    # configure_norms and collect_params: TENT's (batch statistics, BN
    # scale and shift), which EATA builds on.

    def loss(self, logits: Tensor) -> Tensor:
        """Re-weighted entropy of the selected pixels, plus the Fisher term.

        Also advances the moving average with the images that pass.

        Args:
            logits (Tensor): Decoder logits, shape (N, C, h, w).

        Returns:
            Tensor: Scalar loss.
        """
        entropy = entropy_map(logits)  # (N, h, w)
        reliable = entropy < self.threshold  # Eq. 6
        image_probs = logits.detach().softmax(1).mean(dim=(2, 3))  # (N, C)
        novel = self.non_redundant(image_probs) & reliable.flatten(1).any(1)
        self._update_average(image_probs[novel])
        selected = reliable & novel[:, None, None]
        self._num_selected = int(selected.sum())
        if self._num_selected == 0:  # no step follows, see update()
            return entropy.sum() * 0.0
        # 1 / exp(H - E0), a constant weight (Eq. 8; detached in EATA).
        weight = torch.exp(self.threshold - entropy.detach())
        loss = (entropy * weight)[selected].mean()
        if self.fisher is not None:  # Eq. 9
            loss = loss + self.fisher_alpha * fisher_penalty(
                self.fisher, self.named_params, self.theta0)
        return loss

    # --- EATA's filters and state ----------------------------------------
    def non_redundant(self, image_probs: Tensor) -> Tensor:
        """Whether each image's mean prediction is new (Eq. 7).

        Args:
            image_probs (Tensor): Mean softmax per image, shape (N, C).

        Returns:
            Tensor: Bool, shape (N, ); all True before any image passed.
        """
        if self.average_prediction is None:
            return torch.ones(
                image_probs.shape[0],
                dtype=torch.bool,
                device=image_probs.device)
        similarity = F.cosine_similarity(
            image_probs, self.average_prediction[None], dim=1)
        return similarity.abs() < self.redundancy_margin

    def _update_average(self, probs: Tensor) -> None:
        """EATA's ``update_model_probs`` with the passing images (M, C)."""
        if probs.shape[0] == 0:
            return
        new = probs.mean(0)
        if self.average_prediction is None:
            self.average_prediction = new
        else:
            m = self.average_momentum
            self.average_prediction = (1 - m) * self.average_prediction \
                + m * new

    def update(self, loss: Tensor) -> None:
        """Step only when some pixel was selected (exactly no update else).

        A zero loss would still let Adam's momentum move the weights.
        """
        if self._num_selected > 0:
            super().update(loss)
            return
        self.stats['steps'] += 1
        self.stats['skipped_filtered'] += 1

    def state_dict(self) -> Dict[str, Any]:
        """Model, optimizer and the moving average of predictions."""
        state = super().state_dict()
        state['average_prediction'] = copy.deepcopy(self.average_prediction)
        return state

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` exactly."""
        super().load_state_dict(state)
        self.average_prediction = copy.deepcopy(state['average_prediction'])

    def _check_fisher_weights(self, fisher_file: str,
                              params: Dict[str, Tensor]) -> None:
        """Warn when the Fisher was computed for other source weights."""
        differ = [
            n for n, p in self.theta0.items()
            if n in params and not torch.equal(params[n], p.cpu())
        ]
        if differ:
            MMLogger.get_current_instance().warning(
                f'Fisher file {fisher_file} was computed for other weights '
                f'({len(differ)} parameters differ, e.g. {differ[0]}); '
                'recompute it for this checkpoint')
