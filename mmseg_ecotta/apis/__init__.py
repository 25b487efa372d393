from .builder import (adaptation_config, build_method, build_model,
                      build_runner, find_hook, method_config, tta_test_config)
from .compare import MethodRun, compare_configs, run_methods
from .fisher import fisher_from_config

__all__ = [
    'build_method', 'build_model', 'build_runner', 'find_hook',
    'method_config', 'adaptation_config', 'tta_test_config', 'MethodRun',
    'run_methods', 'fisher_from_config', 'compare_configs'
]
