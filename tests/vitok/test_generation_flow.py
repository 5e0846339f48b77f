"""Flow matching: the path and its velocity, the loss's target agrees with the samplers' direction (an exact
Gaussian flow), Euler and Heun integrate known flows with their expected errors, label dropout, sampler calls."""

import math

import pytest
import torch
from torch import nn

from vitok.generation import euler, flow_matching_loss, heun, interpolate, sample, velocity_target
from vitok.generation.flow import drop_labels, time_grid


def test_path_endpoints_and_velocity_is_its_time_derivative():
    torch.manual_seed(0)
    x0, noise = torch.randn(3, 1, 2, 2, 4, dtype=torch.float64), torch.randn(3, 1, 2, 2, 4, dtype=torch.float64)
    torch.testing.assert_close(interpolate(x0, noise, torch.zeros(3, dtype=torch.float64)), x0)
    torch.testing.assert_close(interpolate(x0, noise, torch.ones(3, dtype=torch.float64)), noise)
    t, h = torch.tensor([0.1, 0.5, 0.8], dtype=torch.float64), 1e-6
    derivative = (interpolate(x0, noise, t + h) - interpolate(x0, noise, t - h)) / (2 * h)
    torch.testing.assert_close(derivative, velocity_target(x0, noise))


def test_time_grid_runs_from_noise_to_data():
    assert time_grid(4).tolist() == [1.0, 0.75, 0.5, 0.25, 0.0]
    with pytest.raises(ValueError):
        time_grid(0)


@pytest.mark.parametrize("integrator", [euler, heun])
@pytest.mark.parametrize("steps", [1, 7])
def test_constant_velocity_is_integrated_exactly(integrator, steps):
    x1, c = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    # dx/dt = c from t = 1 to t = 0: x(0) = x(1) - c
    torch.testing.assert_close(integrator(lambda x, t: c, x1, steps), x1 - c)


@pytest.mark.parametrize("steps", [1, 3, 10])
def test_time_affine_velocity_heun_exact_euler_off_by_known_amount(steps):
    a, b = torch.tensor([0.7, -1.2], dtype=torch.float64), torch.tensor([2.0, 0.5], dtype=torch.float64)
    x1 = torch.zeros(5, 2, dtype=torch.float64)
    velocity = lambda x, t: a + b * t[:, None]  # noqa: E731
    exact = x1 - a - b / 2  # x(0) = x(1) - integral_0^1 (a + b t) dt
    torch.testing.assert_close(heun(velocity, x1, steps), exact)
    # Euler takes each step's slope at its start (the larger t), overshooting the b-part by b / (2 * steps).
    torch.testing.assert_close(euler(velocity, x1, steps), exact - b / (2 * steps))


def test_convergence_orders_on_a_state_dependent_flow():
    x1 = torch.tensor([[1.0, -2.0, 0.5]], dtype=torch.float64)
    exact = x1 * math.exp(-1.0)  # dx/dt = x from t = 1 down to 0

    def error(integrator, steps):
        return (integrator(lambda x, t: x, x1, steps) - exact).abs().max().item()

    euler_ratio = error(euler, 16) / error(euler, 32)
    heun_ratio = error(heun, 16) / error(heun, 32)
    assert 1.8 < euler_ratio < 2.2, euler_ratio  # first order
    assert 3.6 < heun_ratio < 4.4, heun_ratio  # second order
    assert error(heun, 8) < error(euler, 16) / 5  # at equal model calls, Heun is far closer


class GaussianOptimum(nn.Module):
    """The exact minimiser of the flow-matching loss when each latent value is i.i.d. N(mu, s^2):
    E[noise - x0 | x_t] = -mu + (t - (1 - t) s^2) / ((1 - t)^2 s^2 + t^2) * (x_t - (1 - t) mu)."""

    def __init__(self, mu: float, s: float, bias: float = 0.0):
        super().__init__()
        self.mu, self.s, self.bias = mu, s, bias

    def forward(self, x, t, y=None):
        t = t.to(x.dtype).reshape(-1, *([1] * (x.ndim - 1)))
        gain = (t - (1 - t) * self.s**2) / ((1 - t) ** 2 * self.s**2 + t**2)
        return -self.mu + gain * (x - (1 - t) * self.mu) + self.bias


@pytest.mark.parametrize("method,steps", [("euler", 200), ("heun", 20)])
def test_samplers_recover_the_data_distribution_from_the_exact_velocity(method, steps):
    """The loss's target and the samplers' direction of time agree: integrating the loss's exact minimiser
    from noise at t = 1 lands on the data distribution at t = 0."""
    mu, s = 1.5, 0.3
    noise = torch.randn(4096, 1, 2, 2, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    samples = sample(GaussianOptimum(mu, s), noise, steps=steps, method=method)
    assert abs(samples.mean().item() - mu) < 0.02
    assert abs(samples.std().item() - s) < 0.02


def test_loss_is_minimised_by_the_exact_velocity():
    """For any model, E[loss] = E[loss of the optimum] + E||model - optimum||^2; a constant offset d adds d^2."""
    mu, s, d = 1.5, 0.3, 0.4
    x0 = mu + s * torch.randn(2048, 1, 2, 2, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    losses = {}
    for bias in (0.0, d):
        generator = torch.Generator().manual_seed(2)  # the same noise and times for both models
        losses[bias] = flow_matching_loss(GaussianOptimum(mu, s, bias), x0, generator=generator).item()
    assert abs(losses[d] - losses[0.0] - d**2) < 0.1 * d**2, losses


class CountingModel(nn.Module):
    """Zero velocity; counts its calls."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x, t, y=None):
        self.calls += 1
        return torch.zeros_like(x)


def test_label_dropout_needs_the_null_class():
    x0, y = torch.randn(2, 1, 2, 2, 4), torch.tensor([0, 1])
    with pytest.raises(ValueError, match="null class"):
        flow_matching_loss(CountingModel(), x0, y)
    model = CountingModel()
    flow_matching_loss(model, x0, y, class_dropout=0.0)  # no dropout, no null class needed
    assert model.calls == 1


def test_drop_labels():
    y = torch.arange(1000) % 7
    g = torch.Generator().manual_seed(0)
    assert torch.equal(drop_labels(y, 7, 0.0, g), y)
    assert (drop_labels(y, 7, 1.0, g) == 7).all()
    dropped = drop_labels(y, 7, 0.1, g)
    kept = dropped != 7
    assert torch.equal(dropped[kept], y[kept])
    assert 0.07 < (~kept).float().mean().item() < 0.13


def test_model_calls_per_sampler():
    for method, steps, calls in (("euler", 5, 5), ("heun", 5, 10)):
        model = CountingModel()
        sample(model, torch.randn(2, 1, 2, 2, 4), steps=steps, method=method)
        assert model.calls == calls
    with pytest.raises(ValueError, match="sampler"):
        sample(CountingModel(), torch.randn(2, 1, 2, 2, 4), method="dopri")
