from .cli import add_runner_args, add_unsafe_load_arg, parse_runner_args
from .config import PLUGIN_IMPORT, check_plugin_import, load_config
from .files import atomic_write, check_torch_file

__all__ = [
    'PLUGIN_IMPORT', 'add_runner_args', 'add_unsafe_load_arg', 'atomic_write',
    'check_plugin_import', 'check_torch_file', 'load_config',
    'parse_runner_args'
]

# Each method's shipped defaults (configs/_base_/tta/).
from .config import method_defaults

__all__ += ['method_defaults']
