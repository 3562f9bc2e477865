"""MuJoCo MJCF generated from the cell description (s1s2.cell).

Modelling choices (for speed and robustness on a CPU):
- Items are free bodies drawn from a fixed pool (`pool_per_class` bodies per class); inactive
  ones are parked far away with gravity compensation and collisions off.
- The belt is a static, frictionless (condim 1, high priority) box; the sim core sets the
  horizontal velocity of items resting on it to the belt speed every physics step, i.e. a
  velocity-driven surface. This is exact, costs nothing, and cannot jam.
- The arm is visual only (no collisions) with position servos and gravity compensation; the
  suction gripper is a kinematic attach done by the core.
- Rendering is tuned for software OpenGL (EGL/llvmpipe): no shadows, no MSAA.
"""

from __future__ import annotations

import math
from xml.sax.saxutils import quoteattr

from s1s2.cell import CellDescription, ItemClassSpec

BIN_COLOURS = {
    "plastic": (0.95, 0.80, 0.10, 1.0),
    "metal": (0.55, 0.58, 0.62, 1.0),
    "paper": (0.15, 0.35, 0.85, 1.0),
    "glass": (0.10, 0.55, 0.25, 1.0),
    "residual": (0.12, 0.12, 0.12, 1.0),
}
BIN_WALL = 0.01
PARK_ORIGIN = (30.0, 30.0, 5.0)  # parked items live here, out of sight and out of contact
ARM_KP = 2000.0
ARM_KV = 80.0


def _f(*vals: float) -> str:
    return " ".join(f"{v:.6g}" for v in vals)


def item_body_name(cls: str, k: int) -> str:
    return f"item_{cls}_{k}"


def park_position(index: int) -> tuple[float, float, float]:
    return (PARK_ORIGIN[0] + 0.5 * (index % 10), PARK_ORIGIN[1] + 0.5 * (index // 10), PARK_ORIGIN[2])


def _item_geom(c: ItemClassSpec, name: str) -> str:
    h = c.half_size
    common = f'name="{name}" material="mat_{c.name}" mass="{c.mass:.6g}" condim="3" friction="0.8 0.01 0.001"'
    if c.shape == "cylinder":
        euler = ' euler="0 90 0"' if c.lying else ""
        return f'<geom type="cylinder" size="{_f(h[0], h[1])}"{euler} {common}/>'
    if c.shape == "sphere":
        return f'<geom type="sphere" size="{_f(h[0])}" {common}/>'
    return f'<geom type="{c.shape}" size="{_f(*h)}" {common}/>'


def _texture(c: ItemClassSpec) -> str:
    # Textures are light grey patterns; each item's own colour is set as geom rgba at spawn and
    # modulates them, so colour and texture vary independently.
    n = f"tex_{c.name}"
    if c.texture == "stripes":
        return f'<texture name="{n}" type="2d" builtin="checker" width="8" height="64" rgb1="1 1 1" rgb2=".7 .7 .7"/>'
    if c.texture == "checker":
        return f'<texture name="{n}" type="2d" builtin="checker" width="32" height="32" rgb1="1 1 1" rgb2=".85 .85 .85"/>'
    if c.texture == "noise":
        return (
            f'<texture name="{n}" type="2d" builtin="flat" width="64" height="64" rgb1="1 1 1" '
            f'mark="random" random="0.25" markrgb=".6 .6 .6"/>'
        )
    return f'<texture name="{n}" type="2d" builtin="flat" width="8" height="8" rgb1="1 1 1"/>'


def build_mjcf(
    desc: CellDescription,
    physics_dt: float = 0.002,
    pool_per_class: int = 6,
    render_width: int = 640,
    render_height: int = 480,
) -> str:
    """Return the MJCF XML string of the cell."""
    arm, belt, cam = desc.arm, desc.belt, desc.camera
    bx, by, bz = arm.base
    lines: list[str] = [
        '<mujoco model="recycling_cell">',
        '  <compiler angle="radian" autolimits="true"/>',
        f'  <option timestep="{physics_dt:.6g}" integrator="implicitfast" cone="pyramidal"/>',
        "  <visual>",
        '    <quality shadowsize="0" offsamples="0"/>',
        f'    <global offwidth="{max(640, render_width)}" offheight="{max(480, render_height)}"/>',
        '    <headlight ambient="0.1 0.1 0.1" diffuse="0.05 0.05 0.05" specular="0 0 0"/>',
        "  </visual>",
        "  <asset>",
        '    <texture name="tex_floor" type="2d" builtin="checker" width="64" height="64" '
        'rgb1=".42 .42 .40" rgb2=".36 .36 .35"/>',
        '    <material name="mat_floor" texture="tex_floor" texrepeat="8 8"/>',
        '    <texture name="tex_belt" type="2d" builtin="checker" width="32" height="32" '
        'rgb1=".10 .10 .11" rgb2=".14 .14 .15"/>',
        '    <material name="mat_belt" texture="tex_belt" texrepeat="20 4"/>',
    ]
    for c in desc.items:
        lines.append("    " + _texture(c))
        lines.append(
            f'    <material name="mat_{c.name}" texture="tex_{c.name}" specular="0.3" shininess="0.4"/>'
        )
    lines.append("  </asset>")
    lines.append("  <worldbody>")
    for i, light in enumerate(desc.lights):
        d = light.direction
        lines.append(
            f'    <light name="{light.name}" pos="{_f(*light.position)}" dir="{_f(*d)}" '
            f'directional="{"true" if i == 0 else "false"}" castshadow="false" '
            f'diffuse="{_f(light.diffuse, light.diffuse, light.diffuse)}" specular="0.1 0.1 0.1"/>'
        )
    lines.append('    <geom name="floor" type="plane" size="4 4 0.1" material="mat_floor" condim="3"/>')
    # Camera: MuJoCo cameras look along their -z with +y up in the image; identity orientation
    # therefore looks straight down with image right = world +x and image up = world +y.
    lines.append(f'    <camera name="{cam.name}" pos="{_f(*cam.position)}" fovy="{cam.fovy_deg:.6g}"/>')
    # Belt: frame + frictionless top surface (velocity-driven by the core).
    half_t = 0.02
    lines.append(
        f'    <geom name="belt" type="box" pos="{_f(0, 0, belt.surface_height - half_t)}" '
        f'size="{_f(belt.length / 2, belt.width / 2, half_t)}" material="mat_belt" condim="1" priority="1"/>'
    )
    lines.append(
        f'    <geom name="belt_frame" type="box" pos="{_f(0, 0, (belt.surface_height - 2 * half_t) / 2)}" '
        f'size="{_f(belt.length / 2 - 0.05, belt.width / 2 - 0.05, (belt.surface_height - 2 * half_t) / 2)}" '
        f'rgba=".3 .3 .32 1" contype="0" conaffinity="0"/>'
    )
    # Bins: floor plate + four walls, open at the top.
    for b in desc.bins:
        sx, sy, sz = b.size
        cx, cy = b.center
        rgba = _f(*BIN_COLOURS.get(b.bin_id, (0.5, 0.5, 0.5, 1.0)))
        w = BIN_WALL
        lines.append(f'    <body name="bin_{b.bin_id}" pos="{_f(cx, cy, 0)}">')
        parts = [
            ("floor", (0, 0, w / 2), (sx / 2, sy / 2, w / 2)),
            ("wxn", (-sx / 2 + w / 2, 0, sz / 2), (w / 2, sy / 2, sz / 2)),
            ("wxp", (sx / 2 - w / 2, 0, sz / 2), (w / 2, sy / 2, sz / 2)),
            ("wyn", (0, -sy / 2 + w / 2, sz / 2), (sx / 2, w / 2, sz / 2)),
            ("wyp", (0, sy / 2 - w / 2, sz / 2), (sx / 2, w / 2, sz / 2)),
        ]
        for pname, pos, size in parts:
            lines.append(
                f'      <geom name="bin_{b.bin_id}_{pname}" type="box" pos="{_f(*pos)}" size="{_f(*size)}" '
                f'rgba="{rgba}"/>'
            )
        lines.append("    </body>")
    # Arm: pedestal, then pan (about z), lift, elbow, wrist (about local -y so positive = up),
    # matching s1s2.kinematics.
    vis = 'contype="0" conaffinity="0" group="1"'
    lines.append(
        f'    <geom name="pedestal" type="cylinder" pos="{_f(bx, by, bz + arm.shoulder_height / 2)}" '
        f'size="{_f(0.07, arm.shoulder_height / 2)}" rgba=".25 .27 .3 1" {vis}/>'
    )
    j = arm.joints
    lines += [
        f'    <body name="arm_pan" pos="{_f(bx, by, bz + arm.shoulder_height)}" gravcomp="1">',
        f'      <joint name="{j[0].name}" type="hinge" axis="0 0 1" range="{_f(j[0].lower, j[0].upper)}" '
        'armature="0.1" damping="1"/>',
        f'      <geom type="sphere" size="0.08" mass="2" rgba=".9 .45 .1 1" {vis}/>',
        '      <body name="arm_upper" gravcomp="1">',
        f'        <joint name="{j[1].name}" type="hinge" axis="0 -1 0" range="{_f(j[1].lower, j[1].upper)}" '
        'armature="0.1" damping="1"/>',
        f'        <geom type="capsule" fromto="{_f(0, 0, 0, arm.upper_len, 0, 0)}" size="0.045" mass="2" '
        f'rgba=".9 .45 .1 1" {vis}/>',
        f'        <body name="arm_fore" pos="{_f(arm.upper_len, 0, 0)}" gravcomp="1">',
        f'          <joint name="{j[2].name}" type="hinge" axis="0 -1 0" range="{_f(j[2].lower, j[2].upper)}" '
        'armature="0.1" damping="1"/>',
        f'          <geom type="capsule" fromto="{_f(0, 0, 0, arm.fore_len, 0, 0)}" size="0.035" mass="1.5" '
        f'rgba=".85 .85 .85 1" {vis}/>',
        f'          <body name="arm_tool" pos="{_f(arm.fore_len, 0, 0)}" gravcomp="1">',
        f'            <joint name="{j[3].name}" type="hinge" axis="0 -1 0" '
        f'range="{_f(j[3].lower, j[3].upper)}" armature="0.05" damping="0.5"/>',
        f'            <geom type="capsule" fromto="{_f(0, 0, 0, arm.tool_len - 0.02, 0, 0)}" size="0.018" '
        f'mass="0.3" rgba=".2 .2 .2 1" {vis}/>',
        f'            <geom name="suction_cup" type="cylinder" pos="{_f(arm.tool_len - 0.01, 0, 0)}" '
        f'euler="0 {math.pi / 2:.6g} 0" size="0.025 0.01" mass="0.05" rgba=".1 .1 .1 1" {vis}/>',
        f'            <site name="suction_tip" pos="{_f(arm.tool_len, 0, 0)}" size="0.01" rgba="1 0 0 1"/>',
        "          </body>",
        "        </body>",
        "      </body>",
        "    </body>",
    ]
    # Item pool.
    idx = 0
    for c in desc.items:
        for k in range(pool_per_class):
            name = item_body_name(c.name, k)
            lines.append(f'    <body name={quoteattr(name)} pos="{_f(*park_position(idx))}" gravcomp="1">')
            lines.append("      <freejoint/>")
            lines.append("      " + _item_geom(c, name))
            lines.append("    </body>")
            idx += 1
    lines.append("  </worldbody>")
    lines.append("  <actuator>")
    for js in arm.joints:
        lines.append(
            f'    <position name="act_{js.name}" joint="{js.name}" kp="{ARM_KP:g}" kv="{ARM_KV:g}" '
            f'ctrlrange="{_f(js.lower, js.upper)}"/>'
        )
    lines.append("  </actuator>")
    lines.append("</mujoco>")
    return "\n".join(lines) + "\n"
