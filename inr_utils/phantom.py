"""A numerical beating-heart phantom defined in continuous time.

Each subject (one per seed) is a short-axis slice: an elliptical body with a fat
rim and textured tissue, a left ventricle (blood pool + myocardium of conserved
area), a right-ventricular crescent, and lungs. The cardiac cycle is t in [0, 1):
``phantom(t, H, W)`` renders any times at any size, so ground truth exists at
every t (the LIIF experiments need this). Every edge is a smooth (logistic)
step one pixel wide at the rendered resolution, so nothing aliases.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def _half_cosine(u):
    """0 -> 1 smoothly on u in [0, 1], zero slope at both ends."""
    u = np.clip(u, 0.0, 1.0)
    return 0.5 - 0.5 * np.cos(np.pi * u)


def volume_curve(t, systole=0.35, rapid_fill=0.28, atrial_start=0.82, diastasis_gain=0.08, atrial_gain=0.17):
    """Normalised LV volume over one cycle: 1 = end-diastole, 0 = end-systole.

    Fast ejection over ``systole`` (fraction of the cycle), rapid filling, a slow
    diastasis, then the atrial kick. C^1-continuous and periodic in t.
    """
    t = np.mod(np.asarray(t, dtype=np.float64), 1.0)
    fill_end = systole + rapid_fill
    early = 1.0 - diastasis_gain - atrial_gain
    v = np.where(t < systole, 1.0 - _half_cosine(t / systole), 0.0)
    v = np.where((t >= systole) & (t < fill_end), early * _half_cosine((t - systole) / rapid_fill), v)
    v = np.where((t >= fill_end) & (t < atrial_start),
                 early + diastasis_gain * _half_cosine((t - fill_end) / (atrial_start - fill_end)), v)
    v = np.where(t >= atrial_start, early + diastasis_gain + atrial_gain * _half_cosine((t - atrial_start) / (1 - atrial_start)), v)
    return v


def _rotate(xx, yy, angle, cx=0.0, cy=0.0):
    xx, yy = xx - cx, yy - cy
    c, s = np.cos(angle), np.sin(angle)
    return c * xx + s * yy, -s * xx + c * yy


def _ellipse_sd(xx, yy, ax, ay):
    """Approximate signed distance of an ellipse (exact for circles); ax, ay may be arrays (one per frame)."""
    r = np.sqrt((xx / ax) ** 2 + (yy / ay) ** 2)
    return (r - 1.0) * np.minimum(ax, ay)


def _smooth_step(signed_distance, width):
    """1 inside (negative distance), 0 outside, logistic edge ``width`` wide."""
    return 1.0 / (1.0 + np.exp(np.clip(signed_distance / (0.25 * width), -50, 50)))


@dataclass
class BeatingHeartPhantom:
    """One random subject; call it with times t (any shape (T,)) and a size (H, W).

    Coordinates are in a field of view [-1, 1]^2. ``through_plane`` modulates the
    blood signal over the cycle (inflow-like intensity change).
    """

    seed: int = 0
    through_plane: bool = True
    params: dict = field(init=False)

    def __post_init__(self):
        rng = np.random.default_rng(self.seed)
        u = rng.uniform
        hr = u(55, 95)  # beats per minute
        systole_s = u(0.28, 0.34)  # ejection lasts ~0.3 s whatever the rate
        self.params = dict(
            heart_rate_bpm=hr,
            systole=float(np.clip(systole_s * hr / 60.0, 0.25, 0.5)),
            body_axes=(u(0.78, 0.9), u(0.62, 0.78)),  # (x, y) semi-axes
            body_rot=u(-0.2, 0.2),
            heart_center=(u(-0.15, 0.05), u(-0.1, 0.1)),
            heart_rot=u(-0.4, 0.4),
            lv_radius_ed=u(0.17, 0.22),
            ejection_fraction=u(0.5, 0.68),
            wall=u(0.06, 0.085),
            rv_offset=u(0.18, 0.24),
            rv_axes=(u(0.14, 0.19), u(0.2, 0.27)),
            lung_axes=(u(0.16, 0.22), u(0.3, 0.4)),
            intensities=dict(blood=u(0.85, 1.0), myo=u(0.25, 0.35), tissue=u(0.4, 0.55),
                             fat=u(0.7, 0.85), lung=u(0.03, 0.08), rv_blood=u(0.75, 0.9)),
            texture_waves=rng.normal(size=(24, 4)),  # (kx, ky, phase, amplitude) per wave
        )

    def lv_radii(self, t):
        """Endocardial and epicardial radii at time t (myocardial area is conserved)."""
        p = self.params
        v = volume_curve(t, systole=p["systole"])
        r_ed = p["lv_radius_ed"]
        area = np.pi * r_ed**2 * ((1 - p["ejection_fraction"]) + p["ejection_fraction"] * v)
        r_endo = np.sqrt(area / np.pi)
        myo_area = np.pi * ((r_ed + p["wall"]) ** 2 - r_ed**2)
        r_epi = np.sqrt(r_endo**2 + myo_area / np.pi)
        return r_endo, r_epi

    def __call__(self, t, H: int, W: int) -> np.ndarray:
        """Magnitude images (T, H, W) float32 in [0, ~1] at times t (cycle fraction)."""
        t = np.atleast_1d(np.asarray(t, dtype=np.float64))
        if not np.all(np.isfinite(t)):
            raise ValueError("phantom times must be finite")
        if H < 8 or W < 8:
            raise ValueError(f"phantom size must be at least 8 x 8, got {H} x {W}")
        p, I = self.params, self.params["intensities"]
        edge = 2.0 / min(H, W)  # one pixel in FOV units
        body, static, hx, hy, r_heart = self._static(H, W)
        r_endo, r_epi = (r[:, None, None] for r in self.lv_radii(t))  # every frame at once: (T, 1, 1) against (H, W)
        v = volume_curve(t, systole=p["systole"])[:, None, None]
        epi = _smooth_step(r_heart - r_epi, edge)
        endo = _smooth_step(r_heart - r_endo, edge)
        # RV crescent: an ellipse beside the LV, squeezed in systole, minus the LV
        rv_scale = 0.75 + 0.25 * v
        rx, ry = hx + p["rv_offset"] + r_epi * 0.6, hy
        rv_outer = _smooth_step(_ellipse_sd(rx, ry, p["rv_axes"][0] * rv_scale + 0.03, p["rv_axes"][1] + 0.03), edge)
        rv_blood = _smooth_step(_ellipse_sd(rx, ry, p["rv_axes"][0] * rv_scale, p["rv_axes"][1]), edge) * (1 - epi)
        rv_wall = np.clip(rv_outer - rv_blood, 0, 1) * (1 - epi)
        heart = np.clip(epi + rv_outer * (1 - epi), 0, 1)
        flow = 1.0 + (0.1 * np.sin(2 * np.pi * t[:, None, None]) if self.through_plane else 0.0)
        img = static * (1 - heart) + I["myo"] * (epi - endo) + I["blood"] * flow * endo
        img += I["rv_blood"] * flow * rv_blood + I["myo"] * rv_wall
        return (img * body).astype(np.float32)

    def _static(self, H: int, W: int) -> tuple:
        """The time-independent part at size (H, W), computed once per size (the LIIF data
        renders the same subject at new times every sample): the body mask, the static tissue
        image, the heart-centred coordinates hx, hy and the distance from the heart's centre."""
        cache = self.__dict__.setdefault("_static_cache", {})
        if (H, W) not in cache:
            cache[(H, W)] = self._render_static(H, W)
        return cache[(H, W)]

    def _render_static(self, H: int, W: int) -> tuple:
        p, I = self.params, self.params["intensities"]
        edge = 2.0 / min(H, W)
        y, x = np.meshgrid(np.linspace(-1, 1, H), np.linspace(-1, 1, W), indexing="ij")
        bx, by = _rotate(x, y, p["body_rot"])
        body = _smooth_step(_ellipse_sd(bx, by, *p["body_axes"]), edge)
        inner = _smooth_step(_ellipse_sd(bx, by, p["body_axes"][0] - 0.06, p["body_axes"][1] - 0.06), edge)
        waves = p["texture_waves"]
        texture = sum(w[3] * np.cos(np.pi * (3 + 5 * abs(w[0])) * (np.cos(w[1]) * x + np.sin(w[1]) * y) + w[2])
                      for w in waves) / np.sqrt(len(waves))
        static = I["fat"] * (body - inner) + I["tissue"] * inner * (1 + 0.08 * texture)

        lung = np.zeros_like(x)
        for side in (-1, 1):
            lx, ly = _rotate(x, y, 0.2 * side, cx=0.56 * side, cy=0.05)
            lung = np.maximum(lung, _smooth_step(_ellipse_sd(lx, ly, *p["lung_axes"]), edge))
        static = static * (1 - lung * inner) + I["lung"] * lung * inner
        hx, hy = _rotate(x, y, p["heart_rot"], *p["heart_center"])
        return body, static, hx, hy, np.sqrt(hx**2 + hy**2)


def phantom_cine(T: int, H: int, W: int, seed: int = 0, through_plane: bool = True) -> np.ndarray:
    """T uniformly spaced frames (t = k / T) of subject ``seed`` as float32 (T, H, W)."""
    return BeatingHeartPhantom(seed, through_plane)(np.arange(T) / T, H, W)
