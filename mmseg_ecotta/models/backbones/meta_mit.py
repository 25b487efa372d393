"""SegFormer's MiT encoder with EcoTTA meta networks.

EcoTTA (Song et al., CVPR 2023, https://arxiv.org/abs/2303.01904) freezes
the original encoder, cuts it into K partitions of consecutive blocks and
gives each partition ``f_k`` a small meta network:

    x_k = meta_bn(f_k(x_{k-1})) + conv_block(x_{k-1})

Here the encoder is mmseg's :class:`MixVisionTransformer` (SegFormer,
https://arxiv.org/abs/2105.15203). Its natural partitions are its four
stages, each an overlapping patch embedding (a strided conv), a run of
transformer blocks and the stage's LayerNorm: a stage maps an NCHW map to
an NCHW map at a lower resolution, exactly what a group of residual blocks
does in ResNet, and its output is what the decode head reads. So the meta
network is :class:`MetaNet` unchanged, on the NCHW partition input and
output: the conv block's stride is the patch embedding's, and ``meta_bn``
is a BatchNorm over the stage's channels. That norm is what the frozen
encoder lacks: MiT normalises each token over its channels (LayerNorm,
per image by construction, nothing to adapt), never a channel over the
image, which is where a weather shift shows (a channel's mean and contrast
over the image); ``meta_bn`` in ``'sample'`` mode normalises exactly that
per image. Finer cuts are accepted (``partitions`` as block counts); a cut
inside a stage compares and adapts the token stream, turned into an NCHW
map at that point.

What differs from ResNet is the memory of the backward. EcoTTA saves
memory by not keeping the inputs of frozen layers for weight gradients
(:mod:`mmseg_ecotta.models.lean_backward`); that removes everything a
frozen convolution keeps, but the gradient that reaches an earlier meta
network must still cross each later transformer block, whose attention
(queries, keys, values and output), GELU and LayerNorms need their inputs
for the *input* gradient alone. docs/advanced_guides/how_it_works.md
("EcoTTA on a transformer encoder") says what is left and what it costs.

Stock key names are kept (``layers.{stage}.{0: patch_embed, 1: blocks,
2: norm}``), so mmseg's released SegFormer checkpoints load unchanged; the
meta networks are new keys ``meta_nets.{k}.*``.
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmseg.models.backbones import MixVisionTransformer
from mmseg.models.utils import nchw_to_nlc, nlc_to_nchw
from mmseg.registry import MODELS

from .meta_net import (MetaNet, PartitionRecorder, check_images,
                       check_meta_kernel_size)


@MODELS.register_module()
class MetaMixVisionTransformer(PartitionRecorder, MixVisionTransformer):
    """mmseg MixVisionTransformer with one EcoTTA meta network per partition.

    Every keyword of mmseg's :class:`MixVisionTransformer` is accepted.

    Args:
        partitions (Sequence[int], optional): Transformer blocks per
            partition, summing to ``sum(num_layers)``. A stage's patch
            embedding goes with its first block, its LayerNorm with its
            last. Defaults to None: one partition per stage (K=4 for MiT).
        meta_kernel_size (int): Kernel size of the meta conv blocks.
            Defaults to 3 (the authors' sample).
        **kwargs: Passed to
            :class:`mmseg.models.backbones.MixVisionTransformer`.

    The self-distilled regulariser compares each partition's adapted and
    frozen outputs of the same forward: :meth:`recording_partitions`
    collects them, for the forwards inside its ``with`` block only.
    """

    def __init__(self,
                 partitions: Optional[Sequence[int]] = None,
                 meta_kernel_size: int = 3,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.partitions = self._resolve_partitions(partitions)
        self.meta_kernel_size = check_meta_kernel_size(meta_kernel_size)
        # (stage, block within the stage) of each block, in order.
        self._blocks: List[Tuple[int, int]] = [
            (stage, j) for stage, n in enumerate(self.num_layers)
            for j in range(n)
        ]
        self.meta_nets = nn.ModuleList()
        self._partition_slices: List[Tuple[int, int]] = []
        start = 0
        for size in self.partitions:
            end = start + size
            stride = 1
            for stage, j in self._blocks[start:end]:
                if j == 0:  # the stage's patch embedding downsamples
                    stride *= self.strides[stage]
            self.meta_nets.append(
                MetaNet(
                    self._channels_before(start), self._channels_before(end),
                    stride, meta_kernel_size))
            self._partition_slices.append((start, end))
            start = end

    def _resolve_partitions(
            self, partitions: Optional[Sequence[int]]) -> Tuple[int, ...]:
        if partitions is None:
            return tuple(self.num_layers)
        if isinstance(partitions, int):
            raise TypeError(
                f'partitions={partitions}: give block counts per partition '
                f'(e.g. {list(self.num_layers)}, one per stage) or None')
        partitions = tuple(int(p) for p in partitions)
        total = sum(self.num_layers)
        if sum(partitions) != total or min(partitions, default=0) < 1:
            raise ValueError(
                f'partitions={list(partitions)} must be positive block '
                f'counts summing to {total}, the number of transformer '
                f'blocks (num_layers={list(self.num_layers)}); e.g. '
                f'{list(self.num_layers)}, one partition per stage')
        return partitions

    def _channels_before(self, block: int) -> int:
        """Channels of the feature entering global block ``block``.

        The images for block 0; otherwise the width of the previous
        block's stage (a stage's last block hands its stage's width on).
        """
        if block == 0:
            return self.layers[0][0].projection.in_channels
        stage, _ = self._blocks[block - 1]
        return self.embed_dims * self.num_heads[stage]

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        """Forward with meta networks; returns the stages of out_indices.

        A stage that ends inside a partition is output as the running
        feature at that point (already shaped by earlier partitions' meta
        networks).

        Args:
            x (Tensor): Images, shape (N, C_in, H, W), floating point.

        Returns:
            list[Tensor]: Stage outputs, (N, C_i, H / s_i, W / s_i) each.

        Raises:
            TypeError: For a non-float input.
            ValueError: For another number of dimensions or channels.
        """
        check_images(x, self._channels_before(0), type(self).__name__)
        outs: Dict[int, torch.Tensor] = {}
        for meta_net, (start, end) in zip(self.meta_nets,
                                          self._partition_slices):
            # The frozen partition: NCHW in, NCHW out; tokens (N, HW, C)
            # inside a stage.
            feat: torch.Tensor = x
            hw_shape: Union[Tuple[int, int], torch.Size] = x.shape[2:]
            tokens = False
            for i in range(start, end):
                stage, j = self._blocks[i]
                patch_embed, blocks, norm = self.layers[stage]
                if j == 0:
                    feat, hw_shape = patch_embed(feat)
                elif not tokens:  # a cut inside the stage
                    feat = nchw_to_nlc(feat)
                tokens = True
                feat = blocks[j](feat, hw_shape)
                if j == len(blocks) - 1:
                    feat = nlc_to_nchw(norm(feat), hw_shape)
                    tokens = False
                    if i != end - 1:
                        outs[stage] = feat
            if tokens:
                feat = nlc_to_nchw(feat, hw_shape)
            adapted = meta_net(x, feat)
            self._record(meta_net, x, feat, adapted)
            stage, j = self._blocks[end - 1]
            if j == self.num_layers[stage] - 1:
                outs[stage] = adapted
            x = adapted
        return [outs[i] for i in sorted(outs) if i in self.out_indices]
