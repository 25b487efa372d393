"""Command-line arguments shared by the runner tools (as mmseg's tools)."""
import argparse
import os

from mmengine.config import DictAction


def add_unsafe_load_arg(parser: argparse.ArgumentParser) -> None:
    """Add ``--unsafe-load`` (see :mod:`mmseg_ecotta.safe_load`)."""
    parser.add_argument(
        '--unsafe-load',
        action='store_true',
        help='unpickle checkpoints, state and Fisher files in full, which '
        'runs any code they hold: only for files you trust (by default '
        'anything beyond tensors and plain data is refused)')


def add_allow_nonfinite_arg(parser: argparse.ArgumentParser) -> None:
    """Add ``--allow-nonfinite`` (see :mod:`mmseg_ecotta.safe_load`)."""
    parser.add_argument(
        '--allow-nonfinite',
        action='store_true',
        help='load checkpoints whose weights hold NaN or inf (refused by '
        'default, naming the first such tensor)')


def add_runner_args(parser: argparse.ArgumentParser) -> None:
    """Add the runner tools' shared arguments.

    ``--cfg-options``, ``--launcher``, ``--local-rank``, ``--unsafe-load``
    (:func:`add_unsafe_load_arg`) and ``--allow-nonfinite``
    (:func:`add_allow_nonfinite_arg`).
    """
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings in the config, key=value')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    add_unsafe_load_arg(parser)
    add_allow_nonfinite_arg(parser)


def parse_runner_args(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """Parse, exporting ``LOCAL_RANK`` for torch.distributed launchers."""
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args
