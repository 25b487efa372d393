"""What every EcoTTA meta backbone shares (Song et al., CVPR 2023).

EcoTTA: Memory-Efficient Continual Test-time Adaptation via
Self-distilled Regularization, https://arxiv.org/abs/2303.01904

A meta backbone cuts its frozen encoder into K partitions ``f_k`` and gives
each a :class:`MetaNet`; the partition's output becomes

    x_k = meta_bn(f_k(x_{k-1})) + conv_block(x_{k-1})

:class:`PartitionRecorder` collects ``(x_k, f_k(x_{k-1}))`` per partition
for the self-distilled regulariser. :class:`MetaResNet` and
:class:`MetaMixVisionTransformer` are the two backbones.
"""
import contextlib
from typing import Iterator, List, Optional, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule

# Per partition, its meta-adapted and its frozen output of one forward.
PartitionPairs = List[Tuple[torch.Tensor, torch.Tensor]]


class MetaNet(nn.Module):
    """One partition's meta network: a conv block and a ``meta_bn``.

    Initialised as in the paper (BN scale 1, Kaiming conv): ``meta_bn`` in
    eval mode is the identity up to ``1/sqrt(1 + eps)``, but the conv block
    adds ReLU features from the start, so an *un-warmed* meta network
    changes the source model's output. That is why EcoTTA warms the meta
    networks up on source data before deployment. (A silent start is not
    an option here: a zero BN scale before the ReLU would also zero every
    gradient of the block, since ReLU'(0) = 0.)

    Args:
        in_channels (int): Channels of the partition's input.
        out_channels (int): Channels of the partition's output.
        stride (int): The partition's total downsampling.
        kernel_size (int): Conv kernel size (3 in the authors' sample).
        dilation (int): Conv dilation. Defaults to 1.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 stride: int,
                 kernel_size: int,
                 dilation: int = 1) -> None:
        super().__init__()
        self.conv_block = ConvModule(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=dilation * (kernel_size // 2),
            dilation=dilation,
            bias=False,
            norm_cfg=dict(type='BN'),
            act_cfg=dict(type='ReLU'))
        self.meta_bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor,
                frozen_out: torch.Tensor) -> torch.Tensor:
        """Combine the frozen partition's output with the meta branch.

        Args:
            x (Tensor): Partition input, shape (N, C_in, H, W).
            frozen_out (Tensor): ``f_k(x)``, shape (N, C_out, H', W').

        Returns:
            Tensor: ``meta_bn(frozen_out) + conv_block(x)``.
        """
        return self.meta_bn(frozen_out) + self.conv_block(x)


def check_meta_kernel_size(meta_kernel_size: int) -> int:
    """Return ``meta_kernel_size`` or raise if it is not positive and odd.

    An odd kernel with padding ``k // 2`` gives every stride the output
    size ``floor((H - 1) / stride) + 1``, that of the frozen partition.
    """
    if meta_kernel_size < 1 or meta_kernel_size % 2 == 0:
        raise ValueError(f'meta_kernel_size={meta_kernel_size} must be '
                         'a positive odd number (e.g. 1 or 3)')
    return meta_kernel_size


class PartitionRecorder:
    """Mixin of meta backbones: record each partition's two outputs.

    The backbone's forward calls :meth:`_record` once per partition; the
    pairs are kept only inside a :meth:`recording_partitions` block.
    """

    # The list recording_partitions() fills; None outside its block.
    _partition_record: Optional[PartitionPairs] = None
    _record_detached: bool = False

    def _record(self, meta_net: MetaNet, x: torch.Tensor, frozen: torch.Tensor,
                adapted: torch.Tensor) -> None:
        """Record ``(adapted, frozen)`` of one partition if recording."""
        if self._partition_record is None:
            return
        if self._record_detached:
            adapted = meta_net(x.detach(), frozen.detach())
        self._partition_record.append((adapted, frozen))

    @contextlib.contextmanager
    def recording_partitions(self,
                             detach_inputs: bool = False
                             ) -> Iterator[PartitionPairs]:
        """Collect ``(adapted, frozen)`` per partition of a forward.

        For the self-distilled regulariser, without a second forward::

            with backbone.recording_partitions() as pairs:
                feats = backbone(x)
            loss = self_distillation_loss(pairs)

        The pairs hold activations: nothing is recorded outside the block.

        Args:
            detach_inputs (bool): Record ``meta_net(x.detach(),
                frozen.detach())`` as the adapted output, so that each
                partition's regulariser term trains only its own meta
                network (the authors' sample code), at one more meta-network
                forward per partition. Default False: the forward's own
                ``x_k``, whose gradient also reaches earlier meta networks.

        Yields:
            list[tuple[Tensor, Tensor]]: Filled by the forward(s) in the
            block, per partition ``(adapted, frozen)``, (N, C, H, W) each.
        """
        if self._partition_record is not None:
            raise RuntimeError('recording_partitions() is already active')
        self._partition_record = pairs = []
        self._record_detached = detach_inputs
        try:
            yield pairs
        finally:
            self._partition_record = None
            self._record_detached = False


def check_images(x: torch.Tensor, channels: int, owner: str) -> None:
    """Raise unless ``x`` is a non-empty float (N, channels, H, W).

    Args:
        x (Tensor): The backbone's input.
        channels (int): Channels its first layer takes.
        owner (str): The backbone's class name, for the message.
    """
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        kind = x.dtype if isinstance(x, torch.Tensor) else type(x)
        raise TypeError(f'{owner} takes float images, got {kind}: '
                        'normalise them first (the data preprocessor does)')
    if x.ndim != 4 or x.shape[1] != channels or x.numel() == 0:
        raise ValueError(
            f'{owner} takes images of shape (N, {channels}, H, W), got '
            f'{tuple(x.shape)}: add the batch dimension (x[None]) or '
            'convert grayscale/RGBA images to 3 channels')
