"""int8 weights for a local model on the CPU (``dtype = "int8"``).

Every linear layer, the output head included, is quantized with PyTorch's dynamic
quantization: weights stored as int8, activations quantized on the fly per batch, the
matrix products run by int8 kernels (fbgemm/oneDNN on x86). Decoding one token at a time
is bound by reading the weights, so weights a quarter the size decode several times
faster, with a perplexity within a percent or two of float32 (``bench/int8_speed.py``).

Why ``torch.ao.quantization.quantize_dynamic``: it ships with PyTorch, needs no compiler,
and reaches the speed-up on this CPU. PyTorch marks it deprecated in favour of torchao,
which is aimed first at GPUs and ``torch.compile``: torchao 0.18's int8 weight-only and
int8 dynamic-activation configs decoded GPT-2-small at 0.42x float32 here in eager mode,
against 2.5-2.9x for this path. Its warnings are silenced here, and ``bench/int8_speed.py``
is the place to compare again if that moves. (Installed, torchao is also imported by
transformers at start-up, which is one more reason not to depend on it.)

GPT-2 keeps its projections in transformers' ``Conv1D`` (a linear layer with the weight
transposed); they become ``nn.Linear`` first so the quantizer sees them.

torch and transformers are imported only when a model is quantized.
"""

from __future__ import annotations

import warnings
from typing import Any


def conv1d_to_linear(model: Any) -> int:
    """Replace every transformers ``Conv1D`` in ``model`` by the equivalent ``nn.Linear``; returns how many."""
    import torch
    from torch import nn
    from transformers.pytorch_utils import Conv1D

    replaced = 0
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if not isinstance(child, Conv1D):
                continue
            in_features, out_features = child.weight.shape
            linear = nn.Linear(in_features, out_features, bias=child.bias is not None)
            with torch.no_grad():
                linear.weight.copy_(child.weight.t())
                if child.bias is not None:
                    linear.bias.copy_(child.bias)
            setattr(module, name, linear.to(child.weight.device))
            replaced += 1
    return replaced


def quantize_int8(model: Any) -> Any:
    """Quantize ``model``'s linear layers (output head included) to int8 in place; returns the model.

    The input embedding stays in float32: it is a table look-up, not a matrix product.
    """
    import torch
    from torch import nn

    conv1d_to_linear(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8, inplace=True)
    return model
