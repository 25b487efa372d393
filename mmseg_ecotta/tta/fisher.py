"""EATA's anti-forgetting regulariser: the diagonal Fisher information.

Niu et al., Efficient Test-Time Model Adaptation without Forgetting,
ICML 2022 (https://arxiv.org/abs/2204.02610), Eq. 9. The estimator is
EATA's (mr-eggplant/EATA): on clean source images, the pseudo-label is
the argmax of the model's own prediction, the loss is cross-entropy, and
the Fisher is the *squared gradient of each batch's mean loss* (batches of
64 images), averaged over batches. Its scale depends on the batch size (a
squared mean of 64 gradients is not a mean of 64 squares); the batch size
is kept so that the estimator is EATA's. That alone does not carry EATA's
beta = 2000 over: the parameters (a segmentation network's norm affine:
BN, and the LayerNorms of a SegFormer encoder), the entropy term (a mean
over pixels) and the optimizer (Adam at CoTTA's lr, not SGD) all differ
from EATA's ImageNet setting, and beta was not re-tuned here
(``docs/published_hyperparameters.md``).

A Fisher file is written by ``tools/compute_fisher.py``
(:func:`mmseg_ecotta.apis.fisher_from_config`) with :func:`save_fisher`
and read by :class:`~mmseg_ecotta.tta.eata.EATA` with
:func:`load_fisher`::

    {'fisher': {name: Tensor}, 'params': {name: Tensor},
     'num_images': int, 'batch_size': int, 'config': str,
     'checkpoint': str}

Plain data only, so it loads with torch's safe unpickler; a file holding
anything else is refused unless the user opts in
(:mod:`mmseg_ecotta.safe_load`).
"""
import os.path as osp
from typing import Any, Dict, Iterable, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from ..safe_load import load_file, save_plain
from ..utils import check_torch_file
from .base import NamedParams, TTAMethod

FISHER_TOOL = 'tools/compute_fisher.py CONFIG CHECKPOINT --out FILE'

# EATA's Fisher: batches of 64 images (its --batch_size), 2000 images.
FISHER_BATCH_SIZE = 64


def compute_fisher(method: TTAMethod,
                   data_batches: Iterable[dict],
                   num_images: int = 500,
                   batch_size: int = FISHER_BATCH_SIZE) -> Dict[str, object]:
    """Diagonal Fisher of ``method``'s adapted parameters on source data.

    EATA's estimator: ``F = mean_b (grad of the mean loss of batch b)^2``
    over batches of ``batch_size`` images (the last one may be smaller),
    the loss being the cross-entropy to the model's own argmax.

    The model is used exactly as the method configured it (e.g. EATA's
    batch-statistics BN), and images are normalised one dataloader batch
    at a time, as at test time (batch size 1), not 64 together as in
    EATA's code: a batch's gradient is the mean of its images' gradients.
    Nothing is updated: gradients are taken with
    :func:`torch.autograd.grad`, never stored on the parameters.

    Args:
        method (TTAMethod): A built method whose ``named_params`` are the
            parameters to regularise.
        data_batches (Iterable[dict]): Batches as mmengine's dataloader
            delivers them (``inputs``, ``data_samples``).
        num_images (int): Stop after this many images, or when the data
            ends. Defaults to 500 (all of Cityscapes val; EATA uses 2000
            ImageNet images: fewer batches leave the estimator's scale
            unchanged and make it noisier).
        batch_size (int): Images per squared gradient. Defaults to 64
            (EATA's); 1 gives the mean of per-image squared gradients.

    Returns:
        dict: ``fisher`` and ``params`` (name -> CPU tensor),
        ``num_images`` actually used and ``batch_size``.
    """
    if not method.named_params:
        raise ValueError(f'{type(method).__name__} adapts no parameters: '
                         'there is no Fisher to compute')
    if batch_size < 1:
        raise ValueError(f'batch_size={batch_size}: give images per '
                         f'squared gradient >= 1, EATA uses '
                         f'{FISHER_BATCH_SIZE}')
    names = [n for n, _ in method.named_params]
    params = [p for _, p in method.named_params]
    fisher = [torch.zeros_like(p) for p in params]
    batch_grad = [torch.zeros_like(p) for p in params]  # sum over images
    seen = in_batch = num_batches = 0

    def close_batch(count: int) -> None:
        """Add the squared mean gradient of ``count`` images, restart."""
        for acc, grad in zip(fisher, batch_grad):
            acc += (grad / count)**2
            grad.zero_()

    for batch in data_batches:
        if seen >= num_images:
            break
        inputs = method.model.data_preprocessor(batch, False)['inputs']
        with torch.enable_grad():
            logits = method.decode(inputs)  # (N, C, h, w)
            # Fisher of the model's own predictive distribution: the
            # pseudo-label is its argmax, no ground truth is read.
            loss = F.cross_entropy(logits, logits.detach().argmax(1))
            grads = torch.autograd.grad(loss, params, allow_unused=True)
        for acc, grad in zip(batch_grad, grads):
            if grad is not None:  # mean over N images: weigh by N
                acc += grad.detach() * inputs.shape[0]
        seen += inputs.shape[0]
        in_batch += inputs.shape[0]
        if in_batch >= batch_size:
            close_batch(in_batch)
            num_batches, in_batch = num_batches + 1, 0
    if in_batch:
        close_batch(in_batch)
        num_batches += 1
    if seen == 0:
        raise ValueError('no source images were read: check the dataset '
                         'root and split')
    return dict(
        fisher={
            n: (f / num_batches).cpu()
            for n, f in zip(names, fisher)
        },
        params={
            n: p.detach().cpu().clone()
            for n, p in zip(names, params)
        },
        num_images=seen,
        batch_size=batch_size)


def save_fisher(result: Dict[str, object],
                path: str,
                config: str = '',
                checkpoint: str = '') -> None:
    """Write :func:`compute_fisher`'s result plus its provenance."""
    save_plain(dict(result, config=config, checkpoint=checkpoint), path)


def load_fisher(path: Optional[str],
                named_params: NamedParams) -> Optional[Dict[str, Any]]:
    """Read a Fisher file and check it fits the adapted parameters.

    Args:
        path (str, optional): File written by ``tools/compute_fisher.py``;
            None means no regulariser.
        named_params (NamedParams): The method's adapted parameters.

    Returns:
        dict | None: The file's content; its ``fisher`` tensors are moved
        to each parameter's device.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: The file is empty, truncated or not a Fisher file, its
            parameter names or shapes differ from ``named_params``, or it
            holds non-finite values.
        mmseg_ecotta.safe_load.UnsafeFileError: The file holds more than
            plain data and the user did not opt in.
    """
    if path is None:
        return None
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'Fisher file {path!r} does not exist; create it with '
            f'python {FISHER_TOOL} (with --out {path}), or set '
            'fisher_file=None for EATA without the regulariser (ETA)')
    check_torch_file(path, 'Fisher file',
                     f'recreate it with python {FISHER_TOOL}')
    data = load_file(path, 'Fisher file')
    fisher = data.get('fisher') if isinstance(data, dict) else None
    if not isinstance(fisher, dict):
        raise ValueError(f'{path!r} is not a Fisher file (no "fisher" '
                         f'dict); recreate it with python {FISHER_TOOL}')
    own = dict(named_params)
    missing = sorted(set(own) - set(fisher))
    unexpected = sorted(set(fisher) - set(own))
    shapes = [
        f'{n}: file {tuple(fisher[n].shape)} vs model {tuple(own[n].shape)}'
        for n in sorted(set(own) & set(fisher))
        if fisher[n].shape != own[n].shape
    ]
    if missing or unexpected or shapes:
        raise ValueError(
            f'Fisher file {path!r} does not fit the adapted parameters: '
            f'{len(missing)} missing {missing[:3]}, {len(unexpected)} '
            f'unexpected {unexpected[:3]}, {len(shapes)} shape mismatches '
            f'{shapes[:3]}; recompute it for this config and checkpoint '
            f'with python {FISHER_TOOL}')
    broken = [n for n in sorted(own) if not torch.isfinite(fisher[n]).all()]
    if broken:
        # The penalty would be NaN, and so every loss: no step would ever
        # be taken.
        raise ValueError(
            f'Fisher file {path!r} has non-finite values in {len(broken)} '
            f'parameters {broken[:3]}; recompute it with python '
            f'{FISHER_TOOL}')
    data['fisher'] = {
        n: fisher[n].to(p.device, p.dtype)
        for n, p in own.items()
    }
    return data


def fisher_penalty(fisher: Dict[str, Tensor], named_params: NamedParams,
                   anchors: Dict[str, Tensor]) -> Tensor:
    """``sum_i F_i (theta_i - theta0_i)^2`` over the adapted parameters.

    Args:
        fisher (dict[str, Tensor]): Diagonal Fisher per parameter.
        named_params (NamedParams): Current parameters ``theta``.
        anchors (dict[str, Tensor]): ``theta0``, the parameters before
            adaptation.

    Returns:
        Tensor: Scalar penalty (without EATA's weight beta).
    """
    return sum(
        (fisher[n] * (p - anchors[n])**2).sum() for n, p in named_params)
