"""``fmnist-compare``: the edge runner against Keras and numpy, side by side, in one run.

    fmnist-compare -a artifacts -o report/                  # warm latency + cold start
    fmnist-compare -a artifacts -o report/ --install-size   # + edge-only venv size (pip)

Needs the trained ``<model>.keras`` files and their bundles (``<artifacts>/bundles/``).
Writes ``compare.md`` and ``compare.json``.  Exit codes: 0 done, 1 input missing or a
child process failed, 2 usage error.  Ratios carry their targets; missing a target is
reported, not an error (the numbers are the point).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from fmnist_edge.benchmarks import compare
from fmnist_edge.benchmarks.compare import CompareSettings
from fmnist_edge.edge import atomic, cli_util, tables
from fmnist_edge.edge import manifest as mf
from fmnist_edge.train.models import ARCHITECTURES

DEFAULTS = CompareSettings()


@click.command(name="fmnist-compare", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-a", "--artifacts", type=click.Path(path_type=Path), default=mf.DEFAULT_ARTIFACTS,
              show_default=True, help="Folder with <model>.keras and bundles/<model>/.")
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True,
              help="Folder for compare.md and compare.json.")
@click.option("--models", default=",".join(DEFAULTS.models), show_default=True,
              callback=cli_util.comma_choices(ARCHITECTURES),
              help="Comma-separated models for the warm-latency race.")
@click.option("--rounds", type=click.IntRange(min=1), default=DEFAULTS.rounds, show_default=True,
              help="Interleaved warm-latency rounds.")
@click.option("--calls", type=click.IntRange(min=10), default=DEFAULTS.calls, show_default=True,
              help="Timed calls per contender per round (Keras predict: a tenth).")
@click.option("--cold-rounds", type=click.IntRange(min=1), default=DEFAULTS.cold_rounds,
              show_default=True,
              help="Alternating fresh-process rounds for the cold start.")
@click.option("--cold-model", type=click.Choice(list(ARCHITECTURES)), default=DEFAULTS.cold_model,
              show_default=True, help="Model the cold-start processes classify with.")
@click.option("--install-size", is_flag=True,
              help="Also measure an edge-only venv's size (runs pip; may download).")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def cli(artifacts: Path, output: Path, models: tuple[str, ...], rounds: int, calls: int,
        cold_rounds: int, cold_model: str, install_size: bool, as_json: bool) -> int:
    """Compare the edge runner with Keras predict, a Keras call and plain numpy."""
    settings = CompareSettings(models=models, rounds=rounds, calls=calls,
                                cold_rounds=cold_rounds, cold_model=cold_model,
                                install_size=install_size)
    compare.check_inputs(artifacts, settings)  # before creating any folder
    cli_util.check_writable(output)
    result = compare.run(artifacts, settings,
                         lambda msg: click.echo(f"fmnist-compare: {msg}", err=True),
                         cli_util.progress)
    atomic.write_json(output / "compare.json", result)
    atomic.write_text(output / "compare.md", markdown(result))
    click.echo(json.dumps(result, indent=2) if as_json else summary(result))
    click.echo(f"fmnist-compare: wrote {output / 'compare.md'} and {output / 'compare.json'}",
               err=True)
    return 0


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def warm_table(model: str, warm: dict[str, Any]) -> list[str]:
    """Markdown rows: every contender's p50/p90/mean and its top-1 check."""
    contenders = [[name, str(s["calls"]), f"{s['p50_ms']:.4f}", f"{s['p90_ms']:.4f}",
                   f"{s['mean_ms']:.4f}", str(s["top1"]), f"{s['max_abs_diff_vs_keras']:.2e}"]
                  for name, s in warm["contenders"].items()]
    ratios = [[name, f"{r['vs_numpy']:.2f}x ({_verdict(r['vs_numpy'] <= compare.TARGET_VS_NUMPY)})",
               f"{r['keras_predict_over_edge']:.0f}x", f"{r['keras_call_over_edge']:.1f}x"]
              for name, r in warm["ratios"].items()]
    return [f"### {model}", "",
            tables.markdown(["contender", "calls", "p50 ms", "p90 ms", "mean ms", "top-1",
                             "max abs Δp vs Keras"], contenders), "",
            tables.markdown(["edge contender", "p50 / numpy p50 (target ≤ 2x)",
                             "Keras predict / edge", "Keras call / edge"], ratios), ""]


def cold_table(cold: dict[str, Any]) -> list[str]:
    """Markdown: medians of the fresh-process runs and the two ratios with targets."""
    edge, tf = cold["edge-classify"], cold["tutorial (TensorFlow)"]
    speed_ok = cold["speedup"] >= compare.TARGET_COLD_SPEEDUP
    mem_ok = cold["memory_ratio"] <= compare.TARGET_COLD_MEMORY
    return [
        f"Model `{cold['model']}`, one test PNG (true class "
        f"{compare.dataset.CLASS_NAMES[cold['true_class']]}), {cold['rounds']} alternating "
        "rounds; wall time from spawn to exit, peak RSS of the child from `wait4`.", "",
        tables.markdown(["process", "median wall s", "median peak RSS MB", "answer"],
                        [[name, f"{p['wall_s_median']:.3f}", f"{p['peak_rss_mb_median']:.1f}",
                          str(p["answer"])]
                         for name, p in (("edge-classify", edge),
                                         ("tutorial (TensorFlow)", tf))]), "",
        f"- Cold start speed-up: **{cold['speedup']:.1f}x** (target ≥ "
        f"{compare.TARGET_COLD_SPEEDUP:.0f}x: {_verdict(speed_ok)})",
        f"- Peak memory ratio edge / TensorFlow: **{cold['memory_ratio']:.2f}** (target ≤ "
        f"{compare.TARGET_COLD_MEMORY}: {_verdict(mem_ok)})", "",
        *(f"- `{k}`: `{v}`" for k, v in cold["commands"].items()), ""]


def install_lines(inst: dict[str, Any] | None) -> list[str]:
    """Markdown for the optional install-size measurement."""
    if inst is None:
        return ["Not measured (run with `--install-size`).", ""]
    pkgs = ", ".join(f"{k} {v}" for k, v in sorted(inst["installed"].items()))
    lines = [f"- `pip install {' '.join(inst['packages'])}` in a fresh venv: site-packages "
             f"**{inst['site_packages_mb']:.1f} MB** ({inst['without_pip_mb']:.1f} MB without "
             "the venv's own pip)", f"- Installed: {pkgs}"]
    for py, mb in (inst.get("pi_aarch64") or {}).items():
        size = f"**{mb:.1f} MB**" if mb is not None else "not resolvable"
        lines.append(f"- On a 64-bit Raspberry Pi (aarch64 wheels, CPython {py}): {size}")
    if inst.get("tensorflow_stack_mb"):
        lines.append(f"- For scale, TensorFlow and its requirements in this venv: "
                     f"{inst['tensorflow_stack_mb']:.0f} MB "
                     f"({inst['tensorflow_over_edge']:.0f}x the edge install)")
    return [*lines, ""]


def markdown(result: dict[str, Any]) -> str:
    """compare.md: machine, warm latency per model, cold start, install size."""
    m = result["machine"]
    s = result["settings"]
    parts = ["# Edge runner vs Keras vs numpy", "",
             f"- Date: {m['date']}; platform: {m['platform']}; CPU: {m['cpu']}, "
             f"{m['cores']} cores", f"- Python {m['python']}, numpy {m['numpy']}; "
             + ", ".join(f"{k} {v}" for k, v in m["runtimes"].items()), "",
             "## Warm single-image latency", "",
             f"{s['rounds']} interleaved rounds of {s['calls']} calls per contender (Keras "
             "predict: a tenth), order rotating each round; edge runner with 1 thread, "
             "prepared tensor in, probabilities out.", ""]
    for model, warm in result["warm"].items():
        parts += warm_table(model, warm)
    parts += ["## Cold start (fresh process)", "", *cold_table(result["cold"]),
              "## Edge-only install size", "", *install_lines(result.get("install"))]
    return "\n".join(parts)


def summary(result: dict[str, Any]) -> str:
    """A few terminal lines: the headline ratios."""
    lines = []
    for model, warm in result["warm"].items():
        for name, r in warm["ratios"].items():
            lines.append(f"{model:<7} {name:<20} {r['vs_numpy']:5.2f}x numpy   Keras predict "
                         f"{r['keras_predict_over_edge']:6.0f}x slower   Keras call "
                         f"{r['keras_call_over_edge']:5.1f}x slower")
    cold = result["cold"]
    lines.append(f"cold start: edge-classify {cold['speedup']:.1f}x faster, "
                 f"{cold['memory_ratio']:.2f}x the peak memory of the TensorFlow way")
    inst = result.get("install")
    if inst:
        lines.append(f"edge-only install: {inst['site_packages_mb']:.1f} MB site-packages")
    return "\n".join(lines)


def main() -> None:
    """Console-script entry point."""
    sys.exit(cli_util.run(cli))


if __name__ == "__main__":  # pragma: no cover
    main()
