# Source on the real-image dev benchmark (CamVid weather stream), stock-width
# DeepLabV3+ R18-D8.
# test-time update, every BN layer on each image's statistics (as warmed
# up). With "test_dataloader.dataset.domains=['clear']" it checks what the
# warm-up did to clear accuracy against BN adapt, the same normalisation
# without meta networks (docs/benchmarks/dev_benchmark.md, "Clear frames").
# python tools/test_tta.py THIS_CONFIG \
#     data/checkpoints/deeplabv3plus_r18-d8_camvid-meta-warmup.pth
_base_ = [
    '../_base_/models/deeplabv3plus_r18-d8_camvid_meta.py',
    '../_base_/datasets/camvid_weather_stream.py', '../_base_/tta_runtime.py',
    '../_base_/tta/source.py'
]
