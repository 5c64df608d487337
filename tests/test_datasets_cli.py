"""`python -m disentbench.datasets download|render`: offline failure is one line; rendered files load with the
official loaders and hold exactly the procedural images."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from disentbench.datasets.__main__ import main
from disentbench.datasets.dsprites import DSpritesOfficial, DSpritesProcedural
from disentbench.datasets.shapes3d import Shapes3DOfficial, Shapes3DProcedural


def test_download_offline_fails_with_one_line(tmp_path, monkeypatch, capsys):
    import urllib.request

    def offline(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    assert main(["download", "shapes3d", "--data-dir", str(tmp_path)]) != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "could not download" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # no partial file left behind


def test_unknown_dataset_is_a_usage_error():
    proc = subprocess.run(
        [sys.executable, "-m", "disentbench.datasets", "render", "mnist", "--out", "x"], capture_output=True, text=True
    )
    assert proc.returncode != 0 and "invalid choice" in proc.stderr


def test_render_dsprites_loads_with_the_official_loader(tmp_path):
    sizes = (3, 2, 4, 3, 3)
    out = tmp_path / "d.npz"
    assert main(["render", "dsprites", "--out", str(out), "--sizes", ",".join(map(str, sizes))]) == 0
    with np.load(out) as z:  # official dtypes and value conventions, no pickle needed
        assert z["imgs"].dtype == np.uint8 and set(np.unique(z["imgs"])) <= {0, 1}
        assert z["latents_classes"].dtype == np.int64 and (z["latents_classes"][:, 0] == 0).all()
        v = z["latents_values"]
        np.testing.assert_allclose(np.unique(v[:, 2]), np.linspace(0.5, 1, 6)[:2])
        np.testing.assert_allclose(np.unique(v[:, 3]), np.linspace(0, 2 * np.pi, 40)[:4])
        np.testing.assert_allclose(np.unique(v[:, 4]), np.linspace(0, 1, 32)[:3])
        assert set(np.unique(v[:, 0])) == {1.0} and set(np.unique(v[:, 1])) == {1.0, 2.0, 3.0}
    ds = DSpritesOfficial(out, verify=False, factor_sizes=sizes)
    f = ds.factors_of(np.arange(len(ds)))
    np.testing.assert_array_equal(ds.observations(f).numpy(), DSpritesProcedural().observations(f).numpy())


def test_render_shapes3d_loads_with_the_official_loader(tmp_path):
    sizes = (2, 1, 2, 2, 2, 2)
    out = tmp_path / "s.h5"
    assert main(["render", "shapes3d", "--out", str(out), "--sizes", ",".join(map(str, sizes))]) == 0
    ds = Shapes3DOfficial(out, verify=False, factor_sizes=sizes)
    f = ds.factors_of(np.arange(len(ds)))
    np.testing.assert_array_equal(ds.observations(f).numpy(), Shapes3DProcedural().observations(f).numpy())


@pytest.mark.parametrize("sizes", ["3,2", "4,2,4,3,3", "a,b,c,d,e"])
def test_bad_sizes_are_refused(tmp_path, capsys, sizes):
    assert main(["render", "dsprites", "--out", str(tmp_path / "d.npz"), "--sizes", sizes]) == 1
    assert "--sizes" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
