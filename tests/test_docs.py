"""Every README code block marked runnable runs and succeeds.

A block is runnable when the line before its opening fence is
``<!-- runnable -->`` (or ``<!-- runnable slow -->`` for long ones, which
get the ``slow`` marker and are skipped by default). Blocks run in bash,
from the repository root, with ``$TMP`` a fresh temporary folder and this
interpreter's ``python`` first on ``PATH``.
"""
import os
import os.path as osp
import re
import subprocess
import sys
from typing import List

import pytest

from .conftest import REPO

README = osp.join(REPO, 'README.md')
MARKER = re.compile(r'^<!--\s*runnable(\s+slow)?\s*-->\s*$')


def runnable_blocks(path: str = README) -> List[pytest.param]:
    """The marked fenced blocks of ``path``, as pytest params."""
    with open(path) as f:
        lines = f.read().splitlines()
    blocks = []
    for i, line in enumerate(lines[:-1]):
        marker = MARKER.match(line)
        if not marker:
            continue
        if not lines[i + 1].startswith('```'):
            raise ValueError(
                f'{path}:{i + 1}: {line!r} must be followed by a fenced code '
                'block; put the marker on the line right before the ```')
        end = next(
            j for j in range(i + 2, len(lines)) if lines[j].startswith('```'))
        blocks.append(
            pytest.param(
                '\n'.join(lines[i + 2:end]),
                id=f'README.md:{i + 3}',
                marks=[pytest.mark.slow] if marker.group(1) else []))
    return blocks


BLOCKS = runnable_blocks()


def test_readme_has_runnable_blocks():
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize('script', BLOCKS)
def test_readme_block_runs(script, tmp_path):
    env = dict(
        os.environ,
        TMP=str(tmp_path),
        PATH=osp.dirname(sys.executable) + os.pathsep + os.environ['PATH'])
    result = subprocess.run(['bash', '-e', '-o', 'pipefail', '-c', script],
                            cwd=REPO,
                            env=env,
                            capture_output=True,
                            text=True)
    assert result.returncode == 0, (
        f'README block failed (exit {result.returncode}):\n{script}\n'
        f'{result.stderr[-3000:]}')
