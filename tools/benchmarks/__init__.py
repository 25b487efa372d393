"""The project's benchmarks, outside the installed package.

:mod:`.main_job` is ``make demo``'s comparison on the synthetic stream;
:mod:`.dev` the real-image dev benchmark, the EcoTTA ablation and the rule
that chose the shipped recipe. The tools import this folder as
``benchmarks`` (it sits beside them); the tests as ``tools.benchmarks``.
"""
