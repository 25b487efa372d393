"""The main job: six methods on the embedded synthetic stream.

Behind ``tools/run_main_job.py`` (``make demo``), with the shared pieces
of the benchmarks (:func:`run_config`, :func:`method_runs`). Config,
checkpoint and data paths are relative to the repository root: the tools
change to it before they call these.
"""
import os
import os.path as osp
from typing import Callable, List, Tuple

from mmengine.logging import MMLogger

from mmseg_ecotta.apis import MethodRun, fisher_from_config, run_methods
from mmseg_ecotta.evaluation.comparison import write_comparison_files
from mmseg_ecotta.synthetic import generate_synthetic_stream
from mmseg_ecotta.tta.fisher import save_fisher
from mmseg_ecotta.utils import load_config

Row = Tuple[str, str, str, Tuple[str, ...]]  # label, config, ckpt, options


def log(message: str) -> None:
    """Progress output by default: mmengine's logger."""
    MMLogger.get_current_instance().info(message)


# The benchmarks' source models, by the name their configs and
# checkpoints carry: the shipped tiny DeepLabV3+, mmseg's stock-width
# DeepLabV3+ R18-D8 and mmseg's stock SegFormer-B0 (the last two CamVid
# only).
MODEL_NAMES = {
    'r18-tiny': 'deeplabv3plus_r18-tiny',
    'r18-d8': 'deeplabv3plus_r18-d8',
    'segformer-b0': 'segformer_mit-b0',
}


def run_config(method: str,
               stream: str,
               recipe: str = '',
               model: str = 'r18-tiny') -> str:
    """The run config of ``method`` (its folder) on ``stream``.

    Args:
        method (str): ``source``, ``bn_adapt``, ``tent``, ``eata``,
            ``cotta`` or ``ecotta``.
        stream (str): ``'synthetic'`` (the embedded weather stream) or
            ``'camvid'`` (the dev benchmark's).
        recipe (str): A named recipe of the method with configs of its
            own, e.g. ``'cotta'`` for ``tent-cotta_*.py``. Defaults to
            ``''``: the method's default.
        model (str): A key of :data:`MODEL_NAMES`. Defaults to
            ``'r18-tiny'``.
    """
    arch = MODEL_NAMES[model] + ('-meta' if method == 'ecotta' else '')
    data = dict(
        synthetic='synthetic-weather-128x256',
        camvid='camvid-weather-240x320')[stream]
    name = f'{method}-{recipe}' if recipe else method
    return f'configs/{method}/{name}_{arch}_1xb1-3rounds_{data}.py'


SYNTHETIC_ROOT = 'data/synthetic'
SOURCE_CKPT = 'data/checkpoints/deeplabv3plus_r18-tiny_synthetic-source.pth'
WARMUP_CKPT = ('data/checkpoints/'
               'deeplabv3plus_r18-tiny_meta_synthetic-warmup.pth')
EATA_CONFIG = run_config('eata', 'synthetic')
# EATA's Fisher: clean source images. The synthetic source val split (40)
# is less than one of EATA's batches of 64; the 200 training images give 4.
FISHER_DATA = dict(data_root='data/synthetic/cityscapes/', split='train')
MAIN_JOB_RUNS: List[Row] = [
    ('Source', run_config('source', 'synthetic'), SOURCE_CKPT, ()),
    ('BN adapt', run_config('bn_adapt', 'synthetic'), SOURCE_CKPT, ()),
    ('TENT', run_config('tent', 'synthetic'), SOURCE_CKPT, ()),
    # TENT as CoTTA's Cityscapes -> ACDC table ran it (Tent recipe 'cotta').
    ('TENT-CoTTA', run_config('tent', 'synthetic', 'cotta'), SOURCE_CKPT, ()),
    ('EATA', EATA_CONFIG, SOURCE_CKPT, ()),  # + its Fisher file
    ('CoTTA (1 round)', run_config('cotta', 'synthetic'), SOURCE_CKPT,
     ('test_dataloader.dataset.rounds=1', )),
    ('EcoTTA', run_config('ecotta', 'synthetic'), WARMUP_CKPT, ()),
]


def method_runs(rows: List[Row], work_dir: str, eata_config: str,
                eata_ckpt: str, fisher_data: dict, name: Callable[[str], str],
                echo: Callable[[str], None]) -> List[MethodRun]:
    """The rows as runs; EATA's gets its Fisher, computed first.

    EATA's Fisher comes from clean source images (``fisher_data``: the
    ``data_root`` and ``split`` of a Cityscapes-layout folder), written to
    ``work_dir/eata_fisher.pth`` as ``tools/compute_fisher.py`` does.
    ``name`` makes a run's folder name from its label.
    """
    fisher = osp.join(work_dir, 'eata_fisher.pth')
    eata = [f'adaptation.method.fisher_file={fisher}']
    if any(config == eata_config for _, config, _, _ in rows):
        echo(f'computing EATA\'s Fisher into {fisher} ...')
        os.makedirs(work_dir, exist_ok=True)
        save_fisher(
            fisher_from_config(
                load_config(eata_config), eata_ckpt, **fisher_data), fisher,
            eata_config, eata_ckpt)
    return [
        MethodRun(
            name(label), config, ckpt, label,
            (*options, *(eata if config == eata_config else ())))
        for label, config, ckpt, options in rows
    ]


def run_main_job(work_dir: str,
                 rounds: int = 3,
                 echo: Callable[[str], None] = log) -> str:
    """Six methods (TENT in two recipes) on the synthetic stream.

    Generates the stream into ``data/synthetic`` if it is missing, computes
    EATA's Fisher on the clean synthetic source images
    (``work_dir/eata_fisher.pth``, as ``tools/compute_fisher.py`` does),
    then runs Source, BN adapt, TENT (tent's and CoTTA's recipe), EATA,
    EcoTTA (``rounds`` rounds) and CoTTA (1 round: its 14 augmented views
    per image make it the slowest).

    Returns:
        str: The comparison in Markdown (also in ``work_dir``).
    """
    if not osp.isfile(osp.join(SYNTHETIC_ROOT, 'manifest.json')):
        echo(f'generating the synthetic stream into {SYNTHETIC_ROOT} ...')
        generate_synthetic_stream(SYNTHETIC_ROOT)
    runs = method_runs(
        MAIN_JOB_RUNS, work_dir, EATA_CONFIG, SOURCE_CKPT, FISHER_DATA,
        lambda label: label.split(' (')[0].lower().replace(' ', '_'), echo)
    results = run_methods(runs, work_dir, rounds=rounds, echo=echo)
    return write_comparison_files(results, work_dir)
