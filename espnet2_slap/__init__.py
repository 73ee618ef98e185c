"""SLAP and CLAP music-text joint embedding models as an ESPnet2 plugin."""

__version__ = "0.1.0"
