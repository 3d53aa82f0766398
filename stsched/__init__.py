"""stsched: spatial-temporal GPU scheduling of many DNN inference services."""

__version__ = "0.1.0"
