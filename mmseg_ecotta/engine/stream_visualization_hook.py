"""Overlays of a fixed sample of frames of every domain and round."""
import os
import os.path as osp
from typing import Sequence

import mmcv
import mmengine.fileio as fileio
import numpy as np
from mmseg.engine.hooks import SegVisualizationHook
from mmseg.registry import HOOKS
from mmseg.structures import SegDataSample

from .stream import SegmentTracker, sample_segment


@HOOKS.register_module()
class StreamVisualizationHook(SegVisualizationHook):
    """Draw image | ground truth | prediction for a few frames per domain.

    mmseg's :class:`SegVisualizationHook` draws every ``interval``-th image
    of the whole test set under a name without its place in the stream, so
    the same image seen in round 1 and round 2 overwrites itself. This hook
    draws the frames at positions ``0, interval, 2 * interval, ...`` of each
    (round, domain), at most ``frames_per_domain`` of them: the same frames
    every round (the stream replays each domain in order), so a file of
    round 1 and one of round 10 show how adaptation changed the prediction.
    Files are ``OUT_DIR/round{R}_{domain}_{image name}.png``.

    The ground truth and prediction panels are drawn by mmseg's
    :class:`SegLocalVisualizer` (``add_datasample``); the input image is
    put in front of them.

    Args:
        out_dir (str): Output folder; a relative path is taken under the
            runner's work dir. Defaults to ``'stream_vis'``.
        frames_per_domain (int): Frames drawn per (round, domain).
            Defaults to 2.
        interval (int): Spacing of the drawn frames within a domain, in
            images. Defaults to 20.
        draw (bool): Draw at all. Defaults to True.
        **kwargs: Passed to :class:`SegVisualizationHook`
            (``backend_args``).
    """

    def __init__(self,
                 out_dir: str = 'stream_vis',
                 frames_per_domain: int = 2,
                 interval: int = 20,
                 draw: bool = True,
                 **kwargs) -> None:
        if frames_per_domain < 1 or interval < 1:
            raise ValueError(
                f'frames_per_domain={frames_per_domain}, interval={interval}'
                ': both must be >= 1 (use draw=False to draw nothing)')
        super().__init__(draw=draw, interval=interval, **kwargs)
        self.out_dir = out_dir
        self.frames_per_domain = frames_per_domain
        self.segments = SegmentTracker()
        self._position = 0

    def before_test(self, runner) -> None:
        self._dir = osp.join(runner.work_dir, self.out_dir)
        os.makedirs(self._dir, exist_ok=True)

    def _after_iter(self,
                    runner,
                    batch_idx: int,
                    data_batch: dict,
                    outputs: Sequence[SegDataSample],
                    mode: str = 'val') -> None:
        if not self.draw or mode != 'test':
            return
        for output in outputs:
            segment = sample_segment(output)
            if self.segments.advance(segment)[0]:
                self._position = 0
            position, self._position = self._position, self._position + 1
            if (position % self.interval
                    or position // self.interval >= self.frames_per_domain):
                continue
            stem = osp.splitext(osp.basename(output.img_path))[0]
            self._draw(
                output,
                osp.join(self._dir,
                         f'round{segment[0] + 1}_{segment[1]}_{stem}.png'))

    def _draw(self, output: SegDataSample, out_file: str) -> None:
        """Write image | ground truth | prediction to ``out_file``."""
        img_bytes = fileio.get(output.img_path, backend_args=self.backend_args)
        image = mmcv.imfrombytes(img_bytes, channel_order='rgb')
        # mmseg's visualizer writes ground truth | prediction (BGR file);
        # the input image goes in front of them.
        self._visualizer.add_datasample(
            osp.basename(out_file),
            image,
            data_sample=output,
            show=False,
            out_file=out_file)
        drawn = mmcv.imread(out_file)
        mmcv.imwrite(
            np.concatenate([mmcv.rgb2bgr(image), drawn], axis=1), out_file)
