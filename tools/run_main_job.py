"""The main job on the embedded default: six methods, one comparison.

Generates the synthetic weather stream if it is missing, computes EATA's
Fisher on the clean synthetic source images, then runs Source, BN adapt,
TENT, EATA, EcoTTA (3 rounds of fog -> night -> rain -> snow) and CoTTA (1
round) with the shipped tiny checkpoints, each through
``tools/test_tta.py``, and prints one comparison table (also written to
``WORK_DIR/comparison.{md,csv,json}``, with the plots
``comparison_miou.png`` and ``comparison_memory.png``). The runs:
:func:`benchmarks.main_job.run_main_job` (tools/benchmarks/).

    python tools/run_main_job.py [--rounds 10] [--work-dir DIR]
"""
import argparse
import os
import os.path as osp
import sys

from benchmarks.main_job import run_main_job  # tools/benchmarks/

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--work-dir', default='work_dirs/main_job')
    args = parser.parse_args()
    os.chdir(ROOT)  # the job's config and data paths are relative to it
    try:
        table = run_main_job(args.work_dir, args.rounds, echo=print)
    except RuntimeError as e:
        sys.exit(str(e))
    print(f'\nmIoU (%) per domain, mean over {args.rounds} rounds '
          '(CoTTA: 1 round); '
          'time per image (adapt + predict) on this machine; memory: '
          'activations saved for backward in one step (CPU)\n')
    print(table)
    print(f'written to {args.work_dir}/comparison.{{md,csv,json}}, '
          'comparison_miou.png, comparison_memory.png')


if __name__ == '__main__':
    main()
