"""The Fisher tool's work: a TTA config's method, Cityscapes images, EATA's
Fisher (:func:`~mmseg_ecotta.tta.fisher.compute_fisher`)."""
import os.path as osp
from typing import Dict, Iterator

from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmseg.registry import DATASETS

from ..tta.fisher import FISHER_BATCH_SIZE, compute_fisher
from .builder import build_method, method_config

# Label-loading transforms, dropped from the pipeline: no label is read.
LABEL_LOADERS = ('LoadAnnotations', 'LoadCheckedAnnotations')


def fisher_from_config(
        cfg: Config,
        checkpoint: str,
        data_root: str = 'data/cityscapes/',
        split: str = 'val',
        num_images: int = 500,
        batch_size: int = FISHER_BATCH_SIZE) -> Dict[str, object]:
    """Build a TTA config's method and compute its Fisher on Cityscapes.

    The config's ``TestTimeAdaptationHook`` method decides the parameters
    and the BN behaviour, so the file fits the method it regularises. The
    images come from a Cityscapes-layout folder
    (``leftImg8bit/<split>/<city>/*_leftImg8bit.png``) through the config's
    ``test_pipeline`` without its annotation loading: no label is read.

    Args:
        cfg (Config): A TTA config (e.g. EATA's).
        checkpoint (str): Source weights.
        data_root (str): Cityscapes-layout root. Defaults to
            ``'data/cityscapes/'``.
        split (str): Folder under ``leftImg8bit``. Defaults to ``'val'``
            (clean held-out source images, as EATA's ImageNet val).
        num_images (int): Images to use, or all that exist. Defaults to 500.
        batch_size (int): Images per squared gradient. Defaults to 64.

    Returns:
        dict: As :func:`~mmseg_ecotta.tta.fisher.compute_fisher`.
    """
    method_cfg = method_config(
        cfg, 'the config (pass the TTA config of the method to regularise)')
    if method_cfg['type'] == 'EATA':
        method_cfg['fisher_file'] = None  # the file is being made
    image_dir = osp.join(data_root, 'leftImg8bit', split)
    if not osp.isdir(image_dir):
        raise FileNotFoundError(
            f'no Cityscapes images in {image_dir!r}; pass --data-root (a '
            'folder with leftImg8bit/<split>/<city>/*_leftImg8bit.png)')
    method = build_method(cfg, checkpoint, method_cfg)
    pipeline = [
        t for t in
        cfg.get('test_pipeline',
                [dict(type='LoadImageFromFile'),
                 dict(type='PackSegInputs')]) if t['type'] not in LABEL_LOADERS
    ]
    dataset = DATASETS.build(
        dict(
            type='CityscapesDataset',
            data_root=data_root,
            data_prefix=dict(
                img_path=f'leftImg8bit/{split}',
                seg_map_path=f'gtFine/{split}'),
            pipeline=pipeline))
    return compute_fisher(method, _batches(dataset), num_images, batch_size)


def _batches(dataset) -> Iterator[dict]:
    """Batch-size-1 batches as mmengine's dataloader collates them."""
    for i in range(len(dataset)):
        yield pseudo_collate([dataset[i]])
