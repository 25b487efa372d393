"""CoTTA: mean teacher, augmentation-averaged pseudo-labels, restore.

Wang et al., Continual Test-Time Domain Adaptation, CVPR 2022
(https://arxiv.org/abs/2203.13591); code after qinenergy/cotta.
"""
import copy
from typing import Any, Dict, List, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.models.segmentors import EncoderDecoder
from torch import Tensor

from ..models.norm import TTABatchNorm2d, convert_batchnorms
from ..registry import TTA_METHODS
from .base import NamedParams, TTAMethod

# CoTTA's Cityscapes->ACDC settings: Adam, lr 6e-5 / 8 (batch size 1).
COTTA_OPTIMIZER = dict(type='Adam', lr=6e-5 / 8, betas=(0.9, 0.999))
# CoTTA's multi-scale + flip test-time augmentation: 7 scales x 2 = 14.
COTTA_SCALES = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0)


@TTA_METHODS.register_module()
class CoTTA(TTAMethod):
    """Student-teacher adaptation with stochastic restore to the source.

    Per test batch: the frozen anchor (source model) gives a confidence map
    (max softmax); the EMA teacher predicts every augmented view; where
    the anchor's confidence is below ``anchor_threshold`` the pseudo-label
    is the teacher's view-averaged probability, elsewhere its plain
    prediction. The student minimises the cross-entropy to that soft label,
    the teacher follows the student by EMA, and each trainable element is
    restored to its source value with probability ``restore_prob``. The
    scored prediction is the pseudo-label itself (CoTTA's segmentation
    code reports the teacher's prediction). Each network runs once per
    view: the plain teacher prediction is the unflipped scale-1 view.

    mmseg's ``TestTimeAug`` builds views in the data pipeline (one sample
    becomes many) and ``SegTTAModel`` averages them; the stream delivers
    one view per sample, so the views are built here as tensor ops on the
    normalised batch (resize, flip) and averaged as ``merge_preds`` does
    (softmax, mean).

    The teacher and the anchor are copies of the model taken in
    ``__init__``; :class:`TestTimeAdaptationHook` builds the method after
    the checkpoint is loaded, so both hold the source weights. Memory: three
    copies of the network; that is the method. All three normalise with
    test-batch statistics (CoTTA's ``configure_model`` puts BN in train
    mode before copying).

    Args:
        model (EncoderDecoder): The segmentor, source weights loaded.
        trainable (str | Sequence[str]): ``'all'`` (CoTTA), ``'bn'`` (BN
            scale and shift) or parameter-name prefixes, e.g.
            ``['backbone.layer1', 'decode_head']``. Defaults to ``'all'``.
        ema_momentum (float): Teacher EMA ``alpha`` (CoTTA Eq. 2). Defaults
            to 0.999.
        anchor_threshold (float): Anchor confidence below which the
            augmentation average is used (CoTTA Eq. 4, ``ap``). Defaults to
            0.69 (CoTTA's segmentation setting).
        restore_prob (float): Per-element stochastic restore probability
            ``p`` (CoTTA Eq. 5-6). Defaults to 0.01.
        aug_scales (Sequence[float]): View scales. Defaults to
            0.5 .. 2.0 in steps of 0.25.
        aug_flip (bool): Add the horizontally flipped view of every scale.
            Defaults to True (14 views).
        optimizer (dict): Defaults to Adam, lr 6e-5/8, betas (0.9, 0.999).
        **kwargs: Passed to :class:`TTAMethod`.
    """

    def __init__(self,
                 model: EncoderDecoder,
                 trainable: Union[str, Sequence[str]] = 'all',
                 ema_momentum: float = 0.999,
                 anchor_threshold: float = 0.69,
                 restore_prob: float = 0.01,
                 aug_scales: Sequence[float] = COTTA_SCALES,
                 aug_flip: bool = True,
                 optimizer: dict = COTTA_OPTIMIZER,
                 **kwargs) -> None:
        if not 0 <= ema_momentum <= 1:
            raise ValueError(f'ema_momentum={ema_momentum}: must be in '
                             '[0, 1], CoTTA uses 0.999')
        if not 0 <= restore_prob <= 1:
            raise ValueError(f'restore_prob={restore_prob}: must be in '
                             '[0, 1], CoTTA uses 0.01')
        if not aug_scales or min(aug_scales) <= 0:
            raise ValueError(f'aug_scales={aug_scales!r}: give positive '
                             f'scales, CoTTA uses {COTTA_SCALES}')
        self.trainable = trainable
        self.ema_momentum = ema_momentum
        self.anchor_threshold = anchor_threshold
        self.restore_prob = restore_prob
        self.views: List[Tuple[float, bool]] = [
            (s, f) for s in aug_scales
            for f in ((False, True) if aug_flip else (False, ))
        ]
        # Source copies, taken before the student is touched.
        self.teacher = self._frozen_copy(model)
        self.anchor = self._frozen_copy(model)
        self._pseudo_label: Tensor = None
        super().__init__(model, optimizer=optimizer, **kwargs)
        teacher_params = dict(self.teacher.named_parameters())
        anchor_params = dict(self.anchor.named_parameters())
        self._teacher_params = [
            teacher_params[n] for n, _ in self.named_params
        ]
        self._anchor_params = [anchor_params[n] for n, _ in self.named_params]

    @staticmethod
    def _frozen_copy(model: nn.Module) -> nn.Module:
        """A copy of ``model`` that autograd never touches, dropout off.

        The test loop's ``model.eval()`` never reaches these copies (they
        are not submodules), and the hook builds the method before it.
        """
        copied = copy.deepcopy(model).eval()
        copied.requires_grad_(False)
        return copied

    # --- the three decisions -------------------------------------------
    def configure_norms(self, model: nn.Module) -> None:
        """Batch statistics in student, teacher and anchor (train-mode BN)."""
        for net in (model, self.teacher, self.anchor):
            convert_batchnorms(net, 'batch')

    def collect_params(self, model: nn.Module) -> NamedParams:
        """Every parameter (CoTTA), BN affine only, or by name prefix."""
        named = list(model.named_parameters())
        if self.trainable == 'all':
            return named
        if self.trainable == 'bn':
            return [(f'{name}.{pname}', p)
                    for name, m in model.named_modules()
                    if isinstance(m, TTABatchNorm2d)
                    for pname, p in m.named_parameters(recurse=False)]
        if isinstance(self.trainable, str):
            raise ValueError(
                f"trainable={self.trainable!r}: use 'all', 'bn' or a list "
                "of parameter-name prefixes, e.g. ['decode_head']")
        prefixes = tuple(self.trainable)
        chosen = [(n, p) for n, p in named if n.startswith(prefixes)]
        if not chosen:
            raise ValueError(
                f'trainable={list(prefixes)} matches no parameter; names '
                f'start with {sorted({n.split(".")[0] for n, _ in named})}')
        return chosen

    def loss(self, logits: Tensor) -> Tensor:
        """Cross-entropy of the student to the teacher's soft label.

        ``-(q * log_softmax(student)).sum(1).mean()`` as CoTTA's
        ``softmax_entropy(x, x_ema)``; ``q`` comes from
        :meth:`teacher_prediction` of the same batch, shape (N, C, h, w).
        """
        return -(self._pseudo_label *
                 logits.log_softmax(dim=1)).sum(dim=1).mean()

    # --- teacher, anchor, EMA, restore -----------------------------------
    @staticmethod
    def _decode(net: EncoderDecoder, inputs: Tensor) -> Tensor:
        """Decoder logits of ``net``, shape (N, C, h, w)."""
        return net.decode_head(net.extract_feat(inputs))

    def teacher_prediction(self, inputs: Tensor) -> Tensor:
        """The pseudo-label: augmentation average where the anchor is unsure.

        Args:
            inputs (Tensor): Normalised images, shape (N, 3, H, W).

        Returns:
            Tensor: Class probabilities at the decoder resolution of the
            plain view, shape (N, C, h, w).
        """
        align = self.model.align_corners
        plain = self._decode(self.teacher, inputs)
        size = plain.shape[2:]
        average = torch.zeros_like(plain)
        for scale, flip in self.views:
            if scale == 1.0 and not flip:
                logits = plain  # the plain prediction is this view
            else:
                view = inputs.flip(-1) if flip else inputs
                if scale != 1.0:
                    view = F.interpolate(
                        view,
                        scale_factor=scale,
                        mode='bilinear',
                        align_corners=align)
                logits = F.interpolate(
                    self._decode(self.teacher, view),
                    size=size,
                    mode='bilinear',
                    align_corners=align)
                if flip:
                    logits = logits.flip(-1)
            average += logits.softmax(dim=1)
        average /= len(self.views)
        confidence = self._decode(self.anchor,
                                  inputs).softmax(dim=1).amax(dim=1)
        unsure = (confidence < self.anchor_threshold)[:, None]
        return torch.where(unsure, average, plain.softmax(dim=1))

    def forward_and_adapt(self, inputs: Tensor) -> Tensor:
        """Teacher and anchor predict, the student adapts to them.

        Returns:
            Tensor: Log-probabilities of the pseudo-label (the scored
            prediction), shape (N, C, h, w).
        """
        with torch.no_grad():
            self._pseudo_label = self.teacher_prediction(inputs)
        changes = self.stats['undone_updates'] + self.stats['nonfinite_resets']
        super().forward_and_adapt(inputs)
        if self.stats['undone_updates'] + self.stats[
                'nonfinite_resets'] != changes:
            # The teacher came back with the student (guarded_tensors):
            # predict with the restored one.
            with torch.no_grad():
                self._pseudo_label = self.teacher_prediction(inputs)
        tiny = torch.finfo(self._pseudo_label.dtype).tiny
        return self._pseudo_label.clamp_min(tiny).log()

    def guarded_tensors(self) -> List[Tensor]:
        """The student's trainable parameters and the teacher's copies.

        The teacher follows the student after every step (EMA), so undoing
        a step that broke the student must undo the teacher's share too.
        """
        return super().guarded_tensors() + self._teacher_params

    @torch.no_grad()
    def after_update(self, inputs: Tensor, logits: Tensor) -> None:
        """EMA teacher update, then stochastic restore of the student."""
        m = self.ema_momentum
        for teacher, (_, student) in zip(self._teacher_params,
                                         self.named_params):
            # teacher = m * teacher + (1 - m) * student (CoTTA Eq. 2)
            teacher.copy_(m * teacher + (1 - m) * student)
        if self.restore_prob == 0:
            return
        for source, (_, student) in zip(self._anchor_params,
                                        self.named_params):
            restore = torch.rand_like(student) < self.restore_prob
            student.copy_(torch.where(restore, source, student))

    def state_dict(self) -> Dict[str, Any]:
        """Student, optimizer and teacher (the anchor is read-only)."""
        state = super().state_dict()
        state['teacher'] = copy.deepcopy(self.teacher.state_dict())
        return state

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` exactly."""
        super().load_state_dict(state)
        self.teacher.load_state_dict(state['teacher'])
