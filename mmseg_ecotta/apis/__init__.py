from .compare import MethodRun, run_methods

__all__ = ['MethodRun', 'run_methods']
