"""Make mmengine 0.10 checkpoints load under torch >= 2.6 (``weights_only=True``).

mmengine's ``resume``/``load_from`` call ``torch.load(path, map_location=...)``
without ``weights_only``, so torch >= 2.6 loads with the restricted unpickler.
A training checkpoint then fails on the message hub's ``HistoryBuffer`` (and the
numpy arrays and scalars inside it). Rather than turning the safe loader off,
this module allow-lists exactly those globals with
``torch.serialization.add_safe_globals``:

- ``mmengine.logging.HistoryBuffer`` (its state: numpy arrays and a dict of its
  own statistics methods);
- numpy's array/scalar/dtype reconstructors (``numpy.core.multiarray._reconstruct``,
  ``.scalar``, ``numpy.ndarray``, ``numpy.dtype`` and the ``numpy.dtypes`` classes);
- ``builtins.getattr`` — but bound to a restricted stand-in that only resolves
  public methods of ``HistoryBuffer`` (Python pickles ``HistoryBuffer.min`` as
  ``getattr(HistoryBuffer, 'min')``); any other use raises.

Applied once, on ``import faceparse.mm``.
"""

from __future__ import annotations

import inspect
import logging
from pathlib import Path

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

log = logging.getLogger(__name__)

_APPLIED = False


def restricted_getattr(obj, name, *default):
    """``getattr`` for the unpickler: only ``HistoryBuffer``'s own public methods."""
    if default:
        raise pickle_error(f"getattr with a default is not allowed ({obj!r}, {name!r})")
    if obj is HistoryBuffer and isinstance(name, str) and not name.startswith("_"):
        value = inspect.getattr_static(HistoryBuffer, name, None)
        if inspect.isfunction(value):
            return getattr(HistoryBuffer, name)
    raise pickle_error(f"getattr({obj!r}, {name!r}) is not allow-listed for weights_only loading")


def pickle_error(message: str) -> Exception:
    import pickle

    return pickle.UnpicklingError(message)


def _numpy_globals() -> list:
    """numpy's reconstructors, under both the numpy 1.x and 2.x module paths."""
    found: list = [np.ndarray, np.dtype]
    for module_name in ("numpy.core.multiarray", "numpy._core.multiarray"):
        try:
            module = __import__(module_name, fromlist=["_reconstruct", "scalar"])
        except ImportError:
            continue
        for attr in ("_reconstruct", "scalar"):
            fn = getattr(module, attr)
            found.append((fn, f"{module_name}.{attr}"))
    dtypes = getattr(np, "dtypes", None)  # numpy >= 1.25: one class per dtype
    if dtypes is not None:
        found += [cls for cls in vars(dtypes).values() if isinstance(cls, type) and issubclass(cls, np.dtype)]
    return found


def safe_globals() -> list:
    """The globals an mmengine training checkpoint needs beyond torch's defaults."""
    return [
        HistoryBuffer,
        (restricted_getattr, "builtins.getattr"),
        (restricted_getattr, "__builtin__.getattr"),
        *_numpy_globals(),
    ]


def apply() -> None:
    """Allow-list the globals (idempotent)."""
    global _APPLIED
    if _APPLIED:
        return
    if not hasattr(torch.serialization, "add_safe_globals"):  # torch < 2.4: nothing to do
        _APPLIED = True
        return
    torch.serialization.add_safe_globals(safe_globals())
    _APPLIED = True
    log.debug("faceparse.mm.compat: allow-listed mmengine checkpoint globals for weights_only loading")


def open_checkpoint(path: str | Path):
    """A checkpoint opened as mmengine's resume opens it (torch's ``weights_only`` loader with this
    allow-list), memory-mapped: the tensors are not read, so a file cut short while saving fails
    here without reading gigabytes. Raises whatever torch raises for a file that does not load."""
    apply()
    return torch.load(str(path), map_location="cpu", mmap=True, weights_only=True)
