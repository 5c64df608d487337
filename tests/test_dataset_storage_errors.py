"""datasets.storage.reading_dataset_file: how every official and user file loader reports a damaged
file (one line naming the file, what it should be, the error and what to do) and closes what it
opened."""

import zipfile

import pytest

from disentbench.bench.errors import BenchError
from disentbench.datasets.storage import reading_dataset_file


@pytest.mark.parametrize(
    "error", [ValueError("bad shape"), zipfile.BadZipFile("no zip"), EOFError("short"), OSError("io")]
)
def test_a_read_error_becomes_one_line_with_the_remedy_after_cleanup(error):
    closed = []
    with pytest.raises(BenchError) as info:
        with reading_dataset_file(
            "/data/x.npz", "dSprites file", "delete it and download it", lambda: closed.append(1)
        ):
            raise error
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith("/data/x.npz: corrupt or truncated dSprites file (")
    assert type(error).__name__ in text and text.endswith("; delete it and download it")
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert closed == [1]


def test_cleanup_runs_on_both_kinds_of_failure_and_never_on_success():
    calls = []
    with pytest.raises(BenchError, match="already explained"):
        with reading_dataset_file("f.h5", "file", cleanup=lambda: calls.append("bench")):
            raise BenchError("already explained")  # passed through unchanged
    with pytest.raises(BenchError, match=r"^f\.h5: corrupt or truncated file \(KeyError: 'images'\)$"):
        with reading_dataset_file("f.h5", "file", cleanup=lambda: calls.append("read")):
            raise KeyError("images")  # no remedy given: nothing after the parenthesis
    with reading_dataset_file("f.h5", "file", cleanup=lambda: calls.append("ok")):
        pass
    assert calls == ["bench", "read"]


def test_other_errors_are_not_called_corrupt_files():
    with pytest.raises(ZeroDivisionError):
        with reading_dataset_file("f.npz", "file"):
            raise ZeroDivisionError
