"""Datasets and transforms for the Cityscapes -> ACDC continual stream."""
from .acdc import ACDC_CONDITIONS, ACDCDataset
from .transforms import CORRUPTIONS, SEVERITIES, WeatherCorruption
from .weather_stream import (COTTA_DOMAINS, COTTA_ROUNDS, StreamSegment,
                             WeatherStreamDataset)

__all__ = [
    'ACDC_CONDITIONS', 'ACDCDataset', 'COTTA_DOMAINS', 'COTTA_ROUNDS',
    'CORRUPTIONS', 'SEVERITIES', 'StreamSegment', 'WeatherCorruption',
    'WeatherStreamDataset'
]
