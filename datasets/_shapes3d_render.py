"""A vectorised torch ray-caster of the 3DShapes scene (geometry: docs/datasets.md).

The scene is split in two on purpose. Geometry and light depend only on (scale, shape, orientation),
480 combinations; the three hues only colour the result. `render_layers` ray-casts a batch of
geometries into per-pixel *layers* (coverage of sky/floor/wall/object and the mean shading of each
surface, supersampled for anti-aliasing, with a soft shadow from an area light), and `compose`
colours layers with hues. Caching the layers makes the second step a gather plus a few
elementwise operations, which is what makes training-speed rendering possible on a CPU.

Units: room half-width 1, z up, floor at z = 0, the object at the origin.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from numba import njit

SKY_RGB = (153 / 255.0, 226 / 255.0, 249 / 255.0)
SKY, FLOOR, WALL, OBJECT = 0, 1, 2, 3
NUM_LAYERS = 7  # coverage of sky/floor/wall/object, then shade of floor/wall/object


@dataclass(frozen=True)
class Scene:
    """Constants of the scene: the spec's measurements, some refined by fitting the real frames."""

    image_size: int = 64
    wall_height: float = 0.61
    cam_distance: float = 0.673
    cam_height: float = 0.229  # fitted (spec: 0.22)
    tan_half_fov: float = 0.518
    light: tuple[float, float, float] = (-0.0524, -0.8919, 1.3774)  # fitted (spec: about (-0.1, -0.97, 1.38))
    light_radius: float = 0.15  # fitted; an area light makes the shadow soft
    ambient: float = 0.399  # fitted (spec: about 0.35)
    diffuse: float = 0.748  # fitted (spec: about 0.75)
    object_ambient: float = 0.436  # fitted: objects are brighter than the room's Lambert model
    object_diffuse: float = 0.894  # fitted
    # sizes at scale 1 (times the scale value); cube, cylinder and sphere fitted to the real frames
    cube_side: float = 0.2137
    cylinder_radius: float = 0.1192
    cylinder_height: float = 0.2311
    sphere_radius: float = 0.1292
    capsule_radius: float = 0.093
    capsule_height: float = 0.388
    supersample: int = 2  # per axis
    shadow_samples: int = 6
    shadow_reach: float = 0.9  # shadows are cast on the floor within this distance of the object


def _box(o, d, half, height):
    """Ray/axis-aligned box [-half, half]^2 x [0, height] (slab method): t and outward normal."""
    inf = torch.full_like(o[..., 0], math.inf)
    lo = torch.stack([-half, -half, torch.zeros_like(half)], -1)
    hi = torch.stack([half, half, height], -1)
    with torch.no_grad():
        inv = 1.0 / torch.where(d.abs() < 1e-12, torch.full_like(d, 1e-12), d)
    t0 = (lo - o) * inv
    t1 = (hi - o) * inv
    tmin = torch.minimum(t0, t1)
    tmax = torch.maximum(t0, t1)
    t_near, axis = tmin.max(-1)
    t_far = tmax.min(-1).values
    hit = (t_near <= t_far) & (t_near > 1e-6)
    t = torch.where(hit, t_near, inf)
    normal = torch.zeros_like(o)
    sign = -torch.sign(torch.gather(d, -1, axis.unsqueeze(-1)))
    normal.scatter_(-1, axis.unsqueeze(-1), sign)
    return t, normal


def _sphere(o, d, centre_z, radius):
    """Ray/sphere at (0, 0, centre_z): nearest positive t (inf if none)."""
    oc = o.clone()
    oc[..., 2] = oc[..., 2] - centre_z
    a = (d * d).sum(-1)
    b = (oc * d).sum(-1)
    c = (oc * oc).sum(-1) - radius * radius
    disc = b * b - a * c
    sq = torch.sqrt(disc.clamp_min(0))
    t = (-b - sq) / a
    ok = (disc >= 0) & (t > 1e-6)
    return torch.where(ok, t, torch.full_like(t, math.inf))


def _cylinder_side(o, d, radius, z0, z1):
    """Ray/vertical cylinder side of given radius between heights z0 and z1."""
    a = d[..., 0] ** 2 + d[..., 1] ** 2
    b = o[..., 0] * d[..., 0] + o[..., 1] * d[..., 1]
    c = o[..., 0] ** 2 + o[..., 1] ** 2 - radius * radius
    disc = b * b - a * c
    t = (-b - torch.sqrt(disc.clamp_min(0))) / a.clamp_min(1e-12)
    z = o[..., 2] + t * d[..., 2]
    ok = (disc >= 0) & (t > 1e-6) & (z >= z0) & (z <= z1)
    return torch.where(ok, t, torch.full_like(t, math.inf))


def _cap(o, d, radius, z):
    """Ray/horizontal disc of given radius at height z."""
    t = (z - o[..., 2]) / torch.where(d[..., 2].abs() < 1e-12, torch.full_like(d[..., 2], 1e-12), d[..., 2])
    x = o[..., 0] + t * d[..., 0]
    y = o[..., 1] + t * d[..., 1]
    ok = (t > 1e-6) & (x * x + y * y <= radius * radius)
    return torch.where(ok, t, torch.full_like(t, math.inf))


def intersect_object(o, d, shape, scale, sc: Scene, want_normal: bool = True, shapes=None):
    """Nearest hit of rays o + t d with the object; shape (...,) long, scale (...,) float."""
    inf = math.inf
    t = torch.full_like(o[..., 0], inf)
    normal = torch.zeros_like(o)
    present = set(range(4)) if shapes is None else set(shapes)  # intersect only these primitives
    cyl_top = torch.zeros_like(shape, dtype=torch.bool)
    rs = sc.sphere_radius * scale
    rc = sc.capsule_radius * scale
    hc = sc.capsule_height * scale
    if 0 in present:  # cube
        half = 0.5 * sc.cube_side * scale
        tc, nc = _box(o, d, half, sc.cube_side * scale)
        sel = shape == 0
        t = torch.where(sel, tc, t)
        normal = torch.where(sel.unsqueeze(-1), nc, normal)
    if 1 in present:  # cylinder: side + top cap
        r = sc.cylinder_radius * scale
        h = sc.cylinder_height * scale
        ts = _cylinder_side(o, d, r, torch.zeros_like(h), h)
        tt = _cap(o, d, r, h)
        sel = shape == 1
        t = torch.where(sel, torch.minimum(ts, tt), t)
        cyl_top = sel & (tt <= ts)
    if 2 in present:  # sphere
        t = torch.where(shape == 2, _sphere(o, d, rs, rs), t)
    if 3 in present:  # capsule: side between the two hemisphere centres, plus the two spheres
        tcs = _cylinder_side(o, d, rc, rc, hc - rc)
        tcap = torch.minimum(tcs, torch.minimum(_sphere(o, d, rc, rc), _sphere(o, d, hc - rc, rc)))
        t = torch.where(shape == 3, tcap, t)
    if not want_normal:
        return t, None
    p = o + t.unsqueeze(-1).clamp_max(1e3) * d
    # normals of the round shapes: from the nearest point on the axis segment
    zc = torch.where(
        shape == 2,
        rs,
        torch.where(shape == 3, p[..., 2].clamp(torch.minimum(rc, hc - rc), hc - rc), p[..., 2]),
    )
    radial = torch.stack([p[..., 0], p[..., 1], p[..., 2] - zc], -1)
    radial = radial / radial.norm(dim=-1, keepdim=True).clamp_min(1e-9)
    round_shape = (shape == 1) | (shape == 2) | (shape == 3)
    normal = torch.where(round_shape.unsqueeze(-1), radial, normal)
    up = torch.tensor([0.0, 0.0, 1.0], dtype=o.dtype, device=o.device).expand_as(normal)
    normal = torch.where(cyl_top.unsqueeze(-1), up, normal)
    return t, normal


def _light_samples(sc: Scene, device, dtype) -> torch.Tensor:
    """Points on a horizontal disc around the light (a fixed Fibonacci spiral: deterministic)."""
    k = max(1, sc.shadow_samples)
    i = torch.arange(k, dtype=dtype, device=device) + 0.5
    rad = sc.light_radius * torch.sqrt(i / k) if k > 1 else torch.zeros(1, dtype=dtype, device=device)
    ang = i * math.pi * (3 - math.sqrt(5))
    base = torch.tensor(sc.light, dtype=dtype, device=device)
    return base + torch.stack([rad * torch.cos(ang), rad * torch.sin(ang), torch.zeros_like(rad)], -1)


def render_layers(shape: torch.Tensor, scale: torch.Tensor, azimuth: torch.Tensor, sc: Scene = Scene()) -> torch.Tensor:
    """Ray-cast a batch of geometries: float32 (n, NUM_LAYERS, H, W) on the inputs' device.

    shape: long (n,) in 0..3; scale: float (n,) scale value; azimuth: float (n,) radians.
    """
    device, dtype = azimuth.device, torch.float32
    n, size, ss = azimuth.shape[0], sc.image_size, sc.supersample
    m = size * ss
    # sample positions in normalised screen coordinates, u right, v up
    g = (torch.arange(m, dtype=dtype, device=device) + 0.5) / m * 2 - 1
    v, u = -g.view(m, 1).expand(m, m), g.view(1, m).expand(m, m)
    sa, ca = torch.sin(azimuth).view(n, 1, 1), torch.cos(azimuth).view(n, 1, 1)
    eye = torch.stack(
        [sc.cam_distance * sa, -sc.cam_distance * ca, torch.full_like(sa, sc.cam_height)], -1
    )  # (n,1,1,3)
    fwd = torch.stack([-sa, ca, torch.zeros_like(sa)], -1)
    right = torch.stack([ca, sa, torch.zeros_like(sa)], -1)
    upv = torch.tensor([0.0, 0.0, 1.0], dtype=dtype, device=device)
    d = fwd + sc.tan_half_fov * (u.unsqueeze(-1) * right + v.unsqueeze(-1) * upv)  # (n,m,m,3)
    o = eye.expand_as(d)
    inf = torch.full_like(d[..., 0], math.inf)
    # room: floor, walls, sky
    dz = d[..., 2]
    t_floor = torch.where(dz < 0, -o[..., 2] / torch.where(dz < 0, dz, -torch.ones_like(dz)), inf)
    dx, dy = d[..., 0], d[..., 1]
    tx = (torch.sign(dx) - o[..., 0]) / torch.where(dx.abs() < 1e-12, torch.full_like(dx, 1e-12), dx)
    ty = (torch.sign(dy) - o[..., 1]) / torch.where(dy.abs() < 1e-12, torch.full_like(dy, 1e-12), dy)
    tx = torch.where(dx.abs() < 1e-12, inf, tx)
    ty = torch.where(dy.abs() < 1e-12, inf, ty)
    t_wall = torch.minimum(tx, ty)
    z_wall = o[..., 2] + t_wall * dz
    wall_ok = (z_wall >= 0) & (z_wall <= sc.wall_height)
    t_wall = torch.where(wall_ok, t_wall, inf)
    shp = shape.view(n, 1, 1).expand(n, m, m)
    scl = scale.to(dtype).view(n, 1, 1).expand(n, m, m)
    present = set(torch.unique(shape).tolist())
    t_obj, n_obj = intersect_object(o, d, shp, scl, sc, shapes=present)
    t_room = torch.minimum(t_floor, t_wall)
    label = torch.where(
        t_obj < t_room,
        torch.full_like(shp, OBJECT),
        torch.where(
            (t_floor <= t_wall) & (t_floor < inf),
            torch.full_like(shp, FLOOR),
            torch.where(t_wall < inf, torch.full_like(shp, WALL), torch.full_like(shp, SKY)),
        ),
    )
    t_hit = torch.minimum(t_obj, t_room).clamp_max(1e3)
    p = o + t_hit.unsqueeze(-1) * d
    wall_n = torch.where(
        (tx <= ty).unsqueeze(-1),
        torch.stack([-torch.sign(dx), torch.zeros_like(dx), torch.zeros_like(dx)], -1),
        torch.stack([torch.zeros_like(dy), -torch.sign(dy), torch.zeros_like(dy)], -1),
    )
    floor_n = torch.zeros_like(d)
    floor_n[..., 2] = 1
    normal = torch.where(
        (label == OBJECT).unsqueeze(-1), n_obj, torch.where((label == FLOOR).unsqueeze(-1), floor_n, wall_n)
    )
    # Lambert from the light centre; the shadow is the visible fraction of an area light
    lights = _light_samples(sc, device, dtype)
    to_light = torch.tensor(sc.light, dtype=dtype, device=device) - p
    lam = ((to_light / to_light.norm(dim=-1, keepdim=True)) * normal).sum(-1).clamp_min(0)
    room = (label == FLOOR) | (label == WALL)
    # shadow rays only from lit room points near the object (compacted: the rest cannot be shadowed)
    near = room & (lam > 0) & (p[..., 0] ** 2 + p[..., 1] ** 2 < sc.shadow_reach**2) & (p[..., 2] < 0.05)
    ps, ns, shs, scs = p[near], normal[near], shp[near], scl[near]
    vis_near = torch.zeros_like(ps[:, 0])
    for light in lights:
        ts, _ = intersect_object(ps + 1e-4 * ns, light - ps, shs, scs, sc, want_normal=False, shapes=present)
        vis_near = vis_near + (ts > 1.0).to(dtype)
    visible = torch.ones_like(lam)
    visible[near] = vis_near / len(lights)
    shade = torch.where(
        label == OBJECT,
        sc.object_ambient + sc.object_diffuse * lam,
        sc.ambient + sc.diffuse * lam * visible,
    )
    # anti-aliasing: average coverage and per-surface shade over the ss x ss samples of a pixel
    onehot = torch.stack([(label == k).to(dtype) for k in range(4)], 1)  # (n,4,m,m)
    shaded = onehot[:, 1:] * shade.unsqueeze(1)
    pool = torch.nn.functional.avg_pool2d
    cov = pool(onehot, ss)
    mean_shade = pool(shaded, ss) / cov[:, 1:].clamp_min(1e-6)
    return torch.cat([cov, mean_shade], 1)


def hsv_to_rgb(h: torch.Tensor) -> torch.Tensor:
    """HSV(h, 1, 1) -> RGB in [0, 1]; h (...,) in [0, 1): (..., 3)."""
    k = torch.tensor([5.0, 3.0, 1.0], dtype=h.dtype, device=h.device)
    kk = (k + h.unsqueeze(-1) * 6) % 6
    return 1 - torch.clamp(torch.minimum(kk, 4 - kk), 0, 1)


def compose(
    layers: torch.Tensor, floor_hue: torch.Tensor, wall_hue: torch.Tensor, object_hue: torch.Tensor
) -> torch.Tensor:
    """Colour layers (n, 7, H, W) with hue values (n,): float32 (n, 3, H, W) in [0, 1], on the 1/255 grid."""
    layers = layers.to(torch.float32)
    sky = torch.tensor(SKY_RGB, dtype=torch.float32, device=layers.device).view(1, 3, 1, 1)
    img = layers[:, 0:1] * sky
    for k, hue in ((1, floor_hue), (2, wall_hue), (3, object_hue)):
        rgb = hsv_to_rgb(hue.to(torch.float32)).view(-1, 3, 1, 1)
        img = img + layers[:, k : k + 1] * torch.clamp(layers[:, k + 3 : k + 4] * rgb, max=1.0)
    return torch.round(img.clamp(0, 1) * 255) / 255


@njit(cache=True, nogil=True)
def _compose_gather(cache, key, rgb, sky, out):
    """compose(cache[key], ...) in one pass over the pixels, float32 operation for operation as
    the torch version (so the images are bit for bit the same), without materialising the
    gathered layers: cache (G, 7, P), key (n,), rgb (n, 3 surfaces, 3 channels), sky (3,) ->
    out (n, 3, P)."""
    one = np.float32(1.0)
    zero = np.float32(0.0)
    levels = np.float32(255.0)
    for i in range(key.shape[0]):
        layer = cache[key[i]]
        for c in range(3):
            r1 = rgb[i, 0, c]
            r2 = rgb[i, 1, c]
            r3 = rgb[i, 2, c]
            sk = sky[c]
            for p in range(layer.shape[1]):
                img = layer[0, p] * sk
                img = img + layer[1, p] * min(layer[4, p] * r1, one)
                img = img + layer[2, p] * min(layer[5, p] * r2, one)
                img = img + layer[3, p] * min(layer[6, p] * r3, one)
                img = min(max(img, zero), one)
                out[i, c, p] = np.rint(img * levels) / levels


def compose_cached_cpu(
    cache: torch.Tensor, key: torch.Tensor, floor_hue: torch.Tensor, wall_hue: torch.Tensor, object_hue: torch.Tensor
) -> torch.Tensor:
    """`compose(cache[key], hues...)` on the CPU from a float32 layer cache (G, 7, H, W): the same
    images, ~5x faster (one pass, no gathered copy; see `python -m disentbench.bench.perf data`)."""
    n, size = key.shape[0], cache.shape[-1]
    rgb = torch.stack([hsv_to_rgb(h.to(torch.float32)) for h in (floor_hue, wall_hue, object_hue)], 1)
    sky = torch.tensor(SKY_RGB, dtype=torch.float32)
    out = torch.empty((n, 3, cache.shape[-2], size), dtype=torch.float32)
    _compose_gather(
        cache.reshape(cache.shape[0], NUM_LAYERS, -1).numpy(),
        key.numpy(),
        rgb.numpy(),
        sky.numpy(),
        out.view(n, 3, -1).numpy(),
    )
    return out
