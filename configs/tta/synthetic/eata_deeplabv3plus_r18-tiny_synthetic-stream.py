# EATA on the embedded synthetic weather stream (tiny DeepLabV3+ R18),
# without the Fisher regulariser (EATA's "ETA" variant); with it, first run
# python tools/compute_fisher.py THIS_CONFIG CHECKPOINT --out FISHER.pth
#     --data-root data/synthetic/cityscapes/
# then add --cfg-options custom_hooks.0.method.fisher_file=FISHER.pth.
# python tools/test_tta.py THIS_CONFIG data/checkpoints/CHECKPOINT.pth
_base_ = [
    '../../_base_/models/deeplabv3plus_r18-tiny.py',
    '../../_base_/datasets/synthetic_stream.py', '../_base_/tta_runtime.py'
]
custom_hooks = [dict(type='TestTimeAdaptationHook', method=dict(type='EATA'))]
