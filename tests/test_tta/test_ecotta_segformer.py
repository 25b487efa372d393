"""EcoTTA on a SegFormer: meta networks on the MiT stages adapt alone."""
import copy

import pytest
import torch

from mmseg_ecotta.models.segmentors import is_meta_name
from mmseg_ecotta.tta import build_tta_method
from ..conftest import method_cfg
from ..test_models.test_meta_mit import META_SEGFORMER, build_tiny_segformer


def build_ecotta(model=None, **kwargs):
    if model is None:
        torch.manual_seed(0)
        model = build_tiny_segformer(
            META_SEGFORMER, frozen_norm_mode='batch_const')
    model.eval()
    kwargs.setdefault('optimizer', dict(type='SGD', lr=0.1))
    return build_tta_method(method_cfg('EcoTTA', **kwargs), model)


def test_a_step_adapts_every_meta_network_and_nothing_else():
    method = build_ecotta()
    model = method.model
    assert {n
            for n, _ in method.named_params
            } == {n
                  for n, _ in model.named_parameters() if is_meta_name(n)}
    before = copy.deepcopy(model.state_dict())
    with torch.enable_grad():
        method.forward_and_adapt(torch.randn(1, 3, 64, 96))
    assert method.stats['updates'] == 1
    after = model.state_dict()
    for key, value in before.items():
        if not is_meta_name(key):
            assert torch.equal(after[key], value), key
    # The gradient crossed every later stage to reach each meta network.
    for k in range(4):
        prefix = f'backbone.meta_nets.{k}.conv_block.conv.weight'
        assert not torch.equal(after[prefix], before[prefix]), prefix


@pytest.mark.parametrize('with_cp', [False, True])
def test_lean_backward_gives_the_stock_update_for_less_memory(with_cp):
    torch.manual_seed(0)
    model = build_tiny_segformer(
        META_SEGFORMER, frozen_norm_mode='batch_const')
    lean_model = copy.deepcopy(model)
    # with_cp (the -cp config): blocks recompute their forward in backward.
    for stage in lean_model.backbone.layers:
        for block in stage[1]:
            block.with_cp = with_cp
    methods = {
        False: build_ecotta(model, lean_backward=False),
        True: build_ecotta(lean_model, lean_backward=True)
    }
    inputs = torch.randn(1, 3, 64, 96)
    for method in methods.values():
        with torch.enable_grad():
            method.forward_and_adapt(inputs)
    stock, lean = (dict(methods[flag].named_params) for flag in (False, True))
    for name in stock:
        torch.testing.assert_close(
            lean[name], stock[name], rtol=1e-4, atol=1e-6, msg=name)
    saved = {
        flag: m.saved_tensors.activation_bytes
        for flag, m in methods.items()
    }
    assert saved[True] < 0.6 * saved[False], saved
