"""`python -m disentbench.datasets download NAME` and `python -m disentbench.datasets render NAME --out FILE`.

`download` fetches the official files of a dataset (for cars3d: the archive, of which it keeps
cars/) and checks or records their checksums; `scream` is The Scream, for scream_dsprites.

`render` writes the procedural grid in the official file format (dSprites npz, 3DShapes h5), so the
stand-in can be used exactly like the official file (load it with verification off: its checksum
differs). `--sizes` renders a reduced grid (the first values of each factor), mainly for tests.
"""

from __future__ import annotations

import argparse
import sys
import zipfile
from pathlib import Path

import numpy as np

from disentbench.atomic import atomic_path
from disentbench.errors import BenchError

RENDERABLE = ("dsprites", "shapes3d")
#: what `download` fetches: the official files of every dataset (a dSprites variant: the dSprites
#: file, and The Scream for scream_dsprites), and `scream` alone
DOWNLOADABLE = (
    "dsprites", "color_dsprites", "noisy_dsprites", "scream_dsprites", "scream", "shapes3d",
    "mpi3d_toy", "mpi3d_realistic", "mpi3d_real", "cars3d", "smallnorb",
)  # fmt: skip


def _remotes(name: str) -> list:
    """The files `download NAME` fetches."""
    if name in ("color_dsprites", "noisy_dsprites"):
        return _remotes("dsprites")
    if name == "scream_dsprites":
        return _remotes("dsprites") + _remotes("scream")
    if name == "dsprites":
        from disentbench.datasets.dsprites import REMOTE
    elif name == "shapes3d":
        from disentbench.datasets.shapes3d import REMOTE
    elif name.startswith("mpi3d_"):
        from disentbench.datasets.mpi3d import REMOTES

        REMOTE = REMOTES[name]
    elif name == "scream":
        from disentbench.datasets.dsprites_variants import SCREAM as REMOTE
    elif name == "cars3d":
        from disentbench.datasets.cars3d import ARCHIVE as REMOTE
    else:
        from disentbench.datasets.smallnorb import KINDS, SPLITS, remote

        return [remote(split, kind, gz=True) for split in SPLITS for kind in KINDS]
    return [REMOTE]


def unpack_cars(archive: Path, target_dir: Path) -> int:
    """Copy data/cars/*.mat and list.txt out of the Cars3D archive into target_dir/cars/ (nothing
    else, and no path from the archive is trusted beyond the file's own name)."""
    import re
    import tarfile

    wanted = re.compile(r"^(?:\./)?data/cars/([^/]+\.mat|list\.txt)$")
    count = 0
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                match = wanted.match(member.name)
                if not (match and member.isfile()):
                    continue
                source = tar.extractfile(member)
                with source, atomic_path(target_dir / "cars" / match.group(1)) as tmp, open(tmp, "wb") as out:
                    while block := source.read(1 << 22):
                        out.write(block)
                count += 1
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BenchError(
            f"{archive}: cannot unpack ({type(exc).__name__}: {exc}); delete it and download again"
        ) from None
    if count == 0:
        raise BenchError(f"{archive}: holds no data/cars/*.mat; not the Cars3D archive")
    return count


def _grid(sizes: tuple[int, ...]) -> np.ndarray:
    n = int(np.prod(sizes))
    return np.stack(np.unravel_index(np.arange(n), sizes), axis=1).astype(np.int64)


def _parse_sizes(text: str | None, full: tuple[int, ...]) -> tuple[int, ...]:
    if text is None:
        return full
    try:
        sizes = tuple(int(s) for s in text.split(","))
    except ValueError:
        raise BenchError(
            f"--sizes {text!r}: give {len(full)} comma-separated integers, e.g. {','.join(map(str, full))}"
        ) from None
    if len(sizes) != len(full) or any(s < 1 or s > f for s, f in zip(sizes, full)):
        raise BenchError(f"--sizes {text!r}: need {len(full)} integers between 1 and {list(full)}")
    return sizes


def _write_npy_member(zf: zipfile.ZipFile, name: str, shape: tuple[int, ...], dtype, chunks) -> None:
    """Stream an .npy member into the zip: header, then the row chunks (never the whole array)."""
    with zf.open(name + ".npy", "w", force_zip64=True) as f:
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": shape}
        np.lib.format.write_array_header_1_0(f, header)
        for chunk in chunks:
            f.write(np.ascontiguousarray(chunk, dtype=dtype).tobytes())


def render_dsprites(out: Path, sizes: tuple[int, ...], device: str, batch: int = 4096) -> int:
    from disentbench.datasets.dsprites import DSpritesProcedural, factor_values

    grid = _grid(sizes)
    n = len(grid)
    ds = DSpritesProcedural(device=device)
    classes = np.concatenate([np.zeros((n, 1), np.int64), grid], axis=1)
    vals = factor_values(grid)
    values = np.stack(
        [np.ones(n), vals["shape"], vals["scale"], vals["orientation"], vals["posX"], vals["posY"]], axis=1
    ).astype(np.float64)

    def images():
        for start in range(0, n, batch):
            yield ds.observations(grid[start : start + batch]).cpu().numpy().astype(np.uint8).reshape(-1, 64, 64)

    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        _write_npy_member(zf, "imgs", (n, 64, 64), np.uint8, images())
        _write_npy_member(zf, "latents_classes", (n, 6), np.int64, [classes])
        _write_npy_member(zf, "latents_values", (n, 6), np.float64, [values])
    return n


def render_shapes3d(out: Path, sizes: tuple[int, ...], device: str, batch: int = 1024) -> int:
    import h5py

    from disentbench.datasets.shapes3d import Shapes3DProcedural, factor_values

    grid = _grid(sizes)
    n = len(grid)
    ds = Shapes3DProcedural(device=device)
    with h5py.File(out, "w") as h5:
        images = h5.create_dataset("images", shape=(n, 64, 64, 3), dtype=np.uint8, chunks=(min(n, 64), 64, 64, 3))
        h5.create_dataset("labels", data=factor_values(grid).astype(np.float64))
        for start in range(0, n, batch):
            x = ds.observations(grid[start : start + batch])
            images[start : start + len(x)] = (x * 255).round().to("cpu").numpy().astype(np.uint8).transpose(0, 2, 3, 1)
    return n


def cmd_download(args: argparse.Namespace) -> int:
    from disentbench.datasets.files import cache_dir, download

    for remote in _remotes(args.dataset):
        path = download(remote, args.data_dir)
        checked = "checksum verified" if remote.digest else "checksum recorded on first use"
        print(f"{args.dataset}: {path} ({checked})")
        if args.dataset == "cars3d":
            target = Path(args.data_dir) if args.data_dir else cache_dir()
            count = unpack_cars(path, target)
            path.unlink()
            path.with_name(path.name + f".{remote.algorithm}-recorded").unlink(missing_ok=True)
            print(f"cars3d: {count} files unpacked into {target / 'cars'}")
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    if args.dataset == "dsprites":
        from disentbench.datasets.dsprites import FACTOR_SIZES
    else:
        from disentbench.datasets.shapes3d import FACTOR_SIZES
    sizes = _parse_sizes(args.sizes, FACTOR_SIZES)
    out = Path(args.out)
    if not out.parent.is_dir():
        raise BenchError(f"--out {out}: directory {out.parent} does not exist")
    # write next to the target, then move into place, so a failed run never leaves half a file
    with atomic_path(out) as tmp:
        render = render_dsprites if args.dataset == "dsprites" else render_shapes3d
        n = render(tmp, sizes, args.device)
    print(f"{args.dataset}: wrote {n} procedural images to {out} (official format; load with verify=False)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m disentbench.datasets", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("download", help="fetch an official file and verify its checksum")
    d.add_argument("dataset", choices=DOWNLOADABLE)
    d.add_argument("--data-dir", default=None, help="target directory (default: the per-user cache)")
    d.set_defaults(func=cmd_download)
    r = sub.add_parser("render", help="write the procedural grid in the official file format")
    r.add_argument("dataset", choices=RENDERABLE)
    r.add_argument("--out", required=True, help="output file (.npz for dsprites, .h5 for shapes3d)")
    r.add_argument("--sizes", default=None, help="reduced grid: the first k values of each factor, e.g. 3,2,4,3,3")
    r.add_argument("--device", default="cpu")
    r.set_defaults(func=cmd_render)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
