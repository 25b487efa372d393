"""The one builder, and a new method as one file and one config."""
import copy
import sys
import textwrap

import pytest
import torch
from mmengine.config import Config

from mmseg_ecotta.apis import adaptation_config, build_method, method_config
from mmseg_ecotta.registry import TTA_METHODS
from tests.conftest import method_cfg, synthetic_config
from tests.test_tta.test_methods import make_batch

TENT_CFG = synthetic_config('tent')

# A whole new method: the three decisions, a loss that declines a batch
# (returns None) and an extra output of the forward, in one file.
TOY_METHOD = '''
from mmseg_ecotta.models.norm import convert_batchnorms
from mmseg_ecotta.registry import TTA_METHODS
from mmseg_ecotta.tta import TTAMethod
from mmseg_ecotta.tta.losses import mean_entropy_loss


@TTA_METHODS.register_module()
class ToyHeadEntropy(TTAMethod):
    """Entropy minimisation of the classifier only; skips odd batches."""

    def __init__(self, model, optimizer=dict(type='SGD', lr=0.1), **kwargs):
        self.batches = 0  # read by loss(): set before super().__init__
        super().__init__(model, optimizer=optimizer, **kwargs)

    def configure_norms(self, model):
        convert_batchnorms(model, 'batch')

    def collect_params(self, model):
        return list(model.decode_head.conv_seg.named_parameters(
            prefix='decode_head.conv_seg'))

    def forward(self, inputs):
        logits = self.decode(inputs)
        return logits, dict(batch=self.batches)

    def loss(self, logits, inputs, batch):
        self.batches += 1
        return None if batch % 2 else mean_entropy_loss(logits)
'''


@pytest.fixture
def toy_config(tmp_path, monkeypatch):
    (tmp_path / 'toy_method.py').write_text(TOY_METHOD)
    # Not syspath_prepend: it calls into pkg_resources, which the compat
    # shim stands in for.
    monkeypatch.setattr(sys, 'path', [str(tmp_path)] + sys.path)
    config = tmp_path / 'toy_tiny.py'
    config.write_text(
        textwrap.dedent(f'''\
        _base_ = {TENT_CFG!r}
        custom_imports = dict(
            imports=['mmseg_ecotta', 'toy_method'], allow_failed_imports=False)
        adaptation = dict(
            method=dict(_delete_=True, type='ToyHeadEntropy'))
        '''))
    yield str(config)
    TTA_METHODS._module_dict.pop('ToyHeadEntropy', None)
    sys.modules.pop('toy_method', None)


def test_a_new_method_is_one_file_and_one_config(toy_config):
    cfg = Config.fromfile(toy_config)  # imports the method's file
    method = build_method(cfg)
    assert type(method).__name__ == 'ToyHeadEntropy'
    before = copy.deepcopy(method.model.state_dict())
    with torch.no_grad():  # as mmengine's TestLoop calls it
        for seed in range(3):
            method.test_step(make_batch(seed))
    assert method.stats['steps'] == 3 and method.stats['updates'] == 2
    assert method.stats['skipped_filtered'] == 1  # the loss said None
    after = method.model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {
        'decode_head.conv_seg.weight', 'decode_head.conv_seg.bias'
    }
    method.reset()
    for key, value in method.model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_builder_reads_the_adaptation_settings_and_names_the_fix():
    cfg = Config.fromfile(TENT_CFG)
    assert adaptation_config(cfg) is cfg.adaptation
    assert method_config(cfg) == method_cfg('Tent')
    method_config(cfg)['type'] = 'changed'  # a copy
    assert method_config(cfg) == method_cfg('Tent')
    no_hook = copy.deepcopy(cfg)
    no_hook.custom_hooks = []
    with pytest.raises(ValueError, match="custom_hooks = \\[dict"):
        adaptation_config(no_hook, 'x.py')
    no_settings = copy.deepcopy(cfg)
    no_settings.adaptation = None
    with pytest.raises(ValueError, match='x.py has no adaptation settings'):
        adaptation_config(no_settings, 'x.py')
    cfg.adaptation.episodes = True  # a typo of episodic
    with pytest.raises(KeyError, match="unknown adaptation keys"):
        adaptation_config(cfg, 'x.py')
