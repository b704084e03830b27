"""Scan-specific implicit neural representations of a complex cine and their fitting.

A representation maps normalised coordinates to a complex value: (t, y, x) in
[-1, 1]^3, or (c, t, y, x) when the temporal-TV weight is a coordinate too
(c = log10(lambda) rescaled from ``log_lambda_range`` to [-1, 1]). Time t in [-1, 1)
is one cardiac cycle: t = 2 k / T - 1 for frame k. Output: (real, imaginary).

Registry (``build(name, shape, **kw)``):

* ``"lowrank"`` (the CPU default): f(t, y, x) = sum_k S_k(y, x) T_k(t). S_k are complex
  multi-resolution feature grids (bilinear, full, 1/2 and 1/4 resolution, summed);
  T_k are periodic Fourier series in t. A partially separable (low-rank space x time)
  model with continuous coordinates: a query at any t or (y, x) interpolates.
* ``"lowrank-lambda"``: the same with lambda as a coordinate. The finest grid and the
  temporal coefficients also live on a coarse grid along log10(lambda) (anchors, linear
  interpolation between neighbours); coarse grids are shared by every lambda.
* ``"hashgrid"``: a neural field, Instant-NGP style: a multi-resolution grid encoding of
  (t, y, x) (dense coarse levels, hashed fine levels, periodic in t) and a small ReLU MLP
  with complex output, added to a static image (``init``, a learnt parameter: the fits start
  it at the zero-filled cine's temporal mean) when one is given (``HashGridINR``).
* ``"hashgrid-lambda"``: the neural field with log10(lambda) as an input of its MLP (beside
  a static spatial encoding and the gated spatio-temporal one; ``ConditionalHashGridINR``).
* ``"siren"``: the original's sine MLP (omega_0 = 30, 256 wide, 16 hidden layers, last
  layer linear), optionally with lambda as a fourth input (``in_features=4``).

Every fit can refine estimated coil maps jointly with the image (``fit``'s ``map_grid``,
``CoilMapRefinement``); ``map_grid_for(acq)`` turns it on when the maps are estimates.
"""
from .core import FUSED_ADAM, REPRESENTATIONS, build, frame_times, lambda_coordinate, register
from .lowrank import LowRankINR, grid_sample_2d
from .hashgrid import ConditionalHashGridINR, GridEncoding, HashGridINR
from .siren import SineLayer, Siren
from .coil_refinement import CoilMapRefinement
from .fitting import (FitResult, FitSettings, check_map_grid, default_map_grid, default_settings, fit, map_grid_for, objective,
                      reconstructor, render_numpy)

__all__ = ["FUSED_ADAM", "REPRESENTATIONS", "build", "frame_times", "lambda_coordinate", "register", "LowRankINR",
           "grid_sample_2d", "ConditionalHashGridINR", "GridEncoding", "HashGridINR", "SineLayer", "Siren",
           "CoilMapRefinement", "FitResult", "FitSettings", "check_map_grid", "default_map_grid", "default_settings", "fit",
           "map_grid_for", "objective", "reconstructor", "render_numpy"]
