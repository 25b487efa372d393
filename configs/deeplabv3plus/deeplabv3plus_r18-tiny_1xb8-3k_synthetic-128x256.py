# Train the tiny source model on the clear synthetic source set with mmseg's
# own training: python tools/train.py THIS_CONFIG
_base_ = [
    '../_base_/models/deeplabv3plus_r18-tiny.py',
    '../_base_/datasets/synthetic_cityscapes.py',
    '../_base_/schedules/synthetic_3k.py', 'mmseg::_base_/default_runtime.py'
]
custom_imports = dict(imports=['mmseg_ecotta'], allow_failed_imports=False)
env_cfg = dict(cudnn_benchmark=False)
