"""alm-bench: an experiment runner for augmented Lagrangian methods."""

__version__ = "0.1.0"
