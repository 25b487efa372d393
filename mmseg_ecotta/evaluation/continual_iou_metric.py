"""mIoU per weather domain and per round of a continual stream."""
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.dist import get_world_size
from mmseg.evaluation import IoUMetric
from mmseg.registry import METRICS

from .results import summarize_stream

DEFAULT_DOMAIN = 'all'


@METRICS.register_module()
class ContinualIoUMetric(IoUMetric):
    """IoU accumulated separately for every (round, domain) of a stream.

    Each sample's ``domain`` and ``round`` come from its metainfo (set by
    :class:`~mmseg_ecotta.datasets.WeatherStreamDataset`); samples without
    them count as one domain ``'all'`` of round 0, so the metric also works
    on any stock mmseg test set.

    Memory is bounded by the number of segments, not of images: in a
    single-process run, each image's areas are added to its segment's
    entry of ``results`` (``(round, domain, areas, num_images)``, areas in
    float64 so that pixel counts stay exact), so a 16,000-image stream
    keeps 40 entries, and so does every adaptation state that saves them.
    In a distributed run each image keeps its own entry (``num_images``
    1): mmengine's result collection interleaves the ranks' entries and
    drops the sampler's padding by count.

    The returned metrics are flat for mmengine's logger (``mIoU`` is the
    mean over all (round, domain) segments, ``round1/fog/mIoU`` etc.); the
    full structured summary, with per-class IoU, is kept in
    :attr:`last_summary` and is available mid-stream via :meth:`summary`.

    Args:
        **kwargs: Passed to mmseg's :class:`IoUMetric`.
    """

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault('iou_metrics', ['mIoU'])
        super().__init__(**kwargs)
        self.last_summary: Optional[dict] = None

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Accumulate intersection and union areas of each sample."""
        num_classes = len(self.dataset_meta['classes'])
        per_segment = get_world_size() == 1
        for sample in data_samples:
            pred = sample['pred_sem_seg']['data'].squeeze()
            label = sample['gt_sem_seg']['data'].squeeze().to(pred)
            if pred.shape != label.shape:
                raise ValueError(
                    f"prediction {tuple(pred.shape)} and label "
                    f"{tuple(label.shape)} differ in size for "
                    f"{sample.get('img_path')}: load the label after Resize "
                    'in the test pipeline (and check the label file matches '
                    'its image)')
            invalid = (label != self.ignore_index) & ((label < 0) |
                                                      (label >= num_classes))
            if bool(invalid.any()):
                # intersect_and_union's histogram would silently drop them.
                bad = sorted(int(v) for v in label[invalid].unique()[:10])
                raise ValueError(
                    f"label {sample.get('seg_map_path')} has values {bad} "
                    f'outside the {num_classes} classes (0..'
                    f'{num_classes - 1}) and ignore_index '
                    f'{self.ignore_index}: labels must be train ids; convert '
                    "them (e.g. cityscapesscripts' createTrainIdLabelImgs) "
                    'or fix the file')
            areas = self.intersect_and_union(pred, label, num_classes,
                                             self.ignore_index)
            # A float64 copy owned by numpy. Keeping ``.numpy()`` itself
            # kept each image's torch tensor alive: one small block per
            # image among that image's freed activations, which pinned
            # glibc's heap (RSS grew ~250 KiB per image;
            # docs/user_guides/resume_and_reliability.md, "Memory over
            # long streams").
            areas = torch.stack(areas).cpu().numpy().astype(np.float64)
            key = (int(sample.get('round', 0)),
                   str(sample.get('domain', DEFAULT_DOMAIN)))
            if per_segment and self.results and self.results[-1][:2] == key:
                total, count = self.results[-1][2:]
                self.results[-1] = key + (total + areas, count + 1)
            else:
                self.results.append(key + (areas, 1))

    def summary(self, results: Optional[List] = None) -> dict:
        """Structured results of the samples processed so far.

        Returns:
            dict: See :func:`~mmseg_ecotta.evaluation.summarize_stream`.
        """
        return summarize_stream(
            self._segments(self.results if results is None else results),
            self.dataset_meta['classes'])

    @staticmethod
    def _segments(results: List) -> Dict:
        """Sum the areas of each (round, domain), in stream order."""
        segments: Dict = OrderedDict()
        for round_idx, domain, areas, count in results:
            key = (round_idx, domain)
            if key in segments:
                segments[key][0] += areas
                segments[key][1] += count
            else:
                segments[key] = [areas.astype(np.float64), count]
        return segments

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """Flat metrics for the logger; keeps the full summary."""
        self.last_summary = self.summary(results)
        metrics = OrderedDict(mIoU=self.last_summary['mean_mIoU'])
        for seg in self.last_summary['segments']:
            metrics[f"round{seg['round'] + 1}/{seg['domain']}/mIoU"] = seg[
                'mIoU']
        return metrics
