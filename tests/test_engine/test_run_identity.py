"""What defines a run: fingerprints, differences, resume by identity."""
import copy

import torch

from mmseg_ecotta.engine.run_identity import (fingerprint_differences,
                                              removed_samples, resume_position,
                                              run_fingerprint, weights_digest)
from ..conftest import TINY_MODEL, build_model


def fingerprint(samples=(('f0', 'f1', 'f2'), ('n0', 'n1')), **fields):
    base = dict(
        checkpoint='a' * 64,
        model=dict(type='EncoderDecoder', test_cfg=dict(mode='whole')),
        method=dict(type='Tent', optimizer=dict(type='Adam', lr=1e-3)),
        episodic=False,
        domains=['fog', 'night'],
        rounds=2,
        samples=[list(s) for s in samples],
        pipeline=[[dict(type='LoadCheckedImageFromFile')]],
        evaluator=dict(type='ContinualIoUMetric', ignore_index=255),
        batch_size=1)
    base.update(fields)
    return base


def test_weights_digest_sees_every_value():
    model = build_model(TINY_MODEL)
    same = copy.deepcopy(model)
    assert weights_digest(model) == weights_digest(same)
    with torch.no_grad():
        next(same.parameters()).view(-1)[0] += 1e-6
    assert weights_digest(model) != weights_digest(same)


def test_differences_are_short_and_name_the_field():
    saved = fingerprint()
    assert fingerprint_differences(saved, fingerprint()) == []
    now = fingerprint(
        checkpoint='b' * 64,
        domains=['night', 'fog'],
        method=dict(type='Tent', optimizer=dict(type='Adam', lr=1e-4)),
        evaluator=dict(type='ContinualIoUMetric', ignore_index=0))
    differ = fingerprint_differences(saved, now)
    assert differ == [
        'checkpoint (the starting weights differ: sha256 aaaaaaaaaaaa.. '
        'saved, bbbbbbbbbbbb.. now)',
        'method (optimizer.lr: saved 0.001, now 0.0001)',
        "domains (saved ['fog', 'night'], now ['night', 'fog'])",
        'evaluator (ignore_index: saved 255, now 0)',
    ]
    assert len(', '.join(differ)) < 400  # a message, not a dump


def test_added_or_reordered_samples_differ_removed_ones_do_not():
    saved = fingerprint()
    removed = fingerprint(samples=(('f0', 'f2'), ('n0', 'n1')))
    assert fingerprint_differences(saved, removed) == []
    added = fingerprint(samples=(('f0', 'f1', 'f2', 'f3'), ('n0', 'n1')))
    assert fingerprint_differences(saved, added) == [
        "samples (fog: samples added or reordered, e.g. 'f3'; only "
        'removing samples can be resumed)'
    ]
    reordered = fingerprint(samples=(('f1', 'f0', 'f2'), ('n0', 'n1')))
    assert 'samples (fog' in fingerprint_differences(saved, reordered)[0]


def test_resume_position_skips_exactly_the_processed_samples():
    saved = fingerprint()  # stream: f0 f1 f2 n0 n1 | f0 f1 f2 n0 n1
    now = fingerprint(samples=(('f0', 'f2'), ('n0', 'n1')))
    assert removed_samples(saved, now) == [dict(domain='fog', sample='f1')]
    # new stream: f0 f2 n0 n1 | f0 f2 n0 n1
    expected = {0: 0, 1: 1, 2: 1, 3: 2, 4: 3, 5: 4, 6: 5, 7: 5, 8: 6, 10: 8}
    for consumed, position in expected.items():
        assert resume_position(saved, now, consumed) == position, consumed
    assert resume_position(saved, saved, 7) == 7  # nothing removed


def test_fingerprint_covers_hook_options_and_side_file_content(tmp_path):
    """Same path, other Fisher content: another run (issue 27)."""
    from mmengine.config import Config
    fisher = tmp_path / 'fisher.pth'
    fisher.write_bytes(b'first')
    method = dict(type='EATA', fisher_file=str(fisher))
    options = dict(
        episodic=False, reset_on_collapse=False, check_checkpoint=True)
    model = torch.nn.Linear(2, 2)

    def take(**changes):
        return run_fingerprint(
            Config(dict()), method, dict(options, **changes), model,
            ['a.png', 'b.png'], 1)

    saved = take()
    assert fingerprint_differences(saved, take()) == []
    assert fingerprint_differences(saved, take(reset_on_collapse=True)) == [
        'reset_on_collapse (saved False, now True)'
    ]
    assert fingerprint_differences(saved, take(check_checkpoint=False)) == [
        'check_checkpoint (saved True, now False)'
    ]
    fisher.write_bytes(b'second')
    differ = fingerprint_differences(saved, take())
    assert len(differ) == 1
    assert differ[0].startswith(
        'side_files (fisher_file: the file content differs, sha256 ')
