"""Load images and labels, refusing hostile files.

``LoadCheckedImageFromFile`` and ``LoadCheckedAnnotations`` replace mmcv's
``LoadImageFromFile`` and mmseg's ``LoadAnnotations``.

mmcv's ``LoadImageFromFile`` silently turns a grayscale or RGBA file into
3 channels, fails on a corrupt or truncated file with a bare
``AssertionError`` (OpenCV's ``imdecode``), and with other decoders
(``cv2.imread``, libjpeg-turbo) may turn a truncated JPEG into an image
with a grey bottom and only a warning on stderr. In a long unattended stream
each of these is a silently wrong result or an unexplained crash. This
transform checks the file first (its header, via Pillow, without decoding
the pixels) and raises :class:`BadImageError` naming the file and the fix;
a good file is then decoded exactly as mmcv does (same bytes, same
decoder), so results do not change.

Policy: fail fast, no skip. Dropping a sample mid-stream would shift every
later stream position (the resume position among them), and mmengine's
collate cannot take a missing (``None``) sample; repair or remove the file
and rerun (``--resume`` continues from the last adaptation state and
skips what was removed, see :mod:`~mmseg_ecotta.engine.run_identity`).

Label files get the same checks (a truncated, empty, text or huge-header
label used to surface as a bare Pillow error without the path), and must
be one-channel 8-bit train-id maps (Pillow mode ``L`` or ``P``): a colour
or 16-bit label would be decoded into wrong class ids without an error.
"""
import io
import warnings
from typing import Optional, Tuple

from mmcv.transforms import LoadImageFromFile
from mmengine import fileio
from mmseg.datasets.transforms import LoadAnnotations
from mmseg.registry import TRANSFORMS
from PIL import Image

# Pillow modes of 3-channel colour images: what the model is trained on.
COLOR_MODES = ('RGB', 'YCbCr')
# Pillow modes of 8-bit one-channel label maps (grey or palette indices),
# which mmseg's LoadAnnotations decodes into class ids unchanged.
LABEL_MODES = ('L', 'P')
# JPEG's end-of-image marker: a file without it was cut short.
JPEG_EOI = b'\xff\xd9'


class BadImageError(ValueError):
    """An image file that cannot give a correct sample."""


@TRANSFORMS.register_module()
class LoadCheckedImageFromFile(LoadImageFromFile):
    """``LoadImageFromFile`` that refuses corrupt and unexpected images.

    Refused, each with :class:`BadImageError` naming the file: unreadable
    or corrupt files, truncated PNG/JPEG files, images that are not
    3-channel 8-bit colour (grayscale, RGBA, palette, 16-bit), and images
    smaller than ``min_size`` or larger than ``max_pixels``.

    Args:
        min_size (int): Smallest height and width accepted. Defaults to
            16: a smaller frame is a broken capture, and a stride-8 model
            sees less than a 2x2 feature map.
        max_pixels (int): Most pixels accepted. Defaults to 2**27 (e.g.
            16384 x 8192, 384 MiB decoded), far above any camera frame and
            below OpenCV's own 2**30 limit, so a hostile header never makes
            the decoder allocate gigabytes.
        **kwargs: Passed to mmcv's :class:`LoadImageFromFile`.
    """

    def __init__(self,
                 min_size: int = 16,
                 max_pixels: int = 2**27,
                 **kwargs) -> None:
        if kwargs.get('ignore_empty'):
            raise ValueError('ignore_empty=True returns None for a missing '
                             'file, which the test loop cannot take; see '
                             'the module docstring for the policy')
        super().__init__(**kwargs)
        self.min_size = min_size
        self.max_pixels = max_pixels

    def transform(self, results: dict) -> Optional[dict]:
        """Check ``results['img_path']``, then load it as mmcv does."""
        check_image_file(results['img_path'], self.min_size, self.max_pixels,
                         self.backend_args)
        return super().transform(results)


def check_image_file(path: str,
                     min_size: int = 16,
                     max_pixels: int = 2**27,
                     backend_args: Optional[dict] = None) -> None:
    """Raise :class:`BadImageError` unless ``path`` is a sound colour image.

    Args:
        path (str): Image file.
        min_size (int): Smallest height and width accepted.
        max_pixels (int): Most pixels accepted.
        backend_args (dict, optional): mmengine file backend arguments.
    """
    data, image = _open(path, 'image', backend_args)
    mode, (width, height) = image.mode, image.size
    if min(width, height) < min_size or width * height > max_pixels:
        raise BadImageError(
            f'image {path} is {width}x{height} pixels, outside the accepted '
            f'range (sides >= {min_size}, at most {max_pixels} pixels): '
            'resize it, or set min_size/max_pixels of '
            'LoadCheckedImageFromFile in the test pipeline')
    if mode not in COLOR_MODES:
        raise BadImageError(
            f'image {path} has Pillow mode {mode!r}, not 3-channel 8-bit '
            'colour (RGB): the model expects colour images; convert it, '
            "e.g. PIL.Image.open(path).convert('RGB').save(path)")
    _check_complete(path, 'image', data, image)


@TRANSFORMS.register_module()
class LoadCheckedAnnotations(LoadAnnotations):
    """mmseg's ``LoadAnnotations`` that refuses corrupt and wrong labels.

    Refused, each with :class:`BadImageError` naming the label file:
    unreadable, empty, corrupt or truncated files, files that are not
    images (e.g. text), labels that are not one-channel 8-bit maps
    (:data:`LABEL_MODES`) and labels larger than ``max_pixels``. A good
    file is then decoded exactly as mmseg does.

    Args:
        max_pixels (int): Most pixels accepted. Defaults to 2**27, as
            :class:`LoadCheckedImageFromFile`.
        **kwargs: Passed to mmseg's :class:`LoadAnnotations`.
    """

    def __init__(self, max_pixels: int = 2**27, **kwargs) -> None:
        super().__init__(**kwargs)
        self.max_pixels = max_pixels

    def _load_seg_map(self, results: dict) -> None:
        """Check ``results['seg_map_path']``, then load it as mmseg does."""
        check_label_file(results['seg_map_path'], self.max_pixels,
                         self.backend_args)
        super()._load_seg_map(results)


def check_label_file(path: str,
                     max_pixels: int = 2**27,
                     backend_args: Optional[dict] = None) -> None:
    """Raise :class:`BadImageError` unless ``path`` is a sound label map.

    Args:
        path (str): Label file.
        max_pixels (int): Most pixels accepted.
        backend_args (dict, optional): mmengine file backend arguments.
    """
    data, image = _open(path, 'label', backend_args)
    mode, (width, height) = image.mode, image.size
    if width * height > max_pixels:
        raise BadImageError(
            f'label {path} is {width}x{height} pixels, more than '
            f'{max_pixels}: the label must have its image\'s size; fix the '
            'file, or set max_pixels of LoadCheckedAnnotations')
    if mode not in LABEL_MODES:
        raise BadImageError(
            f'label {path} has Pillow mode {mode!r}, not a one-channel '
            f'8-bit map ({" or ".join(LABEL_MODES)}) of train ids: use the '
            '*_labelTrainIds.png files (not *_color.png or *_labelIds.png '
            "of another bit depth), or convert it")
    _check_complete(path, 'label', data, image)


def _open(path: str, kind: str,
          backend_args: Optional[dict]) -> Tuple[bytes, Image.Image]:
    """The bytes of ``path`` and its Pillow header (pixels not decoded)."""
    try:
        data = fileio.get(path, backend_args=backend_args)
    except OSError as e:
        raise BadImageError(f'cannot read {kind} {path}: {e}; check that '
                            'the file exists and is readable') from e
    if not data:
        raise BadImageError(
            f'{kind} {path} is corrupt or truncated (empty: 0 bytes); '
            're-export or re-download it, or remove it from the '
            'dataset')
    try:
        with warnings.catch_warnings():
            # Sizes are judged by the callers, against max_pixels.
            warnings.simplefilter('ignore', Image.DecompressionBombWarning)
            return data, Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as e:
        raise BadImageError(
            f'{kind} {path} is far too large ({e}); resize it') from e
    except Image.UnidentifiedImageError as e:
        raise BadImageError(
            f'{kind} {path} is corrupt or truncated, or not an image at all '
            f'(it starts with {data[:16]!r}, e.g. text or a saved web '
            'page); re-export or re-download it, or remove it from the '
            'dataset') from e
    except Exception as e:  # Pillow raises many types for bad files
        raise _corrupt(path, kind, e) from e


def _check_complete(path: str, kind: str, data: bytes,
                    image: Image.Image) -> None:
    """Raise if a PNG or JPEG file was cut short or damaged."""
    if image.format == 'PNG':
        try:
            # Walks every chunk and checks its CRC up to IEND: finds a
            # truncated or damaged PNG without decoding the pixels.
            image.verify()
        except Exception as e:
            raise _corrupt(path, kind, e) from e
    if image.format == 'JPEG' and not data.rstrip(b'\x00').endswith(JPEG_EOI):
        raise BadImageError(
            f'{kind} {path} is a truncated JPEG (no end-of-image marker); '
            're-export or re-download it, or remove it from the dataset')


def _corrupt(path: str, kind: str, error: Exception) -> BadImageError:
    return BadImageError(
        f'{kind} {path} is corrupt or truncated ({type(error).__name__}: '
        f'{error}); re-export or re-download it, or remove it from the '
        'dataset')
