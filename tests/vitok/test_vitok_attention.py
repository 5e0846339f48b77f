"""`vitok.layers.attention`: the route it takes on the CPU (fp32 for short or narrow-headed bf16 training
sequences, bf16 flash otherwise) gives the same attention and gradients as SDPA within bf16's rounding."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vitok.layers import CPU_BF16_FP32_BELOW_TOKENS, CPU_BF16_FP32_UP_TO_HEAD_DIM, attention


def outputs_and_grads(fn, q, k, v):
    q, k, v = (t.detach().clone().requires_grad_() for t in (q, k, v))
    out = fn(q, k, v)
    out.float().square().sum().backward()
    return [out, q.grad, k.grad, v.grad]


def in_fp32(q, k, v):
    return F.scaled_dot_product_attention(q.float(), k.float(), v.float()).to(q.dtype)


WIDE = CPU_BF16_FP32_UP_TO_HEAD_DIM * 2


@pytest.mark.parametrize("length, head_dim, route", [
    (CPU_BF16_FP32_BELOW_TOKENS - 1, WIDE, in_fp32),
    (CPU_BF16_FP32_BELOW_TOKENS, CPU_BF16_FP32_UP_TO_HEAD_DIM, in_fp32),
    (CPU_BF16_FP32_BELOW_TOKENS, WIDE, F.scaled_dot_product_attention),
])  # fmt: skip
def test_bf16_training_takes_fp32_when_short_or_narrow_and_bf16_flash_otherwise(length, head_dim, route):
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 2, length, head_dim, dtype=torch.bfloat16) for _ in range(3))
    picked = outputs_and_grads(attention, q, k, v)
    for got, expected in zip(picked, outputs_and_grads(route, q, k, v)):
        assert got.dtype == torch.bfloat16
        torch.testing.assert_close(got, expected, rtol=0, atol=0)
    reference = outputs_and_grads(F.scaled_dot_product_attention, q.float(), k.float(), v.float())
    for got, expected in zip(picked, reference):
        torch.testing.assert_close(got.float(), expected, rtol=2e-2, atol=2e-2)


def test_fp32_route_holds_under_autocast():
    """The plain bf16 loop runs the model under autocast, which would cast the fp32 copies back to bf16."""
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 2, 64, 32, dtype=torch.bfloat16) for _ in range(3))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under_autocast = outputs_and_grads(attention, q, k, v)
    for got, expected in zip(under_autocast, outputs_and_grads(in_fp32, q, k, v)):
        torch.testing.assert_close(got, expected, rtol=0, atol=0)


def test_without_gradients_or_in_fp32_sdpa_chooses():
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 4, 64, 32) for _ in range(3))
    with torch.no_grad():
        torch.testing.assert_close(attention(q.bfloat16(), k.bfloat16(), v.bfloat16()),
                                   F.scaled_dot_product_attention(q.bfloat16(), k.bfloat16(), v.bfloat16()),
                                   rtol=0, atol=0)  # fmt: skip
    for got, expected in zip(outputs_and_grads(attention, q, k, v),
                             outputs_and_grads(F.scaled_dot_product_attention, q, k, v)):  # fmt: skip
        torch.testing.assert_close(got, expected, rtol=0, atol=0)
