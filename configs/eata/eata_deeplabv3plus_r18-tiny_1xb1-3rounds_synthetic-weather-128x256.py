# EATA on the embedded synthetic weather stream (tiny DeepLabV3+ R18), in
# our segmentation version: a pixel is the sample of both filters, the
# redundancy margin scaled to 19 classes (chosen on the held-out seed-1
# stream; configs/eata/README.md). Without a Fisher file this is
# EATA's "ETA" variant; the main job (tools/run_main_job.py) computes one:
# python tools/compute_fisher.py THIS_CONFIG CHECKPOINT --out FISHER.pth
#     --data-root data/synthetic/cityscapes/ --split train
# python tools/test_tta.py THIS_CONFIG data/checkpoints/CHECKPOINT.pth
#     --cfg-options adaptation.method.fisher_file=FISHER.pth
_base_ = [
    '../_base_/models/deeplabv3plus_r18-tiny.py',
    '../_base_/datasets/synthetic_stream.py', '../_base_/tta_runtime.py',
    '../_base_/tta/eata.py'
]
