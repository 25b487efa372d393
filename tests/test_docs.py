"""Every documentation code block marked runnable runs and succeeds.

The documentation is README.md and every Markdown file under ``docs/`` and
``configs/``. A block is runnable when the line before its opening fence is
``<!-- runnable -->`` (or ``<!-- runnable slow -->`` for long ones, which
get the ``slow`` marker and are skipped by default). Blocks run in bash,
from the repository root, with ``$TMP`` a fresh temporary folder and this
interpreter's ``python`` first on ``PATH``.
"""
import glob
import os
import os.path as osp
import re
import subprocess
import sys
from typing import List

import pytest

from .conftest import REPO

MARKER = re.compile(r'^<!--\s*runnable(\s+slow)?\s*-->\s*$')


def documentation_files(root: str = REPO) -> List[str]:
    """README.md and the Markdown files under docs/ and configs/, sorted."""
    files = [osp.join(root, 'README.md')]
    for folder in ('docs', 'configs'):
        files += sorted(
            glob.glob(osp.join(root, folder, '**', '*.md'), recursive=True))
    return files


def runnable_blocks(path: str) -> List[pytest.param]:
    """The marked fenced blocks of ``path``, as pytest params."""
    with open(path) as f:
        lines = f.read().splitlines()
    name = osp.relpath(path, REPO)
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
                id=f'{name}:{i + 3}',
                marks=[pytest.mark.slow] if marker.group(1) else []))
    return blocks


BLOCKS = [b for path in documentation_files() for b in runnable_blocks(path)]


def test_docs_have_runnable_blocks():
    assert len(BLOCKS) >= 2


def test_runnable_blocks_outside_readme_are_collected():
    # The guides' commands rot as easily as the README's.
    files = {block.id.rsplit(':', 1)[0] for block in BLOCKS}
    assert any(f.startswith('docs' + os.sep) for f in files), files


@pytest.mark.parametrize('script', BLOCKS)
def test_doc_block_runs(script, tmp_path):
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
        f'Documentation block failed (exit {result.returncode}):\n{script}\n'
        f'{result.stderr[-3000:]}')
