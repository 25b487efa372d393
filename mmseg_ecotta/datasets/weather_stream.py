"""A continual test-time adaptation stream: domains in order, N rounds.

CoTTA's protocol (Wang et al., "Continual Test-Time Domain Adaptation",
CVPR 2022, arXiv 2203.13591) adapts a Cityscapes model on ACDC's train
split, fog -> night -> rain -> snow, repeated for 10 rounds with no reset.
This dataset is that sequence: each domain's dataset is built once and
replayed every round, and every sample is tagged with where it sits in
the stream, so metrics and hooks can split results by domain and round.
"""
import bisect
import copy
from typing import Any, Dict, List, NamedTuple, Sequence, Tuple, Union

from mmengine.dataset import BaseDataset
from mmseg.registry import DATASETS

# CoTTA's Cityscapes -> ACDC protocol (arXiv 2203.13591, Sec. 4.1).
COTTA_DOMAINS: Tuple[str, ...] = ('fog', 'night', 'rain', 'snow')
COTTA_ROUNDS = 10

DomainCfg = Union[str, Dict[str, Any]]


class StreamSegment(NamedTuple):
    """A run of consecutive stream positions from one domain and round.

    ``start``/``stop`` are global stream positions (``stop`` exclusive).
    """

    round: int
    domain_index: int
    domain: str
    start: int
    stop: int


@DATASETS.register_module()
class WeatherStreamDataset:
    """Ordered domains repeated for several rounds, as one test dataset.

    Position ``i`` of the stream maps round-major, then domain, then sample:
    ``round = i // n``, with ``n`` the summed length of all domains. The
    pipeline output of the domain dataset is returned with four metainfo
    keys set on its ``data_samples`` (or, when a pipeline produces no
    ``data_samples``, added to the returned dict): ``domain`` (str),
    ``round`` (int, from 0), ``domain_index`` (int) and ``stream_index``
    (int, the global position).

    Example:
        >>> dict(type='WeatherStreamDataset',
        ...      domains=['fog', 'night', 'rain', 'snow'], rounds=10,
        ...      dataset_template=dict(type='ACDCDataset',
        ...                            data_root='data/acdc/',
        ...                            pipeline=test_pipeline))

    Args:
        domains (list[str | dict]): Domains in stream order. A dict is
            ``dict(name=..., dataset=...)`` with a dataset config or a
            built dataset; a str is a name that becomes
            ``dataset_template`` with ``template_key=name``.
            Default: ``COTTA_DOMAINS``.
        rounds (int): How often the domain sequence repeats.
            Default: ``COTTA_ROUNDS`` (10).
        dataset_template (dict, optional): Dataset config shared by the
            domains given as names. Default: None.
        template_key (str): Keyword of the template that receives the
            domain name. Default: 'condition' (``ACDCDataset``).
        lazy_init (bool): Defer building the sample lists of the domain
            datasets to :meth:`full_init` (the ``Runner`` calls it).
            Default: False.
    """

    def __init__(self,
                 domains: Sequence[DomainCfg] = COTTA_DOMAINS,
                 rounds: int = COTTA_ROUNDS,
                 dataset_template: Union[Dict[str, Any], None] = None,
                 template_key: str = 'condition',
                 lazy_init: bool = False) -> None:
        if not isinstance(rounds, int) or rounds < 1:
            raise ValueError(
                f'rounds must be an int >= 1, got {rounds!r}; CoTTA uses '
                f'{COTTA_ROUNDS}')
        if isinstance(domains, str) or not domains:
            raise ValueError(f'domains must be a non-empty list of names or '
                             f'dict(name=..., dataset=...), got {domains!r}')
        self.rounds = rounds
        self.domain_names: List[str] = []
        self.datasets: List[BaseDataset] = []
        for domain in domains:
            name, dataset = self._domain_dataset(domain, dataset_template,
                                                 template_key)
            self.domain_names.append(name)
            self.datasets.append(dataset)
        repeated = sorted(
            {n
             for n in self.domain_names if self.domain_names.count(n) > 1})
        if repeated:
            raise ValueError(
                f'domains {self.domain_names} name {repeated} more than '
                'once: results are kept per domain name, so a repeat would '
                'merge into the first; give each domain its own name, e.g. '
                "dict(name='fog2', dataset=dict(...)) for the same data "
                'again')
        self._cum_lengths: List[int] = []
        self._metainfo: Dict[str, Any] = {}
        self._fully_initialized = False
        if not lazy_init:
            self.full_init()

    @staticmethod
    def _domain_dataset(domain: DomainCfg, template: Union[Dict[str, Any],
                                                           None],
                        template_key: str) -> Tuple[str, BaseDataset]:
        """Build one domain's dataset (lazily) from its config entry."""
        if isinstance(domain, str):
            if template is None:
                raise ValueError(
                    f'domain {domain!r} is given by name only: set '
                    f'dataset_template=dict(type=..., ...) or give '
                    f'dict(name={domain!r}, dataset=dict(...))')
            cfg = copy.deepcopy(dict(template))
            cfg[template_key] = domain
            name, dataset = domain, cfg
        elif isinstance(domain, dict) and {'name', 'dataset'} <= set(domain):
            name, dataset = domain['name'], domain['dataset']
        else:
            raise ValueError(
                f'each domain must be a name or dict(name=..., dataset=...), '
                f'got {domain!r}')
        if isinstance(dataset, dict):
            # The stream owns the full init, so that lazy_init holds.
            dataset = DATASETS.build(dict(dataset, lazy_init=True))
        return str(name), dataset

    @property
    def metainfo(self) -> Dict[str, Any]:
        """The domain datasets' metainfo plus ``domains`` and ``rounds``.

        ``classes``/``palette`` (what mmseg's ``IoUMetric`` reads) come from
        the first domain; all domains must agree on ``classes``.
        """
        if not self._fully_initialized:
            self.full_init()
        return copy.deepcopy(self._metainfo)

    def full_init(self) -> None:
        """Load every domain's sample list and check the stream."""
        if self._fully_initialized:
            return
        for dataset in self.datasets:
            dataset.full_init()
        lengths = [len(d) for d in self.datasets]
        empty = [
            n for n, length in zip(self.domain_names, lengths) if length == 0
        ]
        if empty:
            raise ValueError(
                f'domains {empty} have no samples; an empty domain would '
                f'silently vanish from the stream: fix their data or '
                f'remove them from domains')
        classes = self.datasets[0].metainfo.get('classes')
        for name, dataset in zip(self.domain_names, self.datasets):
            if dataset.metainfo.get('classes') != classes:
                raise ValueError(
                    f'domain {name!r} has classes '
                    f'{dataset.metainfo.get("classes")}, the first domain '
                    f'{classes}: every domain must use the same classes')
        self._cum_lengths = [0]
        for length in lengths:
            self._cum_lengths.append(self._cum_lengths[-1] + length)
        self._metainfo = dict(
            self.datasets[0].metainfo,
            domains=tuple(self.domain_names),
            rounds=self.rounds)
        self._fully_initialized = True

    @property
    def round_length(self) -> int:
        """Number of samples in one round (all domains once)."""
        if not self._fully_initialized:
            self.full_init()
        return self._cum_lengths[-1]

    def __len__(self) -> int:
        return self.rounds * self.round_length

    def locate(self, index: int) -> Tuple[int, int, int]:
        """Map a stream position to ``(round, domain_index, local_index)``.

        Args:
            index (int): Stream position; negative counts from the end.

        Returns:
            tuple[int, int, int]: Round (from 0), domain index and the
            sample's index inside its domain dataset.
        """
        length = len(self)
        if not -length <= index < length:
            raise IndexError(
                f'stream index {index} out of range for a stream of '
                f'{length} samples')
        index %= length
        round_idx, offset = divmod(index, self.round_length)
        domain_idx = bisect.bisect_right(self._cum_lengths, offset) - 1
        return round_idx, domain_idx, offset - self._cum_lengths[domain_idx]

    def segments(self) -> List[StreamSegment]:
        """The stream as consecutive (round, domain) runs, in order.

        Returns:
            list[StreamSegment]: ``rounds * len(domains)`` segments; the
            domain changes exactly at each segment's ``start``.
        """
        segments = []
        for round_idx in range(self.rounds):
            base = round_idx * self.round_length
            for domain_idx, name in enumerate(self.domain_names):
                segments.append(
                    StreamSegment(round_idx, domain_idx, name,
                                  base + self._cum_lengths[domain_idx],
                                  base + self._cum_lengths[domain_idx + 1]))
        return segments

    def stream_info(self, index: int) -> Dict[str, Any]:
        """The metainfo tags of stream position ``index``."""
        round_idx, domain_idx, _ = self.locate(index)
        return dict(
            domain=self.domain_names[domain_idx],
            round=round_idx,
            domain_index=domain_idx,
            stream_index=index % len(self))

    def get_data_info(self, index: int) -> Dict[str, Any]:
        """The domain dataset's data info plus the stream tags."""
        _, domain_idx, local_idx = self.locate(index)
        info = self.datasets[domain_idx].get_data_info(local_idx)
        info.update(self.stream_info(index))
        return info

    def __getitem__(self, index: int) -> Dict[str, Any]:
        """Run the domain dataset's pipeline and tag the result."""
        _, domain_idx, local_idx = self.locate(index)
        results = self.datasets[domain_idx][local_idx]
        tags = self.stream_info(index)
        data_samples = results.get('data_samples')
        if hasattr(data_samples, 'set_metainfo'):
            data_samples.set_metainfo(tags)
        else:
            results.update(tags)
        return results

    def __repr__(self) -> str:
        lengths = ([len(d) for d in self.datasets]
                   if self._fully_initialized else 'not loaded')
        return (f'{type(self).__name__}(domains={self.domain_names}, '
                f'rounds={self.rounds}, domain lengths={lengths})')
