from .meta_resnet import (PARTITION_PRESETS, MetaNet, MetaResNet,
                          MetaResNetV1c, MetaResNetV1d)

__all__ = [
    'MetaNet', 'MetaResNet', 'MetaResNetV1c', 'MetaResNetV1d',
    'PARTITION_PRESETS'
]
