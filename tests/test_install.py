"""``pip install .`` gives a working plugin outside the checkout.

The wheel is built from a copy of the checkout and installed into a fresh
virtual environment (``--no-deps``: its dependencies come from this one's
site-packages, so nothing is downloaded); a "user project" folder outside
the checkout then runs a config that inherits a shipped one through
``mmseg_ecotta::``.
"""
import json
import os
import shutil
import site
import subprocess
import sys
import textwrap

from .conftest import REPO

SHIPPED = 'mmseg_ecotta::tent/tent_deeplabv3plus_r18-tiny_1xb1-3rounds_' \
    'synthetic-weather-128x256.py'


def _run(cmd, **kwargs) -> subprocess.CompletedProcess:
    """Run ``cmd`` outside the checkout: without the tests' PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    result = subprocess.run(
        cmd, capture_output=True, text=True, env=env, **kwargs)
    assert result.returncode == 0, (cmd, result.stdout[-2000:],
                                    result.stderr[-4000:])
    return result


def _install_wheel(tmp_path) -> str:
    """Build the wheel, install it in a new venv; its python's path."""
    src = tmp_path / 'src'
    ignore = shutil.ignore_patterns('__pycache__', '*.egg-info')
    for name in ('mmseg_ecotta', 'configs'):
        shutil.copytree(
            os.path.join(REPO, name), src / name, symlinks=True, ignore=ignore)
    for name in ('pyproject.toml', 'setup.cfg', 'README.md'):
        shutil.copy(os.path.join(REPO, name), src / name)
    dist = tmp_path / 'dist'
    _run([
        sys.executable, '-m', 'pip', 'wheel', '--no-build-isolation',
        '--no-deps', '-q', '-w',
        str(dist),
        str(src)
    ])
    venv = tmp_path / 'venv'
    _run([sys.executable, '-m', 'venv', '--without-pip', str(venv)])
    python = str(venv / 'bin' / 'python')
    _run([
        sys.executable, '-m', 'pip', '--python', python, 'install',
        '--no-deps', '-q',
        str(next(dist.glob('*.whl')))
    ])
    # This environment's packages after the venv's own: torch, mmseg, ...
    # (a path listed in a .pth file runs none of the .pth files there, so
    # an editable install of the checkout stays out).
    purelib = _run([
        python, '-c', 'import sysconfig; print(sysconfig.get_paths()'
        "['purelib'])"
    ]).stdout.strip()
    with open(os.path.join(purelib, 'parent.pth'), 'w') as f:
        f.write('\n'.join(site.getsitepackages()) + '\n')
    return python


def test_installed_wheel_runs_a_config_inherited_through_the_package(
        tmp_path, acdc_root, tiny_checkpoint):
    python = _install_wheel(tmp_path)
    project = tmp_path / 'project'
    project.mkdir()
    (project / 'my_tent.py').write_text(
        textwrap.dedent(f'''\
        _base_ = ['{SHIPPED}']
        test_dataloader = dict(
            num_workers=0,
            persistent_workers=False,
            dataset=dict(
                rounds=1, dataset_template=dict(data_root={acdc_root!r})))
        adaptation = dict(method=dict(optimizer=dict(lr=1e-4)))
        '''))
    where = _run([
        python, '-c', 'import mmseg_ecotta, mmseg_ecotta.utils as u; '
        "print(mmseg_ecotta.__file__); print(u.method_defaults('Tent'))"
    ],
                 cwd=project).stdout.splitlines()
    assert where[0].startswith(str(tmp_path / 'venv')), where
    assert "'type': 'Tent'" in where[1]
    _run([
        str(tmp_path / 'venv' / 'bin' / 'mmseg-ecotta-test'), 'my_tent.py',
        tiny_checkpoint, '--work-dir', 'work'
    ],
         cwd=project)
    with open(project / 'work' / 'tta_results.json') as f:
        results = json.load(f)
    assert results['method'] == 'Tent' and results['complete']
    assert results['method_cfg']['optimizer']['lr'] == 1e-4
    assert [s['domain']
            for s in results['segments']] == ['fog', 'night', 'rain', 'snow']
