from .compare import MethodRun, run_methods

__all__ = ['MethodRun', 'run_methods']

# The project's benchmarks (tools/compare.py, run_main_job.py,
# run_dev_benchmark.py).
from .benchmarks import (compare_configs, run_config, run_dev_benchmark,
                         run_main_job)

__all__ += [
    'compare_configs', 'run_config', 'run_dev_benchmark', 'run_main_job'
]
