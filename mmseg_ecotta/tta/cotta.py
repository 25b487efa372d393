"""CoTTA: mean teacher, augmentation-averaged pseudo-labels, restore.

Wang et al., Continual Test-Time Domain Adaptation, CVPR 2022
(https://arxiv.org/abs/2203.13591). Two recipes exist, both by the
authors: the segmentation one (Cityscapes -> ACDC, an mmseg 0.x fork) and
the classification one (CIFAR-10/100-C, qinenergy/cotta). They differ in
how the three networks normalise and in the pseudo-label; see
:data:`COTTA_RECIPES`.

The segmentation release runs on SegFormer-B5 and trains every parameter
of the student (``param.requires_grad`` all, the MiT encoder included),
restoring each weight and bias stochastically; that is ``trainable='all'``
here, on any segmentor. Its SegFormer (NVlabs' MiT) holds weights and
biases only; mmseg 1.x's MiT names its attention projections
``in_proj_weight``/``in_proj_bias``, and they are trained and restored like
every other parameter, as the release does with its ``q``/``kv`` layers.
"""
import copy
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.models.segmentors import EncoderDecoder
from mmseg.models.utils import resize
from torch import Tensor

from ..models.norm import convert_batchnorms, norm_affine_params
from ..registry import TTA_METHODS
from .base import NamedParams, TTAMethod, model_name
from .losses import hard_label_cross_entropy, soft_label_cross_entropy

# CoTTA's multi-scale + flip test-time augmentation: 7 scales x 2 = 14.
COTTA_SCALES = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0)
# recipe -> (BN norm_mode of student, teacher and anchor, pseudo-label,
# a fresh optimizer per domain).
COTTA_RECIPES = {
    # Segmentation release: all three networks in eval mode (stored BN
    # statistics); the student learns the teacher's hard (argmax) labels
    # with cross-entropy at the resolution the labels are predicted at
    # (the input's here). A new Adam for every domain of every round: its
    # tools/cotta.py calls single_gpu_cotta once per domain, and that
    # function builds the optimizer (``optimizer = torch.optim.Adam(
    # param_list, lr=0.00006/8, betas=(0.9, 0.999))``) before its loop.
    'segmentation': ('source', 'hard', True),
    # CIFAR code: BN in train mode (test-batch statistics) before the
    # copies are taken; the student matches the teacher's soft label. One
    # optimizer for the whole stream (setup_cotta builds it once).
    'cifar': ('batch', 'soft', False),
}


@TTA_METHODS.register_module()
class CoTTA(TTAMethod):
    """Student-teacher adaptation with stochastic restore to the source.

    Per test batch: the frozen anchor (source model) gives a confidence map
    (max softmax, per pixel); the EMA teacher predicts every augmented
    view; where the anchor's confidence is below ``anchor_threshold`` the
    pseudo-label is the teacher's view average, elsewhere its plain
    prediction (CoTTA Eq. 4, per pixel). The student is trained towards
    that pseudo-label, the teacher follows the student by EMA, and each
    trainable element is restored to its source value with probability
    ``restore_prob``. The scored prediction is the pseudo-label itself
    (CoTTA reports the teacher's prediction). Each network runs once per
    view: the plain teacher prediction is the unflipped scale-1 view.

    ``recipe`` picks the authors' segmentation or CIFAR setting
    (:data:`COTTA_RECIPES`):

    - ``'segmentation'`` (default, as in CoTTA's Cityscapes -> ACDC
      release): student, teacher and anchor normalise with the stored BN
      statistics; view predictions are resized to the input resolution
      (logits, then softmax, as mmseg's test-time augmentation does), and
      the student minimises the cross-entropy of its upsampled logits to
      the argmax of the pseudo-label. The optimizer starts afresh at every
      domain boundary (the release builds its Adam inside
      ``single_gpu_cotta``, which ``tools/cotta.py`` calls once per domain
      of every round: 40 new optimizers over 10 rounds); the weights, the
      teacher and the anchor carry on.
    - ``'cifar'`` (CoTTA's CIFAR code): all three normalise with the test
      batch's statistics; the pseudo-label stays a probability map at the
      decoder resolution and the student minimises the cross-entropy to
      it (``-(q * log_softmax(student)).sum(1).mean()``). One optimizer for
      the whole stream.

    mmseg's ``TestTimeAug`` builds views in the data pipeline (one sample
    becomes many) and ``SegTTAModel`` averages them; the stream delivers
    one view per sample, so the views are built here as tensor ops on the
    normalised batch (resize, flip) and averaged as ``merge_preds`` does
    (softmax, mean).

    The teacher and the anchor are copies of the model taken in
    ``__init__``; :class:`TestTimeAdaptationHook` builds the method after
    the checkpoint is loaded, so both hold the source weights. Memory: three
    copies of the network; that is the method.

    Args:
        model (EncoderDecoder): The segmentor, source weights loaded.
        recipe (str): ``'segmentation'`` or ``'cifar'``, see above.
            Defaults to ``'segmentation'``.
        trainable (str | Sequence[str]): ``'all'`` (CoTTA's release, on
            DeepLab and SegFormer alike), ``'norm'`` (the scale and shift
            of every BN, LayerNorm and GroupNorm layer, TENT's set),
            ``'bn'`` (BN scale and shift only) or parameter-name prefixes,
            e.g. ``['backbone.layer1', 'decode_head']``. Defaults to
            ``'all'``.
        ema_momentum (float): Teacher EMA ``alpha`` (CoTTA Eq. 2). Defaults
            to 0.999.
        anchor_threshold (float): Anchor confidence below which the
            augmentation average is used (CoTTA Eq. 4, ``ap``). Defaults to
            0.69 (CoTTA's segmentation setting: the 5% quantile of the
            source model's confidence on Cityscapes was 0.74).
        restore_prob (float): Per-element stochastic restore probability
            ``p`` (CoTTA Eq. 5-6). Defaults to 0.01.
        aug_scales (Sequence[float]): View scales. Defaults to
            0.5 .. 2.0 in steps of 0.25.
        aug_flip (bool): Add the horizontally flipped view of every scale.
            Defaults to True (14 views).
        optimizer (dict): Optimizer config; CoTTA's (Adam, lr 6e-5/8) is in
            ``configs/_base_/tta/cotta.py``.
        optimizer_per_domain (bool, optional): A fresh optimizer at every
            domain boundary (:meth:`TTAMethod.segment_started`); False keeps
            one for the whole stream. Defaults to None: the recipe's (True
            for ``'segmentation'``, False for ``'cifar'``).
        **kwargs: Passed to :class:`TTAMethod`.
    """

    def __init__(self,
                 model: EncoderDecoder,
                 recipe: str = 'segmentation',
                 trainable: Union[str, Sequence[str]] = 'all',
                 ema_momentum: float = 0.999,
                 anchor_threshold: float = 0.69,
                 restore_prob: float = 0.01,
                 aug_scales: Sequence[float] = COTTA_SCALES,
                 aug_flip: bool = True,
                 optimizer: Optional[dict] = None,
                 optimizer_per_domain: Optional[bool] = None,
                 **kwargs) -> None:
        if recipe not in COTTA_RECIPES:
            raise ValueError(f'unknown CoTTA recipe {recipe!r}; choose one '
                             f'of {sorted(COTTA_RECIPES)}')
        if not 0 <= ema_momentum <= 1:
            raise ValueError(f'ema_momentum={ema_momentum}: must be in '
                             '[0, 1], CoTTA uses 0.999')
        if not 0 <= restore_prob <= 1:
            raise ValueError(f'restore_prob={restore_prob}: must be in '
                             '[0, 1], CoTTA uses 0.01')
        if not aug_scales or min(aug_scales) <= 0:
            raise ValueError(f'aug_scales={aug_scales!r}: give positive '
                             f'scales, CoTTA uses {COTTA_SCALES}')
        self.recipe = recipe
        self.norm_mode, self.label_kind, per_domain = COTTA_RECIPES[recipe]
        if optimizer_per_domain is None:
            optimizer_per_domain = per_domain
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
        super().__init__(
            model,
            optimizer=optimizer,
            optimizer_per_domain=optimizer_per_domain,
            **kwargs)
        teacher_params = dict(self.teacher.named_parameters())
        anchor_params = dict(self.anchor.named_parameters())
        self._teacher_params = [
            teacher_params[n] for n, _ in self.named_params
        ]
        self._anchor_params = [anchor_params[n] for n, _ in self.named_params]

    def settings(self) -> Dict[str, Any]:
        """Whether the optimizer restarts per domain (recipe-dependent)."""
        return dict(optimizer_per_domain=self.optimizer_per_domain)

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
        """Student, teacher and anchor alike: stored or batch statistics."""
        for net in (model, self.teacher, self.anchor):
            convert_batchnorms(net, self.norm_mode)

    def collect_params(self, model: nn.Module) -> NamedParams:
        """Every parameter (CoTTA), norm affine, or by name prefix.

        Raises:
            ValueError: ``trainable`` is unknown or selects nothing.
        """
        named = list(model.named_parameters())
        if self.trainable == 'all':
            return named
        if self.trainable in ('norm', 'bn'):
            chosen = norm_affine_params(
                model, batchnorm_only=self.trainable == 'bn')
            if not chosen:
                raise ValueError(
                    f'trainable={self.trainable!r}: {model_name(model)} has '
                    f'no {"BN" if self.trainable == "bn" else "norm"} layer '
                    'with affine parameters, so CoTTA would adapt nothing; '
                    "use trainable='all' (CoTTA's) or name parameter-name "
                    'prefixes')
            return chosen
        if isinstance(self.trainable, str):
            raise ValueError(
                f"trainable={self.trainable!r}: use 'all', 'bn', 'norm' or "
                "a list of parameter-name prefixes, e.g. ['decode_head']")
        prefixes = tuple(self.trainable)
        chosen = [(n, p) for n, p in named if n.startswith(prefixes)]
        if not chosen:
            raise ValueError(
                f'trainable={list(prefixes)} matches no parameter; names '
                f'start with {sorted({n.split(".")[0] for n, _ in named})}')
        return chosen

    def forward(self, inputs: Tensor) -> Tuple[Tensor, Dict[str, Any]]:
        """The teacher's pseudo-label first, then the student's logits."""
        with torch.no_grad():
            pseudo_label = self.teacher_prediction(inputs)
        return self.decode(inputs), dict(pseudo_label=pseudo_label)

    def loss(self, logits: Tensor, inputs: Tensor,
             pseudo_label: Tensor) -> Tensor:
        """Cross-entropy of the student to the pseudo-label.

        Args:
            logits (Tensor): The student's decoder logits, (N, C, h, w).
            inputs (Tensor): The batch (unused).
            pseudo_label (Tensor): :meth:`teacher_prediction` of the batch.

        Returns:
            Tensor: Scalar loss: to the argmax of the pseudo-label at its
            (input) resolution, the student's logits upsampled as mmseg's
            decode-head loss does (``'segmentation'``), or to the soft
            pseudo-label at the decoder resolution (``'cifar'``, CoTTA's
            ``softmax_entropy(x, x_ema)``).
        """
        if self.label_kind == 'soft':
            return soft_label_cross_entropy(logits, pseudo_label)
        labels = pseudo_label.argmax(dim=1)  # (N, H, W)
        logits = resize(
            logits,
            size=labels.shape[1:],
            mode='bilinear',
            align_corners=self.model.align_corners)
        return hard_label_cross_entropy(logits, labels)

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
            Tensor: Class probabilities, shape (N, C, H, W) at the input
            resolution (``'segmentation'``) or (N, C, h, w) at the decoder
            resolution of the plain view (``'cifar'``).
        """
        align = self.model.align_corners
        plain = self._decode(self.teacher, inputs)
        size = inputs.shape[2:] if self.label_kind == 'hard' \
            else plain.shape[2:]

        def at_size(logits: Tensor) -> Tensor:
            if logits.shape[2:] == size:
                return logits
            return F.interpolate(
                logits, size=size, mode='bilinear', align_corners=align)

        plain = at_size(plain)
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
                logits = at_size(self._decode(self.teacher, view))
                if flip:
                    logits = logits.flip(-1)
            average += logits.softmax(dim=1)
        average /= len(self.views)
        confidence = at_size(self._decode(self.anchor,
                                          inputs)).softmax(dim=1).amax(dim=1)
        unsure = (confidence < self.anchor_threshold)[:, None]
        return torch.where(unsure, average, plain.softmax(dim=1))

    def prediction(self, inputs: Tensor, logits: Tensor, restored: bool,
                   pseudo_label: Tensor) -> Tensor:
        """Log-probabilities of the pseudo-label (CoTTA scores the teacher).

        Returns:
            Tensor: Shape as :meth:`teacher_prediction`'s.
        """
        if restored:
            # The teacher came back with the student (guarded_tensors):
            # predict with the restored one.
            with torch.no_grad():
                pseudo_label = self.teacher_prediction(inputs)
        tiny = torch.finfo(pseudo_label.dtype).tiny
        return pseudo_label.clamp_min(tiny).log()

    @property
    def predicting_network(self) -> nn.Module:
        """The EMA teacher: what CoTTA predicts with and one would deploy."""
        return self.teacher

    @property
    def extra_networks(self) -> List[nn.Module]:
        """The teacher and the anchor: two more copies of the network."""
        return [self.teacher, self.anchor]

    def guarded_tensors(self) -> List[Tensor]:
        """The student's trainable parameters and the teacher's copies.

        The teacher follows the student after every step (EMA), so undoing
        a step that broke the student must undo the teacher's share too.
        """
        return super().guarded_tensors() + self._teacher_params

    @torch.no_grad()
    def after_update(self, inputs: Tensor, logits: Tensor) -> None:
        """EMA teacher update, then stochastic restore of the student.

        In this order, as the release (``update_ema_variables`` before the
        restore loop): the teacher takes the updated student, not the
        restored one.
        """
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
