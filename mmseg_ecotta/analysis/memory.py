"""What one adaptation step costs in memory and time, per method.

EcoTTA (Song et al., CVPR 2023, https://arxiv.org/abs/2303.01904) is about
memory, so each method is measured side by side in one run, on the same
input shape and batch, with random weights (memory does not depend on the
values, so no checkpoint is needed):

* **parameter bytes**, trainable and frozen, as stored (float32);
* **optimizer state bytes** after one step (Adam keeps two tensors per
  trainable parameter, SGD with momentum one);
* **extra copies**: parameters and buffers of other networks the method
  holds (CoTTA's EMA teacher and anchor);
* **saved for backward**: activation bytes autograd keeps for the
  backward pass of one adaptation step, seen through
  ``torch.autograd.graph.saved_tensors_hooks`` and de-duplicated by storage
  (:mod:`mmseg_ecotta.models.memory_probe`); parameters and buffers saved by
  ops are excluded, they are resident anyway;
* **CUDA peak** (on ``cuda`` only): ``torch.cuda.max_memory_allocated``
  during one timed step, and during one inference forward under
  ``no_grad`` before any step (the floor: weights plus the largest
  transient of a forward). Both are measured above what was allocated
  before the model was built, so they include the model's weights, the
  method's reset snapshot and extra copies, gradients and optimizer state;
* **seconds per step**: median of ``steps`` steps after one warm-up step;
* **analytic count** in the style of the EcoTTA paper's memory figures
  (Fig. 1 and the memory columns of its tables), an *approximation*
  computed from the layers a forward pass runs:

  - frozen parameters at 8 bits per element (the paper assumes a
    quantised, deployable original network); parameters of extra copies
    held by the method count as frozen; trainable parameters at 32 bits;
  - per leaf module whose output is on the gradient path (requires grad):
    a *trainable* layer (one with a parameter that requires grad) keeps
    its input at 32 bits per element, for its weight gradient; a ReLU
    keeps its output's sign at 1 bit per element; every other *frozen*
    layer (convolution, BN in any normalisation mode, pooling) keeps
    nothing: its input is not counted;
  - layers off the gradient path (before the first trainable parameter,
    or run under ``no_grad`` like CoTTA's teacher) keep nothing;
  - a tensor read by several trainable layers counts once;
  - not counted: buffers (BN statistics), gradients, optimizer state, the
    loss' own intermediate tensors (softmax, entropy, L1 difference),
    functional ops outside ``nn.Module`` leaves, and the transient peak of
    the forward pass.

  The count is method-agnostic and identical for stock and lean autograd
  of one method: it is what an ideal backward would keep. It does not
  charge option (b) of the frozen BNs (test-batch statistics with the
  exact gradient), which must keep each frozen BN's input in reality (the
  paper's count does not charge it either).

The variants of the default table follow from what each method and model
can do, not from their names: a method that trains parameters gets a row
with the lean frozen backward (:mod:`mmseg_ecotta.models.lean_backward`)
and one with stock autograd (unless its config fixes ``lean_backward``);
on a model whose frozen BNs normalise by a setting of its own
(``frozen_norm_mode``, the meta models), each of the three options
(``'source'``, ``'batch'``, ``'batch_const'``) gets its rows (unless the
method config fixes one). Every registered method no config names is added
on the first config with a plain model; one that cannot adapt it (EcoTTA
needs meta networks) is skipped with a warning.
"""
import copy
import fnmatch
import gc
import math
import os.path as osp
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple

import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.logging import MMLogger
from torch import Tensor

from ..apis import build_method, method_config
from ..models.memory_probe import storage_key
from ..registry import TTA_METHODS
from ..tta import TTAMethod
from ..utils import method_defaults
from .memory_format import row_summary

# EcoTTA's three options for the frozen BNs at test time; 'sample' is
# 'batch' at the stream's batch size of 1.
FROZEN_BN_OPTIONS = ('source', 'batch', 'batch_const')

__all__ = [
    'MemoryVariant', 'MemoryRow', 'AnalyticCounter', 'RowSkipped',
    'default_variants', 'measure_variant', 'run_memory_report'
]

# Analytic storage widths in bits (EcoTTA paper's memory figures).
FROZEN_WEIGHT_BITS = 8
TRAINABLE_WEIGHT_BITS = 32
TRAINABLE_INPUT_BITS = 32
RELU_BITS = 1


@dataclass
class MemoryVariant:
    """One row of the report: a config and the method config to build.

    Attributes:
        name (str): Row label, e.g. ``'ecotta-source-lean'``.
        config (str): Config file whose ``model`` is built.
        method (dict): TTA method config (``type`` and keywords).
    """
    name: str
    config: str
    method: Dict[str, Any]


@dataclass
class MemoryRow:
    """What one variant's adaptation step costs; bytes unless noted.

    Attributes:
        variant (str): Row label.
        method (str): Registered method name.
        config (str): Config file.
        trainable_param_bytes (int): Parameters the optimizer updates.
        frozen_param_bytes (int): All other parameters of the model.
        optimizer_state_bytes (int): Optimizer state after one step.
        extra_copy_bytes (int): Parameters and buffers of other networks
            the method holds (e.g. CoTTA's teacher and anchor).
        saved_activation_bytes (int, optional): Activations saved for
            backward in one step; None for methods without a backward.
        analytic_activation_bytes (int): Paper-style activation count.
        analytic_total_bytes (int): Paper-style weights plus activations.
        cuda_step_peak_bytes (int, optional): CUDA peak of one step.
        cuda_inference_peak_bytes (int, optional): CUDA peak of one
            ``no_grad`` forward (the floor).
        seconds_per_step (float): Median over the timed steps (the warm-up
            step's time when ``timed_steps`` is 0).
        timed_steps (int): Steps timed after the warm-up step.
        updates (int): Optimizer steps taken (a non-finite loss skips one).
        saved_groups (list[dict]): Largest saved-tensor groups of the step.
    """
    variant: str
    method: str
    config: str
    trainable_param_bytes: int
    frozen_param_bytes: int
    optimizer_state_bytes: int
    extra_copy_bytes: int
    saved_activation_bytes: Optional[int]
    analytic_activation_bytes: int
    analytic_total_bytes: int
    cuda_step_peak_bytes: Optional[int]
    cuda_inference_peak_bytes: Optional[int]
    seconds_per_step: float
    timed_steps: int
    updates: int
    saved_groups: List[Dict[str, Any]] = field(default_factory=list)


class AnalyticCounter:
    """Count activations the paper's way over the forward passes it sees.

    A context manager that puts forward hooks on every leaf module of
    ``model`` (see the module docstring for the rules).

    Args:
        model (nn.Module): The network whose layers are counted.
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.activation_bytes = 0
        self._seen: Set[tuple] = set()
        self._handles: List[Any] = []

    def _hook(self, module: nn.Module, inputs: Tuple[Any, ...],
              output: Any) -> None:
        if not (isinstance(output, Tensor) and output.requires_grad):
            return  # off the gradient path: nothing to keep
        trainable = any(
            p.requires_grad for p in module.parameters(recurse=False))
        if trainable:
            if not inputs or not isinstance(inputs[0], Tensor):
                return
            key = storage_key(inputs[0])
            if key not in self._seen:
                self._seen.add(key)
                self.activation_bytes += (
                    inputs[0].numel() * TRAINABLE_INPUT_BITS // 8)
        elif isinstance(module, nn.ReLU):
            self.activation_bytes += math.ceil(output.numel() * RELU_BITS / 8)

    def __enter__(self) -> 'AnalyticCounter':
        for m in self.model.modules():
            if next(m.children(), None) is None:
                self._handles.append(m.register_forward_hook(self._hook))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []


class RowSkipped(Exception):
    """A variant that cannot be built; the message says why."""


def _has_frozen_norm_mode(cfg: Config) -> bool:
    """Whether the model normalises its frozen BNs by a setting of its own.

    (A :class:`~mmseg_ecotta.models.segmentors.MetaEncoderDecoder`.)
    """
    return 'frozen_norm_mode' in cfg.model


def _trains(name: str) -> bool:
    """Whether the registered method ``name`` chooses parameters to train.
    """
    return TTA_METHODS.get(name).collect_params is not \
        TTAMethod.collect_params


def _expand(method: Dict[str, Any],
            frozen_norm_modes: bool) -> List[Tuple[str, Dict[str, Any]]]:
    """Row names and method configs for one config's method."""
    slug = method['type'].lower()
    if not _trains(method['type']) or 'lean_backward' in method:
        return [(slug, method)]
    if frozen_norm_modes and 'frozen_norm_mode' not in method:
        modes: Sequence[Optional[str]] = FROZEN_BN_OPTIONS
    else:
        modes = [method.get('frozen_norm_mode')]
    rows = []
    for mode in modes:
        for lean in (True, False):
            cfg = dict(method, lean_backward=lean)
            label = slug
            if mode is not None:
                cfg['frozen_norm_mode'] = mode
                label += f'-{mode}'
            rows.append((f'{label}-{"lean" if lean else "stock"}', cfg))
    return rows


def default_variants(
        configs: Sequence[str],
        patterns: Optional[Sequence[str]] = None) -> List[MemoryVariant]:
    """The rows of the report for ``configs``.

    Each config's method expands as described in the module docstring;
    registered methods that no config names are added on the first config
    with a plain (non-meta) model.

    Args:
        configs (Sequence[str]): TTA config files.
        patterns (Sequence[str], optional): Keep only rows whose name
            matches one of these ``fnmatch`` patterns, e.g.
            ``['ecotta-*', 'tent-stock']``. Defaults to None (all rows).

    Returns:
        list[MemoryVariant]: The rows, in config order.

    Raises:
        ValueError: If a pattern matches no row.
    """
    variants: List[MemoryVariant] = []
    covered: Set[str] = set()
    plain_config: Optional[str] = None
    for path in configs:
        cfg = Config.fromfile(path)
        method = method_config(cfg, path)
        covered.add(method['type'])
        meta = _has_frozen_norm_mode(cfg)
        if plain_config is None and not meta:
            plain_config = path
        for name, method_cfg in _expand(method, meta):
            variants.append(MemoryVariant(name, path, method_cfg))
    if plain_config is not None:
        # A method that cannot adapt the plain model (one that needs meta
        # networks) is skipped when measured (RowSkipped).
        for name in sorted(set(TTA_METHODS.module_dict) - covered):
            for row, method_cfg in _expand(method_defaults(name), False):
                variants.append(MemoryVariant(row, plain_config, method_cfg))
    # Two configs of one method: keep the names unique.
    seen: Dict[str, int] = {}
    for v in variants:
        seen[v.name] = seen.get(v.name, 0) + 1
        if seen[v.name] > 1:
            v.name = f'{v.name}-{seen[v.name]}'
    if not patterns:
        return variants
    for pattern in patterns:
        if not any(fnmatch.fnmatch(v.name, pattern) for v in variants):
            raise ValueError(
                f'--variants pattern {pattern!r} matches no row; rows: '
                f'{[v.name for v in variants]}')
    return [
        v for v in variants if any(
            fnmatch.fnmatch(v.name, p) for p in patterns)
    ]


def _tensor_bytes(tensors: Sequence[Tensor],
                  exclude: Optional[Set[tuple]] = None) -> int:
    """Bytes of distinct storages among ``tensors``."""
    seen = set(exclude or ())
    total = 0
    for t in tensors:
        key = storage_key(t)
        if key not in seen:
            seen.add(key)
            total += t.untyped_storage().nbytes()
    return total


def _optimizer_state_bytes(method: TTAMethod) -> int:
    if method.optimizer is None:
        return 0
    return _tensor_bytes([
        v for state in method.optimizer.state.values() for v in state.values()
        if isinstance(v, Tensor)
    ])


def _extra_copy_params(method: TTAMethod) -> Tuple[int, int]:
    """(Parameter elements, parameter-and-buffer bytes) of extra copies."""
    own = {storage_key(t) for t in method.model.state_dict().values()}
    tensors, numel = [], 0
    for net in method.extra_networks:
        tensors += list(net.parameters()) + list(net.buffers())
        numel += sum(p.numel() for p in net.parameters())
    return numel, _tensor_bytes(tensors, exclude=own)


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def measure_variant(variant: MemoryVariant,
                    shape: Tuple[int, int],
                    batch: int = 1,
                    device: str = 'cpu',
                    steps: int = 3,
                    max_step_seconds: Optional[float] = None,
                    seed: int = 0) -> MemoryRow:
    """Build one variant and measure one adaptation step.

    Args:
        variant (MemoryVariant): What to build.
        shape (tuple[int, int]): Input height and width.
        batch (int): Images per step. Default: 1.
        device (str): ``'cpu'`` or ``'cuda'`` (or ``'cuda:N'``).
            Default: ``'cpu'``.
        steps (int): Steps timed after the warm-up step. Default: 3.
        max_step_seconds (float, optional): Time no further steps when the
            warm-up step took longer (slow variants such as CoTTA's 14
            views on CPU); its time is reported instead. Default: None.
        seed (int): Seed of the random weights and input. Default: 0.

    Returns:
        MemoryRow: The measurements.
    """
    dev = torch.device(device)
    cuda = dev.type == 'cuda'
    torch.manual_seed(seed)
    if cuda:
        gc.collect()
        torch.cuda.empty_cache()
        # Peaks are taken above this, so leftovers do not count.
        base = torch.cuda.memory_allocated(dev)
    method_cfg = copy.deepcopy(variant.method)
    # EcoTTA's frozen-BN variants are a model setting.
    mode = method_cfg.pop('frozen_norm_mode', None)
    overrides = {} if mode is None else dict(frozen_norm_mode=mode)
    try:
        # Random weights: memory and time do not depend on the values.
        method = build_method(
            Config.fromfile(variant.config), None, method_cfg, device,
            **overrides)
    except (FileNotFoundError, TypeError) as err:
        # A data file the method config names is missing (e.g. EATA's
        # Fisher file), or the method cannot adapt this model.
        raise RowSkipped(str(err)) from err
    model = method.model
    # A fresh recording: the base records the first adaptation step.
    method.measure_memory = True
    method.saved_tensors = None
    inputs = torch.randn(batch, 3, *shape, device=dev)

    inference_peak = None
    if cuda:
        torch.cuda.reset_peak_memory_stats(dev)
        with torch.no_grad():
            method.decode(inputs)
        _sync(dev)
        inference_peak = torch.cuda.max_memory_allocated(dev) - base

    # Warm-up step: allocates optimizer state, records the saved tensors
    # (the base's SavedTensorRecorder) and the analytic count (hooks).
    counter = AnalyticCounter(model)
    start = time.perf_counter()
    with counter:
        method.forward_and_adapt(inputs)
    _sync(dev)
    warmup_seconds = time.perf_counter() - start

    times: List[float] = []
    step_peak = None
    if max_step_seconds is None or warmup_seconds <= max_step_seconds:
        if cuda:
            torch.cuda.reset_peak_memory_stats(dev)
        for _ in range(steps):
            start = time.perf_counter()
            method.forward_and_adapt(inputs)
            _sync(dev)
            times.append(time.perf_counter() - start)
        if cuda and times:
            step_peak = torch.cuda.max_memory_allocated(dev) - base

    trainable = {id(p) for _, p in method.named_params}
    params = list(model.parameters())
    trainable_bytes = sum(p.numel() * p.element_size() for p in params
                          if id(p) in trainable)
    frozen_bytes = sum(p.numel() * p.element_size() for p in params
                       if id(p) not in trainable)
    trainable_numel = sum(p.numel() for p in params if id(p) in trainable)
    frozen_numel = sum(p.numel() for p in params if id(p) not in trainable)
    extra_numel, extra_bytes = _extra_copy_params(method)
    analytic_weights = ((frozen_numel + extra_numel) * FROZEN_WEIGHT_BITS +
                        trainable_numel * TRAINABLE_WEIGHT_BITS) // 8
    report = method.saved_tensors
    row = MemoryRow(
        variant=variant.name,
        method=variant.method['type'],
        config=variant.config,
        trainable_param_bytes=trainable_bytes,
        frozen_param_bytes=frozen_bytes,
        optimizer_state_bytes=_optimizer_state_bytes(method),
        extra_copy_bytes=extra_bytes,
        saved_activation_bytes=None
        if report is None else report.activation_bytes,
        analytic_activation_bytes=counter.activation_bytes,
        analytic_total_bytes=analytic_weights + counter.activation_bytes,
        cuda_step_peak_bytes=step_peak,
        cuda_inference_peak_bytes=inference_peak,
        seconds_per_step=statistics.median(times) if times else warmup_seconds,
        timed_steps=len(times),
        updates=method.stats['updates'],
        saved_groups=[] if report is None else [
            dict(
                kind=g.kind,
                dtype=str(g.dtype).replace('torch.', ''),
                shape=list(g.shape),
                count=g.count,
                bytes=g.nbytes) for g in report.groups[:12]
        ])
    del method, model, inputs
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
    return row


def run_memory_report(
    configs: Sequence[str],
    shape: Tuple[int, int],
    batch: int = 1,
    device: str = 'cpu',
    steps: int = 3,
    patterns: Optional[Sequence[str]] = None,
    max_step_seconds: Optional[float] = None,
    on_row: Optional[Callable[[List[MemoryRow]],
                              None]] = None) -> List[MemoryRow]:
    """Measure every row of :func:`default_variants`, one after another.

    Args:
        configs (Sequence[str]): TTA config files.
        shape (tuple[int, int]): Input height and width.
        batch (int): Images per step. Default: 1.
        device (str): ``'cpu'`` or ``'cuda'``. Default: ``'cpu'``.
        steps (int): Timed steps per row after a warm-up. Default: 3.
        patterns (Sequence[str], optional): Row-name filter, see
            :func:`default_variants`. Default: None (all rows).
        max_step_seconds (float, optional): See :func:`measure_variant`.
        on_row (Callable, optional): Called with the rows so far after
            each row, e.g. to save them: a long CPU run that dies keeps
            what it measured. Default: None.

    Returns:
        list[MemoryRow]: One row per variant.

    Raises:
        ValueError: For ``cuda`` without a GPU or a non-positive size.
    """
    if torch.device(device).type == 'cuda' and not torch.cuda.is_available():
        raise ValueError(f'device={device!r} but CUDA is not available; '
                         "use --device cpu")
    if min(shape) < 1 or batch < 1 or steps < 0:
        raise ValueError(f'shape={tuple(shape)}, batch={batch}, '
                         f'steps={steps}: need positive sizes, steps >= 0')
    for path in configs:
        if not osp.isfile(path):
            raise FileNotFoundError(f'config file {path!r} does not exist')
    logger = MMLogger.get_current_instance()
    rows = []
    for variant in default_variants(configs, patterns):
        logger.info(f'memory report: measuring {variant.name} '
                    f'({variant.method})')
        try:
            row = measure_variant(variant, shape, batch, device, steps,
                                  max_step_seconds)
        except RowSkipped as err:
            logger.warning(f'memory report: skipped {variant.name}: {err}')
            continue
        rows.append(row)
        logger.info(f'memory report: {variant.name}: {row_summary(row)}')
        if on_row is not None:
            on_row(rows)
    return rows
