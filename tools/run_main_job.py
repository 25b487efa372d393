"""The main job on the embedded default: four methods, one comparison.

Generates the synthetic weather stream if it is missing, then runs Source,
BN adapt, TENT and EcoTTA over it (3 rounds of fog -> night -> rain -> snow)
with the shipped tiny checkpoints, each through ``tools/test_tta.py``, and
prints one comparison table (also written to ``WORK_DIR/comparison.md``
and ``.json``).

    python tools/run_main_job.py [--rounds 10] [--work-dir DIR]
"""
import argparse
import os
import os.path as osp
import subprocess
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
from mmseg_ecotta.evaluation.comparison import (
    comparison_rows,  # noqa: E402
    format_comparison,
    load_results,
    write_comparison)
from mmseg_ecotta.synthetic import generate_synthetic_stream  # noqa: E402

SYNTHETIC = osp.join(ROOT, 'data', 'synthetic')
SOURCE_CKPT = 'data/checkpoints/deeplabv3plus_r18-tiny_synthetic-source.pth'
WARMUP_CKPT = ('data/checkpoints/'
               'deeplabv3plus_r18-tiny_meta_synthetic-warmup.pth')
RUNS = [  # (label, config, checkpoint)
    ('Source', 'configs/tta/synthetic/'
     'source_deeplabv3plus_r18-tiny_synthetic-stream.py', SOURCE_CKPT),
    ('BN adapt', 'configs/tta/synthetic/'
     'bn_adapt_deeplabv3plus_r18-tiny_synthetic-stream.py', SOURCE_CKPT),
    ('TENT', 'configs/tta/synthetic/'
     'tent_deeplabv3plus_r18-tiny_synthetic-stream.py', SOURCE_CKPT),
    ('EcoTTA', 'configs/tta/synthetic/'
     'ecotta_deeplabv3plus_r18-tiny_meta_synthetic-stream.py', WARMUP_CKPT),
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
    runs = {}
    for label, config, ckpt in RUNS:
        work_dir = osp.join(args.work_dir, label.lower().replace(' ', '_'))
        print(f'[{label}] python tools/test_tta.py {config} {ckpt}')
        cmd = [
            sys.executable, 'tools/test_tta.py', config, ckpt, '--work-dir',
            work_dir, '--cfg-options',
            f'test_dataloader.dataset.rounds={args.rounds}'
        ]
        with open(osp.join(_mkdir(work_dir), 'run.log'), 'w') as log:
            code = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT)
        if code != 0:
            sys.exit(f'[{label}] failed (exit {code}); see '
                     f'{work_dir}/run.log. Runs finished so far are kept.')
        runs[label] = load_results(osp.join(work_dir, 'tta_results.json'))
        print(f"[{label}] mean mIoU {runs[label]['mean_mIoU']:.1f}")
    rows = comparison_rows(runs)
    domains = next(iter(runs.values()))['domains']
    table = format_comparison(rows, domains)
    print(f'\nmIoU (%) per domain, mean over {args.rounds} rounds; '
          'time per image (adapt + predict) on this machine; memory: '
          'activations saved for backward in one step (CPU)\n')
    print(table)
    with open(osp.join(args.work_dir, 'comparison.md'), 'w') as f:
        f.write(table + '\n')
    write_comparison(rows, osp.join(args.work_dir, 'comparison.json'))


def _mkdir(path: str) -> str:
    os.makedirs(path, exist_ok=True)
    return path


if __name__ == '__main__':
    main()
