"""Count trainable and total parameters of a config's model.

    python tools/analysis/count_params.py CONFIG [--cfg-options k=v ...]
"""
import argparse
import os.path as osp

from mmengine.config import DictAction
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import mmseg_ecotta  # noqa: F401  (compat shims + registration)
from mmseg_ecotta.utils import load_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args()
    cfg = load_config(args.config, args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    model = MODELS.build(cfg.model)
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print(f'{osp.basename(args.config)} {args.cfg_options or ""}: '
          f'trainable {trainable:,} / total {total:,} '
          f'({100 * trainable / total:.2f}%)')


if __name__ == '__main__':
    main()
