"""`PlannerConfig`: every setting of System 2, kept apart from the model code.

Each field carries its default, range and description (s1s2.params, the style of peft's
`LoraConfig`); `__post_init__` validates them and a bad value raises `ConfigError` naming the
parameter and the value. The ROS node's parameters derive from `PlannerNodeConfig`; the CLI and
tests build a `PlannerConfig` directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from s1s2.cell import DEFAULT_CELL_PATH, CellDescription, CellError, load_cell
from s1s2.params import ConfigError, check_fields, param

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


@dataclass
class PlannerConfig:
    """Settings of the System 2 planner. Paths are resolved against the repo root (s1s2.resolve_path).

    The cell's facts (classes -> bins, bins, belt, camera) come from the cell description `cell`,
    the same file the simulator is built from; they are not planner settings."""

    model_id: str = param(
        "models/sim_vlm", "VLM: save_pretrained folder (relative to the repo root) or hub id", read_only=True
    )  # fmt: skip
    allow_download: bool = param(
        False, "allow fetching a hub model_id (else local files / HF cache only)", read_only=True
    )  # fmt: skip
    adapter_library: str = param(
        "models/adapters", "folder of peft LoRA adapters, one sub-folder each; '' = none", read_only=True
    )  # fmt: skip
    initial_adapter: str = param("", "adapter active at start ('' = base model)", read_only=True)
    device: str = param("auto", "torch device", choices=DEVICES, read_only=True)
    quantization: str = param(
        "nf4", "nf4 = bitsandbytes 4-bit NF4 + double quantization (QLoRA)", choices=QUANTIZATIONS, read_only=True
    )  # fmt: skip
    compute_dtype: str = param(
        "float32", "dtype the 4-bit weights are dequantised to for matmuls", choices=COMPUTE_DTYPES, read_only=True
    )  # fmt: skip
    max_new_tokens: int = param(
        12, "generation length limit (longest valid answer + EOS)", min=1, max=512, read_only=True
    )  # fmt: skip
    max_resident_adapters: int = param(3, "LoRA adapters kept loaded (LRU)", min=1, max=64, read_only=True)
    warm_adapter_slots: bool = param(
        True,
        "at start, load the library's adapters of its most common LoRA layout until the resident set "
        "is full, so every later swap from disk copies weights into a slot instead of building LoRA layers",
        read_only=True,
    )
    instruction: str = param(
        DEFAULT_INSTRUCTION, "default operator instruction (until one arrives on the topic)"
    )
    prompt_template: str = param(
        DEFAULT_PROMPT, "question after the image; {instruction} {classes} {width} {height} are filled in",
        read_only=True,
    )  # fmt: skip
    valid_for_s: float = param(
        3.0, "Goal.valid_for: System 1 holds once image stamp + this has passed", min=0.05, max=600.0
    )  # fmt: skip
    min_confidence: float = param(0.0, "plans below this confidence become holds", min=0.0, max=1.0)
    # Two agreeing plans instead of the card's gate (card_min_confidence false, confirm_pick_cm 5)
    # sort more (docs/policy.md) but withhold unconfirmed plans, so the goal System 1 acts on gets
    # older than the stack's 1.5 s goal-age bound: opt-in
    card_min_confidence: bool = param(
        True, "also hold below the calibrated min_confidence in the model card (s1s2_vlm.json), if any",
        read_only=True,
    )  # fmt: skip
    # Off, a hold from the gate cancels picks under way: at night it cost ~1 item in 10 (ItemTrace:
    # "named, not picked"; docs/adapter_manager.md, "Why items are lost")
    gate_keeps_goal: bool = param(
        True, "a plan under min_confidence re-sends the last pick (same adapter) while that pick is still "
        "valid, expiring when it would have: a hold would cancel the pick System 1 is making on an answer "
        "the gate does not trust",
    )  # fmt: skip
    # The adapter manager swaps 2-6 s after a light change (its dwell and hysteresis); until then the
    # outgoing adapter plans on frames it was not trained for, and its first plan after the change
    # named the wrong class on 2 of 20 changes (docs/adapter_manager.md, "Plans across a light change")
    lighting_check: str = param(
        "", "lighting classifier JSON (the adapter manager's); when set, a frame it puts in a known lighting "
        "domain other than the active adapter's 'lighting:' tag (probability >= lighting_check_min_p) gets "
        "no new pick, as if under the gate; the base model and adapters without a known domain's tag are "
        "never checked ('' = off)",
        read_only=True,
    )  # fmt: skip
    lighting_check_min_p: float = param(
        0.9,
        "classifier probability a frame's other lighting domain needs to stop new picks",
        min=0.5,
        max=1.0,
    )
    confirm_pick_cm: float = param(
        0.0,
        "0 = off; > 0: publish a pick only when the previous plan (at most valid_for_s earlier, same "
        "adapter) picked the same class within this distance on the belt (cm); else hold until it does",
        min=0.0, max=100.0,
    )  # fmt: skip
    coordinate_format: str = param(
        "pixel", "how the model's u, v are expressed (pixels, or Qwen2-VL style 0..1000)",
        choices=COORDINATE_FORMATS, read_only=True,
    )  # fmt: skip
    cell: str = param(
        DEFAULT_CELL_PATH, "cell description YAML: classes -> bins, bins, belt, camera pose", read_only=True,
        must_exist=True,
    )  # fmt: skip
    belt_margin: float = param(
        0.05, "picks further than this outside the belt's edges are rejected (m)", min=0.0, max=10.0
    )  # fmt: skip
    latent_seed: int = param(
        0, "seed of the latent projection when the model folder has none", min=0, max=2**31 - 1, read_only=True
    )  # fmt: skip
    num_threads: int = param(
        1, "torch CPU threads (0 = torch default; 1 leaves a core to System 1)", min=0, max=256, read_only=True
    )  # fmt: skip
    cell_description: CellDescription = field(init=False, repr=False)

    def __post_init__(self):
        check_fields(self)
        if not self.model_id.strip():
            raise ConfigError(f"parameter 'model_id': expected a path or hub id, got {self.model_id!r}")
        if not self.instruction.strip():
            raise ConfigError(
                f"parameter 'instruction': expected a non-empty string, got {self.instruction!r}"
            )
        if "{instruction}" not in self.prompt_template:
            raise ConfigError(
                f"parameter 'prompt_template': must contain '{{instruction}}', got {self.prompt_template!r}"
            )
        try:
            self.cell_description = load_cell(self.cell)
        except CellError as exc:
            raise ConfigError(f"parameter 'cell': {exc}") from exc

    @property
    def classes(self) -> list[str]:
        return self.cell_description.class_names

    @property
    def class_to_bin(self) -> dict[str, str]:
        return self.cell_description.class_to_bin

    @property
    def pick_plane_z(self) -> float:
        """World z pixels are projected onto: the belt's surface (pick points are at belt height)."""
        return self.cell_description.belt.surface_height


@dataclass
class PlannerNodeConfig(PlannerConfig):
    """The planner's settings plus the node's own."""

    rate_hz: float = param(
        1.0, "planning rate (ticks while an inference runs are skipped)", min=0.1, max=10.0
    )
    odometry_max_extrapolation_s: float = param(
        0.5, "belt odometry may be extrapolated this far past its last sample", min=0.0, max=5.0, read_only=True
    )  # fmt: skip

    def planner_config(self) -> PlannerConfig:
        return PlannerConfig(**{f.name: getattr(self, f.name) for f in fields(PlannerConfig) if f.init})
