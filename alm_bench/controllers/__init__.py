from alm_bench.controllers.classic_alm import ClassicALM

__all__ = ["ClassicALM"]
