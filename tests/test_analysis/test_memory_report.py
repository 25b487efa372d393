"""The per-method memory report, and EcoTTA's lean backward on its model.

Everything runs on the tiny DeepLabV3+ R18 of the synthetic configs.
"""
import copy
import json
from typing import Dict

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from torch import Tensor

from mmseg_ecotta.analysis import (AnalyticCounter, MemoryRow, MemoryVariant,
                                   default_variants, format_markdown,
                                   measure_variant, rows_to_json,
                                   run_memory_report)
from mmseg_ecotta.analysis.memory import FROZEN_BN_OPTIONS
from mmseg_ecotta.apis import method_config
from mmseg_ecotta.models.lean_backward import LeanConv2d
from mmseg_ecotta.models.norm import NORM_MODES, TTABatchNorm2d
from mmseg_ecotta.registry import TTA_METHODS
from mmseg_ecotta.tta import build_tta_method
from ..conftest import (DEVICES, TINY_META_MODEL, build_model, method_cfg,
                        synthetic_config)

ECOTTA_CFG = synthetic_config('ecotta')
TENT_CFG = synthetic_config('tent')
# One config per method of the table; registered methods without
# one here (CoTTA, EATA) are added by the report itself.
SYNTHETIC = [ECOTTA_CFG, TENT_CFG
             ] + [synthetic_config(name) for name in ('source', 'bn_adapt')]


def _measure(name: str, shape=(128, 256)) -> MemoryRow:
    """One row of the default table, warm-up step only (fast)."""
    variant = next(
        v for v in default_variants([ECOTTA_CFG, TENT_CFG]) if v.name == name)
    return measure_variant(variant, shape, steps=0)


def test_report_runs_on_synthetic_configs() -> None:
    rows = run_memory_report(SYNTHETIC, (32, 64), steps=1)
    names = [row.variant for row in rows]
    expected = [
        f'ecotta-{m}-{k}' for m in FROZEN_BN_OPTIONS for k in ('lean', 'stock')
    ] + ['tent-lean', 'tent-stock', 'source', 'bnadapt']
    assert set(expected) <= set(names)
    # Registered methods without a config get rows on the plain model, a
    # lean and a stock one when they train parameters.
    for name in set(
            TTA_METHODS.module_dict) - {'EcoTTA', 'Tent', 'Source', 'BNAdapt'}:
        assert {f'{name.lower()}-lean', f'{name.lower()}-stock'} <= set(names)
    by_name = {row.variant: row for row in rows}
    for name in ('source', 'bnadapt'):
        row = by_name[name]
        assert row.saved_activation_bytes is None  # no backward
        assert row.trainable_param_bytes == row.optimizer_state_bytes == 0
        assert row.analytic_activation_bytes == 0
    for row in rows:
        assert row.timed_steps == 1 and row.seconds_per_step > 0
        assert row.cuda_step_peak_bytes is None  # CPU run
        if row.saved_activation_bytes is not None:
            assert row.saved_activation_bytes > 0
            assert row.trainable_param_bytes > 0
    for name in expected[:-2]:  # EATA may filter every pixel out
        assert by_name[name].updates == 2, name
        assert by_name[name].optimizer_state_bytes > 0, name
    ecotta = by_name['ecotta-source-lean']
    # SGD with momentum: one buffer per trainable parameter.
    assert ecotta.optimizer_state_bytes == ecotta.trainable_param_bytes
    tent = by_name['tent-stock']
    # Adam: two moments per parameter (plus scalar step counters).
    assert tent.optimizer_state_bytes >= 2 * tent.trainable_param_bytes
    table = format_markdown(rows)
    assert table.count('\n') == len(rows) + 1
    for name in names:
        assert f'| {name} |' in table
    data = json.loads(json.dumps(rows_to_json(rows, shape=[32, 64])))
    assert len(data['rows']) == len(rows) and data['shape'] == [32, 64]


@pytest.mark.parametrize('mode', FROZEN_BN_OPTIONS)
def test_ecotta_lean_saves_less_than_stock(mode: str) -> None:
    lean = _measure(f'ecotta-{mode}-lean', (64, 128))
    stock = _measure(f'ecotta-{mode}-stock', (64, 128))
    assert lean.saved_activation_bytes < stock.saved_activation_bytes
    # The analytic count is the ideal, independent of autograd's choice.
    assert lean.analytic_total_bytes == stock.analytic_total_bytes


@pytest.mark.parametrize('mode', ['source', 'batch_const'])
def test_ecotta_bars_against_tent(mode: str) -> None:
    """Issue 6's bars, on the tiny model at 128x256."""
    ecotta = _measure(f'ecotta-{mode}-lean').saved_activation_bytes
    tent_lean = _measure('tent-lean').saved_activation_bytes
    tent_stock = _measure('tent-stock').saved_activation_bytes
    assert ecotta <= 0.5 * tent_lean, (ecotta, tent_lean)
    assert ecotta <= 0.25 * tent_stock, (ecotta, tent_stock)


def test_default_variants_expand_and_filter() -> None:
    names = [v.name for v in default_variants([ECOTTA_CFG, TENT_CFG])]
    assert names[:6] == [
        'ecotta-source-lean', 'ecotta-source-stock', 'ecotta-batch-lean',
        'ecotta-batch-stock', 'ecotta-batch_const-lean',
        'ecotta-batch_const-stock'
    ]
    assert names[6:8] == ['tent-lean', 'tent-stock']
    kept = default_variants([ECOTTA_CFG, TENT_CFG], ['ecotta-*-lean'])
    assert [v.name for v in kept] == [
        'ecotta-source-lean', 'ecotta-batch-lean', 'ecotta-batch_const-lean'
    ]
    assert all(v.method['lean_backward'] for v in kept)
    with pytest.raises(ValueError, match='matches no row'):
        default_variants([TENT_CFG], ['nope'])


def test_method_config_needs_the_hook() -> None:
    assert method_config(Config.fromfile(TENT_CFG)) == method_cfg('Tent')
    with pytest.raises(ValueError, match='TestTimeAdaptationHook'):
        method_config(Config.fromfile(TINY_META_MODEL), TINY_META_MODEL)


def test_analytic_counter_rules() -> None:
    """Trainable input 32 bits, ReLU 1 bit, frozen inputs nothing."""
    frozen_conv = nn.Conv2d(3, 4, 1)
    trainable_bn = nn.BatchNorm2d(4)
    net = nn.Sequential(frozen_conv, nn.ReLU(), trainable_bn, nn.ReLU(),
                        nn.Conv2d(4, 4, 1), nn.ReLU())
    for p in net.parameters():
        p.requires_grad_(False)
    for p in trainable_bn.parameters():
        p.requires_grad_(True)
    x = torch.randn(2, 3, 4, 4)  # 32 elements per 1-channel map
    with AnalyticCounter(net) as counter:
        net(x)
    # Off the path: the first conv and ReLU. BN input: 2*4*16 floats.
    # ReLUs after the BN: 128 elements each at 1 bit. Frozen conv: 0.
    assert counter.activation_bytes == 128 * 4 + 2 * 128 // 8
    with torch.no_grad(), AnalyticCounter(net) as counter:
        net(x)
    assert counter.activation_bytes == 0
    assert not net[0]._forward_hooks  # hooks removed on exit


def _randomise_norms(model: nn.Module) -> None:
    """Non-trivial BN statistics and affine maps in every BN layer.

    ``init_weights`` zeroes the last BN scale of each residual block, which
    would stop the gradient inside the frozen blocks this test exercises.
    """
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.weight.data = torch.rand(n, generator=g) + 0.5
            m.bias.data = torch.rand(n, generator=g) - 0.5
            m.running_mean.uniform_(-0.2, 0.2, generator=g)
            m.running_var.uniform_(0.5, 2.0, generator=g)


def _ecotta_grads(model: nn.Module, lean: bool,
                  x: Tensor) -> Dict[str, Tensor]:
    method = build_tta_method(method_cfg('EcoTTA', lean_backward=lean), model)
    convs = [m for m in model.modules() if isinstance(m, LeanConv2d)]
    assert bool(convs) == lean  # the lean path is on by the keyword alone
    # Every pixel counts as confident, so the gradient also crosses the
    # frozen decode head (random weights give few confident pixels).
    method.threshold = float('inf')
    method.optimizer.zero_grad(set_to_none=True)
    with torch.enable_grad():
        logits, outputs = method.forward(x)
        method.loss(logits, x, **outputs).backward()
    return {n: p.grad for n, p in method.named_params}


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('mode', NORM_MODES)
def test_ecotta_lean_gradients_match_stock(device: str, mode: str) -> None:
    """Every meta-network gradient within 1e-5 relative of stock autograd.

    Relative to the largest element of each gradient, so that elements
    near zero do not turn float32 summation-order noise into failures.
    """
    torch.manual_seed(0)
    model = build_model(TINY_META_MODEL, frozen_norm_mode=mode)
    _randomise_norms(model)
    model.to(device).eval()
    stock_model = copy.deepcopy(model)
    # Batch 2: the batch modes see real batch statistics.
    x = torch.randn(2, 3, 64, 128, device=device)
    lean = _ecotta_grads(model, True, x)
    stock = _ecotta_grads(stock_model, False, x)
    assert lean.keys() == stock.keys() and len(lean) > 0
    for name, grad in stock.items():
        assert grad is not None and lean[name] is not None, name
        scale = grad.abs().max().item()
        assert scale > 0, f'{name}: no gradient reached this parameter'
        torch.testing.assert_close(
            lean[name], grad, rtol=1e-5, atol=1e-5 * scale, msg=name)
    # Only the frozen BNs' mode differs between the three cases.
    assert {
        m.norm_mode
        for n, m in model.named_modules()
        if isinstance(m, TTABatchNorm2d) and 'meta_nets' not in n
    } == {mode}


def test_measure_variant_reports_extra_copies() -> None:
    """Networks a method holds besides the model count as extra copies."""
    if 'CoTTA' not in TTA_METHODS.module_dict:
        pytest.skip('CoTTA is not registered')
    row = measure_variant(
        MemoryVariant('cotta', TENT_CFG, method_cfg('CoTTA')), (32, 64),
        steps=0)
    params = row.trainable_param_bytes + row.frozen_param_bytes
    assert row.extra_copy_bytes >= 2 * params  # EMA teacher and anchor


def test_missing_data_file_skips_the_row(tmp_path) -> None:
    """A method config naming a missing file loses its row, not the run."""
    config = tmp_path / 'eata_missing_fisher.py'
    config.write_text(f"_base_ = {synthetic_config('eata')!r}\n"
                      'adaptation = dict(method=dict('
                      'fisher_file="missing.pth"))\n')
    if 'EATA' not in TTA_METHODS.module_dict:
        pytest.skip('EATA is not registered')
    saved = []
    rows = run_memory_report([str(config), TENT_CFG], (32, 64),
                             steps=0,
                             patterns=['eata-*', 'tent-stock'],
                             on_row=lambda done: saved.append(len(done)))
    assert [row.variant for row in rows] == ['tent-stock']
    assert saved == [1]  # called after each measured row
