"""`vitok.layers.attention`: the kernel it picks on the CPU (math for short bf16 training sequences, SDPA's own
choice otherwise) gives the same attention and gradients as SDPA within bf16's rounding."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from vitok.layers import CPU_BF16_MATH_BELOW, attention


def outputs_and_grads(fn, q, k, v):
    q, k, v = (t.detach().clone().requires_grad_() for t in (q, k, v))
    out = fn(q, k, v)
    out.float().square().sum().backward()
    return [out, q.grad, k.grad, v.grad]


def sdpa_with(kernel):
    def run(q, k, v):
        with sdpa_kernel(kernel):
            return F.scaled_dot_product_attention(q, k, v)
    return run


@pytest.mark.parametrize("length, kernel", [(CPU_BF16_MATH_BELOW - 1, SDPBackend.MATH),
                                            (CPU_BF16_MATH_BELOW, SDPBackend.FLASH_ATTENTION)])  # fmt: skip
def test_bf16_training_picks_math_below_the_threshold_and_flash_from_it(length, kernel):
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 4, length, 32, dtype=torch.bfloat16) for _ in range(3))
    picked = outputs_and_grads(attention, q, k, v)
    for got, expected in zip(picked, outputs_and_grads(sdpa_with(kernel), q, k, v)):
        torch.testing.assert_close(got, expected, rtol=0, atol=0)
    reference = outputs_and_grads(sdpa_with(SDPBackend.MATH), q.float(), k.float(), v.float())
    for got, expected in zip(picked, reference):
        torch.testing.assert_close(got.float(), expected, rtol=2e-2, atol=2e-2)


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
