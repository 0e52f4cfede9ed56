"""The recurrent attention model (Mnih et al. 2014): an image classified from a few glimpses, each placed by what
the earlier ones saw (the notes' sequential processing of non-sequential data).

    glimpse t   ρ(x, l_{t-1}): k patches centred at l_{t-1}, of g·2^i pixels (i < k), each shrunk to g × g
    network     g_t = ReLU(W_g h_g + W_l h_l),  h_g = ReLU(L_g ρ),  h_l = ReLU(L_l l_{t-1})
    core        h_t = cell(g_t, h_{t-1})                                  any rnnkit cell
    location    l_t ~ N(μ_t, σ²), μ_t = tanh(W_μ h_t)                     clamped to [−1, 1]²
    baseline    b_t = W_b h_t                                             learned, the REINFORCE baseline
    class       p(y | x) = softmax(W_y h_T)

Locations are in [−1, 1]², (−1, −1) the top-left corner, (0, 0) the centre. The classifier and the core learn
by backpropagation; the location network by REINFORCE, reward R = 1 when the class is right:

    ∇ ≈ Σ_t (R − b_t) ∇ log N(l_t; μ_t, σ²)       b_t trained to predict R (its squared error)

With `location="differentiable"` the glimpses are read by bilinear sampling at l_t = μ_t (no noise) and the
classification loss's gradient reaches the locations directly, as a spatial transformer's would.
"""

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.models.core import make_cell, reset_weights


def pixel_centre(locations: Tensor, sizes: Tensor) -> Tensor:
    """Locations (B, 2) as (y, x) in [−1, 1] -> pixel coordinates of the centre, in [0, Y] × [0, X]
    (sizes (2,)): (B, 2)."""
    return (locations.clamp(-1, 1) + 1) * sizes / 2


def glimpse_sensor(images: Tensor, locations: Tensor, patch: int, scales: int) -> Tensor:
    """images (B, Y, X), locations (B, 2) -> (B, k, g, g): at scale i the square of g·2^i pixels whose centre is
    nearest the location, average-pooled by 2^i. Pixels outside the image read as 0 (a glimpse at an edge is
    padded, never refused)."""
    B, Y, X = images.shape
    largest = patch * 2 ** (scales - 1)
    padded = F.pad(images.float(), (largest, largest, largest, largest))  # (B, Y + 2p, X + 2p)
    centre = pixel_centre(locations, torch.tensor([Y, X], device=images.device))  # (B, 2)
    rows_of = torch.arange(B, device=images.device)[:, None, None]  # (B, 1, 1)
    out = []
    for i in range(scales):
        side = patch * 2**i
        top_left = torch.round(centre - side / 2).long() + largest  # (B, 2), in padded coordinates
        steps = torch.arange(side, device=images.device)
        rows = top_left[:, 0, None] + steps  # (B, side)
        cols = top_left[:, 1, None] + steps  # (B, side)
        crop = padded[rows_of, rows[:, :, None], cols[:, None, :]]  # (B, side, side)
        out.append(F.avg_pool2d(crop[:, None], 2**i)[:, 0] if i else crop)  # (B, g, g)
    return torch.stack(out, dim=1)  # (B, k, g, g)


def sampled_sensor(images: Tensor, locations: Tensor, patch: int, scales: int) -> Tensor:
    """glimpse_sensor read by bilinear sampling (differentiable in the locations): (B, k, g, g)."""
    B, Y, X = images.shape
    out = []
    for i in range(scales):
        side = patch * 2**i
        theta = torch.zeros(B, 2, 3, device=images.device, dtype=torch.float32)
        theta[:, 0, 0], theta[:, 1, 1] = side / X, side / Y  # a window of side pixels
        theta[:, 0, 2], theta[:, 1, 2] = locations[:, 1], locations[:, 0]  # centred at (x, y)
        grid = F.affine_grid(theta, (B, 1, patch, patch), align_corners=False)  # (B, g, g, 2)
        out.append(
            F.grid_sample(images.float()[:, None], grid, align_corners=False, padding_mode="zeros")[:, 0]
        )  # (B, g, g)
    return torch.stack(out, dim=1)  # (B, k, g, g)


def gaussian_log_prob(sample: Tensor, mean: Tensor, std: float) -> Tensor:
    """log N(sample; mean, std² I) summed over the last axis: (B,)."""
    return (-((sample - mean) ** 2) / (2 * std**2) - torch.log(torch.tensor(std * (2 * torch.pi) ** 0.5))).sum(-1)


def reinforce_loss(log_probs: Tensor, rewards: Tensor, baselines: Tensor) -> Tensor:
    """−Σ_t (R − b_t) log π(l_t), averaged over the batch: its gradient is REINFORCE's estimate of −∇E[R].
    log_probs, baselines (B, T), rewards (B,); the advantage carries no gradient."""
    advantage = (rewards[:, None] - baselines).detach()  # (B, T)
    return -(advantage * log_probs).sum(1).mean()


class Glimpses(NamedTuple):
    logits: Tensor  # (B, K)
    locations: Tensor  # (B, T, 2): where each glimpse looked, l_0 first
    log_probs: Tensor  # (B, T): log π(l_t) of the sampled locations (zeros when they were not sampled)
    baselines: Tensor  # (B, T): b_t, the reward each step expects


class RecurrentAttention(nn.Module):
    """forward(images (B, Y, X)) -> Glimpses; T = config.glimpses."""

    def __init__(self, config, classes: int, height: int, width: int):
        super().__init__()
        self.config, self.height, self.width = config, height, width
        g, k, H = config.patch, config.scales, config.hidden_size
        self.what = nn.Linear(k * g * g, config.glimpse_size)  # L_g
        self.where = nn.Linear(2, config.glimpse_size)  # L_l
        self.combine_what, self.combine_where = (
            nn.Linear(config.glimpse_size, H),
            nn.Linear(config.glimpse_size, H),
        )  # W_g, W_l
        self.cell = make_cell(config, H)
        self.locate = nn.Linear(H, 2)  # W_μ
        self.baseline = nn.Linear(H, 1)  # W_b
        self.classify = nn.Linear(H, classes)  # W_y

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Every weight from `generator` alone (rnnkit.models.core.reset_weights)."""
        reset_weights(self, generator)

    def glimpse(self, images: Tensor, location: Tensor) -> Tensor:
        """g_t from the glimpse at `location` (B, 2): (B, H)."""
        sensor = sampled_sensor if self.config.location == "differentiable" else glimpse_sensor
        patches = sensor(images, location, self.config.patch, self.config.scales)  # (B, k, g, g)
        h_g = F.relu(self.what(patches.flatten(1)))  # (B, G)
        h_l = F.relu(self.where(location))  # (B, G)
        return F.relu(self.combine_what(h_g) + self.combine_where(h_l))  # (B, H)

    def forward(self, images: Tensor, first: Tensor | None = None) -> Glimpses:
        B = images.shape[0]
        x = images.float() / 255.0  # (B, Y, X) in [0, 1]
        location = torch.zeros(B, 2, device=images.device) if first is None else first  # l_0: the centre (or given)
        state = self.cell.init_state(B)
        state = type(state)(*(s.to(images.device) for s in state))
        locations, log_probs, baselines = [], [], []
        for t in range(self.config.glimpses):
            locations.append(location)
            state = self.cell.step(self.cell.project(self.glimpse(x, location)), state)
            h = state.h  # (B, H)
            baselines.append(self.baseline(h.detach()).squeeze(-1))  # (B,): the baseline learns from its own loss alone
            if t + 1 == self.config.glimpses:
                break
            if self.config.location == "differentiable":
                location = torch.tanh(self.locate(h))  # (B, 2)
                log_probs.append(torch.zeros(B, device=images.device))
            else:
                mean = torch.tanh(self.locate(h.detach()))  # (B, 2): μ_t, trained by REINFORCE only
                sample = (
                    (mean + self.config.location_std * torch.randn_like(mean)).detach()
                    if self.training
                    else mean.detach()
                )
                location = sample.clamp(-1, 1)
                log_probs.append(gaussian_log_prob(sample, mean, self.config.location_std))  # (B,)
        log_probs.append(torch.zeros(B, device=images.device))  # the last glimpse places nothing after it
        return Glimpses(
            self.classify(state.h), torch.stack(locations, 1), torch.stack(log_probs, 1), torch.stack(baselines, 1)
        )
