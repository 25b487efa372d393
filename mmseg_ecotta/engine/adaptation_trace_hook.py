"""What the test-time updates do, step by step.

A method whose updates change nothing (or too much) looks like any other in
the mIoU table. This hook records, after every update, what explains it:
the loss, the prediction's mean entropy and the share of confident pixels,
the gradient norm and how far the trained parameters have moved from where
the stream started, per parameter group (EcoTTA: per partition's meta
network; TENT: per stage). ``tools/analysis/adaptation_trace.py`` summarises
the trace per (round, domain) segment and compares per-class IoU with
another run (e.g. the same model without updates).
"""
import json
import math
import os.path as osp
from collections import defaultdict
from typing import Dict, List

import torch
from mmengine.hooks import Hook
from mmseg.registry import HOOKS
from torch import Tensor

from ..tta.losses import entropy_map, entropy_threshold
from ..utils.files import atomic_write
from .tta_hook import adaptation_hook

TRACE_FILE = 'adaptation_trace.json'


def param_group(name: str, depth: int) -> str:
    """The group of parameter ``name``: its first ``depth`` name parts.

    ``backbone.meta_nets.0.conv_block.conv.weight`` at depth 3 is
    ``backbone.meta_nets.0`` (EcoTTA's first partition);
    ``backbone.layer1.0.bn1.weight`` is ``backbone.layer1.0``.
    """
    return '.'.join(name.split('.')[:depth])


@HOOKS.register_module()
class AdaptationTraceHook(Hook):
    """Record per-update diagnostics into ``WORK_DIR/adaptation_trace.json``.

    Turn it on with ``adaptation.trace=True`` (the adaptation hook adds
    it) or ``tools/test_tta.py ... --trace``. Each row: ``step``, ``round``,
    ``domain``, ``loss``, ``entropy`` (mean over pixels, nats),
    ``confident`` (share of pixels with entropy below the method's
    threshold, ``0.4 ln C`` when it has none), and per group ``grad`` (L2
    norm of the gradient of that step) and ``drift`` (``|θ - θ0| / |θ0|``,
    θ0 the weights at the start of the stream). It costs one pass over the
    trained parameters per update, nothing on the model's graph.

    Args:
        depth (int): Name parts that make a parameter's group. Defaults
            to 3 (EcoTTA: one group per partition's meta network).
    """

    priority = 'LOW'  # after TestTimeAdaptationHook built the method

    def __init__(self, depth: int = 3) -> None:
        if depth < 1:
            raise ValueError(f'depth={depth}: name parts per group, >= 1')
        self.depth = depth
        self.method = None
        self.rows: List[dict] = []
        self._start: Dict[str, Tensor] = {}
        self._start_norms: Dict[str, float] = {}

    def before_test(self, runner) -> None:
        # The adaptation hook owns the stream's segments.
        self.tta = adaptation_hook(runner)
        self.method = self.tta.method
        self.rows = []
        self._start = {
            n: p.detach().clone()
            for n, p in self.method.named_params
        }
        squares: Dict[str, float] = defaultdict(float)
        for name, theta0 in self._start.items():
            squares[param_group(name,
                                self.depth)] += float(theta0.pow(2).sum())
        self._start_norms = {g: math.sqrt(v) for g, v in squares.items()}
        self.threshold = getattr(
            self.method, 'threshold',
            entropy_threshold(self.method.model.num_classes))
        self.method.step_observers.append(self.observe)

    def observe(self, logits: Tensor, loss: Tensor) -> None:
        """Record one update (a step observer of the method)."""
        # Summed as tensors, read once per group: one sync per group, not
        # per parameter, on a GPU.
        grad: Dict[str, Tensor] = {}
        moved: Dict[str, Tensor] = {}
        with torch.no_grad():
            entropy = entropy_map(logits.float())
            for name, param in self.method.named_params:
                group = param_group(name, self.depth)
                if param.grad is not None:
                    grad[group] = grad.get(group, 0) + param.grad.pow(2).sum()
                moved[group] = moved.get(
                    group, 0) + (param - self._start[name]).pow(2).sum()
        self.rows.append(
            dict(
                step=len(self.rows),
                round=self.tta.segments.current[0],
                domain=self.tta.segments.current[1],
                loss=float(loss),
                entropy=float(entropy.mean()),
                confident=float((entropy < self.threshold).float().mean()),
                grad={
                    g: math.sqrt(float(v))
                    for g, v in grad.items()
                },
                drift={
                    g: math.sqrt(float(v)) / (self._start_norms[g] or 1.0)
                    for g, v in moved.items()
                }))

    def after_test(self, runner) -> None:
        if self.method is not None and self.observe in \
                self.method.step_observers:
            self.method.step_observers.remove(self.observe)
        trace = dict(
            method=type(self.method).__name__,
            threshold=self.threshold,
            rows=self.rows)
        atomic_write(
            osp.join(runner.work_dir, TRACE_FILE),
            lambda f: json.dump(trace, f),
            binary=False)
