"""What defines a run, so that ``--resume`` continues only the same run.

A resumed stream must be the interrupted one: the same starting weights,
method and model, the same content of the files the method reads (a Fisher
file), the same hook options (episodic, collapse reset, checkpoint check),
the same domains in the same order, the same samples, pipeline and
metric. :func:`run_fingerprint` records all of it in the adaptation state;
:func:`fingerprint_differences` names what differs in a few words (not a
dump of two configs).

One difference is allowed on purpose: samples *removed* from the stream.
Hostile input fails fast naming the file (``LoadChecked*``); the
documented recovery is to remove that file and ``--resume``. The stream
is then resumed by sample identity: :func:`resume_position` maps the
number of samples consumed in the saved stream to the position in the
new one, so that exactly the samples not yet processed are processed, and
:func:`removed_samples` lists what was dropped, for the log and the
results file. Added or reordered samples are refused: they would change
what was already adapted on.
"""
import hashlib
import json
import os.path as osp
from typing import Any, Dict, List, Optional

import torch
import torch.nn as nn

# Fields compared as a whole, in the order they are reported.
EXACT_FIELDS = ('checkpoint', 'model', 'method', 'side_files', 'episodic',
                'reset_on_collapse', 'check_checkpoint', 'domains', 'rounds',
                'pipeline', 'evaluator', 'batch_size')
# The hook options that change what a run computes.
HOOK_OPTIONS = ('episodic', 'reset_on_collapse', 'check_checkpoint')
# Longest value quoted in a difference.
QUOTE_CHARS = 60


def weights_digest(model: nn.Module) -> str:
    """SHA-256 of a model's state dict: names, dtypes, shapes and bytes.

    Taken right after ``load_from`` is loaded, it identifies the weights
    the stream starts from, whatever file they came from (about 0.2 s for
    a ResNet-50 segmentor on one CPU core).
    """
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f'{name}:{tensor.dtype}:{tuple(tensor.shape)};'.encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def file_digest(path: str) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


# Keys of a method config that name a file the method reads.
SIDE_FILE_KEYS = ('_file', '_path')


def side_file_digests(method_cfg: Any, key: str = '') -> Dict[str, str]:
    """The content hash of each file a method config names.

    A method reading a file (EATA's ``fisher_file``) computes what the
    file holds: the same path with other content is another run. Files
    are the existing paths under keys ending in :data:`SIDE_FILE_KEYS`.

    Returns:
        dict: Dotted key in the method config -> SHA-256 of the file.
    """
    if isinstance(method_cfg, str):
        named = key.endswith(SIDE_FILE_KEYS) and osp.isfile(method_cfg)
        return {key: file_digest(method_cfg)} if named else {}
    items = method_cfg.items() if isinstance(method_cfg, dict) else (
        enumerate(method_cfg) if isinstance(method_cfg, (list, tuple)) else ())
    found = {}
    for k, value in items:
        found.update(side_file_digests(value, f'{key}.{k}' if key else str(k)))
    return found


def stream_samples(dataset: Any) -> Dict[str, Any]:
    """The stream's domains in order, its rounds and each domain's samples.

    Args:
        dataset: A :class:`~mmseg_ecotta.datasets.WeatherStreamDataset`,
            or any dataset (one domain ``'all'``, one round).

    Returns:
        dict: ``domains`` (list[str]), ``rounds`` (int) and ``samples``
        (list[list[str]]: each domain's image paths, in stream order).
    """
    if hasattr(dataset, 'domain_names'):
        domains, parts = list(dataset.domain_names), dataset.datasets
        rounds = dataset.rounds
    else:
        domains, parts, rounds = ['all'], [dataset], 1
    return dict(
        domains=domains,
        rounds=rounds,
        samples=[_sample_ids(part) for part in parts])


def _sample_ids(dataset: Any) -> List[str]:
    if not hasattr(dataset, 'get_data_info'):
        return [str(i) for i in range(len(dataset))]
    return [
        str(dataset.get_data_info(i).get('img_path', i))
        for i in range(len(dataset))
    ]


def _pipelines(dataset_cfg: Any) -> list:
    """Every ``pipeline`` in a dataset config, in order."""
    found = []
    if isinstance(dataset_cfg, dict):
        for key, value in dataset_cfg.items():
            found += [value] if key == 'pipeline' else _pipelines(value)
    elif isinstance(dataset_cfg, (list, tuple)):
        for value in dataset_cfg:
            found += _pipelines(value)
    return found


def _plain(value: Any) -> Any:
    """Configs as plain JSON values, so saved and new compare by content."""
    return json.loads(json.dumps(value, sort_keys=True, default=repr))


def run_fingerprint(cfg: Any, method_cfg: dict, options: Dict[str, bool],
                    model: nn.Module, dataset: Any,
                    batch_size: int) -> Dict[str, Any]:
    """What a state file must match to be resumed by this run.

    Args:
        cfg (Config): The run's config (``model``, ``test_dataloader``,
            ``test_evaluator``).
        method_cfg (dict): The TTA method's config.
        options (dict): The hook's options of :data:`HOOK_OPTIONS`.
        model (nn.Module): The model with ``load_from`` loaded, before the
            method touches it.
        dataset: The test dataset.
        batch_size (int): The test dataloader's batch size.

    Returns:
        dict: Plain JSON values: the fields of :data:`EXACT_FIELDS` and
        ``samples``.
    """
    stream = stream_samples(dataset)
    loader_cfg = cfg.get('test_dataloader') or {}
    return _plain(
        dict(
            checkpoint=weights_digest(model),
            model=cfg.get('model'),
            method=method_cfg,
            side_files=side_file_digests(method_cfg),
            **{name: options[name]
               for name in HOOK_OPTIONS},
            domains=stream['domains'],
            rounds=stream['rounds'],
            samples=stream['samples'],
            pipeline=_pipelines(loader_cfg.get('dataset')),
            evaluator=cfg.get('test_evaluator'),
            batch_size=batch_size))


def fingerprint_differences(saved: Dict[str, Any],
                            now: Dict[str, Any]) -> List[str]:
    """What differs between two fingerprints, one short phrase per field.

    Samples removed from a domain are not a difference (see the module
    docstring); added or reordered ones are.

    Returns:
        list[str]: E.g. ``["domains (saved ['fog', 'night'], now
        ['night', 'fog'])", 'method (optimizer.lr: saved 0.001, now
        0.0001)']``; empty when the runs match.
    """
    found = []
    for field in EXACT_FIELDS:
        if saved.get(field) == now.get(field):
            continue
        if field == 'checkpoint':
            detail = (f'the starting weights differ: sha256 '
                      f'{str(saved.get(field))[:12]}.. saved, '
                      f'{str(now.get(field))[:12]}.. now')
        elif field == 'side_files' and isinstance(saved.get(field), dict):
            old, new = saved[field], now.get(field) or {}
            detail = '; '.join(f'{key}: the file content differs, sha256 '
                               f'{str(old.get(key))[:12]}.. saved, '
                               f'{str(new.get(key))[:12]}.. now'
                               for key in sorted(set(old) | set(new))
                               if old.get(key) != new.get(key))
        else:
            changes = _changes(saved.get(field), now.get(field))
            detail = '; '.join(changes[:3]) + (f'; {len(changes) - 3} more'
                                               if len(changes) > 3 else '')
        found.append(f'{field} ({detail})')
    if saved.get('domains') == now.get('domains'):
        for domain, old, new in zip(now['domains'], saved['samples'],
                                    now['samples']):
            if _embedding(old, new) is None:
                known = set(old)
                extra = [s for s in new if s not in known]
                example = extra[0] if extra else 'same samples, new order'
                found.append(
                    f'samples ({domain}: samples added or reordered, e.g. '
                    f'{_quote(example)}; only removing samples can be '
                    'resumed)')
    return found


def _changes(saved: Any, now: Any, key: str = '') -> List[str]:
    """``'key: saved X, now Y'`` for each differing leaf of two values."""
    if isinstance(saved, dict) and isinstance(now, dict):
        found = []
        for k in sorted(set(saved) | set(now), key=str):
            path = f'{key}.{k}' if key else str(k)
            if k not in saved:
                found.append(f'{path}: new, {_quote(now[k])}')
            elif k not in now:
                found.append(f'{path}: gone, saved {_quote(saved[k])}')
            else:
                found += _changes(saved[k], now[k], path)
        return found
    if (isinstance(saved, list) and isinstance(now, list)
            and len(saved) == len(now)
            and any(isinstance(v, (dict, list)) for v in saved + now)):
        # Lists of configs (pipelines, transforms) element by element,
        # named by their type; lists of plain values as a whole.
        found = []
        for i, (a, b) in enumerate(zip(saved, now)):
            kind = a.get('type') if isinstance(a, dict) else None
            found += _changes(a, b,
                              f'{key}[{i}' + (f':{kind}]' if kind else ']'))
        return found
    if saved == now:
        return []
    prefix = f'{key}: ' if key else ''
    return [f'{prefix}saved {_quote(saved)}, now {_quote(now)}']


def _quote(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= QUOTE_CHARS else text[:QUOTE_CHARS] + '..'


def _embedding(old: List[str], new: List[str]) -> Optional[List[int]]:
    """The index in ``old`` of each sample of ``new``, if ``new`` is
    ``old`` with samples removed (same order); None otherwise."""
    positions, start = [], 0
    for sample in new:
        try:
            start = old.index(sample, start)
        except ValueError:
            return None
        positions.append(start)
        start += 1
    return positions


def removed_samples(saved: Dict[str, Any],
                    now: Dict[str, Any]) -> List[Dict[str, str]]:
    """Samples of the saved stream that this run no longer has.

    Args:
        saved (dict): The state's fingerprint.
        now (dict): This run's; :func:`fingerprint_differences` found no
            difference.

    Returns:
        list[dict]: ``dict(domain=..., sample=...)`` in stream order.
    """
    removed = []
    for domain, old, new in zip(now['domains'], saved['samples'],
                                now['samples']):
        kept = set(_embedding(old, new))
        removed += [
            dict(domain=domain, sample=sample) for i, sample in enumerate(old)
            if i not in kept
        ]
    return removed


def resume_position(saved: Dict[str, Any], now: Dict[str, Any],
                    consumed: int) -> int:
    """Samples of this run's stream already processed by the saved run.

    The stream is round-major, then domain, then sample; the first
    ``consumed`` samples of the saved stream were processed. They map to
    the samples of this run's stream that come from them, which are a
    prefix of it, since this stream is the saved one with samples removed.

    Args:
        saved (dict): The state's fingerprint.
        now (dict): This run's (no difference to ``saved``).
        consumed (int): Samples of the saved stream processed.

    Returns:
        int: Samples of this run's stream to skip.
    """
    old_round = sum(len(s) for s in saved['samples'])
    new_round = sum(len(s) for s in now['samples'])
    rounds_done, offset = divmod(consumed, old_round)
    kept, start = 0, 0
    for old, new in zip(saved['samples'], now['samples']):
        kept += sum(start + i < offset for i in _embedding(old, new))
        start += len(old)
    return rounds_done * new_round + kept
