"""The main job on the embedded default: six methods, one comparison.

Generates the synthetic weather stream if it is missing, computes EATA's
Fisher on the clean synthetic source images (``WORK_DIR/eata_fisher.pth``,
as ``tools/compute_fisher.py`` does), then runs Source, BN adapt, TENT,
EATA, EcoTTA (3 rounds of fog -> night -> rain -> snow) and CoTTA (1
round: its 14 augmented views per image make it the slowest) with the
shipped tiny checkpoints, each through ``tools/test_tta.py``, and prints
one comparison table (also written to
``WORK_DIR/comparison.{md,csv,json}``, with the plots
``comparison_miou.png`` and ``comparison_memory.png``).

    python tools/run_main_job.py [--rounds 10] [--work-dir DIR]
"""
import argparse
import os
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
from mmseg_ecotta.apis import fisher_from_config  # noqa: E402
from mmseg_ecotta.apis import MethodRun, run_methods  # noqa: E402
from mmseg_ecotta.evaluation.comparison import \
    write_comparison_files  # noqa: E402
from mmseg_ecotta.synthetic import generate_synthetic_stream  # noqa: E402
from mmseg_ecotta.tta.fisher import save_fisher  # noqa: E402
from mmseg_ecotta.utils import load_config  # noqa: E402

SYNTHETIC = osp.join(ROOT, 'data', 'synthetic')
SOURCE_CKPT = 'data/checkpoints/deeplabv3plus_r18-tiny_synthetic-source.pth'
WARMUP_CKPT = ('data/checkpoints/'
               'deeplabv3plus_r18-tiny_meta_synthetic-warmup.pth')
EATA_CONFIG = ('configs/tta/synthetic/'
               'eata_deeplabv3plus_r18-tiny_synthetic-stream.py')
# EATA's Fisher: clean source images. The synthetic source val split (40)
# is less than one of EATA's batches of 64; the 200 training images give 4.
FISHER_DATA = dict(data_root='data/synthetic/cityscapes/', split='train')
RUNS = [  # (label, config, checkpoint, per-run cfg-options)
    ('Source', 'configs/tta/synthetic/'
     'source_deeplabv3plus_r18-tiny_synthetic-stream.py', SOURCE_CKPT, ()),
    ('BN adapt', 'configs/tta/synthetic/'
     'bn_adapt_deeplabv3plus_r18-tiny_synthetic-stream.py', SOURCE_CKPT, ()),
    ('TENT', 'configs/tta/synthetic/'
     'tent_deeplabv3plus_r18-tiny_synthetic-stream.py', SOURCE_CKPT, ()),
    ('EATA', EATA_CONFIG, SOURCE_CKPT, ()),  # + its Fisher file, see main
    ('CoTTA (1 round)', 'configs/tta/synthetic/'
     'cotta_deeplabv3plus_r18-tiny_synthetic-stream.py', SOURCE_CKPT,
     ('test_dataloader.dataset.rounds=1', )),
    ('EcoTTA', 'configs/tta/synthetic/'
     'ecotta_deeplabv3plus_r18-tiny_meta_synthetic-stream.py', WARMUP_CKPT,
     ()),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--work-dir', default='work_dirs/main_job')
    args = parser.parse_args()
    os.chdir(ROOT)
    if not osp.isfile(osp.join(SYNTHETIC, 'manifest.json')):
        print('generating the synthetic stream into data/synthetic ...')
        generate_synthetic_stream(SYNTHETIC)
    os.makedirs(args.work_dir, exist_ok=True)
    fisher = osp.join(args.work_dir, 'eata_fisher.pth')
    print(f'computing EATA\'s Fisher into {fisher} ...')
    save_fisher(
        fisher_from_config(
            load_config(EATA_CONFIG), SOURCE_CKPT, **FISHER_DATA), fisher,
        EATA_CONFIG, SOURCE_CKPT)
    runs = [
        MethodRun(
            label.split(' (')[0].lower().replace(' ', '_'), config, ckpt,
            label, options + ((f'custom_hooks.0.method.fisher_file={fisher}', )
                              if config == EATA_CONFIG else ()))
        for label, config, ckpt, options in RUNS
    ]
    try:
        results = run_methods(
            runs, args.work_dir, rounds=args.rounds, echo=print)
    except RuntimeError as e:
        sys.exit(str(e))
    print(f'\nmIoU (%) per domain, mean over {args.rounds} rounds '
          '(CoTTA: 1 round); '
          'time per image (adapt + predict) on this machine; memory: '
          'activations saved for backward in one step (CPU)\n')
    print(write_comparison_files(results, args.work_dir))
    print(f'written to {args.work_dir}/comparison.{{md,csv,json}}, '
          'comparison_miou.png, comparison_memory.png')


if __name__ == '__main__':
    main()
