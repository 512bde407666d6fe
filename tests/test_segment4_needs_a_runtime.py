"""An explicit ``segment-4`` where no runtime can run the learned segmenter (32-bit Pi OS:
numpy only) is refused in one line naming what to install, in every command and over HTTP;
plain ``segment`` still falls back to segment-3 and says so.

A numpy-only machine is simulated in-process by making :func:`segnet.available` answer
False (what it answers there); everything else is real: the shipped bundle, a real image,
the commands' own entry points and exit codes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from fmnist_edge.edge import cli, cli_util, dataset, evaluate_cli, photo, segnet
from fmnist_edge.edge import dataset_pngs as pngs


@pytest.fixture
def numpy_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(segnet, "available", lambda: False)


@pytest.fixture(scope="module")
def shirt(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """A real test-set image, as a photo-sized RGB file (the segmenters want a picture)."""
    folder = tmp_path_factory.mktemp("photo")
    pngs.write(folder, limit=1)
    (small,) = folder.glob("*.png")
    path = folder / "shirt.jpg"
    Image.open(small).convert("RGB").resize((224, 224)).save(path)
    return path


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


def _says_what_to_install(line: str) -> None:
    assert "segment-4" in line and "learned segmenter" in line
    assert "tflite-runtime" in line and "32-bit" in line
    assert "ai-edge-litert" in line and "onnxruntime" in line


@pytest.mark.usefixtures("numpy_only")
def test_edge_classify_refuses_segment_4(shirt: Path, capsys: pytest.CaptureFixture[str]
                                         ) -> None:
    assert cli_util.run(cli.cli, [str(shirt), "-p", "segment-4"]) == cli_util.EXIT_USAGE
    line = _one_line(capsys)
    assert line.startswith("edge-classify: error:")
    _says_what_to_install(line)


@pytest.mark.usefixtures("numpy_only")
def test_plain_segment_still_falls_back_and_says_so(shirt: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_util.run(cli.cli, [str(shirt), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["pipeline"] == photo.FALLBACK_VERSION == "segment-3"


@pytest.mark.usefixtures("numpy_only")
def test_edge_evaluate_refuses_segment_4(shirt: Path, capsys: pytest.CaptureFixture[str]
                                         ) -> None:
    folder = shirt.parent / "labelled"
    (folder / dataset.CLASS_NAMES[0]).mkdir(parents=True, exist_ok=True)
    (folder / dataset.CLASS_NAMES[0] / shirt.name).write_bytes(shirt.read_bytes())
    assert cli_util.run(evaluate_cli.cli, [str(folder), "-p", "segment-4"]) == 2
    _says_what_to_install(_one_line(capsys))


@pytest.mark.usefixtures("numpy_only")
def test_edge_serve_refuses_segment_4_on_the_command_line_and_over_http(
        capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("starlette", reason="edge-serve needs the [serve] extra")
    from starlette.datastructures import QueryParams

    from fmnist_edge.edge.serve import answer, uploads
    from fmnist_edge.edge.serve import cli as serve_cli
    from fmnist_edge.edge.serve.apierror import ApiError

    # an address it cannot listen on: without the refusal it ends there (exit 1), not serving
    assert cli_util.run(serve_cli.cli, ["-p", "segment-4", "--host", "999.1.1.1"]) == 2
    _says_what_to_install(_one_line(capsys))
    with pytest.raises(ApiError) as refused:
        uploads.options(QueryParams("preprocess=segment-4"), answer.Options(), 10)
    assert refused.value.status_code == 400
    _says_what_to_install(str(refused.value.detail))
    assert uploads.options(QueryParams("preprocess=segment"), answer.Options(),
                           10).method == "segment"


def test_segment_4_runs_where_the_net_runs(shirt: Path) -> None:
    """The refusal is only for machines without a runtime for the net (this one has one)."""
    pytest.importorskip("ai_edge_litert", reason="needs a runtime for the segmenter")
    assert segnet.available() and photo.refusal("segment-4") is None
    assert cli_util.run(cli.cli, [str(shirt), "-p", "segment-4"]) == 0
