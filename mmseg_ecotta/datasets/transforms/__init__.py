"""Data transforms: ImageNet-C-style weather corruptions."""
from .corruptions import CORRUPTIONS, SEVERITIES
from .weather_corruption import WeatherCorruption

__all__ = ['CORRUPTIONS', 'SEVERITIES', 'WeatherCorruption']
