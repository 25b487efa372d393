"""Soak benchmark: does memory grow with the number of adapted images?

A deployed stream runs for days, so any per-image growth (a growing list
of losses, an autograd graph kept alive, per-image records, a fragmented
heap) ends the run. :func:`run_soak` drives the real runner, exactly what
``tools/test_tta.py`` runs: mmengine's ``Runner`` and ``TestLoop``, the
:class:`~mmseg_ecotta.engine.TestTimeAdaptationHook` (adaptation state
saved every ``checkpoint_interval`` steps, results JSON rewritten at every
domain), the :class:`~mmseg_ecotta.evaluation.ContinualIoUMetric` and
mmengine's logging. The config's stream is repeated for as many rounds as
``steps`` needs. :class:`SoakMemoryHook` samples the process' resident
memory (and CUDA memory on a GPU) every ``interval`` images, and a
straight line is fitted to the second half of the samples, after start-up
allocations and allocator warm-up have settled.

The verdict (:func:`memory_trend`): the fitted slope, extrapolated over the
whole run, must stay below ``max(rel_tolerance * median, abs_tolerance)``
(defaults 5% and 20 MiB). A leak of 10 KiB per image fails a 2,000-image
soak; allocator noise of a few MiB does not.

The data pipeline runs in the main process (``num_workers=0``), so that
its allocations are measured too.
"""
import math
import os
import resource
import tempfile
import time
from typing import Any, Dict, List, Optional

import numpy as np
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS, HOOKS

from ..apis import build_runner, find_hook
from ..engine.tta_hook import adaptation_hook
from ..utils import load_config

MIB = 2**20


def resident_bytes() -> int:
    """Current resident set size of this process, in bytes.

    Reads ``/proc/self/statm`` (Linux); elsewhere falls back to the peak
    RSS from ``getrusage``, which can only rise (so hides no growth).
    """
    try:
        with open('/proc/self/statm') as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf('SC_PAGE_SIZE')
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        # ru_maxrss is KiB on Linux, bytes on macOS.
        return peak if os.uname().sysname == 'Darwin' else peak * 1024


def memory_trend(steps: List[int],
                 values: List[float],
                 total_steps: int,
                 rel_tolerance: float = 0.05,
                 abs_tolerance: float = 20 * MIB) -> Dict[str, Any]:
    """Fit a line to the second half of the samples and judge it.

    Args:
        steps (list[int]): Step of each sample.
        values (list[float]): Memory of each sample, in bytes.
        total_steps (int): Steps of the whole run, over which the slope is
            extrapolated.
        rel_tolerance (float): Allowed growth as a fraction of the median
            memory of the second half. Defaults to 0.05.
        abs_tolerance (float): Allowed growth in bytes, at least. Defaults
            to 20 MiB.

    Returns:
        dict: ``slope_bytes_per_step``, ``projected_growth_bytes`` (slope
        times ``total_steps``), ``tolerance_bytes`` and ``grows`` (bool).
    """
    if len(steps) != len(values) or len(steps) < 4:
        raise ValueError(f'need at least 4 memory samples to fit a trend, '
                         f'got {len(steps)}: run more steps or sample more '
                         'often (a smaller interval)')
    half = len(steps) // 2
    x = np.asarray(steps[half:], dtype=np.float64)
    y = np.asarray(values[half:], dtype=np.float64)
    slope = float(np.polyfit(x, y, 1)[0]) if np.ptp(x) > 0 else 0.0
    growth = slope * total_steps
    tolerance = max(rel_tolerance * float(np.median(y)), abs_tolerance)
    return dict(
        slope_bytes_per_step=slope,
        projected_growth_bytes=growth,
        tolerance_bytes=tolerance,
        grows=growth > tolerance)


@HOOKS.register_module()
class SoakMemoryHook(Hook):
    """Sample resident (and CUDA) memory every ``interval`` test images.

    Args:
        interval (int): Images between samples. Defaults to 20.
    """

    priority = 'LOWEST'  # after every other hook's per-image work

    def __init__(self, interval: int = 20) -> None:
        self.interval = interval
        self.samples: List[Dict[str, int]] = []
        self.images = 0

    def after_test_iter(self,
                        runner,
                        batch_idx: int,
                        data_batch: dict = None,
                        outputs=None) -> None:
        self.images += len(data_batch['data_samples'])
        if self.images % self.interval == 0:
            self.samples.append(
                dict(
                    step=self.images,
                    rss_bytes=resident_bytes(),
                    cuda_allocated_bytes=torch.cuda.memory_allocated()
                    if torch.cuda.is_available() else 0))


def soak_config(config: str,
                checkpoint: Optional[str],
                steps: int,
                interval: int,
                work_dir: str,
                cfg_options: Optional[dict] = None) -> Config:
    """The config of a soak: the stream repeated to at least ``steps``.

    Args:
        config (str): A TTA config.
        checkpoint (str, optional): ``load_from``.
        steps (int): Images to adapt on, at least.
        interval (int): :class:`SoakMemoryHook`'s interval.
        work_dir (str): Where the runner writes logs, state and results.
        cfg_options (dict, optional): ``--cfg-options`` overrides.

    Returns:
        Config: Ready for ``Runner.from_cfg``.
    """
    cfg = load_config(config, cfg_options, work_dir)
    cfg.load_from = checkpoint
    loader = cfg.test_dataloader
    loader.update(num_workers=0, persistent_workers=False)
    dataset = loader.dataset
    if dataset.get('type') != 'WeatherStreamDataset':
        dataset = dict(
            type='WeatherStreamDataset',
            domains=[dict(name='all', dataset=dataset)])
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    one_round = len(DATASETS.build(dict(dataset, rounds=1, lazy_init=False)))
    loader.dataset = dict(dataset, rounds=math.ceil(steps / one_round))
    cfg.custom_hooks = list(cfg.get('custom_hooks', [])) + [
        dict(type='SoakMemoryHook', interval=interval)
    ]
    return cfg


def run_soak(config: str,
             checkpoint: Optional[str],
             steps: int = 2000,
             interval: int = 20,
             work_dir: Optional[str] = None,
             cfg_options: Optional[dict] = None,
             rel_tolerance: float = 0.05,
             abs_tolerance: float = 20 * MIB) -> Dict[str, Any]:
    """Run a config's stream through the real runner and record memory.

    Args:
        config (str): A TTA config (with a ``TestTimeAdaptationHook``).
        checkpoint (str, optional): Weights to load; None keeps the random
            initialisation (memory does not depend on the values).
        steps (int): Images to adapt on, at least: the stream runs whole
            rounds. Defaults to 2000.
        interval (int): Sample memory every this many images. Defaults
            to 20.
        work_dir (str, optional): The runner's work dir. Defaults to a new
            temporary folder.
        cfg_options (dict, optional): Config overrides.
        rel_tolerance (float): See :func:`memory_trend`.
        abs_tolerance (float): See :func:`memory_trend`.

    Returns:
        dict: ``samples`` (list of ``dict(step, rss_bytes,
        cuda_allocated_bytes)``), ``rss_trend`` (and ``cuda_trend`` on a
        GPU) from :func:`memory_trend`, ``seconds_per_step``, ``grows``.
    """
    if steps < 4 * interval:
        raise ValueError(f'steps={steps} with interval={interval} gives '
                         'fewer than 4 samples: raise --steps or lower '
                         '--interval')
    # As any mmengine run: on the GPU when one is visible (hide it with
    # CUDA_VISIBLE_DEVICES= to soak on the CPU).
    cuda = torch.cuda.is_available()
    work_dir = work_dir or tempfile.mkdtemp(prefix='soak_')
    cfg = soak_config(config, checkpoint, steps, interval, work_dir,
                      cfg_options)
    runner = build_runner(cfg)
    start = time.perf_counter()
    runner.test()
    seconds = time.perf_counter() - start
    hook = find_hook(runner, SoakMemoryHook)
    tta = adaptation_hook(runner)
    samples, images = hook.samples, hook.images

    rss = memory_trend([s['step'] for s in samples],
                       [s['rss_bytes'] for s in samples], images,
                       rel_tolerance, abs_tolerance)
    result = dict(
        config=config,
        checkpoint=checkpoint,
        steps=images,
        interval=interval,
        device='cuda' if cuda else 'cpu',
        work_dir=work_dir,
        seconds_per_step=seconds / images,
        adaptation=dict(tta.method.stats),
        samples=samples,
        rss_trend=rss,
        grows=rss['grows'])
    if cuda:
        result['cuda_trend'] = memory_trend(
            [s['step']
             for s in samples], [s['cuda_allocated_bytes'] for s in samples],
            images, rel_tolerance, abs_tolerance)
        result['grows'] = result['grows'] or result['cuda_trend']['grows']
    return result


def format_soak(result: Dict[str, Any]) -> str:
    """A few lines: memory at the first sample at/after step 100 and last."""
    samples = result['samples']
    early = next((s for s in samples if s['step'] >= 100), samples[0])
    last = samples[-1]
    lines = [
        f"{result['steps']} steps of {result['config']} on "
        f"{result['device']}, {result['seconds_per_step']:.3f} s/step",
        f"RSS at step {early['step']}: {early['rss_bytes'] / MIB:.1f} MiB; "
        f"at step {last['step']}: {last['rss_bytes'] / MIB:.1f} MiB"
    ]
    keys = ['rss_trend'] + (['cuda_trend'] if 'cuda_trend' in result else [])
    if 'cuda_trend' in result:
        lines.append(
            f"CUDA allocated at step {early['step']}: "
            f"{early['cuda_allocated_bytes'] / MIB:.1f} MiB; at step "
            f"{last['step']}: {last['cuda_allocated_bytes'] / MIB:.1f} MiB")
    for key in keys:
        trend = result[key]
        lines.append(
            f"{key}: slope {trend['slope_bytes_per_step'] / 1024:.2f} "
            f"KiB/step over the second half, projected growth "
            f"{trend['projected_growth_bytes'] / MIB:.1f} MiB over "
            f"{result['steps']} steps, tolerance "
            f"{trend['tolerance_bytes'] / MIB:.1f} MiB: "
            f"{'GROWS' if trend['grows'] else 'flat'}")
    return '\n'.join(lines)
