"""`conveyor_sim` node: the MuJoCo cell on ROS 2. Thin: converts messages and calls CellSim.

Threads: the physics timer (own MutuallyExclusiveCallbackGroup) steps the sim in real time and
publishes joint/belt state, ground truth and sort events; a dedicated render thread owns the
OpenGL context and publishes the camera, holding the sim lock only while it copies the scene;
subscriptions, services and diagnostics share a third callback group.
"""

from __future__ import annotations

import sys
import threading
import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import Point, Pose, Quaternion, Vector3
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Bool, Float64MultiArray

from conveyor_sim import config as cfg
from conveyor_sim.cell import CellSim
from conveyor_sim.expert import ExpertDriver
from conveyor_sim.lighting import CUSTOM, DOMAINS, custom_domain
from s1s2 import topics
from s1s2.cell import CellError, load_cell
from s1s2.params import param_specs
from s1s2.ros import declare_parameters, publish_diagnostics, qos_profile, run_node
from s1s2.topics import CONTROL_DT
from s1s2_interfaces.msg import GroundTruth, ItemState, SortEvent
from s1s2_interfaces.srv import ResetSim, SetLighting

MAX_STEP_S = 0.1  # after a stall, catch up at most this much sim time per tick


class ConveyorSimNode(Node):
    def __init__(self, **kwargs):
        super().__init__(cfg.NODE_NAME, **kwargs)
        p = declare_parameters(self, cfg.ConveyorSimConfig)
        self.p = p
        self.schedule = cfg.parse_schedule(p.lighting_schedule)
        try:
            cell = load_cell(p.cell)
        except CellError as exc:
            raise cfg.ConfigError(f"parameter 'cell': {exc}") from exc
        self.sim = CellSim(p.sim_config(), cell)
        spec = cfg.parse_lighting_spec(p.lighting_spec)
        if spec is not None:
            self.sim.set_lighting(spec)
        self.controller = p.controller
        self.camera_rate_hz = p.camera_rate_hz or cell.camera.rate_hz
        self.expert = ExpertDriver(self.sim, CONTROL_DT) if self.controller == "expert" else None
        self._lock = threading.RLock()
        self.ignored_commands = 0
        self.bad_suction = 0
        self._render_ms = 0.0
        self._frames = 0
        self._next_ctrl = 0.0
        self._next = dict.fromkeys(("js", "belt", "vac", "gt"), 0.0)
        self._last_wall = None
        self._wall0 = time.monotonic()
        self._sim0 = 0.0

        tick_group = MutuallyExclusiveCallbackGroup()
        io_group = MutuallyExclusiveCallbackGroup()
        pub = self.create_publisher
        self.image_pub = pub(Image, topics.CAMERA_IMAGE.name, qos_profile(topics.CAMERA_IMAGE.qos))
        self.info_pub = pub(CameraInfo, topics.CAMERA_INFO.name, qos_profile(topics.CAMERA_INFO.qos))
        self.js_pub = pub(JointState, topics.JOINT_STATES.name, qos_profile(topics.JOINT_STATES.qos))
        self.belt_pub = pub(JointState, topics.BELT_STATE.name, qos_profile(topics.BELT_STATE.qos))
        self.vac_pub = pub(Bool, topics.VACUUM.name, qos_profile(topics.VACUUM.qos))
        self.frame_gt_pub = pub(
            GroundTruth, topics.FRAME_GROUND_TRUTH.name, qos_profile(topics.FRAME_GROUND_TRUTH.qos)
        )
        self.gt_pub = pub(GroundTruth, topics.GROUND_TRUTH.name, qos_profile(topics.GROUND_TRUTH.qos))
        self.ev_pub = pub(SortEvent, topics.SORT_EVENTS.name, qos_profile(topics.SORT_EVENTS.qos))
        self.diag_pub = pub(DiagnosticArray, topics.DIAGNOSTICS.name, qos_profile(topics.DIAGNOSTICS.qos))
        # The deadline of /joint_commands (2 control periods) is the robot side's watchdog: when the
        # motor loop stops (a System 1 crash), the arm holds at the last commanded position, as a
        # real driver must (docs/failure_isolation.md); each missed deadline is counted.
        self.create_subscription(
            Float64MultiArray, topics.JOINT_COMMANDS.name, self._on_joint_commands,
            qos_profile(topics.JOINT_COMMANDS.qos), callback_group=io_group,
            event_callbacks=SubscriptionEventCallbacks(deadline=self._on_command_deadline),
        )  # fmt: skip
        self.command_deadlines_missed = 0
        self.command_holds_resumed = 0  # holds that ended because commands came back
        self._commands_stale_since: float | None = None
        self.create_subscription(
            Bool, topics.SUCTION_COMMAND.name, self._on_suction, qos_profile(topics.SUCTION_COMMAND.qos),
            callback_group=io_group,
        )  # fmt: skip
        self.create_service(ResetSim, topics.RESET_SIM_SERVICE, self._on_reset, callback_group=io_group)
        self.create_service(
            SetLighting, topics.SET_LIGHTING_SERVICE, self._on_set_lighting, callback_group=io_group
        )
        self.add_on_set_parameters_callback(self._on_params)
        self._timers = [
            self.create_timer(1.0 / p.physics_rate_hz, self._on_tick, callback_group=tick_group),
            self.create_timer(p.diagnostics_period_s, self._on_diagnostics, callback_group=io_group),
        ]
        self._stop = threading.Event()
        self._render_thread = threading.Thread(
            target=self._render_loop, name="conveyor_sim_render", daemon=True
        )
        self._render_thread.start()
        self.get_logger().info(
            f"cell ready: controller={self.controller} lighting={self.sim.lighting} "
            f"camera {self.sim.camera.width}x{self.sim.camera.height} @ {self.camera_rate_hz:g} Hz"
        )

    # ------------------------------------------------------------ physics
    def _on_tick(self) -> None:
        now = time.monotonic()
        if self._last_wall is None:
            self._last_wall = now
            return
        dt = min(now - self._last_wall, MAX_STEP_S)
        self._last_wall = now
        stamp = self.get_clock().now().to_msg()
        with self._lock:
            sim = self.sim
            # Advance by exactly dt: sim.step carries the part of a physics step it cannot take yet,
            # so stepping until sim.time reached a target counted that part twice and ran the cell
            # about 10 % faster than the wall clock. Step in control periods so the expert (if
            # driving) acts at 50 Hz.
            remaining = dt
            while remaining > 1e-12:
                if self.schedule is not None:
                    dom = self.schedule.domain_at(sim.time % self.schedule.duration)
                    if dom != sim.lighting:
                        sim.set_lighting(dom)
                if self.expert is not None and sim.time >= self._next_ctrl:
                    self.expert.tick()
                    self._next_ctrl = sim.time + CONTROL_DT - 1e-9
                h = min(CONTROL_DT, remaining)
                sim.step(h)
                remaining -= h
            t = sim.time
            msgs = []
            if t >= self._next["js"]:
                self._next["js"] = t + 1.0 / self.p.joint_state_rate_hz
                msgs.append((self.js_pub, self._joint_state(sim.desc.arm.joint_names, sim.joint_positions(),
                                                            sim.joint_velocities(), stamp)))  # fmt: skip
            if t >= self._next["belt"]:
                self._next["belt"] = t + 1.0 / self.p.belt_rate_hz
                msgs.append(
                    (
                        self.belt_pub,
                        self._joint_state(["belt"], [sim.belt_position()], [sim.belt_speed], stamp),
                    )
                )
            if t >= self._next["vac"]:
                self._next["vac"] = t + 1.0 / self.p.vacuum_rate_hz
                msgs.append((self.vac_pub, Bool(data=sim.holding() is not None)))
            if t >= self._next["gt"]:
                self._next["gt"] = t + 1.0 / self.p.ground_truth_rate_hz
                msgs.append((self.gt_pub, self._ground_truth(stamp)))
            events = sim.pop_events()
        for pub_, msg in msgs:
            pub_.publish(msg)
        for ev in events:
            m = SortEvent(item_id=ev.item_id, class_label=ev.class_label, bin_id=ev.bin_id, outcome=int(ev.outcome),
                          correct=bool(ev.correct), lighting_domain=ev.lighting_domain)  # fmt: skip
            m.header.stamp = stamp
            m.header.frame_id = topics.WORLD_FRAME
            self.ev_pub.publish(m)

    @staticmethod
    def _joint_state(names, pos, vel, stamp) -> JointState:
        m = JointState(name=list(names), position=[float(v) for v in pos], velocity=[float(v) for v in vel])
        m.header.stamp = stamp
        return m

    def _ground_truth(self, stamp) -> GroundTruth:
        m = GroundTruth(belt_position=float(self.sim.belt_position()))
        m.header.stamp = stamp
        m.header.frame_id = topics.WORLD_FRAME
        for it in self.sim.ground_truth():
            w, x, y, z = (float(v) for v in it.quaternion)
            m.items.append(
                ItemState(
                    item_id=it.item_id, class_label=it.class_label, bin_id=it.bin_id,
                    pose=Pose(position=Point(x=float(it.position[0]), y=float(it.position[1]), z=float(it.position[2])),
                              orientation=Quaternion(x=x, y=y, z=z, w=w)),
                    size=Vector3(x=float(it.size[0]), y=float(it.size[1]), z=float(it.size[2])),
                    on_belt=bool(it.on_belt), grasped=bool(it.grasped),
                )
            )  # fmt: skip
        return m

    # ------------------------------------------------------------ camera
    def _render_loop(self) -> None:
        period = 1.0 / self.camera_rate_hz
        next_t = time.monotonic()
        try:
            while not self._stop.is_set():
                delay = next_t - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    break
                next_t = max(next_t + period, time.monotonic() - period)
                t0 = time.perf_counter()
                snap = {}

                def snapshot(snap=snap):  # under the sim lock, with the scene the image shows
                    snap["stamp"] = self.get_clock().now().to_msg()
                    snap["info"] = self.sim.camera_info()
                    snap["truth"] = self._ground_truth(snap["stamp"])

                try:
                    img = self.sim.render(lock=self._lock, on_snapshot=snapshot)
                except Exception as exc:  # a GL failure must not kill the node; keep physics running
                    self.get_logger().error(f"render failed: {exc}", throttle_duration_sec=5.0)
                    continue
                self._render_ms = 1000 * (time.perf_counter() - t0)
                self._frames += 1
                stamp, info = snap["stamp"], snap["info"]
                msg = Image(height=img.shape[0], width=img.shape[1], encoding="rgb8", is_bigendian=0,
                            step=3 * img.shape[1], data=img.tobytes())  # fmt: skip
                msg.header.stamp = stamp
                msg.header.frame_id = info.frame_id
                ci = CameraInfo(
                    height=info.height, width=info.width, distortion_model="plumb_bob", d=[0.0] * 5
                )
                ci.k = info.K.reshape(-1).tolist()
                ci.r = np.eye(3).reshape(-1).tolist()
                pm = np.zeros((3, 4))
                pm[:, :3] = info.K
                ci.p = pm.reshape(-1).tolist()
                ci.header = msg.header
                self.image_pub.publish(msg)
                self.info_pub.publish(ci)
                self.frame_gt_pub.publish(snap["truth"])
        finally:
            self.sim.close()  # the GL context is current in this thread: free it here

    # ------------------------------------------------------------ inputs
    def _on_command_deadline(self, _status) -> None:
        self.command_deadlines_missed += 1
        if self._commands_stale_since is None and self.controller == "stack":
            self._commands_stale_since = time.monotonic()
            with self._lock:
                held = self.sim.joint_targets()
            self.get_logger().warning(
                f"no /joint_commands for more than {topics.JOINT_COMMANDS.qos.deadline_s * 1e3:.0f} ms: "
                f"holding the arm at the last commanded position {np.round(held, 3).tolist()}"
            )

    def _on_joint_commands(self, msg: Float64MultiArray) -> None:
        if self.expert is not None:
            self.ignored_commands += 1
            return
        if self._commands_stale_since is not None:
            gap = time.monotonic() - self._commands_stale_since
            self._commands_stale_since = None
            self.command_holds_resumed += 1
            self.get_logger().info(f"/joint_commands resumed after {gap:.2f} s of holding")
        with self._lock:
            res = self.sim.command_joints(list(msg.data))
        if res.startswith("rejected"):
            self.get_logger().warn(f"joint command {res}: {list(msg.data)}", throttle_duration_sec=5.0)

    def _on_suction(self, msg: Bool) -> None:
        if self.expert is not None:
            self.ignored_commands += 1
            return
        with self._lock:
            self.sim.set_suction(bool(msg.data))

    def _on_reset(self, req: ResetSim.Request, resp: ResetSim.Response) -> ResetSim.Response:
        with self._lock:
            self.sim.reset(int(req.seed))
            if self.expert is not None:
                self.expert.reset()
            self._next_ctrl = 0.0
            self._next = dict.fromkeys(self._next, 0.0)
        resp.success = True
        resp.message = f"cell reset with seed {req.seed}"
        return resp

    def _on_set_lighting(self, req: SetLighting.Request, resp: SetLighting.Response) -> SetLighting.Response:
        resp.valid_domains = list(DOMAINS) + [CUSTOM]
        try:
            if req.domain == CUSTOM:
                s = req.spec
                dom = custom_domain(
                    s.name or CUSTOM, intensity=s.intensity, colour_temp_k=s.colour_temp_k, ambient=s.ambient,
                    exposure=s.exposure, white_balance=list(s.white_balance), noise_std=s.noise_std,
                    flicker_amp=s.flicker_amp, flicker_hz=s.flicker_hz, glare=s.glare, direction=list(s.direction),
                )  # fmt: skip
            else:
                dom = req.domain
            with self._lock:
                self.sim.set_lighting(dom)
        except ValueError as exc:  # UnknownDomainError too
            resp.success = False
            resp.message = str(exc)
            return resp
        self.schedule = None  # an explicit switch overrides the timeline
        resp.success = True
        resp.message = f"lighting: {self.sim.lighting}"
        self.get_logger().info(resp.message)
        return resp

    def _on_params(self, params) -> SetParametersResult:
        for prm in params:
            spec = next((s for s in param_specs(cfg.ConveyorSimConfig) if s.name == prm.name), None)
            if spec is None:
                continue
            try:
                value = spec.validate(prm.value)
                if prm.name == "lighting":
                    with self._lock:
                        self.sim.set_lighting(value)
                    self.schedule = None
                elif prm.name == "belt_speed":
                    with self._lock:
                        self.sim.set_belt_speed(float(value) if value >= 0 else self.sim.desc.belt.speed)
                elif prm.name == "lighting_schedule":
                    self.schedule = cfg.parse_schedule(value)
            except ValueError as exc:
                return SetParametersResult(successful=False, reason=str(exc))
            setattr(self.p, prm.name, prm.value)
        return SetParametersResult(successful=True)

    # ------------------------------------------------------------ diagnostics
    def diagnostics_values(self) -> dict[str, str]:
        with self._lock:
            sim = self.sim
            stats = dict(sim.command_stats)
            tot = sim.score.totals()
            values = {
                "sim_time_s": f"{sim.time:.2f}",
                "lighting": sim.lighting,
                "controller": self.controller,
                "items_in_play": str(len(sim.ground_truth())),
                "commands_accepted": str(stats["accepted"]),
                "commands_clamped": str(stats["clamped"]),
                "commands_rejected_nonfinite": str(stats["rejected_nonfinite"]),
                "commands_rejected_length": str(stats["rejected_length"]),
                "commands_ignored_expert_mode": str(self.ignored_commands),
                "command_deadlines_missed": str(self.command_deadlines_missed),
                "holding_no_commands": str(self._commands_stale_since is not None).lower(),
                "command_holds_resumed": str(self.command_holds_resumed),
                "sorted_correct": str(tot.correct),
                "sorted_wrong_bin": str(tot.wrong_bin),
                "missed": str(tot.missed),
                "dropped": str(tot.dropped),
                "camera_frames": str(self._frames),
                "render_ms": f"{self._render_ms:.1f}",
                "physics_resets": str(sim.physics_resets),
            }
        return values

    def _on_diagnostics(self) -> None:
        vals = self.diagnostics_values()
        rejected = int(vals["commands_rejected_nonfinite"]) + int(vals["commands_rejected_length"])
        st = DiagnosticStatus(name="conveyor_sim", hardware_id="mujoco")
        resets = int(vals["physics_resets"])
        st.level = DiagnosticStatus.WARN if rejected or resets else DiagnosticStatus.OK
        why = [f"{rejected} bad joint commands rejected"] * bool(rejected)
        why += [f"{resets} physics resets (MuJoCo found the state unstable)"] * bool(resets)
        st.message = "; ".join(why) or "ok"
        publish_diagnostics(self, self.diag_pub, st, vals)

    def close(self) -> None:
        self._stop.set()
        if self._render_thread.is_alive():
            self._render_thread.join(timeout=5.0)
        self.sim.close()


def main(args: list[str] | None = None) -> int:
    return run_node(ConveyorSimNode, args=args, single_threaded=True)


if __name__ == "__main__":
    sys.exit(main())
