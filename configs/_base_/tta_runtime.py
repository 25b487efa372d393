# Runtime for test-time adaptation runs: mmseg's default runtime, written
# out (not inherited with ``mmseg::``) so that mmseg's own tools/test.py can
# parse these configs before the plugin's compatibility shims are imported.
default_scope = 'mmseg'
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'))
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(
    type='SegLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0)
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=200, log_metric_by_epoch=False),
    visualization=dict(type='SegVisualizationHook'))
# The hook takes no arguments: it reads the top-level ``adaptation`` dict
# (the method and its settings) that a configs/_base_/tta/*.py file sets,
# so a setting is overridden by name, e.g.
# --cfg-options adaptation.method.optimizer.lr=1e-4
custom_hooks = [dict(type='TestTimeAdaptationHook')]
