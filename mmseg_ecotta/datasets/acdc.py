"""ACDC: the Adverse Conditions Dataset with Correspondences.

Sakaridis et al., "ACDC: The Adverse Conditions Dataset with
Correspondences for Semantic Driving Scene Understanding", ICCV 2021,
https://acdc.vision.ee.ethz.ch. Its labels use Cityscapes' 19 train ids,
so the dataset is Cityscapes' with ACDC's folder layout and suffixes::

    data/acdc/rgb_anon/<condition>/<split>/<sequence>/<stem>_rgb_anon.png
    data/acdc/gt/<condition>/<split>/<sequence>/<stem>_gt_labelTrainIds.png
"""
import os
import os.path as osp
from typing import List, Tuple

from mmseg.datasets import CityscapesDataset
from mmseg.registry import DATASETS

# The four adverse conditions ACDC ships (and CoTTA's stream uses).
ACDC_CONDITIONS: Tuple[str, ...] = ('fog', 'night', 'rain', 'snow')


@DATASETS.register_module()
class ACDCDataset(CityscapesDataset):
    """One condition and split of ACDC, with Cityscapes' 19 classes.

    The condition names a folder under ``rgb_anon/``: besides ACDC's four,
    any folder in the same layout works (e.g. a synthetic ``clear`` set).
    The folders are checked when the sample list is loaded (``full_init``,
    i.e. at construction unless ``lazy_init=True``); every image must have
    its label. Samples are sorted by image path, so the order is fixed.

    Args:
        condition (str): Condition folder, one of ``ACDC_CONDITIONS`` or any
            folder that exists under ``<data_root>/rgb_anon/``.
        split (str): Split folder (``'train'``, ``'val'``, ...). CoTTA's
            protocol adapts on the labelled train split. Default: 'train'.
        data_root (str): ACDC root holding ``rgb_anon/`` and ``gt/``.
            Default: 'data/acdc/'.
        img_suffix (str): Image suffix. Default: '_rgb_anon.png'.
        seg_map_suffix (str): Label suffix. Default: '_gt_labelTrainIds.png'.
        **kwargs: Passed to :class:`mmseg.datasets.BaseSegDataset`
            (``pipeline``, ``lazy_init``, ``test_mode``, ...), except
            ``data_prefix``, which ``condition`` and ``split`` determine.
    """

    def __init__(self,
                 condition: str,
                 split: str = 'train',
                 data_root: str = 'data/acdc/',
                 img_suffix: str = '_rgb_anon.png',
                 seg_map_suffix: str = '_gt_labelTrainIds.png',
                 **kwargs) -> None:
        if 'data_prefix' in kwargs:
            raise TypeError(
                f'ACDCDataset derives data_prefix from condition and split; '
                f'remove data_prefix={kwargs["data_prefix"]!r} from the '
                f'config and set condition/split instead')
        if not isinstance(condition, str) or not condition:
            raise ValueError(
                f'condition must be a non-empty folder name such as one of '
                f'{list(ACDC_CONDITIONS)}, got {condition!r}')
        self.condition = condition
        self.split = split
        super().__init__(
            img_suffix=img_suffix,
            seg_map_suffix=seg_map_suffix,
            data_root=data_root,
            data_prefix=dict(
                img_path=osp.join('rgb_anon', condition, split),
                seg_map_path=osp.join('gt', condition, split)),
            **kwargs)

    def load_data_list(self) -> List[dict]:
        """Check the folders, then list the (image, label) pairs.

        Returns:
            list[dict]: One ``img_path``/``seg_map_path`` info per image,
            sorted by image path.

        Raises:
            ValueError: Unknown condition, a split without images, or a
                folder (or another non-file) named like an image, which
                the listing would skip silently.
            FileNotFoundError: A missing condition/split folder, or an
                image without its label.
        """
        img_dir = self.data_prefix['img_path']
        condition_dir = osp.dirname(osp.normpath(img_dir))
        if not osp.isdir(condition_dir):
            self._raise_missing_condition(condition_dir)
        if not osp.isdir(img_dir):
            raise FileNotFoundError(
                f'ACDC split {self.split!r} of condition '
                f'{self.condition!r} not found: {img_dir} does not exist; '
                f'splits on disk: {_subfolders(condition_dir)}. Set split '
                f'to one of them or extract the missing archive (see '
                f'data/README.md)')
        for path in _not_files(img_dir, self.img_suffix):
            raise ValueError(
                f'{path} is named like an image (*{self.img_suffix}) but is '
                'not a file (a folder, a broken link, ...): put the image '
                'there or move it out of the data root')
        data_list = super().load_data_list()
        if not data_list:
            raise ValueError(
                f'ACDC split {img_dir} holds no *{self.img_suffix} images; '
                f'check the extraction (see data/README.md) or img_suffix')
        for info in data_list:
            if not osp.isfile(info['seg_map_path']):
                raise FileNotFoundError(
                    f'image {info["img_path"]} has no label: expected '
                    f'{info["seg_map_path"]}. Extract gt_trainval.zip into '
                    f'the data root (see data/README.md); the test split '
                    f'ships no labels')
        return data_list

    def _raise_missing_condition(self, condition_dir: str) -> None:
        """Explain a missing condition folder: typo or missing download."""
        image_root = osp.dirname(condition_dir)
        on_disk = _subfolders(image_root)
        if self.condition not in ACDC_CONDITIONS:
            raise ValueError(
                f'unknown ACDC condition {self.condition!r}: ACDC has '
                f'{list(ACDC_CONDITIONS)}, and {image_root} holds '
                f'{on_disk}; use one of those')
        raise FileNotFoundError(
            f'ACDC condition folder {condition_dir} does not exist '
            f'(conditions on disk: {on_disk}). Extract rgb_anon_trainvaltest'
            f'.zip and gt_trainval.zip there or symlink the dataset: '
            f'ln -s /path/to/acdc data/acdc (see data/README.md)')


def _not_files(folder: str, suffix: str) -> List[str]:
    """Sorted paths under ``folder`` ending in ``suffix`` that are no file."""
    found = []
    for root, dirs, files in os.walk(folder):
        found += [
            osp.join(root, name) for name in dirs + files
            if name.endswith(suffix) and not osp.isfile(osp.join(root, name))
        ]
    return sorted(found)


def _subfolders(path: str) -> List[str]:
    """Sorted names of the folders in ``path`` (none if it is missing)."""
    if not osp.isdir(path):
        return []
    return sorted(e.name for e in os.scandir(path) if e.is_dir())
