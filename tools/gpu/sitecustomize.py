"""Loaded at start-up from the GPU run's site folder: numpy 2 has no numpy.distutils, which
Chainer 7.8.1 imports (for nothing it needs at run time); an empty module stands in for it."""
import sys
import types

try:
    import numpy.distutils  # noqa: F401
except ImportError:
    sys.modules["numpy.distutils"] = types.ModuleType("numpy.distutils")
