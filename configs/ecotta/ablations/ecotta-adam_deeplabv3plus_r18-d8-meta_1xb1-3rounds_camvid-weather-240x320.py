# EcoTTA with Adam (lr 1e-4) instead of the shipped SGD, one row of the
# test-time update diagnosis (docs/benchmarks/test_time_updates.md).
# python tools/run_dev_benchmark.py --split select --updates
_base_ = [
    '../ecotta_deeplabv3plus_r18-d8-meta_1xb1-3rounds_camvid-weather-240x320.py'  # noqa: E501
]
adaptation = dict(
    method=dict(optimizer=dict(_delete_=True, type='Adam', lr=1e-4)))
