"""The package metadata a Raspberry Pi install resolves: light, with a TFLite runtime."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
HEAVY = {"tensorflow", "tensorflow-cpu", "keras", "tf2onnx", "onnx", "tf-keras"}


def pi_environment(python: str) -> dict[str, str]:
    """Marker environment of 64-bit Raspberry Pi OS with the given CPython."""
    env = default_environment()
    env.update(sys_platform="linux", platform_system="Linux", platform_machine="aarch64",
               os_name="posix", python_version=python, python_full_version=f"{python}.2",
               implementation_name="cpython", platform_python_implementation="CPython")
    return env


def resolved(reqs: list[str], env: dict[str, str]) -> set[str]:
    out = set()
    for text in reqs:
        req = Requirement(text)
        if req.marker is None or req.marker.evaluate(env):
            out.add(req.name.lower())
    return out


@pytest.mark.parametrize("python", ["3.11", "3.13"])
def test_base_install_on_a_pi_is_light_and_has_litert(python: str) -> None:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    names = resolved(project["dependencies"], pi_environment(python))
    assert names == {"numpy", "pillow", "click", "ai-edge-litert"}
    assert not names & HEAVY


def test_tflite_runtime_extra_only_where_wheels_exist() -> None:
    """tflite-runtime (and the numpy < 2 it needs) only on Python <= 3.11."""
    extra = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]
    assert resolved(extra["tflite-runtime"], pi_environment("3.11")) == {"tflite-runtime",
                                                                         "numpy"}
    assert resolved(extra["tflite-runtime"], pi_environment("3.13")) == set()


def test_no_litert_where_it_has_no_wheels() -> None:
    """32-bit Pi OS (armv7l) and Windows must still install: ONNX or tflite-runtime there."""
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    armv7 = {**pi_environment("3.11"), "platform_machine": "armv7l"}
    assert resolved(project["dependencies"], armv7) == {"numpy", "pillow", "click"}
    windows = {**pi_environment("3.11"), "sys_platform": "win32", "platform_machine": "AMD64"}
    assert "ai-edge-litert" not in resolved(project["dependencies"], windows)


def test_training_extra_picks_a_tensorflow_for_each_machine() -> None:
    extra = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]["train"]
    assert "tensorflow" in resolved(extra, pi_environment("3.11"))
    x86 = {**pi_environment("3.11"), "platform_machine": "x86_64"}
    assert "tensorflow-cpu" in resolved(extra, x86)


def test_serve_extra_is_light_pure_python_and_in_all() -> None:
    """edge-serve adds a web framework and server, no compiled uvicorn[standard] extras."""
    extra = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]
    assert resolved(extra["serve"], pi_environment("3.11")) == {"starlette", "uvicorn",
                                                               "python-multipart"}
    assert "serve" in extra["all"][0]
