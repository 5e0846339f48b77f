"""Transformer building blocks: norms, SwiGLU, RoPE attention and the pre-norm block.

Linear layers inside blocks carry no bias (Llama style); the paper's parameter counts match either way
within 0.1%, and bias-free layers are what the counts in flops.py assume.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .rope import apply_rope

# bf16 training on the CPU computes attention in fp32 (SDPA's flash kernel on fp32 copies, the result cast back)
# for sequences shorter than 192 tokens and for heads of 32 channels or fewer: there torch's CPU bf16 flash
# backward takes longer than the fp32 kernel's forward and backward with the casts, and longer than the math
# kernel too. Autocast is paused for it, since it would cast the copies back to bf16. Longer sequences of
# wider heads (S and B: 64) keep bf16 flash, the faster one there, as do fp32 models, every pass without
# gradients and GPUs (bench/model/attention.py measures all three side by side).
CPU_BF16_FP32_BELOW_TOKENS = 192
CPU_BF16_FP32_UP_TO_HEAD_DIM = 32


def computes_in_fp32(q: torch.Tensor) -> bool:
    """Whether `attention` computes these bf16 (B, heads, L, head_dim) queries' attention in fp32 (see above)."""
    short_or_narrow = q.shape[-2] < CPU_BF16_FP32_BELOW_TOKENS or q.shape[-1] <= CPU_BF16_FP32_UP_TO_HEAD_DIM
    return q.device.type == "cpu" and q.dtype == torch.bfloat16 and q.requires_grad and short_or_narrow


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Softmax attention of (B, heads, L, head_dim) queries, keys and values, computed as chosen above."""
    if computes_in_fp32(q):
        with torch.autocast("cpu", enabled=False):
            return F.scaled_dot_product_attention(q.float(), k.float(), v.float()).to(q.dtype)
    return F.scaled_dot_product_attention(q, k, v)


class LayerNorm(nn.Module):
    """LayerNorm computed in fp32 (bf16 variance is too coarse), cast back to the input dtype."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x.float(), x.shape[-1:], self.weight.float(), self.bias.float(), self.eps).type_as(x)


class RMSNorm(nn.Module):
    """RMSNorm computed in fp32, cast back to the input dtype."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return (x32 * self.weight.float()).type_as(x)


def make_norm(kind: str, dim: int, eps: float) -> nn.Module:
    return LayerNorm(dim, eps) if kind == "layernorm" else RMSNorm(dim, eps)


class SwiGLU(nn.Module):
    """Gated MLP: w2(silu(w1 x) * w3 x)."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.w1 = nn.Linear(dim, hidden, bias=False)
        self.w3 = nn.Linear(dim, hidden, bias=False)
        self.w2 = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class Attention(nn.Module):
    """Multi-head self-attention over all tokens, with 3D RoPE on queries and keys."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.proj = nn.Linear(dim, dim, bias=False)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        B, L, D = x.shape
        qkv = self.qkv(x).view(B, L, 3, self.heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, heads, L, head_dim)
        q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        out = attention(q, k, v)  # (B, heads, L, head_dim)
        return self.proj(out.transpose(1, 2).reshape(B, L, D))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, dim: int, heads: int, mlp_hidden: int, norm: str, eps: float):
        super().__init__()
        self.norm1 = make_norm(norm, dim, eps)
        self.attn = Attention(dim, heads)
        self.norm2 = make_norm(norm, dim, eps)
        self.mlp = SwiGLU(dim, mlp_hidden)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), rope)
        return x + self.mlp(self.norm2(x))
