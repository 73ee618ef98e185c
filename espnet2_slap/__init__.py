"""SLAP and CLAP music-text joint embedding models as an ESPnet2 plugin."""

from espnet2_slap.offline import defer_network_imports

__version__ = "0.1.0"

# Before any of our modules imports ESPnet: no nltk downloads at import (see offline.py).
defer_network_imports()
