"""Soak benchmark: does memory grow with the number of adaptation steps?

A deployed stream runs for days, so any per-step leak (a growing list of
losses, an autograd graph kept alive, an optimizer state that keeps
growing) ends the run. :func:`run_soak` adapts a config's method for many
steps over its stream (cycled, as more rounds would), samples
the process' resident memory (and CUDA memory on a GPU) every ``interval``
steps, and fits a straight line to the second half of the samples, after
start-up allocations and allocator warm-up have settled.

The verdict (:func:`memory_trend`): the fitted slope, extrapolated over the
whole run, must stay below ``max(rel_tolerance * median, abs_tolerance)``
(defaults 5% and 20 MiB). A leak of 10 KiB per step fails a 2,000-step
soak; allocator noise of a few MiB does not.

It calls the method's ``test_step`` directly, as mmengine's test loop does
(under ``no_grad``), without the metric: the metric keeps each image's
(4, C) areas on purpose (about 0.6 KiB per image at 19 classes), which is
growth by design, not a leak.
"""
import os
import resource
import time
from typing import Any, Dict, List, Optional

import numpy as np
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner, load_checkpoint
from mmseg.registry import MODELS

from ..tta import build_tta_method
from .memory import method_config_of

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


def run_soak(config: str,
             checkpoint: Optional[str],
             steps: int = 2000,
             interval: int = 20,
             device: str = 'cpu',
             rel_tolerance: float = 0.05,
             abs_tolerance: float = 20 * MIB) -> Dict[str, Any]:
    """Adapt ``steps`` steps over a config's stream and record memory.

    Args:
        config (str): A TTA config (with a ``TestTimeAdaptationHook``).
        checkpoint (str, optional): Weights to load; None keeps the random
            initialisation (memory does not depend on the values).
        steps (int): Adaptation steps. Defaults to 2000.
        interval (int): Sample memory every this many steps. Defaults
            to 20.
        device (str): ``'cpu'`` or ``'cuda'``. Defaults to ``'cpu'``.
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
    cfg = Config.fromfile(config)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    model = MODELS.build(cfg.model)
    model.init_weights()
    if checkpoint:
        load_checkpoint(model, checkpoint, map_location='cpu')
    model.to(device).eval()
    method = build_tta_method(method_config_of(cfg, config), model)

    loader_cfg = cfg.test_dataloader.copy()
    # Workers' memory is not this process' RSS: load in-process so that a
    # leak in the data pipeline is measured too.
    loader_cfg.update(num_workers=0, persistent_workers=False)
    loader = Runner.build_dataloader(loader_cfg)

    cuda = device.startswith('cuda')
    samples: List[Dict[str, int]] = []
    start = time.perf_counter()
    step = 0
    while step < steps:  # cycle the stream, as further rounds would
        for batch in loader:
            with torch.no_grad():  # as mmengine's TestLoop calls it
                method.test_step(batch)
            step += 1
            if step % interval == 0 or step == steps:
                samples.append(
                    dict(
                        step=step,
                        rss_bytes=resident_bytes(),
                        cuda_allocated_bytes=torch.cuda.memory_allocated()
                        if cuda else 0))
            if step == steps:
                break
    seconds = time.perf_counter() - start

    rss = memory_trend([s['step'] for s in samples],
                       [s['rss_bytes'] for s in samples], steps, rel_tolerance,
                       abs_tolerance)
    result = dict(
        config=config,
        checkpoint=checkpoint,
        steps=steps,
        interval=interval,
        device=device,
        seconds_per_step=seconds / steps,
        adaptation=dict(method.stats),
        samples=samples,
        rss_trend=rss,
        grows=rss['grows'])
    if cuda:
        result['cuda_trend'] = memory_trend(
            [s['step']
             for s in samples], [s['cuda_allocated_bytes'] for s in samples],
            steps, rel_tolerance, abs_tolerance)
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
