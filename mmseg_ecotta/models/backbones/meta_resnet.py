"""ResNet with EcoTTA meta networks (Song et al., CVPR 2023).

EcoTTA: Memory-Efficient Continual Test-time Adaptation via
Self-distilled Regularization, https://arxiv.org/abs/2303.01904

The original ResNet is frozen and its residual blocks are cut into K
partitions of consecutive blocks. Each partition ``f_k`` gets a small meta
network: a conv block ``Conv(kxk, stride) -> BN -> ReLU`` reading the
partition's input, and a ``meta_bn`` on the frozen partition's output:

    x_k = meta_bn(f_k(x_{k-1})) + conv_block(x_{k-1})

Only the meta networks train. The original layers keep their stock names
(``stem.*``, ``layerN.M.*``), so stock mmseg checkpoints load unchanged and
the meta networks appear as new keys ``meta_nets.{k}.*``.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmseg.models.backbones import ResNet
from mmseg.registry import MODELS

from .meta_net import (MetaNet, PartitionRecorder, check_images,
                       check_meta_kernel_size)

# Blocks per partition. The R50 presets are those of the public community
# port of EcoTTA (classification), which gives them as the paper's appendix
# table; they are not from the authors' sample code. Shallow blocks are cut
# more finely because weather is a low-level shift. The other depths follow
# the same rule (ours).
PARTITION_PRESETS: Dict[int, Dict[int, Tuple[int, ...]]] = {
    18: {
        4: (2, 2, 2, 2),
        5: (1, 1, 2, 2, 2)
    },
    34: {
        4: (3, 3, 5, 5),
        5: (2, 2, 4, 4, 4)
    },
    50: {
        4: (3, 3, 5, 5),
        5: (2, 2, 4, 4, 4)
    },
    101: {
        4: (3, 5, 12, 13),
        5: (2, 2, 5, 12, 12)
    },
    152: {
        4: (3, 8, 19, 20),
        5: (2, 3, 8, 18, 19)
    },
}


@MODELS.register_module()
class MetaResNet(PartitionRecorder, ResNet):
    """mmseg ResNet with one EcoTTA meta network per block partition.

    Every keyword of mmseg's :class:`ResNet` is accepted (use
    ``deep_stem=True`` for V1c and also ``avg_down=True`` for V1d, or the
    :class:`MetaResNetV1c`/:class:`MetaResNetV1d` shorthands).

    Args:
        partitions (int | Sequence[int]): Blocks per partition, summing to
            the depth's block count, or K to use
            ``PARTITION_PRESETS[depth][K]``. Defaults to 5.
        meta_kernel_size (int): Kernel size of the meta conv blocks.
            Defaults to 3.
        dilated_meta (bool): Give each meta conv the dilation of its
            partition's last block (in a D8 ResNet 2 in stage 3 and 4 in
            stage 4), so it sees the context the frozen blocks beside it
            see, with the same parameters. Defaults to False (dilation 1,
            the authors' sample).
        **kwargs: Passed to :class:`mmseg.models.backbones.ResNet`.

    The self-distilled regulariser compares each partition's adapted and
    frozen outputs of the same forward: :meth:`recording_partitions`
    collects them, for the forwards inside its ``with`` block only.
    """

    def __init__(self,
                 partitions: 'int | Sequence[int]' = 5,
                 meta_kernel_size: int = 3,
                 dilated_meta: bool = False,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        blocks = [
            block for name in self.res_layers for block in getattr(self, name)
        ]
        self.partitions = self._resolve_partitions(partitions,
                                                   kwargs.get('depth'))
        self.meta_kernel_size = check_meta_kernel_size(meta_kernel_size)
        self.dilated_meta = dilated_meta
        strides = self._block_strides()
        self.meta_nets = nn.ModuleList()
        self._partition_slices: List[Tuple[int, int]] = []
        start = 0
        for size in self.partitions:
            part = blocks[start:start + size]
            stride = 1
            for s in strides[start:start + size]:
                stride *= s
            dilation = part[-1].dilation if dilated_meta else 1
            self.meta_nets.append(
                MetaNet(part[0].conv1.in_channels, _out_channels(part[-1]),
                        stride, meta_kernel_size, dilation))
            self._partition_slices.append((start, start + size))
            start += size

    def _resolve_partitions(self, partitions: 'int | Sequence[int]',
                            depth: Optional[int]) -> Tuple[int, ...]:
        num_blocks = sum(self.stage_blocks)
        if isinstance(partitions, int):
            presets = PARTITION_PRESETS.get(depth, {})
            if partitions not in presets:
                raise ValueError(
                    f'no partition preset K={partitions} for depth {depth}; '
                    f'presets: {presets or PARTITION_PRESETS}. Pass block '
                    f'counts instead, e.g. partitions=[...] summing to '
                    f'{num_blocks}')
            return presets[partitions]
        partitions = tuple(int(p) for p in partitions)
        if sum(partitions) != num_blocks or min(partitions, default=0) < 1:
            raise ValueError(
                f'partitions={list(partitions)} must be positive block '
                f'counts summing to {num_blocks}, the number of residual '
                f'blocks of this ResNet-{depth} (stage blocks '
                f'{list(self.stage_blocks)}); e.g. the presets '
                f'{PARTITION_PRESETS.get(depth)}')
        return partitions

    def _block_strides(self) -> List[int]:
        """Downsampling of each residual block, in order.

        Only a stage's first block downsamples; dilated stages (stride 1)
        contribute none, so a meta conv spanning them has stride 1.
        """
        strides = []
        for stage, name in enumerate(self.res_layers):
            n = len(getattr(self, name))
            strides += [self.strides[stage]] + [1] * (n - 1)
        return strides

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Forward with meta networks; returns the stages of out_indices.

        A stage that ends inside a partition is output as the running
        feature at that point (already shaped by earlier partitions' meta
        networks).

        Args:
            x (Tensor): Images, shape (N, C_in, H, W), floating point.

        Raises:
            TypeError: For a non-float input.
            ValueError: For another number of dimensions or channels (the
                first convolution would report a weight-shape mismatch).
        """
        first = self.stem[0] if self.deep_stem else self.conv1
        check_images(x,
                     getattr(first, 'conv', first).in_channels,
                     type(self).__name__)
        if self.deep_stem:
            x = self.stem(x)
        else:
            x = self.relu(self.norm1(self.conv1(x)))
        x = self.maxpool(x)
        stage_ends = self._stage_ends()
        blocks = [b for name in self.res_layers for b in getattr(self, name)]
        outs = []
        for meta_net, (start, end) in zip(self.meta_nets,
                                          self._partition_slices):
            feat = x
            for i in range(start, end):
                feat = blocks[i](feat)
                if i in stage_ends and i != end - 1:
                    outs.append((stage_ends[i], feat))
            adapted = meta_net(x, feat)
            self._record(meta_net, x, feat, adapted)
            if end - 1 in stage_ends:
                outs.append((stage_ends[end - 1], adapted))
            x = adapted
        return tuple(out for stage, out in sorted(outs, key=lambda t: t[0])
                     if stage in self.out_indices)

    def _stage_ends(self) -> Dict[int, int]:
        """Map the index of each stage's last block to the stage index."""
        ends, total = {}, 0
        for stage, name in enumerate(self.res_layers):
            total += len(getattr(self, name))
            ends[total - 1] = stage
        return ends


def _out_channels(block: nn.Module) -> int:
    """Output channels of an mmseg BasicBlock or Bottleneck."""
    last = block.conv3 if hasattr(block, 'conv3') else block.conv2
    return last.out_channels


@MODELS.register_module()
class MetaResNetV1c(MetaResNet):
    """:class:`MetaResNet` with ResNetV1c's deep stem (stock mmseg keys)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(deep_stem=True, avg_down=False, **kwargs)


@MODELS.register_module()
class MetaResNetV1d(MetaResNet):
    """:class:`MetaResNet` with ResNetV1d's deep stem and average down."""

    def __init__(self, **kwargs) -> None:
        super().__init__(deep_stem=True, avg_down=True, **kwargs)
