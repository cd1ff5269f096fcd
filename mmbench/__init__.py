"""mmbench: an evaluation harness for multimodal (vision-language) models."""

__version__ = "0.1.0"
