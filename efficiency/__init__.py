"""Efficiency dashboard engine: profile models by every cost indicator, never one alone."""

__version__ = "0.1.0"
