"""DTN testbed: source and destination clusters as network namespaces with shaped links.

See ``bed`` for the Python API, ``shaping`` for the link model, ``datasets`` for the
test data sets.
"""
from .bed import Testbed, TestbedError, find_by_node
from .datasets import SHAPES
from .layout import DEST, SOURCE

__all__ = ["DEST", "SHAPES", "SOURCE", "Testbed", "TestbedError", "find_by_node"]
