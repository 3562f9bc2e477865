"""System 2 core (no ROS): image + instruction -> a pick-and-place plan.

    planner = Planner(PlannerConfig())
    result = planner.plan(image_rgb, "sort the recyclables", stamp, belt_position, camera)
    planner.swap_adapter("overcast_dim")

One lock serialises inference and adapter swaps: a swap requested during an inference waits for
it to finish, so a plan is never made half with one adapter and half with another. The node runs
`plan` on a worker thread.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from s1s2 import resolve_path
from s1s2.adapters import lighting_domains, read_adapter
from s1s2.params import ConfigError
from s1s2.topics import LATENT_DIM

from . import confidence as conf_mod
from .adapters import BASE, AdapterError, AdapterSwitcher
from .colour import InputNorm, for_adapter
from .config import PlannerConfig
from .geometry import CameraModel, world_to_belt
from .latent import load_projection, project
from .model import floating_dtype, load_vlm
from .parse import parse_answer


@dataclass
class PlanResult:
    stamp: float  # capture time of the image the plan answers
    instruction: str
    target_label: str  # "" = nothing to pick (System 1 holds)
    target_belt: np.ndarray | None  # pick point, belt frame (3,)
    target_world: np.ndarray | None  # the same point in world at image time
    pixel: tuple[float, float] | None  # (u, v) the model pointed at, image pixels
    bin_id: str
    place_world: np.ndarray | None  # above the bin, world frame (3,)
    latent: np.ndarray  # (LATENT_DIM,) float32, L2-normalised (or zeros)
    confidence: float  # 0..1; 0 when there is no target
    valid_for_s: float
    adapter_id: str
    model_id: str
    raw_text: str  # what the model generated
    reason: str  # why there is no new target ("" for a new pick; gate_keeps_goal: why it re-sends one)
    inference_s: float = 0.0  # generate() wall time
    total_s: float = 0.0  # whole plan() wall time
    new_tokens: int = 0  # tokens generated (up to and including EOS)
    raw_confidence: float = 0.0  # uncalibrated proxy exp(mean log p), for diagnostics
    # False: do not publish (an unconfirmed pick while the last confirmed goal is still valid: a
    # hold would cancel the pick System 1 is making on a single disagreeing plan)
    publish: bool = True

    @property
    def has_target(self) -> bool:
        return bool(self.target_label)


@dataclass
class Inference:
    """One run of the VLM."""

    text: str  # generated answer
    # 0..1: calibrated when the model card has a calibration (from the answer's tokens alone; the
    # planner adds a temporal calibration's agreement with its previous plan), else the raw proxy
    confidence: float
    pooled: np.ndarray  # prefill hidden state pooled over the prompt
    seconds: float  # generate() wall time
    adapter: str  # adapter active during the run
    new_tokens: int  # generated tokens, EOS included
    raw_confidence: float = 0.0  # exp(mean log p) of the generated tokens up to EOS
    features: np.ndarray | None = None  # vlm_planner.confidence features (calibrated models)
    numbers: tuple[float, float] | None = None  # sub-token u, v (confidence.refined_numbers)


@dataclass
class SwapResult:
    success: bool
    message: str
    swap_time_ms: float  # request -> active, including waiting for a running inference
    active_adapter: str
    loaded_from_disk: bool = False
    evicted: list[str] = field(default_factory=list)
    in_place: bool = False  # loaded from disk into a reused slot (AdapterSwitcher)


def image_error(image) -> str | None:
    """Why `image` is not an HxWx3 uint8 RGB array (None when it is)."""
    if not isinstance(image, np.ndarray):
        return f"image is {type(image).__name__}, expected a numpy array"
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        return f"image is {image.dtype} {image.shape}, expected uint8 HxWx3"
    if image.shape[0] < 2 or image.shape[1] < 2:
        return f"image {image.shape} is too small"
    return None


def build_prompt(processor, template: str, instruction: str, classes, width: int, height: int) -> str:
    """The text the VLM sees: the processor's chat template (image first, then the question) when
    it has one, else `<image>\n<question>`. Training (s1s2_training.vlm.qlora) uses the same."""
    question = template.format(
        instruction=instruction.strip().rstrip("."), classes=", ".join(classes), width=width, height=height
    )
    if getattr(processor, "chat_template", None):
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
        return processor.apply_chat_template(messages, add_generation_prompt=True)
    image_token = getattr(processor, "image_token", "<image>")
    return f"{image_token}\n{question}"


class Planner:
    def __init__(self, config: PlannerConfig, log: Callable[[str], None] | None = None):
        import torch

        self.config = config
        self.log = log or (lambda msg: None)
        if config.num_threads:
            torch.set_num_threads(config.num_threads)
        self.lighting = self._lighting_check()  # before the model: a wrong path fails at once
        self.vlm = load_vlm(config)
        try:
            self.projection, self.projection_source = load_projection(
                self.vlm.local_dir, self.vlm.hidden_size, config.latent_seed
            )
        except ValueError as exc:
            raise ConfigError(f"parameter 'model_id': {exc}") from exc
        library = resolve_path(config.adapter_library) if config.adapter_library else None
        if library is not None and not library.is_dir():
            raise ConfigError(
                f"parameter 'adapter_library': folder {config.adapter_library!r} does not exist ({library})"
            )
        self.switcher = AdapterSwitcher(
            self.vlm.model, library, config.max_resident_adapters, base_fingerprint=self.vlm.fingerprint
        )
        if self.vlm.fingerprint is None:
            self.log(
                f"base model {config.model_id}: weights not fingerprinted; adapters are checked for hashes only"
            )
        if self.switcher.names():
            import peft  # noqa: F401  (imported now so the first swap does not pay for it)
        # Swaps and inference only: a plan that waits on it waits for a swap. Counted: plans whose
        # inference started > 1 ms late because a swap held it, and the longest wait.
        self._lock = threading.Lock()
        self.plans_waited_for_swap = 0
        self.swap_wait_ms_max = 0.0
        if config.initial_adapter:
            try:
                self.switcher.activate(config.initial_adapter)
            except AdapterError as exc:
                raise ConfigError(f"parameter 'initial_adapter': {exc}") from exc
        if config.warm_adapter_slots and self.switcher.names():
            t0 = time.perf_counter()
            warm = self.switcher.warm(self.log)
            if warm:
                self.log(
                    f"warm adapter slots: {', '.join(warm)} loaded in {(time.perf_counter() - t0) * 1e3:.0f} ms "
                    "(later swaps from disk copy weights into these slots)"
                )
        self.cell = config.cell_description
        # the previous plan's pick (label, belt-frame xy, adapter, stamp) for confirm_pick_cm, and
        # the stamp of the last confirmed (published) pick
        self._last_pick: tuple[str, np.ndarray, str, float] | None = None
        self._confirmed_stamp: float | None = None
        # (stamp, adapter, target fields) of the last new pick sent, for gate_keeps_goal
        self._published_pick: tuple[float, str, dict] | None = None
        self.picks_resent = 0  # plans under the gate that re-sent the standing pick
        self.lighting_holds = 0  # plans whose new pick the lighting check stopped
        self.calibration, self.min_confidence = self._calibration()
        try:  # the colour constancy the model was trained with (None: frames go in unchanged)
            self.input_norm = InputNorm.from_card(self.vlm.card)
        except ValueError as exc:
            raise ConfigError(f"parameter 'model_id': {config.model_id}: {exc}") from exc
        # number tokens "0".."999" (empty when numbers are not single tokens): the calibration's
        # features and the sub-token pick point read them
        self._number_ids = conf_mod.number_token_ids(self.vlm.processor.tokenizer)

    def _lighting_check(self):
        """(classifier, feature extractor) for `lighting_check`, or None when it is off."""
        if not self.config.lighting_check:
            return None
        from adapter_manager.classifier import ClassifierFileError, LightingClassifier
        from adapter_manager.features import FeatureExtractor

        try:
            clf = LightingClassifier.load(resolve_path(self.config.lighting_check))
        except ClassifierFileError as exc:
            raise ConfigError(f"parameter 'lighting_check': {exc}") from exc
        if not clf.trained:
            self.log(
                f"lighting_check: {self.config.lighting_check} is untrained (uniform output): no frame is stopped"
            )
        return clf, FeatureExtractor(clf.config.feature_params)

    def lighting_mismatch(self, image_rgb: np.ndarray, adapter: str) -> str:
        """Why `adapter` should not start a pick on this frame ("" when it may): the lighting
        classifier puts the frame in another known domain than the one the adapter is tagged for."""
        if self.lighting is None or adapter == BASE:
            return ""
        m = self.switcher.manifests.get(adapter)  # verified when the adapter was loaded
        domains = lighting_domains(m.context_tags if m is not None else ())
        clf, extract = self.lighting
        if not domains or not set(domains) & set(clf.class_names):
            return ""  # not for a domain the classifier knows (e.g. a nightly adapter for new light)
        pred = clf.predict(extract(image_rgb))
        if not pred.known or pred.label in domains or pred.confidence < self.config.lighting_check_min_p:
            return ""
        return (
            f"the frame's lighting is {pred.label} (p {pred.confidence:.2f}), adapter {adapter!r} is for "
            f"{', '.join(domains)}: no new pick until the adapter manager swaps"
        )

    def _calibration(self) -> tuple[dict | None, float]:
        """(the model card's confidence calibration or None, the min_confidence plans must reach)."""
        params = self.vlm.card.get("confidence_calibration")
        if params is None:
            return None, self.config.min_confidence
        why = conf_mod.check_params(params)
        if why:
            raise ConfigError(
                f"parameter 'model_id': {self.config.model_id} has an unusable confidence_calibration: {why}"
            )
        threshold = self.config.min_confidence
        if self.config.card_min_confidence:
            threshold = max(threshold, float(params.get("min_confidence", 0.0)))
        return params, threshold

    def threshold_for(self, adapter: str) -> float:
        """min_confidence for plans made with `adapter`. The card's calibration (and its threshold)
        was fitted on the base model in daylight; an adapter that carries its own threshold,
        calibrated on its own held-out frames (manifest `metrics.min_confidence`, written by
        `s1s2 nightly`), uses that one instead. `min_confidence` (the parameter) is always a floor."""
        m = self.switcher.manifests.get(adapter)  # verified when the adapter was loaded
        if m is None or not (self.calibration and self.config.card_min_confidence):
            return self.min_confidence
        t = m.metrics.get("min_confidence")
        ok = isinstance(t, (int, float)) and not isinstance(t, bool) and 0.0 <= t <= 1.0
        return max(self.config.min_confidence, float(t)) if ok else self.min_confidence

    def calibration_for(self, adapter: str) -> dict | None:
        """The confidence calibration of plans made with `adapter`: its own (manifest
        `metrics.confidence_calibration`, fitted with its threshold on its domain's held-out
        frames) when it carries a usable one and the base is calibrated, else the card's."""
        m = self.switcher.manifests.get(adapter)
        own = None if m is None or not self.calibration else m.metrics.get("confidence_calibration")
        return conf_mod.own_or(own, self.calibration)

    def norm_for(self, adapter: str):
        """The input colour constancy of plans made with `adapter`: the model card's, unless the
        adapter was trained on raw frames (manifest `input_normalisation: false`)."""
        m = self.switcher.manifests.get(adapter)
        return for_adapter(self.input_norm, None if m is None else m.input_normalisation)

    # -- state ---------------------------------------------------------------------------------
    @property
    def active_adapter(self) -> str:
        return self.switcher.active

    @property
    def resident_adapters(self) -> list[str]:
        return list(self.switcher.resident)

    @property
    def library_adapters(self) -> list[str]:
        return self.switcher.names()

    def model_notes(self) -> list[str]:
        """What an operator should know at start: what is untrained (model card / adapter cards),
        and the library's adapters made for another base model (a swap to them is refused);
        [] when nothing."""
        notes = []
        if self.vlm.trained is False:
            notes.append(
                f"model {self.config.model_id} is UNTRAINED: {self.vlm.card.get('notes', '')}".strip()
            )
        lib = self.switcher.library
        # each manifest read once: whether it is trained, and which base it was made for
        manifests = {n: read_adapter(lib / n).manifest for n in self.library_adapters}
        untrained = [n for n, m in manifests.items() if m is not None and m.trained is False]
        if untrained:
            notes.append(f"adapters UNTRAINED (identical to the base model): {', '.join(untrained)}")
        fingerprint = self.vlm.fingerprint
        other = [
            n
            for n, m in manifests.items()
            if fingerprint and m is not None and m.base_fingerprint != fingerprint
        ]
        if other:
            notes.append(
                f"adapters made for another base model (swaps to them are refused): {', '.join(other)}"
            )
        return notes

    def info(self) -> dict:
        return {
            "model_id": self.config.model_id,
            "source": self.vlm.source,
            "architecture": type(self.vlm.model).__name__,
            "device": self.vlm.device,
            "quantization": self.config.quantization,
            "double_quant": self.vlm.quantized,
            "compute_dtype": self.config.compute_dtype,
            "linear4bit_layers": self.vlm.linear4bit,
            "base_fingerprint": self.vlm.fingerprint,
            "memory_footprint_bytes": self.vlm.footprint_bytes,
            "load_s": round(self.vlm.load_s, 3),
            "trained": self.vlm.trained,
            "latent_projection": self.projection_source,
            "confidence": "calibrated (model card)" if self.calibration else "raw token probability",
            "min_confidence": self.min_confidence,
            "active_min_confidence": self.threshold_for(self.active_adapter),
            "active_calibration": "adapter's own"
            if self.calibration_for(self.active_adapter) is not self.calibration
            else ("model card" if self.calibration else "none"),
            "input_normalisation": self.input_norm.to_card() if self.input_norm else "none",
            "active_input_normalisation": self.norm_for(self.active_adapter) is not None,
            "adapter_library": str(self.switcher.library) if self.switcher.library else "",
            "library_adapters": self.library_adapters,
            "resident_adapters": self.resident_adapters,
            "active_adapter": self.active_adapter,
        }

    # -- adapters ------------------------------------------------------------------------------
    def swap_adapter(self, adapter_id: str, preload: bool = False) -> SwapResult:
        """Activate `adapter_id` ("" = base model), or with `preload` only load it next to the base
        (resident, not active). Waits for a running inference. Never raises."""
        t0 = time.perf_counter()
        with self._lock:
            try:
                info = self.switcher.preload(adapter_id) if preload else self.switcher.activate(adapter_id)
            except AdapterError as exc:
                ms = (time.perf_counter() - t0) * 1e3
                return SwapResult(False, str(exc), ms, self.switcher.active)
        ms = (time.perf_counter() - t0) * 1e3
        what = "base model" if adapter_id == BASE else f"adapter {adapter_id!r}"
        how = "loaded from disk" if info.loaded_from_disk else "resident"
        if info.in_place:
            how += " into a reused slot, in place"
        msg = f"{what} {'preloaded' if preload else 'active'} ({how}, {ms:.1f} ms)"
        if info.evicted:
            msg += f"; evicted {', '.join(info.evicted)}"
        return SwapResult(
            True, msg, ms, self.switcher.active, info.loaded_from_disk, info.evicted, info.in_place
        )

    # -- planning ------------------------------------------------------------------------------
    def build_prompt(self, instruction: str, width: int, height: int) -> str:
        return build_prompt(
            self.vlm.processor, self.config.prompt_template, instruction, self.config.classes, width, height
        )

    def _infer(self, image_rgb: np.ndarray, prompt: str) -> Inference:
        """Run the VLM once (greedy), under the lock that keeps adapter swaps out."""
        import torch
        from PIL import Image

        processor = self.vlm.processor

        def encode(norm):
            image = norm.apply(image_rgb) if norm is not None else image_rgb
            return processor(images=Image.fromarray(image), text=prompt, return_tensors="pt")

        norm = self.norm_for(self.switcher.active)
        inputs = encode(norm)
        t_req = time.perf_counter()
        with self._lock:
            waited_ms = (time.perf_counter() - t_req) * 1e3
            self.swap_wait_ms_max = max(self.swap_wait_ms_max, waited_ms)
            self.plans_waited_for_swap += waited_ms > 1.0
            model = self.switcher.model
            adapter = self.switcher.active
            if self.norm_for(adapter) is not norm:  # swapped meanwhile: the frame as this adapter expects
                norm = self.norm_for(adapter)
                inputs = encode(norm)
            inputs = inputs.to(self.vlm.device)
            if "pixel_values" in inputs:
                inputs["pixel_values"] = inputs["pixel_values"].to(floating_dtype(self.vlm.model))
            t0 = time.perf_counter()
            # LoRA layers were switched on or off at the swap (AdapterSwitcher._sync_layers)
            with torch.inference_mode():
                out = model.generate(
                    **inputs,
                    max_new_tokens=self.config.max_new_tokens,
                    do_sample=False,
                    output_hidden_states=True,
                    output_scores=True,
                    return_dict_in_generate=True,
                )
                seconds = time.perf_counter() - t0
        n_prompt = inputs["input_ids"].shape[1]
        new_tokens = out.sequences[0, n_prompt:].tolist()
        text = processor.batch_decode([new_tokens], skip_special_tokens=True)[0]
        eos = self.vlm.model.generation_config.eos_token_id
        eos = set(eos if isinstance(eos, list) else [eos])
        step_lp = [torch.log_softmax(s[0].float(), -1).cpu().numpy() for s in out.scores]
        logp = []
        for j, tok in enumerate(new_tokens[: len(step_lp)]):
            logp.append(float(step_lp[j][tok]))
            if tok in eos:
                break
        raw = conf_mod.raw_confidence(logp)
        conf, feats = raw, None
        eos_id = next(iter(eos))
        windows = conf_mod.number_windows(new_tokens, step_lp, self._number_ids, eos_id)
        calibration = self.calibration_for(adapter)
        if calibration:
            # Calibrated: sigmoid(w . features + b) (vlm_planner.confidence), fitted on held-out frames;
            # a temporal calibration's agreement with the previous plan is added in _fill_target.
            feats = conf_mod.features(new_tokens, step_lp, self._number_ids, eos_id, windows=windows)
            conf = conf_mod.calibrated(calibration, feats)
        numbers = conf_mod.refined_numbers(new_tokens, step_lp, self._number_ids, eos_id, windows=windows)
        # Prefill hidden states: hidden_states[0] is the prompt step, [-1] its last layer.
        last = out.hidden_states[0][-1][0].float()  # (n_prompt, hidden)
        mask = inputs["attention_mask"][0].to(last.dtype)[:, None]
        pooled = ((last * mask).sum(0) / mask.sum().clamp(min=1)).cpu().numpy()
        return Inference(text, conf, pooled, seconds, adapter, len(logp), raw, feats, numbers)

    def plan(
        self,
        image_rgb: np.ndarray,
        instruction: str,
        stamp: float,
        belt_position: float | None,
        camera: CameraModel,
    ) -> PlanResult:
        """Plan from one image. Raises ValueError only for an image that is not HxWx3 uint8."""
        t_start = time.perf_counter()
        err = image_error(image_rgb)
        if err:
            raise ValueError(err)
        instruction = instruction if instruction and instruction.strip() else self.config.instruction
        h, w = image_rgb.shape[:2]
        prompt = self.build_prompt(instruction, w, h)
        inf = self._infer(image_rgb, prompt)
        text, conf, seconds, adapter = inf.text, inf.confidence, inf.seconds, inf.adapter
        latent = project(inf.pooled, self.projection)
        assert latent.shape == (LATENT_DIM,)
        result = PlanResult(
            stamp=stamp,
            instruction=instruction,
            target_label="",
            target_belt=None,
            target_world=None,
            pixel=None,
            bin_id="",
            place_world=None,
            latent=latent,
            confidence=0.0,
            valid_for_s=self.config.valid_for_s,
            adapter_id=adapter,
            model_id=self.config.model_id,
            raw_text=text,
            reason="",
            inference_s=seconds,
            new_tokens=inf.new_tokens,
            raw_confidence=inf.raw_confidence,
        )
        result.reason = self._fill_target(
            result,
            text,
            conf,
            w,
            h,
            belt_position,
            camera,
            self.threshold_for(adapter),
            stamp,
            adapter,
            inf.numbers,
            image_rgb,
        )
        result.total_s = time.perf_counter() - t_start
        return result

    def _fill_target(
        self,
        result,
        text,
        conf,
        w,
        h,
        belt_position,
        camera,
        min_confidence: float,
        stamp: float,
        adapter: str,
        numbers=None,
        image_rgb: np.ndarray | None = None,
    ) -> str:
        """Turn the parsed answer into a target in place; return why not ("" on success)."""
        previous, self._last_pick = self._last_pick, None
        reason = self._target(result, text, w, h, belt_position, camera, numbers)
        if reason:
            return reason
        # only an answer that names a target can start a pick: holds skip the classifier
        lighting_why = "" if image_rgb is None else self.lighting_mismatch(image_rgb, adapter)
        self._last_pick = (result.target_label, result.target_belt[:2].copy(), adapter, float(stamp))
        calibration = self.calibration_for(adapter)
        if calibration:  # a temporal calibration: agreement with the previous plan counts
            conf = conf_mod.with_temporal(
                calibration, conf, conf_mod.temporal_features(self._last_pick, previous)
            )
        why = ""
        if lighting_why or not (conf >= min_confidence):  # also refuses a NaN confidence
            # a frame under lighting the adapter is not for is treated as an answer under the gate
            why = lighting_why or f"confidence {conf:.3f} below min_confidence {min_confidence:.3f}"
            self.lighting_holds += bool(lighting_why)
            if self.config.gate_keeps_goal and self._pick_stands(stamp, adapter):
                # an answer the gate does not trust is no reason to cancel the pick System 1 is
                # making: send that pick again, expiring when it would have (goals stay at 1 Hz)
                stamp0, _, fields = self._published_pick
                for k, v in fields.items():
                    setattr(result, k, v.copy() if isinstance(v, np.ndarray) else v)
                # the belt-frame target moves with the belt; a pixel or world point of the earlier
                # image would be wrong for this one
                result.pixel, result.target_world = None, None
                result.valid_for_s = stamp0 + self.config.valid_for_s - float(stamp)
                self.picks_resent += 1
                return f"{why}; the pick of the image at {stamp0:.2f} stands until it expires"
        elif self.config.confirm_pick_cm > 0:
            why = self._unconfirmed(previous)
            if not why:
                self._confirmed_stamp = float(stamp)
            elif (
                self._confirmed_stamp is not None
                and 0.0 <= stamp - self._confirmed_stamp <= self.config.valid_for_s
            ):
                result.publish = False  # the confirmed goal stands until it expires
        if why:
            result.target_label, result.pixel, result.target_world, result.target_belt = "", None, None, None
            result.bin_id, result.place_world = "", None
            return why
        result.confidence = float(min(max(conf, 0.0), 1.0))
        fields = ("target_label", "target_belt", "bin_id", "place_world", "latent", "confidence")
        self._published_pick = (float(stamp), adapter, {k: getattr(result, k) for k in fields})
        return ""

    def _pick_stands(self, stamp: float, adapter: str) -> bool:
        """Whether the last new pick sent, made with `adapter`, is still valid at `stamp` (by more
        than 50 ms: a Goal.valid_for of 0 would mean "not set")."""
        p = self._published_pick
        return p is not None and p[1] == adapter and 0.0 <= stamp - p[0] < self.config.valid_for_s - 0.05

    def _unconfirmed(self, previous) -> str:
        """Why the pick in self._last_pick is not confirmed by `previous` ("" when it is): two
        consecutive plans must agree, as the model's wrong picks rarely repeat from one frame to
        the next (docs/sim_vlm.md: the consensus sweep)."""
        label = self._last_pick[0]
        a = conf_mod.agreement(self._last_pick, previous, self.config.valid_for_s)
        if a is None:
            return f"pick of {label} awaits confirmation by the next plan (confirm_pick_cm)"
        if not a[0]:
            return f"pick of {label} not confirmed: the previous plan picked {previous[0]}"
        if a[1] > self.config.confirm_pick_cm:
            return f"pick of {label} not confirmed: {a[1]:.1f} cm from the previous plan's on the belt"
        return ""

    def _target(self, result, text, w, h, belt_position, camera, numbers=None) -> str:
        """Parse the answer and fill the target fields of `result` in place; return why not."""
        cfg = self.config
        parsed = parse_answer(text, cfg.classes, w, h, cfg.coordinate_format, numbers)
        if not parsed.ok:
            return parsed.reason
        if belt_position is None or not math.isfinite(belt_position):
            return "no belt odometry at the image stamp"
        # The camera's intrinsics are for its own resolution; scale if the image differs.
        u = parsed.u * camera.width / w
        v = parsed.v * camera.height / h
        p_world = camera.pixel_to_plane(u, v, cfg.pick_plane_z)
        if p_world is None:
            return f"pixel ({parsed.u:.1f}, {parsed.v:.1f}) does not see the belt plane"
        if abs(p_world[1]) > self.cell.belt.width / 2 + cfg.belt_margin:  # the belt is centred on y = 0
            return f"pick point y={p_world[1]:.3f} m is off the belt"
        # The pixel is the pick point's projection at belt height (no parallax from the item's
        # unknown height); the goal's pick point is on the item (Goal.msg): the class's nominal top.
        p_world = p_world.copy()
        p_world[2] = cfg.pick_plane_z + 2.0 * self.cell.item_class(parsed.label).half_height()
        bin_id = cfg.class_to_bin[parsed.label]
        result.target_label = parsed.label
        result.pixel = (parsed.u, parsed.v)
        result.target_world = p_world
        result.target_belt = world_to_belt(p_world, belt_position)
        result.bin_id = bin_id
        result.place_world = self.cell.place_point(bin_id)
        return ""
