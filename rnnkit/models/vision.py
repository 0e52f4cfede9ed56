"""The small CNN that turns an image into what an RNN reads: the captioner's v and its map, each video
frame's features."""

import torch
from torch import Tensor, nn


class ImageEncoder(nn.Module):
    """A small CNN: (B, Y, X) uint8 or float in [0, 255] -> v (B, F), and its map (B, P, C_m) of P locations.
    Three strided convolutions keep a coarse map of where things are (the captions say "left of"), then one
    linear layer; two more input planes hold each pixel's x and y in [−1, 1] (CoordConv, Liu et al. 2018), so
    every location of the map also says where it is. One location of the map sees 17 pixels across; each of
    `context_layers` 3×3 convolutions at the map's resolution widens that by 16, so that attention over the map
    can find a whole digit at one place."""

    def __init__(self, size: int, features: int, channels: int = 32, context_layers: int = 0):
        super().__init__()
        self.map_size = 2 * channels  # C_m
        wide = [
            layer
            for _ in range(context_layers)  # at the map's resolution: each widens a location's view by 2 × 8 pixels
            for layer in (nn.Conv2d(2 * channels, 2 * channels, 3, padding=1), nn.GroupNorm(4, 2 * channels), nn.ReLU())
        ]
        self.layers = (
            nn.Sequential(  # group norm: batch-independent, so training and evaluation (and ranks) see the same CNN
                nn.Conv2d(3, channels, 5, stride=2, padding=2),
                nn.GroupNorm(4, channels),
                nn.ReLU(),
                nn.Conv2d(channels, 2 * channels, 3, stride=2, padding=1),
                nn.GroupNorm(4, 2 * channels),
                nn.ReLU(),
                nn.Conv2d(2 * channels, 2 * channels, 3, stride=2, padding=1),
                nn.GroupNorm(4, 2 * channels),
                nn.ReLU(),
                *wide,
            )
        )
        cells = -(-size // 8)  # the map's side after three halvings
        self.out = nn.Linear(2 * channels * cells * cells, features)
        self.norm = nn.LayerNorm(
            features
        )  # v of unit scale: a large v would saturate tanh at t = 0 and cut every gradient to the CNN

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        B, Y, X = images.shape
        x = images.float()[:, None]  # (B, 1, Y, X)
        x = (x - x.mean((2, 3), keepdim=True)) / (
            x.std((2, 3), keepdim=True) + 1.0
        )  # each image standardised: mostly-black canvases still speak
        ys, xs = torch.meshgrid(
            torch.linspace(-1, 1, Y, device=x.device), torch.linspace(-1, 1, X, device=x.device), indexing="ij"
        )
        x = torch.cat([x, xs.expand(B, 1, Y, X), ys.expand(B, 1, Y, X)], dim=1)  # (B, 3, Y, X)
        grid = self.layers(x)  # (B, C_m, Y', X')
        return self.norm(self.out(grid.flatten(1))), grid.flatten(2).transpose(1, 2)  # (B, F), (B, P, C_m)


class FeatureEncoder(nn.Module):
    """Precomputed features (B, F_in) of any pretrained vision model -> v (B, F): normalised, projected,
    normalised again (v of unit scale, as the CNN's), and no map."""

    def __init__(self, inputs: int, features: int):
        super().__init__()
        self.inputs = inputs
        self.project = nn.Sequential(nn.LayerNorm(inputs), nn.Linear(inputs, features), nn.LayerNorm(features))

    def forward(self, vectors: Tensor) -> tuple[Tensor, None]:
        return self.project(vectors.float()), None  # (B, F)
