"""`PlannerConfig`: every setting of System 2, kept apart from the model code.

Validated in `__post_init__`: a bad value raises `ConfigError` naming the field and the value
(the style of peft's `LoraConfig` / LeRobot's configuration classes). The ROS node builds one from
its parameters; the CLI and tests build one directly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from conveyor_sim.description import DEFAULT_CELL
from s1s2.params import ConfigError

# Item class -> bin. Bins are the ones in conveyor_sim.description.DEFAULT_CELL.
DEFAULT_CLASS_BINS: tuple[str, ...] = (
    "pet_bottle=plastic",
    "hdpe_jug=plastic",
    "aluminium_can=metal",
    "cardboard=paper",
    "paper=paper",
    "glass_bottle=glass",
    "residual=residual",
)

DEFAULT_INSTRUCTION = "sort the recyclables"

# The question put to the VLM, after the image. `{instruction}`, `{classes}`, `{width}`, `{height}`
# are filled in. The answer format is what `vlm_planner.parse.parse_answer` reads.
DEFAULT_PROMPT = (
    "{instruction}. Which item should the robot pick next? "
    "Answer exactly: label=<class> u=<pixel column> v=<pixel row>, or label=none. "
    "Classes: {classes}. Image: {width}x{height} pixels."
)

DEVICES = ("cpu", "cuda", "auto")
QUANTIZATIONS = ("nf4", "none")
COMPUTE_DTYPES = ("float32", "bfloat16", "float16")
COORDINATE_FORMATS = ("pixel", "norm1000")


def _finite(name: str, value, lo: float | None = None, hi: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{name}: expected a finite number, got {value!r}")
    if lo is not None and value < lo:
        raise ConfigError(f"{name}: {value!r} is below the minimum {lo}")
    if hi is not None and value > hi:
        raise ConfigError(f"{name}: {value!r} is above the maximum {hi}")
    return float(value)


def _int(name: str, value, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name}: expected an integer, got {value!r}")
    if not lo <= value <= hi:
        raise ConfigError(f"{name}: {value!r} is outside {lo}..{hi}")
    return value


def _choice(name: str, value, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ConfigError(f"{name}: unknown value {value!r}; valid: {', '.join(choices)}")
    return value


def parse_class_bins(entries) -> dict[str, str]:
    """["pet_bottle=plastic", ...] -> {"pet_bottle": "plastic", ...}; ConfigError on a bad entry."""
    mapping: dict[str, str] = {}
    for entry in entries:
        if not isinstance(entry, str) or entry.count("=") != 1:
            raise ConfigError(f"class_bins: entry {entry!r} is not 'class=bin'")
        cls, bin_id = (s.strip() for s in entry.split("="))
        if not cls or not bin_id or not cls.replace("_", "").isalnum():
            raise ConfigError(f"class_bins: entry {entry!r} is not 'class=bin' with word characters")
        if cls in mapping:
            raise ConfigError(f"class_bins: class {cls!r} is mapped twice")
        mapping[cls] = bin_id
    if not mapping:
        raise ConfigError("class_bins: empty; at least one 'class=bin' entry is needed")
    return mapping


@dataclass
class PlannerConfig:
    """Settings of the System 2 planner. Paths are resolved against the repo root (s1s2.resolve_path)."""

    model_id: str = "models/sim_vlm"  # local save_pretrained folder or a hub id
    allow_download: bool = False  # False: never touch the network (local_files_only=True)
    adapter_library: str = "models/adapters"  # folder of peft adapters, one sub-folder each; "" = none
    initial_adapter: str = ""  # "" = base model
    device: str = "auto"
    quantization: str = "nf4"  # nf4: bitsandbytes 4-bit NF4 + double quantization (QLoRA)
    compute_dtype: str = "float32"  # dtype the 4-bit weights are dequantised to for matmuls
    max_new_tokens: int = 12  # longest valid answer + EOS (tests/unit/test_planner_token_budget.py)
    max_resident_adapters: int = 3  # LRU: adapters kept loaded next to the base model
    instruction: str = DEFAULT_INSTRUCTION
    prompt_template: str = DEFAULT_PROMPT
    valid_for_s: float = 3.0  # System 1 holds once image stamp + valid_for has passed
    min_confidence: float = 0.0  # below this the plan becomes a hold (empty target)
    coordinate_format: str = "pixel"  # u,v in image pixels, or 0..1000 normalised (Qwen2-VL style)
    class_bins: tuple[str, ...] = DEFAULT_CLASS_BINS
    pick_plane_z: float = DEFAULT_CELL.belt.surface_height  # world z pixels are projected onto (belt top)
    belt_half_width: float = (
        DEFAULT_CELL.belt.width / 2
    )  # picks further from the centre line (+margin): rejected
    belt_center_y: float = 0.0
    belt_margin: float = 0.05
    place_clearance: float = 0.15  # place pose this far above the bin's rim
    latent_seed: int = 0  # seed of the latent projection when the model folder has none
    num_threads: int = 1  # torch intra-op threads (CPU); 1 leaves a core to System 1; 0 = torch default
    class_to_bin: dict[str, str] = field(init=False, repr=False)

    def __post_init__(self):
        if not isinstance(self.model_id, str) or not self.model_id.strip():
            raise ConfigError(f"model_id: expected a path or hub id, got {self.model_id!r}")
        if not isinstance(self.allow_download, bool):
            raise ConfigError(f"allow_download: expected true/false, got {self.allow_download!r}")
        if not isinstance(self.adapter_library, str):
            raise ConfigError(f"adapter_library: expected a path string, got {self.adapter_library!r}")
        if not isinstance(self.initial_adapter, str):
            raise ConfigError(f"initial_adapter: expected a name, got {self.initial_adapter!r}")
        _choice("device", self.device, DEVICES)
        _choice("quantization", self.quantization, QUANTIZATIONS)
        _choice("compute_dtype", self.compute_dtype, COMPUTE_DTYPES)
        _choice("coordinate_format", self.coordinate_format, COORDINATE_FORMATS)
        _int("max_new_tokens", self.max_new_tokens, 1, 512)
        _int("max_resident_adapters", self.max_resident_adapters, 1, 64)
        _int("latent_seed", self.latent_seed, 0, 2**31 - 1)
        _int("num_threads", self.num_threads, 0, 256)
        if not isinstance(self.instruction, str) or not self.instruction.strip():
            raise ConfigError(f"instruction: expected a non-empty string, got {self.instruction!r}")
        if not isinstance(self.prompt_template, str) or "{instruction}" not in self.prompt_template:
            raise ConfigError(
                f"prompt_template: must contain '{{instruction}}', got {self.prompt_template!r}"
            )
        _finite("valid_for_s", self.valid_for_s, 0.05, 600.0)
        _finite("min_confidence", self.min_confidence, 0.0, 1.0)
        _finite("pick_plane_z", self.pick_plane_z, -10.0, 10.0)
        _finite("belt_half_width", self.belt_half_width, 0.0, 10.0)
        _finite("belt_center_y", self.belt_center_y, -10.0, 10.0)
        _finite("belt_margin", self.belt_margin, 0.0, 10.0)
        _finite("place_clearance", self.place_clearance, 0.0, 2.0)
        self.class_bins = tuple(self.class_bins)
        self.class_to_bin = parse_class_bins(self.class_bins)
        self._check_bins()

    def _check_bins(self):
        known = {b.bin_id for b in DEFAULT_CELL.bins}
        for cls, bin_id in self.class_to_bin.items():
            if bin_id not in known:
                raise ConfigError(
                    f"class_bins: class {cls!r} maps to unknown bin {bin_id!r}; bins: {', '.join(sorted(known))}"
                )

    @property
    def classes(self) -> list[str]:
        return list(self.class_to_bin)
