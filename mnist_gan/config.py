"""The one frozen config: every hyperparameter of a run, saved as JSON beside the weights."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, fields
from pathlib import Path

from .errors import ConfigError, WeightsError, shown

CONFIG_FILE = "gan_config.json"  # not config.json: that name belongs to Keras's own saved-model layout
ARCHITECTURES = ("classic", "dcgan")  # what model/architectures.py builds (a test keeps the two in step)
LOSSES = ("bce", "hinge")  # what model/losses.py computes (likewise)
AUGMENTATIONS = ("translation", "cutout")  # GANConfig.augment's policies (mnist_gan/augment.py)
LR_SCHEDULES = ("constant", "linear", "cosine")


@dataclass(frozen=True)
class GANConfig:
    """Everything needed to rebuild and retrain a model exactly. Defaults are the classic Keras recipe."""

    architecture: str = "classic"
    conditional: bool = False
    # InfoGAN: the argmax of z's first `latent_code` entries is a categorical code G also sees as a one-hot, and D
    # learns to guess it back. No labels are used, yet the discrete code gives the digits' separate shapes their
    # own latent regions (0: no code)
    latent_code: int = 0
    latent_dim: int = 100
    batch_size: int = 32
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta_1: float = 0.5
    loss: str = "bce"  # "bce": the recipe's binary cross-entropy; "hinge": hinge loss on D's logit
    label_smoothing: float = 0.0  # real labels become 1 - label_smoothing in D's step
    ema_decay: float = 0.0  # 0 disables the moving average of G's weights
    d_steps: int = 1  # D updates (each on a fresh batch) per G update; the recipe's is 1
    steps: int = 30_000
    sample_every: int = 500
    eval_every: int = 0  # 0: no quality evaluation during training
    checkpoint_every: int = 1_000
    seed: int = 0
    # --- optional training variants (bench/zoo.md, "Quality, next level"); every default keeps the step as it was
    # DiffAugment (Zhao et al. 2020) on everything D sees, real and fake alike, differentiable: a comma-separated
    # policy of "translation" (up to 1/8 of the side, background fill) and "cutout" (a half-side square)
    augment: str = ""
    r1_gamma: float = 0.0  # R1 penalty (gamma / 2) E|grad_x D(x)|^2 on (augmented) real images, in D's real step
    spectral_norm: bool = False  # spectral normalisation of D's layers (keras.layers.SpectralNormalization)
    lr_schedule: str = "constant"  # "constant", or "linear"/"cosine": both rates decay to 0 at `steps`...
    lr_decay_start: float = 0.0  # ...starting after this fraction of `steps`
    ema_start: int = 0  # the EMA copies G until this step, then averages (its warm-up counted from here)
    snapshot_every: int = 0  # also keep the sampler every K steps in RUN_DIR/snapshots/STEP, for choosing one later
    # --- mode coverage (issue 25, bench/zoo.md): every default keeps the models and the step as they were
    # PacGAN (Lin et al. 2018): D judges `pack` images at once, stacked as channels (batch_size / pack packs per batch)
    pack: int = 1
    minibatch_std: int = 0  # D also sees its features' standard deviation over groups of this many (Karras et al. 2018)
    d_dropout: float = 0.0  # dropout after each of D's hidden layers, in training only (the original GAN's D)
    g_width: float = 1.0  # G's hidden widths times this
    d_width: float = 1.0  # D's hidden widths times this
    # MSGAN (Mao et al. 2019): G's loss also has this weight times 1 / (how far apart two latents' images are, per
    # unit of latent distance), so that G does not draw the same digit for different latents (losses.mode_seeking)
    mode_seeking: float = 0.0

    def __post_init__(self) -> None:
        _check_types(self)
        if self.architecture not in ARCHITECTURES:
            raise ConfigError("architecture",
                              f"unknown {shown(self.architecture)}; choose one of {sorted(ARCHITECTURES)}")
        if self.loss not in LOSSES:
            raise ConfigError("loss", f"unknown {shown(self.loss)}; choose one of {sorted(LOSSES)}")
        for name, low, high in (
            ("latent_dim", 1, 4096),
            ("batch_size", 1, 4096),
            ("steps", 1, 10_000_000),
            ("sample_every", 1, 10_000_000),
            ("checkpoint_every", 1, 10_000_000),
            ("eval_every", 0, 10_000_000),
            ("seed", 0, 2**32 - 1),
            ("d_steps", 1, 10),
            ("ema_start", 0, 10_000_000),
            ("snapshot_every", 0, 10_000_000),
            ("pack", 1, 16),
            ("minibatch_std", 0, 4096),
        ):
            value = getattr(self, name)
            if not low <= value <= high:
                raise ConfigError(name, f"must be between {low} and {high}, got {value}")
        for name in ("lr_g", "lr_d"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0 < value <= 1):
                raise ConfigError(name, f"must be a learning rate in (0, 1], got {value}")
        for name in ("beta_1", "ema_decay"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0 <= value < 1):
                raise ConfigError(name, f"must be in [0, 1), got {value}")
        if self.latent_code and not 2 <= self.latent_code <= self.latent_dim:
            raise ConfigError("latent_code",
                              f"must be 0 or between 2 and latent_dim ({self.latent_dim}), got {self.latent_code}")
        if self.latent_code and self.conditional:
            raise ConfigError("latent_code", "a class-conditional model is told the digit; it takes no latent code")
        if not (math.isfinite(self.label_smoothing) and 0 <= self.label_smoothing < 0.5):
            raise ConfigError("label_smoothing", f"must be in [0, 0.5), got {self.label_smoothing}")
        unknown = sorted(set(filter(None, self.augment.split(","))) - set(AUGMENTATIONS))
        if unknown:
            raise ConfigError("augment", f"unknown {shown(unknown[0])}; choose from {list(AUGMENTATIONS)}, "
                                         "comma-separated")
        if not (math.isfinite(self.r1_gamma) and 0 <= self.r1_gamma <= 1e4):
            raise ConfigError("r1_gamma", f"must be in [0, 10000], got {self.r1_gamma}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ConfigError("lr_schedule", f"unknown {shown(self.lr_schedule)}; choose one of {list(LR_SCHEDULES)}")
        if not (math.isfinite(self.lr_decay_start) and 0 <= self.lr_decay_start < 1):
            raise ConfigError("lr_decay_start", f"must be in [0, 1), got {self.lr_decay_start}")
        self._check_coverage_options()

    def _check_coverage_options(self) -> None:
        if self.batch_size % self.pack:
            raise ConfigError("pack", f"must divide batch_size ({self.batch_size}): D judges packs of {self.pack}")
        if self.pack > 1 and self.conditional:
            raise ConfigError("pack", "a class-conditional D judges one image against its label; packing is for "
                                      "unconditional models")
        packs = self.batch_size // self.pack
        if self.minibatch_std == 1 or (self.minibatch_std and packs % self.minibatch_std):
            raise ConfigError("minibatch_std", f"must be 0 (off) or a group size of 2 or more dividing the {packs} "
                                               f"images (or packs) D sees at once, got {self.minibatch_std}")
        if not (math.isfinite(self.d_dropout) and 0 <= self.d_dropout <= 0.9):
            raise ConfigError("d_dropout", f"must be in [0, 0.9], got {self.d_dropout}")
        for name in ("g_width", "d_width"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0.25 <= value <= 8):
                raise ConfigError(name, f"must be a width multiplier in [0.25, 8], got {value}")
        if not (math.isfinite(self.mode_seeking) and 0 <= self.mode_seeking <= 100):
            raise ConfigError("mode_seeking", f"must be a weight in [0, 100], got {self.mode_seeking}")
        if self.mode_seeking and self.conditional:
            raise ConfigError("mode_seeking", "its pairs of latents would need the same label; mode seeking is for "
                                              "unconditional models")

    @property
    def signature(self) -> tuple:
        """What fixes the generator's shape: weights fit any config with the same signature."""
        return self.architecture, self.conditional, self.latent_code, self.latent_dim, self.g_width

    def replace(self, **changes) -> GANConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> GANConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(unknown[0], "is not a GANConfig field")
        return cls(**data)

    def save(self, folder: str | Path) -> Path:
        from .atomic_files import write_json

        path = Path(folder) / CONFIG_FILE
        write_json(path, self.to_dict())
        return path

    @classmethod
    def load(cls, folder: str | Path) -> GANConfig:
        """The config saved in a weights or run folder (read as untrusted: it may come from the Hub)."""
        from .atomic_files import load_json

        folder = Path(folder)
        try:
            data = load_json(folder / CONFIG_FILE)
        except FileNotFoundError:
            raise WeightsError(f"no {CONFIG_FILE} in {folder.name}: not an mnist-gan weights folder") from None
        except (OSError, ValueError) as e:
            raise ConfigError("file", f"{folder.name}/{CONFIG_FILE} cannot be used: {e}") from None
        return cls.from_dict(data)


def field_type(name: str) -> type:
    """The Python type of a GANConfig field (bool, int, float or str)."""
    return {"str": str, "bool": bool, "int": int, "float": float}[_FIELDS[name].type]


_FIELDS = {f.name: f for f in fields(GANConfig)}


# --- what a person chooses for a training run -----------------------------------------------------------------

@dataclass(frozen=True)
class Setting:
    """A config field a person chooses for a run: one widget of the Train form, one parameter of train_start."""

    name: str  # a GANConfig field
    label: str
    info: str = ""


# The one declaration: the Train form shows these, train_start takes them (in this order), the CLI documents them.
TRAINING_SETTINGS = (
    Setting("architecture", "Architecture"),
    Setting("conditional", "Class-conditional (G and D see the digit label)"),
    Setting("batch_size", "Batch size"),
    Setting("lr_g", "G learning rate"),
    Setting("lr_d", "D learning rate"),
    Setting("beta_1", "Adam beta_1"),
    Setting("ema_decay", "EMA of G (0: off)", "a moving average of G's weights draws cleaner digits"),
    Setting("steps", "Steps"),
    Setting("loss", "Loss", "bce: the classic recipe's binary cross-entropy; hinge: measured better (bench/zoo.md)"),
    Setting("latent_code", "Latent code (unconditional; 0: off)", "InfoGAN categories, as mlp-uncond: 10"),
    Setting("seed", "Seed", "weights, batches and noise all follow from it: same seed, same run"),
    Setting("d_steps", "D steps per G step", "the classic recipe: 1"),
)
# What a running run may change (applied at its next compiled call, recorded in its history and checkpoint). The
# EMA decay can move, but not from or to 0: that would add or drop a whole generator.
LIVE_SETTINGS = ("lr_g", "lr_d", "d_steps", "ema_decay")


def live_edit(config: GANConfig, changes: dict) -> GANConfig:
    """`config` with live `changes` (LIVE_SETTINGS only), validated; ConfigError naming the field otherwise."""
    for name in changes:
        if name not in LIVE_SETTINGS:
            raise ConfigError(name, f"cannot change while a run trains; live settings: {', '.join(LIVE_SETTINGS)}")
    edited = config.replace(**changes)
    if (edited.ema_decay > 0) != (config.ema_decay > 0):
        raise ConfigError("ema_decay", "a run with an EMA keeps one and a run without gets none: choose a value in "
                                       "(0, 1)" if config.ema_decay else "this run has no EMA generator to change")
    return edited

# Named starting points for a run; a recipe is the changes to GANConfig's defaults (the classic Keras recipe).
RECIPES: dict[str, dict] = {
    # mlp-cond's recipe: the most quality per minute of CPU measured (bench/quality.md); 20,000 steps ~10 min
    "recommended": {"conditional": True, "batch_size": 64, "loss": "hinge", "ema_decay": 0.9999, "steps": 20_000},
    "classic": {},  # the Keras GAN recipe, exactly
}
DEFAULT_RECIPE = "recommended"


def recipe(name: str = DEFAULT_RECIPE, **changes) -> GANConfig:
    """The named recipe with `changes` applied. Class labels and a latent code exclude each other, so asking for
    one turns the other off rather than failing against the recipe's choice."""
    if name not in RECIPES:
        raise ConfigError("recipe", f"unknown {shown(name)}; choose one of {sorted(RECIPES)}")
    base = {**RECIPES[name]}
    if changes.get("latent_code") and "conditional" not in changes:
        base["conditional"] = False
    if changes.get("conditional") is True and "latent_code" not in changes:
        base["latent_code"] = 0
    return GANConfig(**{**base, **changes})


def cadence(steps: int, evaluate: bool) -> dict:
    """sample_every / eval_every for a run of `steps`: about 40 grids, multiples of 10 so every compiled call
    does the same number of iterations (a different count would recompile)."""
    sample_every = min(500, max(10, steps // 40 // 10 * 10))
    return {"sample_every": sample_every, "eval_every": 5 * sample_every if evaluate else 0}


def _check_types(config: GANConfig) -> None:
    """JSON and forms hand us strings and floats; refuse them by field name instead of failing deep in Keras."""
    for f in fields(config):
        value = getattr(config, f.name)
        expected = {"str": str, "bool": bool, "int": int, "float": (int, float)}[f.type]
        # bool is an int subclass: a True batch size is a mistake, not 1
        if not isinstance(value, expected) or (f.type != "bool" and isinstance(value, bool)):
            raise ConfigError(f.name, f"must be {f.type}, got {type(value).__name__} {shown(value)}")
