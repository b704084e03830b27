"""Typed settings of a LIIF experiment, validated in one place (each ``__post_init__``).

* ``AcquisitionSpec``: the continuous-time binned acquisition of one sample.
* ``DataConfig``: where subjects come from, their size, the acquisition and the split sizes.
* ``EncoderConfig``: a registered encoder and its widths (defaults per encoder, ``ENCODER_DEFAULTS``).
* ``ModelConfig``: encoder + sine decoder and the options around them (residual, view sharing,
  image skip, data-consistency cascade, bfloat16). ``LiifCine(config)`` builds it; saved models
  carry it (``asdict``) and ``load_model`` rebuilds from it.
* ``TrainConfig``: epochs, learning rate, batch, pixels per step, seed, resume.

Named presets (``preset(name, encoder, T_low)``, ``preset_data(name)``): ``"original"``, the
original's setting (zero-filled input, no residual, PyTorch's initialisation, zero time padding,
the original's widths, no augmentation); ``"fair"``, the original's networks with the training
choices that help every encoder alike (view-shared input, augmentation) and each encoder's
better initialisation (PyTorch's default for the 2D UNet, He for the 3D UNet);
``"05-defaults"``, notebook 05's defaults (view-shared input, residual with image
skip, periodic time padding, four data-consistency stages and a final one, smaller widths).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Optional, Sequence, Union

import numpy as np

from ..acquisition import check_acceleration
from ..io import is_phantom
from ..runs import check_int
from .encoders import ENCODERS, TEMPORAL

#: encoder inputs: name -> sample fields concatenated along channels (zero-filled, view-shared, both)
INPUTS = {"zf": ("zf",), "vs": ("vs",), "zfvs": ("zf", "vs")}

#: every encoder's fields and their defaults (the original's widths for the 3D networks)
ENCODER_DEFAULTS = {
    "unet2d": {"channels": (32, 64, 128), "he": True},
    "unet3d": {"channels": (16, 32, 64), "he": True, "circular": False},
    "rdn3d": {"channels": 32, "blocks": 5, "layers": 6, "growth": 32, "circular": False},
}


def _positive(name: str, value, kind=int):
    if kind is int:
        return check_int(name, value)
    if isinstance(value, bool) or not (np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


@dataclass
class AcquisitionSpec:
    """T_high acquisitions per cardiac cycle binned into T_low bins, nominal rate R at 25 frames."""

    R: float = 6.0  # nominal acceleration at 25 frames
    T_low: int = 8  # bins
    T_high: int = 32  # acquisitions per cycle
    T_query: int = 16  # query times per sample
    noise_std: float = 0.0

    def __post_init__(self):
        self.R = check_acceleration(self.R)
        self.T_low, self.T_high = check_int("T_low", self.T_low), check_int("T_high", self.T_high)
        self.T_query = check_int("T_query", self.T_query)
        if self.T_high % self.T_low:
            raise ValueError(f"T_high ({self.T_high}) must be a multiple of T_low ({self.T_low})")
        if not (np.isfinite(self.noise_std) and self.noise_std >= 0):
            raise ValueError(f"noise_std must be finite and >= 0, got {self.noise_std!r}")


@dataclass
class DataConfig:
    """The subjects and samples of one experiment (``data.datasets``).

    ``data``: None (phantom subjects, ``n_train`` / ``n_val`` / ``n_test`` seeds per split),
    ``"sunnybrook"`` (every slice of each split's patients; ``n_val`` caps the validation
    slices) or a file in the Sunnybrook layout. Validation samples use ``acquisition.T_query``
    uniform times, test samples ``T_eval``. ``augment``: time shift, time reversal and flips of
    the training subjects. ``cache_gb``: memory in GiB the training set, and the validation set,
    each may use to keep the samples it simulated."""

    data: Optional[str] = None
    N: int = 64
    acquisition: AcquisitionSpec = field(default_factory=AcquisitionSpec)
    T_eval: int = 64
    n_train: int = 36
    n_val: int = 4
    n_test: int = 4
    seed: int = 0
    augment: bool = False
    cache_gb: float = 0.0

    def __post_init__(self):
        self.N = check_int("N", self.N, 16)
        self.T_eval = check_int("T_eval", self.T_eval)
        self.n_train, self.n_val, self.n_test = (check_int(n, getattr(self, n)) for n in ("n_train", "n_val", "n_test"))
        self.seed = check_int("seed", self.seed, 0)
        if isinstance(self.cache_gb, bool) or not (np.isfinite(self.cache_gb) and self.cache_gb >= 0):
            raise ValueError(f"SAMPLE_CACHE_GB (cache_gb) must be a finite number >= 0, got {self.cache_gb!r}")

    @property
    def real(self) -> bool:
        """Whether the subjects are real slices (not phantom seeds)."""
        return not is_phantom(self.data)


@dataclass
class EncoderConfig:
    """A registered encoder (``encoders.ENCODERS``) and its fields; a field left None takes the
    encoder's default (``ENCODER_DEFAULTS``), a field the encoder does not have is refused."""

    name: str = "unet3d"
    channels: Union[Sequence[int], int, None] = None  # UNets: widths per level; RDN: feature channels
    he: Optional[bool] = None  # UNets: He initialisation (False: PyTorch's default, the original's)
    circular: Optional[bool] = None  # 3D networks: periodic padding in time (False: zeros, the original's)
    blocks: Optional[int] = None  # RDN: residual dense blocks
    layers: Optional[int] = None  # RDN: conv layers per block
    growth: Optional[int] = None  # RDN: growth rate

    def __post_init__(self):
        ENCODERS.check(self.name)
        defaults = ENCODER_DEFAULTS[self.name]
        for f in fields(self):
            if f.name == "name":
                continue
            value = getattr(self, f.name)
            if f.name not in defaults:
                if value is not None:
                    raise ValueError(f"encoder {self.name!r} has no field {f.name!r} (its fields: {sorted(defaults)})")
                continue
            value = defaults[f.name] if value is None else value
            if f.name == "channels":
                value = _positive("channels", value) if isinstance(defaults[f.name], int) else \
                    tuple(_positive("channels", c) for c in value)
                if isinstance(value, tuple) and not value:
                    raise ValueError(f"encoder {self.name!r} needs at least one width in channels")
            elif f.name in ("he", "circular"):
                value = bool(value)
            else:
                value = _positive(f.name, value)
            setattr(self, f.name, value)

    @property
    def temporal(self) -> bool:
        """Whether the encoder keeps time (features per bin)."""
        return self.name in TEMPORAL

    def kwargs(self) -> dict:
        """The constructor's keyword arguments (the encoder's own fields)."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()
                if k in ENCODER_DEFAULTS[self.name]}


@dataclass
class ModelConfig:
    """Everything ``model.LiifCine`` is built from (its docstring explains each option)."""

    encoder: EncoderConfig
    T_low: int
    C: int = 16  # encoder output channels
    hidden: int = 32  # decoder width
    layers: int = 4  # decoder sine layers
    residual: bool = False  # decode a correction added to the input bins interpolated to t
    input: str = "zf"  # key of INPUTS
    image_skip: bool = False  # the encoder also outputs a per-bin image correction (3D, residual)
    dc_cascade: Sequence[int] = ()  # widths of each data-consistency stage's small 3D UNet (): off
    dc_stages: int = 1  # stages of dc_cascade (0 when it is off)
    final_dc: bool = False  # a soft data-consistency step on the encoder's corrected bins
    bf16: Optional[bool] = False  # bfloat16 autocast of the CNNs (None: where the model's device has fast bfloat16)

    def __post_init__(self):
        if not isinstance(self.encoder, EncoderConfig):
            raise TypeError(f"encoder must be an EncoderConfig, got {type(self.encoder).__name__}")
        self.T_low, self.C = check_int("T_low", self.T_low), check_int("C", self.C)
        self.hidden, self.layers = check_int("hidden", self.hidden), check_int("layers", self.layers)
        if self.input not in INPUTS:
            raise ValueError(f"input must be one of {INPUTS} (zero-filled, view-shared bins, or both), got {self.input!r}")
        if self.image_skip and not (self.encoder.temporal and self.residual):
            raise ValueError("image_skip needs a temporal (3D) encoder and residual=True")
        self.dc_cascade = tuple(_positive("dc_cascade", w) for w in (self.dc_cascade or ()))
        if (self.dc_cascade or self.final_dc) and not self.image_skip:
            raise ValueError("dc_cascade and final_dc need image_skip=True (a 3D residual model)")
        if self.dc_cascade and (isinstance(self.dc_stages, bool) or not isinstance(self.dc_stages, int) or self.dc_stages < 1):
            raise ValueError(f"dc_stages must be a positive integer, got {self.dc_stages!r}")
        if not self.dc_cascade:
            self.dc_stages = 0
        self.residual, self.image_skip = bool(self.residual), bool(self.image_skip)
        self.final_dc, self.bf16 = bool(self.final_dc), None if self.bf16 is None else bool(self.bf16)

    @property
    def in_channels(self) -> int:
        """Encoder input channels per bin: (real, imag) of each input."""
        return 2 * len(INPUTS[self.input])

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        return cls(**{**d, "encoder": EncoderConfig(**d["encoder"])})


def last_quarter_gain(val: Sequence[float]) -> tuple:
    """How much the last quarter of the epochs (q = max(2, n // 4) of n) improved the best
    validation error: (1 - min(v[-q:]) / min(v[:-q]), q, min(v[-q:]), min(v[:-q])). The plateau
    rule stops training when this gain falls below ``TrainConfig.plateau``; negative when the
    last quarter is worse. Needs n > q (at least 3 epochs)."""
    n = len(val)
    q = max(2, n // 4)
    if n <= q:
        raise ValueError(f"the last-quarter gain needs at least 3 epochs, got {n}")
    recent, before = float(min(val[-q:])), float(min(val[:-q]))
    return 1.0 - recent / before, q, recent, before


def stopped_by(method: dict) -> str:
    """'plateau', 'budget', 'epochs' or '?': which rule of ``TrainConfig.stop_reason`` ended a
    model's training, read from its record's ``stop``."""
    stop = method.get("stop", "")
    return "plateau" if stop.startswith("plateau") else "budget" if stop.startswith("time budget") else \
        "epochs" if stop.startswith("reached") else "?"


@dataclass
class TrainConfig:
    """Adam + reduce-on-plateau on the relative-L1 loss (``training.train``).

    ``epochs`` is the most epochs; training stops earlier when

    * ``plateau`` (a fraction, e.g. 0.01) is set and, after at least ``min_epochs`` epochs, the
      best validation error of the last quarter of the epochs (at least 2) is less than
      ``plateau`` below the best one before them: min(v[-q:]) > (1 - plateau) min(v[:-q]);
    * ``max_seconds`` is set and the epochs so far took that long (a per-model time budget).

    With ``keep_best`` the model ends with the weights of its epoch of lowest validation error
    (model selection on the validation subjects) instead of the last epoch's: a run that ends
    after its validation error rose (a plateau stop, a budget, a late divergence) keeps its
    best model.
    """

    epochs: int
    lr: float = 1e-3
    batch: int = 4
    pixels_per_step: Optional[int] = 1024  # random pixels decoded per query frame in a step (None: all)
    seed: int = 0
    resume: bool = True  # continue from the checkpoint when it was written by the same setting
    plateau: Optional[float] = None  # stop when the last quarter improved the best validation error by less (None: never)
    min_epochs: int = 8  # epochs before the plateau rule applies
    max_seconds: Optional[float] = None  # stop after the epoch that reaches this much training time (None: no budget)
    lr_patience: int = 2  # epochs without a better validation error before the learning rate halves
    keep_best: bool = False  # end with the lowest-validation epoch's weights (False: the last epoch's)

    def __post_init__(self):
        self.epochs, self.batch = check_int("epochs", self.epochs), check_int("batch", self.batch)
        self.lr = _positive("lr", self.lr, float)
        self.pixels_per_step = check_int("pixels_per_step", self.pixels_per_step) if self.pixels_per_step else None
        self.seed = check_int("seed", self.seed, 0)
        self.min_epochs = check_int("min_epochs", self.min_epochs, 2)
        self.lr_patience = check_int("lr_patience", self.lr_patience, 0)
        if self.plateau is not None:
            if isinstance(self.plateau, bool) or not (np.isfinite(self.plateau) and 0 < self.plateau < 1):
                raise ValueError(f"PLATEAU (plateau) must be a fraction in (0, 1) or None, got {self.plateau!r}")
            self.plateau = float(self.plateau)
        if self.max_seconds is not None:
            self.max_seconds = _positive("max_seconds", self.max_seconds, float)
        if not isinstance(self.keep_best, (bool, np.bool_)):
            raise ValueError(f"KEEP_BEST (keep_best) must be True or False, got {self.keep_best!r}")
        self.keep_best = bool(self.keep_best)

    def checkpoint_key(self) -> dict:
        """The settings a checkpoint must share to be resumed from."""
        return {"lr": self.lr, "batch": self.batch, "pixels_per_step": self.pixels_per_step, "seed": self.seed}

    def stop_reason(self, val: Sequence[float], seconds: Sequence[float]) -> str:
        """Why training stops after these epochs' validation errors and times ("" : it goes on)."""
        n = len(val)
        if n >= self.epochs:
            return f"reached the most epochs ({self.epochs})"
        if self.plateau is not None and n >= max(self.min_epochs, 3):
            _, q, recent, before = last_quarter_gain(val)
            if recent > (1 - self.plateau) * before:
                return (f"plateau after {n} epochs: the best validation error of the last {q} ({recent:.4f}) is less "
                        f"than {100 * self.plateau:g}% below the best before them ({before:.4f})")
        if self.max_seconds is not None and sum(seconds) >= self.max_seconds:
            return f"time budget: {sum(seconds):.0f} s of training >= {self.max_seconds:g} s after {n} epochs"
        return ""


#: named model settings; ``preset(name, encoder, T_low)`` builds a ModelConfig from one and
#: ``preset_data(name)`` gives its data fields (training augmentation)
PRESETS = {
    "original": {
        "encoders": {"unet2d": {"he": False}, "unet3d": {"he": False}, "rdn3d": {}},
        "model": {"input": "zf"},
        "data": {"augment": False},
    },
    # a fair 2D-vs-3D comparison: the training choices that help every encoder alike (view-shared
    # input bins, augmentation) and each encoder's better initialisation, both chosen on the
    # validation patient: He initialisation stalls the 2D UNet near relative L1 0.65 and
    # PyTorch's default stalls the 3D UNet near 0.7 (the original's widths and decoder)
    "fair": {
        "encoders": {"unet2d": {"he": False}, "unet3d": {"he": True}},
        "model": {"input": "vs"},
        "data": {"augment": True},
    },
    "05-defaults": {
        "encoders": {"unet3d": {"channels": (8, 16, 32), "circular": True},
                     "rdn3d": {"channels": 12, "blocks": 2, "layers": 2, "growth": 8, "circular": True}},
        "model": {"input": "vs", "residual": True, "image_skip": True, "dc_cascade": (8, 16, 32), "dc_stages": 4,
                  "final_dc": True},
        "data": {"augment": True},
    },
}


def _preset(name: str) -> dict:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; presets: {sorted(PRESETS)}")
    return PRESETS[name]


def preset(name: str, encoder: str, T_low: int, encoder_fields: Optional[dict] = None, **overrides) -> ModelConfig:
    """A named preset (``PRESETS``) for ``encoder`` at ``T_low``; ``encoder_fields`` replace the
    encoder's fields (e.g. ``{"channels": [16, 32, 64]}``), ``overrides`` the model's."""
    p = _preset(name)
    if encoder not in p["encoders"]:
        raise ValueError(f"preset {name!r} has no {encoder!r} encoder; it has {sorted(p['encoders'])}")
    fields = {**p["encoders"][encoder], **(encoder_fields or {})}
    return replace(ModelConfig(EncoderConfig(encoder, **fields), T_low, **p["model"]), **overrides)


def preset_data(name: str) -> dict:
    """The ``DataConfig`` fields of preset ``name`` (its training augmentation)."""
    return dict(_preset(name).get("data", {}))
