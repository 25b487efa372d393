from .benchmarks import (compare_configs, run_config, run_dev_benchmark,
                         run_main_job, run_synthetic_selection)
from .builder import (build_method, build_model, build_runner, find_hook,
                      method_config, adaptation_config, tta_test_config)
from .compare import MethodRun, run_methods
from .fisher import fisher_from_config

__all__ = [
    'build_method', 'build_model', 'build_runner', 'find_hook',
    'method_config', 'adaptation_config', 'tta_test_config', 'MethodRun',
    'run_methods', 'fisher_from_config', 'compare_configs', 'run_config',
    'run_dev_benchmark', 'run_main_job', 'run_synthetic_selection'
]
