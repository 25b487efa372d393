from .meta_mit import MetaMixVisionTransformer
from .meta_net import MetaNet, PartitionPairs
from .meta_resnet import (PARTITION_PRESETS, MetaResNet, MetaResNetV1c,
                          MetaResNetV1d)

__all__ = [
    'MetaNet', 'MetaResNet', 'MetaResNetV1c', 'MetaResNetV1d',
    'MetaMixVisionTransformer', 'PartitionPairs', 'PARTITION_PRESETS'
]
