from .config import PLUGIN_IMPORT, check_plugin_import, load_config

__all__ = ['PLUGIN_IMPORT', 'check_plugin_import', 'load_config']
