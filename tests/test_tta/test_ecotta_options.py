"""EcoTTA's recipe options: the per-partition regulariser."""
import pytest
import torch

from mmseg_ecotta.tta import build_tta_method
from ..conftest import TINY_META_MODEL, build_model, method_cfg


def build_ecotta(**kwargs):
    model = build_model(TINY_META_MODEL)
    model.eval()
    return build_tta_method(method_cfg('EcoTTA', **kwargs), model)


@pytest.mark.parametrize('per_partition', [False, True])
def test_per_partition_regulariser_trains_only_its_own_meta_net(per_partition):
    method = build_ecotta(per_partition_regulariser=per_partition)
    inputs = torch.randn(1, 3, 64, 64)
    with torch.enable_grad():
        _, extras = method.forward(inputs)
        adapted, frozen = extras['partitions'][-1]
        (adapted - frozen.detach()).abs().mean().backward()
    grads = [
        any(p.grad is not None and p.grad.abs().sum() > 0
            for p in net.parameters())
        for net in method.model.backbone.meta_nets
    ]
    # the last partition's term: its own meta net, and earlier ones only
    # when the gradient may flow through the partition input
    assert grads[-1]
    assert any(grads[:-1]) != per_partition


def test_adapt_norm_trains_only_the_meta_bn_affine_and_every_one_of_it():
    method = build_ecotta(adapt='norm', optimizer=dict(type='SGD', lr=0.1))
    names = [n for n, _ in method.named_params]
    meta_norms = [
        f'{name}.{p}'
        for name, m in method.model.backbone.meta_nets.named_modules(
            prefix='backbone.meta_nets')
        if isinstance(m, torch.nn.modules.batchnorm._NormBase)
        for p in ('weight', 'bias')
    ]
    assert sorted(names) == sorted(meta_norms)
    convs = {
        n: p.detach().clone()
        for n, p in method.model.named_parameters() if 'conv_block.conv' in n
    }
    with torch.enable_grad():
        method.forward_and_adapt(torch.randn(1, 3, 64, 64))
    assert method.stats['updates'] == 1
    for name, param in method.model.named_parameters():
        if name in convs:
            assert torch.equal(param, convs[name]), name
    assert method.settings()['adapt'] == 'norm'


def test_adapt_names_the_choices():
    with pytest.raises(
            ValueError, match=r"adapt='bn': choose one of "
            r"\['all', 'norm'\]"):
        build_ecotta(adapt='bn')
