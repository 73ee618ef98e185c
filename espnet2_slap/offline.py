"""Keep our processes off the network at import time.

ESPnet's preprocessor module (``espnet2.train.preprocessor``, home of ``AbsPreprocessor``, which every task
imports) imports all of ESPnet's tokenizers, among them ``g2p_en``, whose import calls ``nltk.download`` for two
data packages when they are not installed: eight "[nltk_data] Error loading ..." lines in every process on an
offline node (or a wait on a firewalled one), and several seconds of import. We never tokenize phonemes, so
``g2p_en`` is registered as a deferred module: ESPnet's ``import g2p_en`` binds it without running it, and the
real module is imported (downloads included) the first time something uses one of its names.

The standard library's ``importlib.util.LazyLoader`` does not fit: it runs the module at the first attribute
access of any kind, and torch's import already reads ``__file__`` of every module in ``sys.modules``
(``inspect.getmodule``), so the downloads happened all the same.
"""

import importlib
import importlib.util
import sys
import types

DEFERRED_MODULES = ("g2p_en",)


class DeferredModule(types.ModuleType):
    """Stands in ``sys.modules`` for a module until one of its own names is read, then imports the real one."""

    def __init__(self, spec):
        super().__init__(spec.name)
        # what inspection reads (inspect.getmodule, pickling, help) answers without running the module
        self.__spec__, self.__file__, self.__loader__ = spec, spec.origin, spec.loader
        if spec.submodule_search_locations is not None:
            self.__path__ = list(spec.submodule_search_locations)

    def __getattr__(self, attr: str):  # called only for names not set above: the first real use
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        return getattr(importlib.import_module(self.__name__), attr)


def defer_network_imports() -> None:
    """Register each of DEFERRED_MODULES that is installed and not yet imported as a DeferredModule."""
    for name in DEFERRED_MODULES:
        if name in sys.modules:
            continue
        spec = importlib.util.find_spec(name)
        if spec is not None:
            sys.modules[name] = DeferredModule(spec)
