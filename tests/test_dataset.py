"""The Fashion-MNIST loader on the real files: content, checksums, search order."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest

from fmnist_edge.edge import dataset
from fmnist_edge.edge.errors import DataError


@pytest.fixture(scope="module")
def train() -> dataset.Split:
    return dataset.load_split("train")


@pytest.fixture(scope="module")
def test() -> dataset.Split:
    return dataset.load_split("test")


def test_shapes_and_dtypes(train: dataset.Split, test: dataset.Split) -> None:
    assert train.images.shape == (60000, 28, 28) and train.images.dtype == np.uint8
    assert train.labels.shape == (60000,) and train.labels.dtype == np.uint8
    assert test.images.shape == (10000, 28, 28)
    assert test.labels.shape == (10000,)


def test_class_balance(train: dataset.Split, test: dataset.Split) -> None:
    assert np.bincount(train.labels, minlength=10).tolist() == [6000] * 10
    assert np.bincount(test.labels, minlength=10).tolist() == [1000] * 10


def test_first_labels_and_pixel_stats(train: dataset.Split, test: dataset.Split) -> None:
    assert train.labels[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    assert test.labels[:10].tolist() == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]
    assert train.images.min() == 0 and train.images.max() == 255
    assert train.images.mean() == pytest.approx(72.9404, abs=1e-3)
    assert dataset.CLASS_NAMES[9] == "Ankle boot"


def _copy_all(src: Path, dst: Path) -> None:
    for spec in dataset.FILES.values():
        shutil.copy(src / spec.name, dst / spec.name)


def test_flipped_byte_is_refused(tmp_path: Path, data_dir: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    _copy_all(data_dir, tmp_path)
    target = tmp_path / dataset.FILES["test-labels"].name
    raw = bytearray(target.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    target.write_bytes(bytes(raw))
    monkeypatch.setenv(dataset.ENV_VAR, str(tmp_path))
    with pytest.raises(DataError, match=r"checksum mismatch.*t10k-labels"):
        dataset.load_split("test", download=False)


def test_truncated_file_is_refused(tmp_path: Path, data_dir: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    _copy_all(data_dir, tmp_path)
    target = tmp_path / dataset.FILES["test-images"].name
    target.write_bytes(target.read_bytes()[:100_000])
    monkeypatch.setenv(dataset.ENV_VAR, str(tmp_path))
    with pytest.raises(DataError, match="truncated"):
        dataset.load_split("test", download=False)


def test_missing_files_say_where_to_put_them(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(dataset.ENV_VAR, str(tmp_path / "nowhere"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(DataError, match="FMNIST_DATA_DIR") as err:
        dataset.load_split("test", download=False)
    assert "\n" not in str(err.value)


def test_cache_is_used_after_env_dir(tmp_path: Path, data_dir: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    dataset_cache = cache / "fmnist-edge" / "fashion-mnist"
    dataset_cache.mkdir(parents=True)
    _copy_all(data_dir, dataset_cache)
    monkeypatch.setenv(dataset.ENV_VAR, str(tmp_path / "empty"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    assert dataset.locate("test-labels", download=False).parent == dataset_cache


def test_failed_download_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No network here: the download fails cleanly and no partial file is left in the cache."""
    monkeypatch.setenv(dataset.ENV_VAR, str(tmp_path / "empty"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv(dataset.NO_DOWNLOAD_VAR, raising=False)
    monkeypatch.setattr(dataset, "MIRROR", "http://127.0.0.1:9/")  # closed port
    with pytest.raises(DataError, match="could not download"):
        dataset.locate("test-labels")
    leftovers = list((tmp_path / "cache").rglob("*"))
    assert [p for p in leftovers if p.is_file()] == []


def test_wrong_magic_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.gz"
    with gzip.open(bad, "wb") as fh:
        fh.write(b"\x00\x00\x08\x01" + b"\x00" * 12)
    with pytest.raises(DataError, match="not an IDX"):
        dataset._read_idx(bad, 0x803, 3)


def test_validation_split_matches_sklearn_recipe() -> None:
    """70/30, seeded, disjoint and covering: what train_test_split(random_state=777) gives."""
    tr, va = dataset.validation_split(60000, 0.3, 777)
    assert len(tr) == 42000 and len(va) == 18000
    assert len(np.intersect1d(tr, va)) == 0
    assert np.array_equal(np.sort(np.concatenate([tr, va])), np.arange(60000))
    perm = np.random.RandomState(777).permutation(60000)
    assert np.array_equal(va, perm[:18000])
    tr2, _ = dataset.validation_split(60000, 0.3, 778)
    assert not np.array_equal(tr, tr2)


def test_download_from_mirror_is_verified_and_cached(tmp_path: Path, data_dir: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A real HTTP download (local server standing in for the mirror) lands in the cache."""
    import functools
    import http.server
    import threading

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(data_dir))
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv(dataset.ENV_VAR, "")
        monkeypatch.delenv(dataset.NO_DOWNLOAD_VAR, raising=False)
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
        monkeypatch.setattr(dataset, "MIRROR", f"http://127.0.0.1:{server.server_port}/")
        reports: list[tuple[float, float, str]] = []
        split = dataset.load_split("test", progress=lambda *a: reports.append(a))
    finally:
        server.shutdown()
    assert split.labels[:3].tolist() == [9, 2, 1]
    # the progress callback saw each file through to its full size (no CLI layer involved)
    finished = {label.split()[0] for done, total, label in reports if done == total}
    assert finished == {dataset.FILES["test-images"].name, dataset.FILES["test-labels"].name}
    cached = sorted(p.name for p in dataset.cache_dir().iterdir())
    assert cached == sorted([dataset.FILES["test-images"].name, dataset.FILES["test-labels"].name])
