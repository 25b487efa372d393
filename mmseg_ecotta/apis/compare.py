"""Run several TTA configs over the same stream, one process each.

Each method runs in its own process of :mod:`mmseg_ecotta.apis.test_tta`
(``tools/test_tta.py``): a fresh process per method means nothing
(allocator caches, peak-memory counters, random state, registries) carries
over from one method to the next, so their costs are measured alike. With
``gpus > 1`` up to that many processes run at once, one per device
(``CUDA_VISIBLE_DEVICES`` assigned round-robin).
"""
import os
import os.path as osp
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import IO, Callable, Dict, List, Optional, Sequence, Tuple

from mmengine.logging import MMLogger

from ..evaluation.comparison import load_results, write_comparison_files

# tools/test_tta.py's entry point, run as a module of the installed package.
TEST_MODULE = 'mmseg_ecotta.apis.test_tta'


@dataclass
class MethodRun:
    """One method of a comparison.

    Args:
        name (str): Sub-directory of the work dir for this run.
        config (str): TTA config file.
        checkpoint (str): Weights to load before adapting.
        label (str, optional): Name in tables and plots. Defaults to the
            ``method`` of the run's results (e.g. ``'Tent'``).
        cfg_options (Sequence[str]): ``key=value`` overrides for this run
            only, applied after the shared ones (e.g. a shorter stream for
            a slow method). Defaults to none.
    """

    name: str
    config: str
    checkpoint: str
    label: Optional[str] = None
    cfg_options: Sequence[str] = ()


def _log(message: str) -> None:
    MMLogger.get_current_instance().info(message)


def run_methods(runs: Sequence[MethodRun],
                work_dir: str,
                cfg_options: Sequence[str] = (),
                rounds: Optional[int] = None,
                gpus: int = 0,
                echo: Callable[[str], None] = _log) -> Dict[str, dict]:
    """Run every method over the stream and collect its results.

    Args:
        runs (Sequence[MethodRun]): The methods, in table order.
        work_dir (str): Each run writes to ``work_dir/<run.name>/``
            (``tta_results.json``, ``run.log``, mmengine's logs).
        cfg_options (Sequence[str]): ``key=value`` overrides passed to
            every run, as ``--cfg-options`` of ``tools/test_tta.py``.
        rounds (int, optional): Rounds of the stream, overriding the
            configs' ``test_dataloader.dataset.rounds``.
        gpus (int): Devices to spread runs over, one process per device;
            0 or 1 runs them one after the other. Defaults to 0.
        echo (Callable[[str], None]): Where progress lines go. Defaults to
            mmengine's logger.

    Returns:
        dict: Label -> results dict (``tta_results.json``), in ``runs``
        order. Labels of runs of the same method get the run name added.

    Raises:
        RuntimeError: A run failed; the message names its ``run.log``.
    """
    names = [r.name for r in runs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f'run names {duplicates} repeat: each run needs its '
                         'own work sub-directory; give distinct names')
    options = list(cfg_options)
    if rounds is not None:
        if rounds < 1:
            raise ValueError(f'rounds={rounds}: give at least 1')
        options.append(f'test_dataloader.dataset.rounds={rounds}')
    pending, running = list(runs), {}
    slots = max(gpus, 1)
    while pending or running:
        free = [d for d in range(slots) if d not in running]
        if pending and free:
            run = pending.pop(0)
            running[free[0]] = (run,
                                _launch(run, work_dir, options,
                                        free[0] if gpus > 1 else None, echo))
            continue
        time.sleep(0.2)
        for device, (run, (proc, log)) in list(running.items()):
            if proc.poll() is None:
                continue
            del running[device]
            log.close()
            if proc.returncode != 0:
                for _, (other, _) in running.values():
                    other.terminate()
                raise RuntimeError(
                    f'[{run.name}] failed (exit {proc.returncode}); see '
                    f'{osp.join(work_dir, run.name, "run.log")}. Runs '
                    'finished so far are kept.')
            res = load_results(
                osp.join(work_dir, run.name, 'tta_results.json'))
            echo(f"[{run.name}] mean mIoU {res['mean_mIoU']:.1f}")
    return _label(runs, work_dir)


def _launch(run: MethodRun, work_dir: str, options: List[str],
            device: Optional[int],
            echo: Callable[[str], None]) -> Tuple[subprocess.Popen, IO]:
    """Start one ``tools/test_tta.py`` process logging to ``run.log``.

    Returns:
        tuple: The process and its open log file (closed by the caller).
    """
    for path, what in ((run.config, 'config'), (run.checkpoint, 'checkpoint')):
        if not osp.isfile(path):
            raise FileNotFoundError(
                f'{what} {path!r} of run {run.name!r} does not exist; check '
                'the path (relative paths are from the current directory)')
    run_dir = osp.join(work_dir, run.name)
    os.makedirs(run_dir, exist_ok=True)
    cmd = [
        sys.executable, '-m', TEST_MODULE, run.config, run.checkpoint,
        '--work-dir', run_dir
    ]
    options = [*options, *run.cfg_options]
    if options:
        cmd += ['--cfg-options', *options]
    env = dict(os.environ)
    if device is not None:
        env['CUDA_VISIBLE_DEVICES'] = str(device)
    where = '' if device is None else f' (GPU {device})'
    echo(f'[{run.name}]{where} python tools/test_tta.py {run.config} '
         f'{run.checkpoint}')
    log = open(osp.join(run_dir, 'run.log'), 'w')
    return subprocess.Popen(
        cmd, stdout=log, stderr=subprocess.STDOUT, env=env), log


def _label(runs: Sequence[MethodRun], work_dir: str) -> Dict[str, dict]:
    """Results by label; a method that occurs twice gets its run name."""
    results = [
        load_results(osp.join(work_dir, r.name, 'tta_results.json'))
        for r in runs
    ]
    methods = [r.label or res['method'] for r, res in zip(runs, results)]
    out = {}
    for run, method, res in zip(runs, methods, results):
        label = method if methods.count(method) == 1 else (
            f'{method} ({run.name})')
        out[label] = res
    return out


def compare_configs(configs: Sequence[str],
                    checkpoints: Sequence[str],
                    work_dir: str,
                    cfg_options: Sequence[str] = (),
                    rounds: Optional[int] = None,
                    gpus: int = 0,
                    echo: Callable[[str], None] = _log) -> str:
    """Run every config over its stream and write the comparison files.

    Args:
        configs (Sequence[str]): TTA config files, in table order; each run
            goes to ``work_dir/<config name>``.
        checkpoints (Sequence[str]): One for all configs or one per config.
        work_dir (str): Where ``comparison.{md,csv,json}`` and the plots go.
        cfg_options (Sequence[str]): ``key=value`` overrides for every run.
        rounds (int, optional): Rounds of the stream; the config's if None.
        gpus (int): Run up to this many at once, one per GPU; 0: in turn.
        echo (Callable): Progress output. Defaults to the mmengine logger.

    Returns:
        str: The comparison in Markdown.

    Raises:
        ValueError: If the checkpoints do not match the configs in number.
    """
    checkpoints = list(checkpoints)
    if len(checkpoints) == 1:
        checkpoints = checkpoints * len(configs)
    if len(checkpoints) != len(configs):
        raise ValueError(
            f'{len(checkpoints)} checkpoints for {len(configs)} '
            'configs: give one checkpoint for all or one per config')
    runs = [
        MethodRun(osp.splitext(osp.basename(cfg))[0], cfg, ckpt)
        for cfg, ckpt in zip(configs, checkpoints)
    ]
    results = run_methods(
        runs,
        work_dir,
        cfg_options=cfg_options,
        rounds=rounds,
        gpus=gpus,
        echo=echo)
    return write_comparison_files(results, work_dir)
