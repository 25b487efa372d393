"""Save the adapted model as an ordinary mmseg checkpoint."""
import os.path as osp
from collections import OrderedDict

from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS

from ..safe_load import save_plain
from ..utils import atomic_write
from .source_checkpoint import source_checkpoint
from .stream import StreamSegmentHook
from .tta_hook import adaptation_hook


@HOOKS.register_module()
class AdaptedModelExportHook(StreamSegmentHook):
    """Export the adapted weights at the end of the stream.

    The file is ``{'state_dict': ..., 'meta': {...}}`` like any mmseg
    checkpoint: ``TTABatchNorm2d`` and the lean-backward layers are class
    swaps that keep the parameter and buffer names, so the state dict loads
    into a fresh model of the same config with ``strict=True``, and mmseg's
    ``tools/test.py`` evaluates it (without adapting further).
    ``meta`` holds ``dataset_meta``, the method, and where in the stream the
    weights were taken: plain data only, so the file loads with torch's
    safe unpickler (:mod:`mmseg_ecotta.safe_load`).

    Args:
        filename (str): File in the work dir written at the end of the
            stream. Defaults to ``'adapted_final.pth'``.
        every_domain (bool): Also write
            ``adapted_round{R}_{domain}.pth`` at the end of each (round,
            domain), before an episodic reset. Defaults to False.
    """

    def __init__(self,
                 filename: str = 'adapted_final.pth',
                 every_domain: bool = False) -> None:
        self.filename = filename
        self.every_domain = every_domain

    def segment_ended(self, runner, segment: tuple) -> None:
        if self.every_domain:
            self._export(runner, self._segment_file(segment), segment)

    def after_test_epoch(self, runner, metrics: dict = None) -> None:
        segment = adaptation_hook(runner).segments.current
        if segment is None:
            return
        if self.every_domain:
            self._export(runner, self._segment_file(segment), segment)
        self._export(runner, self.filename, segment)

    @staticmethod
    def _segment_file(segment: tuple) -> str:
        return f'adapted_round{segment[0] + 1}_{segment[1]}.pth'

    def _export(self, runner, filename: str, segment: tuple) -> None:
        """Save the weights adapted up to the end of ``segment``."""
        tta = adaptation_hook(runner)
        # The adapted model, or a mean teacher's EMA teacher (CoTTA): what
        # one would deploy. Both share the model's architecture and keys.
        model = tta.method.predicting_network
        if is_model_wrapper(model):
            model = model.module
        state_dict = OrderedDict(
            (k, v.detach().cpu()) for k, v in model.state_dict().items())
        round_idx, domain = segment
        meta = dict(
            dataset_meta=getattr(runner.model, 'dataset_meta', None)
            or runner.test_dataloader.dataset.metainfo,
            adapted=dict(
                method=type(tta.method).__name__,
                round=round_idx,
                domain=domain,
                images=tta.method.images,
                config=osp.basename(runner.cfg.filename or ''),
                source_checkpoint=source_checkpoint(runner)))
        path = osp.join(runner.work_dir, filename)
        # Atomically: a symlink planted at the path is replaced, not
        # followed.
        atomic_write(
            path,
            lambda f: save_plain(dict(state_dict=state_dict, meta=meta), f))
        runner.logger.info(f'adapted model (after round {round_idx + 1} '
                           f'{domain}) saved to {path}')
