"""Data transforms: checked image loading, weather corruptions."""
from .corruptions import CORRUPTIONS, SEVERITIES
from .loading import (BadImageError, LoadCheckedAnnotations,
                      LoadCheckedImageFromFile, check_image_file,
                      check_label_file)
from .weather_corruption import WeatherCorruption

__all__ = [
    'CORRUPTIONS', 'SEVERITIES', 'WeatherCorruption', 'BadImageError',
    'LoadCheckedAnnotations', 'LoadCheckedImageFromFile', 'check_image_file',
    'check_label_file'
]
