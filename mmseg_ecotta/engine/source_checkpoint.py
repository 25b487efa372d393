"""The source weights of a run: which file, and whether it fits the model.

mmengine's runner loads ``load_from`` non-strictly and only warns on
mismatching keys; :func:`check_checkpoint_fits` refuses a checkpoint of
another architecture before anything adapts. Both go through mmengine's
public API except :func:`source_checkpoint`: mmengine keeps ``load_from``
only in a private runner attribute, and that one function is the only
place this package reads it (``tests/test_engine/test_source_checkpoint.py``
fails loudly when mmengine changes it).
"""
from typing import Optional

import torch
from mmengine.logging import MMLogger
from mmengine.runner import CheckpointLoader

from ..models.segmentors import is_meta_name


def source_checkpoint(runner) -> Optional[str]:
    """The ``load_from`` of ``runner``: the weights the stream starts from.

    mmengine (<= 0.10) has no public accessor: ``Runner.from_cfg`` passes
    ``cfg.load_from`` to ``Runner.__init__``, which keeps it as
    ``_load_from`` and loads it in ``runner.test()``. Reading the config
    instead would miss a runner built directly with ``load_from=``.

    Raises:
        AttributeError: mmengine no longer keeps ``_load_from`` (the
            accessor must follow it).
    """
    if not hasattr(runner, '_load_from'):
        raise AttributeError(
            f'{type(runner).__name__} has no _load_from: mmengine changed '
            'where the runner keeps load_from; update '
            'mmseg_ecotta.engine.source_checkpoint.source_checkpoint')
    return runner._load_from


def check_checkpoint_fits(model: torch.nn.Module, filename: str) -> None:
    """Raise if a checkpoint was made for another architecture.

    mmengine's runner loads ``load_from`` non-strictly and only warns, which
    would silently evaluate a half-random model. Missing meta-network keys
    are allowed (an un-warmed EcoTTA model) and logged.
    """
    ckpt = CheckpointLoader.load_checkpoint(filename, map_location='cpu')
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else {}
    state = {
        k[7:] if k.startswith('module.') else k: v
        for k, v in state.items()
    }
    own = model.state_dict()
    mismatched = [
        f'{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}'
        for k, v in state.items() if k in own and own[k].shape != v.shape
    ]
    unexpected = [k for k in state if k not in own]
    missing = [k for k in own if k not in state]
    missing_original = [k for k in missing if not is_meta_name(k)]
    if mismatched or unexpected or missing_original:
        raise ValueError(
            f'checkpoint {filename} does not fit the model of this config: '
            f'{len(mismatched)} shape mismatches {mismatched[:3]}, '
            f'{len(unexpected)} unexpected keys {unexpected[:3]}, '
            f'{len(missing_original)} missing keys {missing_original[:3]}. '
            'Pass the checkpoint trained for this config (or the config '
            'matching this checkpoint).')
    if missing:
        MMLogger.get_current_instance().warning(
            f'checkpoint {filename} has no meta-network weights '
            f'({len(missing)} keys): the meta networks are not warmed up '
            '(see configs/ecotta/ecotta-warmup_*.py)')
