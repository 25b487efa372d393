"""The real-image dev benchmark: every method on CamVid under weather.

Runs Source, BN adapt, TENT, EATA and EcoTTA (3 rounds of fog -> night ->
rain -> snow; CoTTA with ``--cotta``, 1 round: 19x slower) on held-out
CamVid frames corrupted into ACDC's layout, with the shipped CamVid
checkpoints, and prints one comparison (also written to
``WORK_DIR/comparison.{md,csv,json}``). ``--ablation`` runs EcoTTA once per
recipe change instead, from the first release's recipe to ours (README,
"EcoTTA on real frames"). Data set-up: data/README.md, "The real-image dev
benchmark".

    python tools/run_dev_benchmark.py                  # reported: report, s3
    python tools/run_dev_benchmark.py --ablation
    python tools/run_dev_benchmark.py --split select --severity 5
"""
import argparse
import os
import os.path as osp
import re
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
from mmseg_ecotta.apis import MethodRun, run_methods  # noqa: E402
from mmseg_ecotta.datasets.camvid import DEV_PARTS  # noqa: E402
from mmseg_ecotta.datasets.camvid import dev_part_stems  # noqa: E402
from mmseg_ecotta.datasets.corrupted_stream import \
    write_corrupted_stream  # noqa: E402
from mmseg_ecotta.evaluation.comparison import \
    write_comparison_files  # noqa: E402
from mmseg_ecotta.tta.fisher import fisher_from_config  # noqa: E402
from mmseg_ecotta.tta.fisher import save_fisher  # noqa: E402
from mmseg_ecotta.utils import load_config  # noqa: E402

CKPT = 'data/checkpoints/deeplabv3plus_r18-tiny_camvid-{}.pth'
CFG = 'configs/tta/camvid/{}_deeplabv3plus_r18-tiny_{}camvid-weather.py'
ECOTTA = CFG.format('ecotta', 'meta_')
EATA = CFG.format('eata', '')
RUNS = [  # (label, config, checkpoint, per-run cfg-options)
    ('Source', CFG.format('source', ''), CKPT.format('source'), ()),
    ('BN adapt', CFG.format('bn_adapt', ''), CKPT.format('source'), ()),
    ('TENT', CFG.format('tent', ''), CKPT.format('source'), ()),
    ('EATA', EATA, CKPT.format('source'), ()),  # + its Fisher, see main
    ('EcoTTA', ECOTTA, CKPT.format('meta-warmup'), ()),
]
COTTA = ('CoTTA (1 round)', CFG.format('cotta', ''), CKPT.format('source'),
         ('test_dataloader.dataset.rounds=1', ))
ABLATION_CKPT = 'data/checkpoints/ablation/' + CKPT.format(
    'meta-warmup-{}').split('/')[-1]
LR = ('custom_hooks.0.method.optimizer.type=SGD',
      'custom_hooks.0.method.optimizer.momentum=0.9',
      'custom_hooks.0.method.optimizer.lr={}')
# The first release's recipe, ours (one change), and the alternatives that
# lost on the val frames.
ABLATION = [
    ('first release: lr 5e-3', ECOTTA, CKPT.format('meta-warmup'),
     (*LR[:2], LR[2].format(5e-3))),
    ('test lr 1e-3 (ours)', ECOTTA, CKPT.format('meta-warmup'), ()),
    ('ours, no test-time update (lr 0)', ECOTTA, CKPT.format('meta-warmup'),
     (*LR[:2], LR[2].format(0))),
    ('ours, warm-up at batch 1 with self-distillation', ECOTTA,
     ABLATION_CKPT.format('sourcebn-sd1'), ()),
    ('ours, warm-up on batch statistics at batch 1', ECOTTA,
     ABLATION_CKPT.format('batchbn-b1'), ()),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        '--split', default='report', choices=[*DEV_PARTS, 'val', 'test'])
    parser.add_argument('--severity', type=int, default=3)
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--ablation', action='store_true')
    parser.add_argument('--cotta', action='store_true')
    parser.add_argument('--work-dir', default='work_dirs/dev_benchmark')
    args = parser.parse_args()
    os.chdir(ROOT)
    if not osp.isdir('data/camvid'):
        sys.exit('data/camvid is missing: convert CamVid first (data/'
                 'README.md, "The real-image dev benchmark", step 1)')
    stream = f'data/camvid_weather_s{args.severity}'
    if not osp.isdir(osp.join(stream, 'rgb_anon', 'fog', args.split)):
        print(f'writing the {args.split} stream into {stream} ...')
        part = args.split in DEV_PARTS
        write_corrupted_stream(
            'data/camvid',
            'test' if part else args.split,
            stream,
            args.severity,
            out_split=args.split,
            stems=dev_part_stems('data/camvid', args.split) if part else None)
    rows = ABLATION if args.ablation else RUNS + (
        [COTTA] if args.cotta else [])
    fisher = osp.join(args.work_dir, 'eata_fisher.pth')
    if any(config == EATA for _, config, _, _ in rows):
        # EATA's Fisher on clean source images: the 367 train frames
        print(f'computing EATA\'s Fisher into {fisher} ...')
        os.makedirs(args.work_dir, exist_ok=True)
        save_fisher(
            fisher_from_config(
                load_config(EATA), CKPT.format('source'), 'data/camvid/',
                'train'), fisher, EATA, CKPT.format('source'))
    runs = [
        MethodRun(
            f'{i:02d}_' + re.sub(r'[^a-z0-9]+', '_', label.lower()), config,
            ckpt, label,
            options + ((f'custom_hooks.0.method.fisher_file={fisher}', )
                       if config == EATA else ()))
        for i, (label, config, ckpt, options) in enumerate(rows)
    ]
    options = [
        f'test_dataloader.dataset.dataset_template.split={args.split}',
        f'test_dataloader.dataset.dataset_template.data_root={stream}/'
    ]
    work_dir = osp.join(
        args.work_dir, f'{args.split}_s{args.severity}' +
        ('_ablation' if args.ablation else ''))
    try:
        results = run_methods(
            runs, work_dir, options, rounds=args.rounds, echo=print)
    except RuntimeError as e:
        sys.exit(str(e))
    print(f'\nCamVid {args.split} frames, severity {args.severity}; mIoU '
          f'(%) per domain, mean over {args.rounds} rounds\n')
    print(write_comparison_files(results, work_dir))


if __name__ == '__main__':
    main()
