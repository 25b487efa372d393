from .cli import (add_allow_nonfinite_arg, add_runner_args,
                  add_unsafe_load_arg, parse_runner_args)
from .config import (PLUGIN_IMPORT, apply_config_opt_ins,
                     check_finite_settings, check_plugin_import, load_config)
from .files import atomic_write, check_torch_file, remove_stale_temporaries

__all__ = [
    'PLUGIN_IMPORT', 'add_allow_nonfinite_arg', 'add_runner_args',
    'add_unsafe_load_arg', 'apply_config_opt_ins', 'atomic_write',
    'check_finite_settings', 'check_plugin_import', 'check_torch_file',
    'load_config', 'parse_runner_args', 'remove_stale_temporaries'
]

# Each method's shipped defaults (configs/_base_/tta/).
from .config import method_defaults

__all__ += ['method_defaults']
