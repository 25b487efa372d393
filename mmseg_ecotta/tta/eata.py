"""EATA: sample-efficient entropy minimisation with an anti-forgetting term.

Niu et al., Efficient Test-Time Model Adaptation without Forgetting,
ICML 2022 (https://arxiv.org/abs/2204.02610); reference code
mr-eggplant/EATA (ImageNet classification).

The segmentation version is ours. EATA's sample is an image of one of 1000
classes; here a **pixel** is the sample of both filters: reliable pixels
have entropy below ``E0`` (Eq. 6), and a reliable pixel is redundant when
its softmax is too similar to the moving average of the pixels selected
before (Eq. 7), i.e. when its class is over-represented in what the model
has recently adapted on. The margin of Eq. 7 is scaled to the number of
classes (:func:`scaled_redundancy_margin`). The paper's image-level
redundancy test, applied to an image's pixel-averaged softmax, is kept as
``redundancy='image'``: street scenes all have about the same mean class
distribution, so it rejects almost every image (configs/eata/README.md).
"""
import copy
import math
from typing import Any, Dict, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.logging import MMLogger
from torch import Tensor

from ..registry import TTA_METHODS
from .fisher import fisher_penalty, load_fisher
from .losses import entropy_map, entropy_threshold
from .tent import Tent

# EATA's d_margin (epsilon of Eq. 7), tuned for ImageNet's 1000 classes.
EATA_MARGIN, EATA_NUM_CLASSES = 0.05, 1000
REDUNDANCY_SAMPLES = ('pixel', 'image')


def scaled_redundancy_margin(
        num_classes: int,
        margin: float = EATA_MARGIN,
        reference_classes: int = EATA_NUM_CLASSES) -> float:
    """EATA's epsilon carried over to ``num_classes`` classes.

    A confident prediction of class k has cosine similarity
    ``a_k / |a|`` to the moving average ``a``: ``1 / sqrt(C)`` when ``a``
    is uniform. EATA's 0.05 at C = 1000 is 1.58 times that level; keeping
    the same ratio gives ``margin * sqrt(reference_classes / C)`` (0.363
    for Cityscapes' 19 classes). A sample then counts as redundant when its
    class holds more than that share of the average's norm.
    """
    if num_classes < 2:
        raise ValueError(f'num_classes={num_classes}: need at least 2')
    return margin * math.sqrt(reference_classes / num_classes)


@TTA_METHODS.register_module()
class EATA(Tent):
    """Entropy of reliable, non-redundant pixels, re-weighted, + Fisher.

    Loss (EATA Eq. 8 and 9)::

        mean_{selected pixels} H / exp(H - E0)
            + beta * sum_i F_i (theta_i - theta0_i)^2

    Selected pixels have entropy ``H < E0`` (Eq. 6) and a softmax whose
    cosine similarity to the moving average of the previously selected
    pixels' softmax is ``< epsilon`` (Eq. 7; ``redundancy='pixel'``). With
    ``redundancy='image'`` the test of Eq. 7 is made once per image, on its
    pixel-averaged softmax, and selects all reliable pixels of a novel
    image. When no pixel is selected the loss is None and the step is
    skipped altogether (EATA calls no backward then): not even the
    optimizer's momentum moves the weights; ``stats['skipped_filtered']``
    counts those steps. ``stats['pixels']``, ``['reliable_pixels']`` and
    ``['selected_pixels']`` count what each filter let through.

    With ``fisher_file=None`` this is EATA's "ETA" variant (filters and
    weights, no anti-forgetting regulariser).

    Args:
        model (nn.Module): The segmentor, source weights loaded.
        e0_factor (float): ``E0 = e0_factor * ln C`` (Eq. 6). Defaults to
            0.4 (EATA's ``e_margin``).
        redundancy (str): The sample of the redundancy test, ``'pixel'``
            (ours, chosen on a held-out stream) or ``'image'``. Defaults to
            ``'pixel'``.
        redundancy_margin (float, optional): epsilon of Eq. 7: a sample is
            redundant when the cosine similarity of its softmax to the
            moving average is at least this. Defaults to None:
            :func:`scaled_redundancy_margin` of the model's classes (0.363
            for 19; EATA's 0.05 was tuned on 1000 ImageNet classes).
        average_momentum (float): Weight of the new samples in the moving
            average of predictions. Defaults to 0.1 (EATA's
            ``update_model_probs``: ``0.9 * old + 0.1 * new``).
        fisher_file (str, optional): Fisher file from
            ``tools/compute_fisher.py``. Defaults to None (ETA).
        fisher_alpha (float): beta of Eq. 9. Defaults to 2000 (EATA's
            ``fisher_alpha`` on ImageNet), used as published: the Fisher
            estimator of :func:`~mmseg_ecotta.tta.fisher.compute_fisher`
            is EATA's (squared gradients of batches of 64 images), but the
            parameters, the scale of the entropy term and the optimizer
            differ from EATA's setting, and beta was not re-tuned.
        optimizer (dict): Optimizer config; EATA's paper uses TENT's, as
            ``configs/_base_/tta/eata.py`` does.
        **kwargs: Passed to :class:`TTAMethod`.
    """

    def __init__(self,
                 model: nn.Module,
                 e0_factor: float = 0.4,
                 redundancy: str = 'pixel',
                 redundancy_margin: Optional[float] = None,
                 average_momentum: float = 0.1,
                 fisher_file: Optional[str] = None,
                 fisher_alpha: float = 2000.0,
                 optimizer: Optional[dict] = None,
                 **kwargs) -> None:
        if not 0 < average_momentum <= 1:
            raise ValueError(f'average_momentum={average_momentum}: must be '
                             'in (0, 1], EATA uses 0.1')
        if redundancy not in REDUNDANCY_SAMPLES:
            raise ValueError(f'redundancy={redundancy!r}: choose one of '
                             f'{REDUNDANCY_SAMPLES}')
        self.threshold = entropy_threshold(model.num_classes, e0_factor)
        self.redundancy = redundancy
        self.redundancy_margin = (
            scaled_redundancy_margin(model.num_classes)
            if redundancy_margin is None else redundancy_margin)
        self.average_momentum = average_momentum
        self.fisher_alpha = fisher_alpha
        # Moving average of the selected samples' softmax, (C, ).
        self.average_prediction: Optional[Tensor] = None
        super().__init__(model, optimizer=optimizer, **kwargs)
        self.stats.update(
            skipped_filtered=0, pixels=0, reliable_pixels=0, selected_pixels=0)
        # theta0 of Eq. 9: the weights as loaded (the hook builds the
        # method after the checkpoint is loaded).
        self.theta0 = {n: p.detach().clone() for n, p in self.named_params}
        data = load_fisher(fisher_file, self.named_params)
        self.fisher = None if data is None else data['fisher']
        if data is not None:
            self._check_fisher_weights(fisher_file, data.get('params', {}))

    # configure_norms and collect_params: TENT's (batch statistics in BN
    # layers; the scale and shift of every BN, LayerNorm and GroupNorm
    # layer), which EATA builds on; the Fisher covers the same parameters.

    def loss(self, logits: Tensor, inputs: Tensor) -> Optional[Tensor]:
        """Re-weighted entropy of the selected pixels, plus the Fisher term.

        Also advances the moving average with the selected samples.

        Args:
            logits (Tensor): Decoder logits, shape (N, C, h, w).
            inputs (Tensor): The batch (unused).

        Returns:
            Tensor | None: Scalar loss; None when no pixel was selected
            (no step: a zero loss would still let Adam's momentum move
            the weights).
        """
        entropy = entropy_map(logits)  # (N, h, w)
        reliable = entropy < self.threshold  # Eq. 6
        probs = logits.detach().softmax(1)
        if self.redundancy == 'pixel':
            pixel_probs = probs.permute(0, 2, 3, 1)  # (N, h, w, C)
            novel = self.non_redundant(pixel_probs[reliable])  # (M, )
            selected = reliable.clone()
            selected[reliable] = novel
            self._update_average(pixel_probs[selected])
        else:
            image_probs = probs.mean(dim=(2, 3))  # (N, C)
            novel = self.non_redundant(image_probs) & reliable.flatten(1).any(
                1)
            self._update_average(image_probs[novel])
            selected = reliable & novel[:, None, None]
        num_reliable, num_selected = torch.stack(
            [reliable.sum(), selected.sum()]).tolist()  # one device sync
        self.stats['pixels'] += reliable.numel()
        self.stats['reliable_pixels'] += num_reliable
        self.stats['selected_pixels'] += num_selected
        if not num_selected:
            return None
        # 1 / exp(H - E0), a constant weight (Eq. 8; detached in EATA).
        weight = torch.exp(self.threshold - entropy.detach())
        loss = (entropy * weight)[selected].mean()
        if self.fisher is not None:  # Eq. 9
            loss = loss + self.fisher_alpha * fisher_penalty(
                self.fisher, self.named_params, self.theta0)
        return loss

    # --- EATA's filters and state ----------------------------------------
    def non_redundant(self, probs: Tensor) -> Tensor:
        """Whether each sample's softmax is new (Eq. 7).

        Args:
            probs (Tensor): Softmax per sample, shape (M, C).

        Returns:
            Tensor: Bool, shape (M, ); all True before any sample passed.
        """
        if self.average_prediction is None:
            return torch.ones(
                probs.shape[0], dtype=torch.bool, device=probs.device)
        similarity = F.cosine_similarity(
            probs, self.average_prediction[None], dim=1)
        return similarity.abs() < self.redundancy_margin

    def _update_average(self, probs: Tensor) -> None:
        """EATA's ``update_model_probs`` with the passing samples (M, C)."""
        if probs.shape[0] == 0:
            return
        new = probs.mean(0)
        if self.average_prediction is None:
            self.average_prediction = new
        else:
            m = self.average_momentum
            self.average_prediction = (1 - m) * self.average_prediction \
                + m * new

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
