"""DRAW (Gregor et al. 2015): an image generated one piece at a time, each step adding to a canvas from what was
drawn before, in a sequential variational auto-encoder.

    step t    x̂ = x − σ(c_{t−1})                                   the error image
              r_t = read(x, x̂, h^dec_{t−1})                        the whole images, or glimpses through filterbanks
              h^enc_t = RNN^enc([r_t; h^dec_{t−1}], h^enc_{t−1})
              z_t ~ Q(z | h^enc_t) = N(μ_t, σ_t²)                   μ_t = W_μ h^enc_t, log σ_t = W_σ h^enc_t
              h^dec_t = RNN^dec(z_t, h^dec_{t−1})
              c_t = c_{t−1} + write(h^dec_t)                       the whole canvas, or a patch through filterbanks
    loss      L^x = −log D(x | σ(c_T)) (Bernoulli),  L^z = Σ_t KL(N(μ_t, σ_t²) ‖ N(0, I))
              L = L^x + L^z ≥ −log p(x)                           the variational bound, in nats

With attention the read and write go through N × N grids of Gaussian filters (the paper's eq. 19-25): a grid
centred at (g_X, g_Y), stride δ, filters of variance σ², intensity γ, all five from h^dec by one linear map:

    F_X[i, a] ∝ exp(−(a − μ^i_X)² / 2σ²),   μ^i_X = g_X + (i − N/2 − 0.5) δ      (each row normalised to sum 1)
    read(x, x̂) = γ [F_Y x F_Xᵀ, F_Y x̂ F_Xᵀ],   write(h) = (1/γ̂) F̂_Yᵀ w F̂_X,   w = W_w h^dec
"""

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.models.core import make_cell, reset_weights


class Window(NamedTuple):
    """One grid of filters per image (each (B,)), in pixels: where it is, how far apart, how wide, how bright."""

    g_x: Tensor
    g_y: Tensor
    delta: Tensor
    sigma2: Tensor
    gamma: Tensor


def window_from(parameters: Tensor, height: int, width: int, N: int) -> Window:
    """The paper's eq. 21-24: (g̃_X, g̃_Y, log σ², log δ̃, log γ) (B, 5) -> a Window in pixel units."""
    g_x, g_y, log_sigma2, log_delta, log_gamma = parameters.unbind(-1)  # each (B,)
    return Window(
        (width + 1) / 2 * (g_x + 1),
        (height + 1) / 2 * (g_y + 1),
        (max(height, width) - 1) / (N - 1) * log_delta.exp() if N > 1 else log_delta.exp(),
        log_sigma2.exp(),
        log_gamma.exp(),
    )


def filterbank(centre: Tensor, delta: Tensor, sigma2: Tensor, N: int, size: int) -> Tensor:
    """F (B, N, size): N Gaussian filters over `size` pixels, filter i centred at centre + (i − N/2 − 0.5)·δ
    (i = 1 … N), each row normalised to sum 1 (pixels are 0-based here, the paper's a = 1 … A shifted by one)."""
    i = torch.arange(1, N + 1, device=centre.device, dtype=centre.dtype)  # (N,)
    mu = centre[:, None] + (i - N / 2 - 0.5) * delta[:, None] - 1  # (B, N): 0-based pixel positions
    a = torch.arange(size, device=centre.device, dtype=centre.dtype)  # (size,)
    F_ = torch.exp(-((a[None, None] - mu[:, :, None]) ** 2) / (2 * sigma2[:, None, None]))  # (B, N, size)
    return F_ / F_.sum(-1, keepdim=True).clamp_min(1e-8)


def filterbanks(window: Window, N: int, height: int, width: int) -> tuple[Tensor, Tensor]:
    return filterbank(window.g_x, window.delta, window.sigma2, N, width), filterbank(
        window.g_y, window.delta, window.sigma2, N, height
    )


def read_glimpse(images: Tensor, F_x: Tensor, F_y: Tensor, gamma: Tensor) -> Tensor:
    """γ F_Y x F_Xᵀ: images (B, Y, X), F_x (B, N, X), F_y (B, N, Y) -> (B, N, N)."""
    return gamma[:, None, None] * F_y @ images @ F_x.transpose(1, 2)


def write_patch(patch: Tensor, F_x: Tensor, F_y: Tensor, gamma: Tensor) -> Tensor:
    """(1/γ) F_Yᵀ w F_X: patch w (B, N, N) -> (B, Y, X)."""
    return F_y.transpose(1, 2) @ patch @ F_x / gamma[:, None, None]


def gaussian_kl(mu: Tensor, log_sigma: Tensor) -> Tensor:
    """KL(N(μ, σ²) ‖ N(0, I)) = ½ Σ (μ² + σ² − 2 log σ − 1), summed over the last axis: (B,)."""
    return 0.5 * (mu**2 + torch.exp(2 * log_sigma) - 2 * log_sigma - 1).sum(-1)


class Drawn(NamedTuple):
    reconstruction: Tensor  # (B,) nats: L^x, −log D(x | σ(c_T)), per image
    kl: Tensor  # (B, T) nats: KL of each step's z
    canvases: Tensor  # (B, T, Y, X): c_t, logits
    windows: list  # T write Windows (empty without attention)


class DRAW(nn.Module):
    """forward(images (B, Y, X) in {0, 1}) -> Drawn; sample(count) -> canvases from the prior."""

    def __init__(self, config, height: int, width: int):
        super().__init__()
        self.config, self.height, self.width = config, height, width
        H, Z, N = config.hidden_size, config.z_size, config.read_size
        self.attention = config.attention
        read_size = 2 * N * N if self.attention else 2 * height * width
        write_size = config.write_size**2 if self.attention else height * width
        self.encoder = make_cell(config, read_size + H)  # RNN^enc
        self.decoder = make_cell(config, Z)  # RNN^dec
        self.to_mu, self.to_log_sigma = nn.Linear(H, Z), nn.Linear(H, Z)  # W_μ, W_σ
        self.write = nn.Linear(H, write_size)  # W_w
        self.read_window, self.write_window = (nn.Linear(H, 5), nn.Linear(H, 5)) if self.attention else (None, None)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Every weight from `generator` alone (rnnkit.models.core.reset_weights)."""
        reset_weights(self, generator)

    def read(self, x: Tensor, error: Tensor, h_dec: Tensor) -> Tensor:
        """r_t (B, ·): both images whole, or each through the read window's N × N filters."""
        if not self.attention:
            return torch.cat([x.flatten(1), error.flatten(1)], dim=-1)  # (B, 2·Y·X)
        window = window_from(self.read_window(h_dec), self.height, self.width, self.config.read_size)
        F_x, F_y = filterbanks(window, self.config.read_size, self.height, self.width)
        return torch.cat(
            [
                read_glimpse(x, F_x, F_y, window.gamma).flatten(1),
                read_glimpse(error, F_x, F_y, window.gamma).flatten(1),
            ],
            -1,
        )

    def written(self, h_dec: Tensor) -> tuple[Tensor, Window | None]:
        """write(h^dec_t) (B, Y, X), and its window."""
        w = self.write(h_dec)  # (B, ·)
        if not self.attention:
            return w.view(-1, self.height, self.width), None
        N = self.config.write_size
        window = window_from(self.write_window(h_dec), self.height, self.width, N)
        F_x, F_y = filterbanks(window, N, self.height, self.width)
        return write_patch(w.view(-1, N, N), F_x, F_y, window.gamma), window

    def forward(self, images: Tensor) -> Drawn:
        B = images.shape[0]
        x = images.float()  # (B, Y, X) in {0, 1}
        canvas = x.new_zeros(x.shape)  # c_0 (logits)
        enc, dec = self.encoder.init_state(B), self.decoder.init_state(B)
        kls, canvases, windows = [], [], []
        for _ in range(self.config.steps):
            error = x - torch.sigmoid(canvas)  # x̂ (B, Y, X)
            r = self.read(x, error, dec.h)
            enc = self.encoder.step(self.encoder.project(torch.cat([r, dec.h], dim=-1)), enc)
            mu, log_sigma = self.to_mu(enc.h), self.to_log_sigma(enc.h)  # (B, Z) each
            z = (
                mu + torch.exp(log_sigma) * torch.randn_like(mu)
                if self.training or not self.config.mean_in_eval
                else mu
            )
            dec = self.decoder.step(self.decoder.project(z), dec)
            update, window = self.written(dec.h)
            canvas = canvas + update  # (B, Y, X)
            kls.append(gaussian_kl(mu, log_sigma))
            canvases.append(canvas)
            windows.append(window) if window is not None else None
        reconstruction = F.binary_cross_entropy_with_logits(canvas, x, reduction="none").flatten(1).sum(-1)  # (B,)
        return Drawn(reconstruction, torch.stack(kls, 1), torch.stack(canvases, 1), windows)

    @torch.no_grad()
    def sample(self, count: int, generator: torch.Generator | None = None) -> Drawn:
        """count images from the prior: z_t ~ N(0, I), the decoder alone; canvases (count, T, Y, X) are logits."""
        device = self.write.weight.device
        dec = self.decoder.init_state(count)
        canvas = torch.zeros(count, self.height, self.width, device=device)
        canvases, windows = [], []
        for _ in range(self.config.steps):
            z = torch.randn(count, self.config.z_size, generator=generator).to(device)
            dec = self.decoder.step(self.decoder.project(z), dec)
            update, window = self.written(dec.h)
            canvas = canvas + update
            canvases.append(canvas)
            windows.append(window) if window is not None else None
        zeros = torch.zeros(count, device=device)
        return Drawn(zeros, zeros[:, None], torch.stack(canvases, 1), windows)


def nats_bound(drawn: Drawn) -> Tensor:
    """L = L^x + L^z per image (B,): the variational bound on −log p(x), in nats."""
    return drawn.reconstruction + drawn.kl.sum(1)
