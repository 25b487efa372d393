"""Break each method behaviour the tests pin, and show the tests catch it.

A test that cannot fail is a defect. For every entry of :data:`MUTANTS` this
script copies the committed tree (``git archive HEAD``) to a temporary
folder, applies one deliberate bug to the package source (or to a shipped
default), and runs the tests that name that behaviour there: each must
fail. Not part of the suite (it runs the suite's tests, a minute per
mutant)::

    python tests/mutation_check.py            # all mutants
    python tests/mutation_check.py cotta-scores-student
"""
import os
import os.path as osp
import subprocess
import sys
import tempfile

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
M = 'tests/test_tta/test_methods.py::'
PER_DOMAIN = ('tests/test_tta/test_optimizer_per_domain.py::'
              'test_optimizer_state_restarts_at_each_domain_boundary')
PUBLISHED = ('tests/test_published.py::'
             'test_shipped_default_is_the_published_value[{}]')
MIT = 'tests/test_models/test_meta_mit.py::'
LEAN_MIT = ('tests/test_models/test_lean_backward.py::'
            'test_segformer_block_matches_stock_without_the_attention_matrix')
ECO_MIT = 'tests/test_tta/test_ecotta_segformer.py::'
# name -> (file, [(text, replacement)], tests that must fail)
MUTANTS = {
    'cotta-scores-student': ('mmseg_ecotta/tta/cotta.py', [
        ('        return pseudo_label.clamp_min(tiny).log()',
         '        return logits')
    ], [
        'tests/test_tta/test_cotta.py::'
        'test_scored_prediction_is_the_pseudo_label'
    ]),
    'ecotta-drops-entropy': ('mmseg_ecotta/tta/ecotta.py', [
        ('return (entropy(logits, self.threshold) +',
         'return (0 * entropy(logits, self.threshold) +')
    ], [M + 'test_ecotta_loss_equals_hand_computation']),
    'bn-adapt-uses-stored-statistics': ('mmseg_ecotta/tta/bn_adapt.py', [
        ("convert_batchnorms(model, 'batch')",
         "convert_batchnorms(model, 'source')")
    ], [
        M + 'test_bn_adapt_uses_batch_statistics_without_moving_stored_ones',
        M + 'test_each_bn_layer_normalises_as_the_method_says'
    ]),
    'batch-statistics-move-stored-ones': ('mmseg_ecotta/models/norm.py', [
        ('F.batch_norm(x, None, None, self.weight',
         'F.batch_norm(x, self.running_mean, self.running_var, self.weight'),
        ('0.0, self.eps)', '0.1, self.eps)')
    ], [M + 'test_bn_adapt_uses_batch_statistics_without_moving_stored_ones']),
    'ecotta-meta-bn-on-stored-statistics':
    ('mmseg_ecotta/models/segmentors/meta_encoder_decoder.py', [
        ('check_norm_mode(meta_norm_mode))', "'source')")
    ], [M + 'test_each_bn_layer_normalises_as_the_method_says']),
    'sample-mode-mixes-the-batch': ('mmseg_ecotta/models/norm.py', [
        ('return F.instance_norm(\n                x, weight=',
         'return F.batch_norm(\n                x, None, None, '
         'training=True, weight=')
    ], [
        'tests/test_models/test_meta_encoder_decoder.py::'
        'test_warmup_normalises_each_image_as_the_test_stream_does'
    ]),
    'eata-weight-inverted': ('mmseg_ecotta/tta/eata.py', [
        ('torch.exp(self.threshold - entropy.detach())',
         'torch.exp(entropy.detach() - self.threshold)')
    ], ['tests/test_tta/test_eata.py::test_first_updates_equal_reference']),
    'eata-weight-not-detached': ('mmseg_ecotta/tta/eata.py', [
        ('weight = torch.exp(self.threshold - entropy.detach())',
         'weight = torch.exp(self.threshold - entropy)')
    ], [
        'tests/test_tta/test_eata.py::'
        'test_weight_is_a_constant_of_the_gradient'
    ]),
    'cotta-restores-before-ema': ('mmseg_ecotta/tta/cotta.py', [
        ('        m = self.ema_momentum\n',
         '        for source, (_, student) in zip(self._anchor_params,\n'
         '                                        self.named_params):\n'
         '            restore = torch.rand_like(student) < self.restore_prob\n'
         '            student.copy_(torch.where(restore, source, student))\n'
         '        m = self.ema_momentum\n'),
        ('        if self.restore_prob == 0:\n            return\n',
         '        return\n'),
    ], [
        'tests/test_tta/test_cotta.py::'
        'test_teacher_follows_the_student_before_the_restore'
    ]),
    'cotta-keeps-one-optimizer': ('mmseg_ecotta/tta/cotta.py', [
        ("'segmentation': ('source', 'hard', True)",
         "'segmentation': ('source', 'hard', False)")
    ], [PER_DOMAIN]),
    'scores-after-the-update': ('mmseg_ecotta/tta/base.py', [
        ('return self.prediction(inputs, logits.detach(), restored,',
         'return self.prediction(inputs, self.decode(inputs).detach(), '
         'restored,')
    ], [M + 'test_scored_prediction_is_made_before_the_update']),
    'entropy-gradient-through-log-only': ('mmseg_ecotta/tta/losses.py', [
        ('return -(log_p.exp() * log_p).sum(dim=1)',
         'return -(log_p.exp().detach() * log_p).sum(dim=1)')
    ], [
        'tests/test_tta/test_properties.py::'
        'test_valid_logits_give_finite_scalars_and_exact_gradients'
    ]),
    'ecotta-meta-bn-frozen': ('mmseg_ecotta/tta/ecotta.py', [
        ('        """Meta-network parameters only; the original network is '
         'frozen."""\n',
         '        return [(n, p) for n, p in model.named_parameters()\n'
         "                if is_meta_name(n) and 'meta_bn' not in n]\n")
    ], [M + 'test_parameters_match_the_method[EcoTTA]']),
    'tent-cotta-on-batch-statistics': ('mmseg_ecotta/tta/tent.py', [
        ("'cotta': ('source', 'own_argmax', True)",
         "'cotta': ('batch', 'own_argmax', True)")
    ], [M + 'test_tent_cotta_update_equals_release_algorithm']),
    # The shipped defaults: changing a published value fails the test that
    # names its source.
    'cotta-anchor-threshold-changed': ('configs/_base_/tta/cotta.py', [
        ('anchor_threshold=0.69,', 'anchor_threshold=0.74,')
    ], [PUBLISHED.format('cotta.anchor_threshold')]),
    'cotta-restore-prob-changed': ('configs/_base_/tta/cotta.py', [
        ('restore_prob=0.01,', 'restore_prob=0.001,')
    ], [PUBLISHED.format('cotta.restore_prob')]),
    'cotta-lr-changed': ('configs/_base_/tta/cotta.py', [
        ('lr=6e-5 / 8,', 'lr=6e-5,')
    ], [PUBLISHED.format('cotta.optimizer')]),
    'eata-e0-factor-changed': ('configs/_base_/tta/eata.py', [
        ('e0_factor=0.4,', 'e0_factor=0.5,')
    ], [PUBLISHED.format('eata.e0_factor')]),
    'mit-meta-skips-stage-norm':
    ('mmseg_ecotta/models/backbones/meta_mit.py', [
        ('feat = nlc_to_nchw(norm(feat), hw_shape)',
         'feat = nlc_to_nchw(feat, hw_shape)')
    ], [MIT + 'test_silenced_meta_networks_give_the_stock_encoder']),
    'mit-meta-stride-of-last-stage-only':
    ('mmseg_ecotta/models/backbones/meta_mit.py', [
        ('stride *= self.strides[stage]', 'stride = self.strides[stage]')
    ], [MIT + 'test_meta_convs_match_their_partitions_geometry']),
    'mit-meta-records-nothing': ('mmseg_ecotta/models/backbones/meta_mit.py', [
        ('            self._record(meta_net, x, feat, adapted)\n', '')
    ], [MIT + 'test_partition_pairs_are_recorded_per_partition']),
    'mit-meta-keys-renamed': ('mmseg_ecotta/models/backbones/meta_mit.py', [
        ('self.meta_nets = nn.ModuleList()',
         'self.meta_nets = self.adapters = nn.ModuleList()')
    ], [MIT + 'test_stock_segformer_weights_load_with_every_key_matched']),
    'lean-attention-keeps-its-matrix':
    ('mmseg_ecotta/models/lean_backward.py',
     [('query=x_q, key=x_kv, value=x_kv, need_weights=False)',
       'query=x_q, key=x_kv, value=x_kv, need_weights=True)')], [LEAN_MIT]),
    'lean-skips-mmcv-convs': ('mmseg_ecotta/models/lean_backward.py', [
        ('    MMCVConv2d: LeanMMCVConv2d,\n', '')
    ], [
        LEAN_MIT, ECO_MIT + 'test_lean_backward_gives_the_stock_update_for_'
        'less_memory'
    ]),
    'ecotta-mit-adapts-frozen-layer-norms': ('mmseg_ecotta/tta/ecotta.py', [
        ('if is_meta_name(n) and', 'if (is_meta_name(n) or "norm" in n) and')
    ], [ECO_MIT + 'test_a_step_adapts_every_meta_network_and_nothing_else']),
}


def check(name: str) -> bool:
    """Apply mutant ``name`` to a fresh copy; True if its tests fail."""
    path, edits, tests = MUTANTS[name]
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            f'git -C {ROOT} archive HEAD | tar -x -C {tmp}',
            shell=True,
            check=True)
        with open(osp.join(tmp, path)) as f:
            source = f.read()
        for text, replacement in edits:
            if source.count(text) != 1:
                raise RuntimeError(f'{name}: {text!r} is not once in {path}; '
                                   'update MUTANTS to the code')
            source = source.replace(text, replacement)
        with open(osp.join(tmp, path), 'w') as f:
            f.write(source)
        env = dict(os.environ, PYTHONPATH=tmp)
        result = subprocess.run([
            sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider',
            *tests
        ],
                                cwd=tmp,
                                env=env,
                                capture_output=True,
                                text=True)
    caught = result.returncode == 1
    print(f'{name}: {"caught" if caught else "NOT CAUGHT"} '
          f'({result.stdout.strip().splitlines()[-1]})')
    return caught


if __name__ == '__main__':
    names = sys.argv[1:] or list(MUTANTS)
    sys.exit(0 if all([check(n) for n in names]) else 1)
