"""Measurement tools: what adaptation costs, per method."""
from .memory import (AnalyticCounter, MemoryRow, MemoryVariant, RowSkipped,
                     default_variants, measure_variant, run_memory_report)
from .memory_format import MIB, format_markdown, row_summary, rows_to_json
from .soak import format_soak, memory_trend, resident_bytes, run_soak

__all__ = [
    'AnalyticCounter', 'MemoryRow', 'MemoryVariant', 'RowSkipped',
    'default_variants', 'measure_variant', 'run_memory_report', 'MIB',
    'format_markdown', 'row_summary', 'rows_to_json', 'format_soak',
    'memory_trend', 'resident_bytes', 'run_soak'
]
