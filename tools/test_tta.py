"""Continual test-time adaptation: adapt and evaluate over a stream.

Mirrors mmseg's ``tools/test.py``: config -> Runner -> test. The config's
``adaptation`` names the method and its settings; the
results (mIoU per domain and round, per-class IoU, cost) are printed and
written to ``WORK_DIR/tta_results.json`` after every domain.

    python tools/test_tta.py CONFIG CHECKPOINT [--work-dir DIR]
        [--cfg-options k=v ...] [--show-dir DIR] [--export-adapted]
        [--resume] [--unsafe-load] [--launcher pytorch]

On a terminal a progress bar shows the ETA and the running mIoU of the
current domain.
"""
from mmseg_ecotta.apis.test_tta import main

if __name__ == '__main__':
    main()
