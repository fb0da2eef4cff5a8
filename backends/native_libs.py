"""Load torch's shared libraries without holding Python's interpreter lock.

``import torch`` opens libtorch_cpu (hundreds of megabytes, with hundreds of milliseconds of
start-up code of its own) inside the import, which holds the interpreter lock all along: every
other thread of the program, the writing app's event loop included, stops for that long. Opening
the same libraries first through the C library's ``dlopen``, called by ctypes (which lets go of
the lock during a foreign call), does that work while the other threads run; the import then
finds them already loaded. Same libraries, same order, same flags as torch uses: only who waits
changes. Anything unexpected leaves the loading to torch, as before.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import sys
import threading
from pathlib import Path

_done = threading.Lock()
_handles: list[int] = []  # kept open for the life of the process, as torch keeps them


def preload_torch_libraries() -> bool:
    """Open torch's biggest shared libraries with the interpreter lock released (Linux; once).

    Returns True when they are loaded (or torch is already imported), False when it was left to torch.
    """
    if "torch" in sys.modules or _handles:
        return True
    if not sys.platform.startswith("linux") or os.environ.get("TORCH_USE_RTLD_GLOBAL"):
        return False  # torch then loads itself with other flags; leave it be
    with _done:
        if _handles:
            return True
        try:
            spec = importlib.util.find_spec("torch")
        except (ImportError, ValueError):
            return False
        if spec is None or spec.origin is None:
            return False
        lib = Path(spec.origin).parent / "lib"
        try:
            dlopen = ctypes.CDLL(None).dlopen
        except (OSError, AttributeError):
            return False
        dlopen.restype = ctypes.c_void_p
        dlopen.argtypes = [ctypes.c_char_p, ctypes.c_int]
        # torch first opens its global dependencies with RTLD_GLOBAL, then the rest comes in
        # as dependencies of its extension module, with Python's flags for extensions.
        steps = [("libtorch_global_deps.so", os.RTLD_NOW | os.RTLD_GLOBAL)]
        steps += [(name, sys.getdlopenflags()) for name in ("libtorch_cpu.so", "libtorch_cuda.so")]
        for name, flags in steps:
            path = lib / name
            if not path.is_file():
                continue
            handle = dlopen(os.fsencode(path), flags)
            if not handle:
                break  # a dependency torch finds its own way (CUDA's): let torch do the rest
            _handles.append(handle)
        return bool(_handles)
