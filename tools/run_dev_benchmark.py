"""The real-image dev benchmark: every method on CamVid under weather.

Runs Source, BN adapt, TENT (tent's, and CoTTA's: TENT-CoTTA), EATA and
EcoTTA (3 rounds of fog -> night -> rain -> snow; CoTTA with ``--cotta``, 1
round: 19x slower) on held-out CamVid frames corrupted into ACDC's layout,
with the shipped CamVid checkpoints, and prints one comparison (also written to
``WORK_DIR/comparison.{md,csv,json}``). ``--ablation`` runs EcoTTA once per
recipe change instead, from the first release's recipe to ours
(docs/benchmarks/dev_benchmark.md, "Selection table").
``--synthetic-select`` runs the EcoTTA ablation on the second selection
stream, held-out synthetic scenes (generated at another seed, nothing to
download). ``--updates`` runs what EcoTTA's test-time updates add (no
update, as shipped, one change per row, each run traced;
docs/benchmarks/test_time_updates.md), ``--heldout`` the held-out
corruption family instead of the weather, ``--model r18-d8`` the
stock-width DeepLabV3+ R18-D8 instead of the tiny model, ``--model
segformer-b0`` mmseg's SegFormer-B0 (every method, EcoTTA with its MiT
meta networks; ``--ablation`` and ``--updates`` are DeepLab studies). The
runs:
:func:`benchmarks.dev.run_dev_benchmark` and
:func:`benchmarks.dev.run_synthetic_selection` (tools/benchmarks/). Data
set-up: data/README.md, "The real-image dev benchmark".

    python tools/run_dev_benchmark.py                  # reported: report, s3
    python tools/run_dev_benchmark.py --split select --ablation
    python tools/run_dev_benchmark.py --split select --severity 5 --ablation
    python tools/run_dev_benchmark.py --synthetic-select
    python tools/run_dev_benchmark.py --selection      # the rule's table
    python tools/run_dev_benchmark.py --split select --updates
    python tools/run_dev_benchmark.py --heldout --model r18-d8
    python tools/run_dev_benchmark.py --model segformer-b0 --cotta
"""
import argparse
import os
import os.path as osp
import sys

from benchmarks import dev as benchmarks  # tools/benchmarks/

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        '--split',
        default='report',
        choices=['select', 'report', 'val', 'test'])
    parser.add_argument('--severity', type=int, default=3)
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--ablation', action='store_true')
    parser.add_argument('--cotta', action='store_true')
    parser.add_argument(
        '--model',
        default='r18-tiny',
        choices=benchmarks.MODELS,
        help='source model: the tiny DeepLabV3+, the stock-width R18-D8 '
        '(make dev-checkpoints-r18-d8) or SegFormer-B0 (make '
        'dev-checkpoints-segformer-b0)')
    parser.add_argument(
        '--updates',
        action='store_true',
        help='what the test-time updates add: EcoTTA without updates, as '
        'shipped and one change per row, each run traced')
    parser.add_argument(
        '--heldout',
        action='store_true',
        help='the held-out corruption family (frost, spatter, contrast, '
        'brightness) instead of fog, night, rain and snow')
    instead = parser.add_mutually_exclusive_group()
    instead.add_argument(
        '--synthetic-select',
        action='store_true',
        help='the EcoTTA ablation on held-out synthetic scenes instead')
    instead.add_argument(
        '--selection',
        action='store_true',
        help='run nothing: score the three selection ablations already in '
        'WORK_DIR by the selection rule')
    parser.add_argument('--work-dir', default='work_dirs/dev_benchmark')
    args = parser.parse_args()
    ignored = [
        f'--{flag}'
        for flag, default in (('split', 'report'), ('severity',
                                                    3), ('ablation', False),
                              ('cotta', False), ('model', 'r18-tiny'),
                              ('updates', False), ('heldout', False))
        if getattr(args, flag) != default
    ]
    if (args.synthetic_select or args.selection) and ignored:
        parser.error('--synthetic-select and --selection take no '
                     f'{" or ".join(ignored)}: drop it')
    os.chdir(ROOT)  # the benchmark's config and data paths are relative
    try:
        if args.selection:
            table, chosen = benchmarks.selection_table(args.work_dir)
            print(table)
            print('chosen by the rule (best worst margin over BN adapt; the '
                  'default stays unless beaten by more than '
                  f'{benchmarks.RESOLUTION}, or {benchmarks.WARMUP_RESOLUTION}'
                  f' by a warm-up of its own): {chosen}')
            return
        if args.synthetic_select:
            table, _ = benchmarks.run_synthetic_selection(
                args.work_dir, args.rounds, echo=print)
            seed = benchmarks.SYNTHETIC_SELECT_SEED
            print(f'\nHeld-out synthetic scenes (seed {seed}); mIoU (%) per '
                  f'domain, mean over {args.rounds} rounds\n')
            print(table)
            return
        table, _ = benchmarks.run_dev_benchmark(
            args.work_dir,
            args.split,
            args.severity,
            args.rounds,
            ablation=args.ablation,
            cotta=args.cotta,
            model=args.model,
            updates=args.updates,
            conditions=benchmarks.HELDOUT_FAMILY if args.heldout else None,
            echo=print)
    except (FileNotFoundError, RuntimeError, ValueError) as e:
        sys.exit(str(e))
    family = 'held-out family' if args.heldout else 'weather'
    print(f'\nCamVid {args.split} frames, {family}, severity '
          f'{args.severity}, {args.model}; mIoU '
          f'(%) per domain, mean over {args.rounds} rounds\n')
    print(table)


if __name__ == '__main__':
    main()
