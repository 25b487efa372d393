"""Measurement tools: what adaptation costs, per method."""
from .memory import (AnalyticCounter, BarCheck, MemoryRow, MemoryVariant,
                     check_bars, default_variants, format_markdown,
                     measure_variant, rows_to_json, run_memory_report)
from .soak import format_soak, memory_trend, resident_bytes, run_soak

__all__ = [
    'AnalyticCounter', 'BarCheck', 'MemoryRow', 'MemoryVariant', 'check_bars',
    'default_variants', 'format_markdown', 'measure_variant', 'rows_to_json',
    'run_memory_report', 'format_soak', 'memory_trend', 'resident_bytes',
    'run_soak'
]
