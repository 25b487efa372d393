"""The plugin's own registry (TTA methods) and its scope in mmseg's tree.

Models, datasets, transforms, metrics and hooks go into mmseg's registries;
only TTA methods, which mmseg has no notion of, get a registry here.
"""
from typing import Dict

import mmseg.registry as mmseg_registry
from mmengine.registry import Registry

SCOPE = 'mmseg_ecotta'
TTA_METHODS = Registry(
    'tta method', scope=SCOPE, locations=['mmseg_ecotta.tta'])

# A config inherited through ``_base_ = ['mmseg_ecotta::...']`` has
# ``_scope_='mmseg_ecotta'`` on every type (mmengine scopes what a package
# ships by the package's name), and mmengine then builds from the registry
# of that scope. These empty children of mmseg's registries are that
# scope: a name not found in them is looked up in mmseg's, where the
# plugin registers, and mmseg's parents. Their locations are the plugin and
# mmseg's (mmengine imports a registry's own locations, not its parents',
# before a lookup).
SCOPED_REGISTRIES: Dict[str, Registry] = {
    name:
    Registry(
        registry.name,
        parent=registry,
        scope=SCOPE,
        locations=[SCOPE, *registry._locations])
    for name, registry in vars(mmseg_registry).items()
    if isinstance(registry, Registry)
}
