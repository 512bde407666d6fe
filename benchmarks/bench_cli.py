"""``edge-bench``: benchmark every artifact of one or more bundles on this device.

    edge-bench bundles/first bundles/second              # table on the terminal
    edge-bench bundles/first --threads 1,4 --runs 1000   # thread counts, more samples
    edge-bench bundles/first --json > bench.json         # everything as JSON on stdout
    edge-bench bundles/first bundles/second -o report/   # benchmark.md/.json + PNG plots

Each artifact x installed runtime x thread count is measured in a fresh subprocess (see
:mod:`fmnist_edge.benchmarks.device`), so its peak memory is its own.  Exit codes: 0 all measured,
1 a bundle is missing/tampered or a measurement failed, 2 usage error.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from fmnist_edge.benchmarks import device
from fmnist_edge.benchmarks.device import BenchSettings
from fmnist_edge.edge import atomic, cli_util, tables
from fmnist_edge.edge.errors import UserError


def parse_threads(_ctx: click.Context | None, _param: click.Parameter | None,
                  value: str | None) -> tuple[int, ...]:
    """``"1,4"`` → ``(1, 4)``; a usage error for anything that is not positive integers."""
    if value is None:
        return device.default_threads()
    try:
        counts = tuple(dict.fromkeys(int(v) for v in value.split(",") if v.strip()))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of integers",
                                 param_hint="'--threads'") from None
    if not counts or min(counts) < 1:
        raise click.BadParameter(f"{value!r}: thread counts must be integers >= 1",
                                 param_hint="'--threads'")
    return counts


@click.command(name="edge-bench", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("bundles", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--runs", type=click.IntRange(min=1), default=BenchSettings.runs,
              show_default=True, help="Timed single-image inferences per artifact.")
@click.option("--warmup", type=click.IntRange(min=0), default=BenchSettings.warmup,
              show_default=True, help="Untimed inferences before timing.")
@click.option("--batch", type=click.IntRange(min=1), default=BenchSettings.batch,
              show_default=True, help="Batch size of the batched-throughput figure.")
@click.option("--threads", "threads", callback=parse_threads, default=None,
              help="Comma-separated thread counts.  [default: 1 and the CPU count]")
@click.option("--no-parity", is_flag=True, help="Skip accuracy on the 10,000 test images.")
@click.option("--json", "as_json", is_flag=True, help="Print all results as JSON on stdout.")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="Write benchmark.md, benchmark.json and PNG plots to this folder.")
def cli(bundles: tuple[Path, ...], runs: int, warmup: int, batch: int,
        threads: tuple[int, ...], no_parity: bool, as_json: bool,
        output: Path | None) -> int:
    """Measure size, load time, latency, throughput, memory and accuracy of bundles."""
    if output is not None:
        cli_util.check_writable(output)
    settings = BenchSettings(runs=runs, warmup=warmup, batch=batch, threads=threads)
    data_note = None if no_parity else device.data_note(cli_util.progress)
    jobs, notes = device.plan_measurements(list(bundles), settings,
                                          parity=not no_parity and not data_note)
    notes += [data_note] if data_note else []
    notes += ["accuracy parity skipped (--no-parity)"] if no_parity else []
    for note in notes:
        click.echo(f"edge-bench: note: {note}", err=True)
    if not jobs:
        raise UserError("nothing to measure: no artifact has an installed runtime")
    results = _run_all(jobs)
    notes += [f"{r['model']}/{r['artifact']} ({r['runtime']}, {r['threads']} threads): "
              f"failed: {r['error']}" for r in results if "error" in r]
    public = [_public(r) for r in results]
    report: dict[str, Any] = {"machine": device.machine_info(),
              "settings": {"runs": runs, "warmup": warmup, "batch": batch,
                           "threads": list(threads), "parity": not no_parity and not data_note,
                           "memory": "peak RSS (VmHWM) of a fresh process per measurement"},
              "notes": notes, "results": public}
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo(table(public))
    if output is not None:
        _write_reports(output, report, results)
    return cli_util.EXIT_FAILED if any("error" in r for r in results) else 0


def _run_all(jobs: list[device.Measurement]) -> list[dict[str, Any]]:
    """Run the jobs one after another (never in parallel: they would disturb each other)."""
    results = []
    for i, job in enumerate(jobs):
        cli_util.progress(i, len(jobs), f"{i}/{len(jobs)} {job.artifact} {job.backend} "
                          f"t={job.threads}", log_steps=True)
        result = device.run_job(job)
        if "error" in result:
            click.echo(f"\nedge-bench: {job.artifact} ({job.backend}): {result['error']}",
                       err=True)
        results.append(result)
    cli_util.progress(len(jobs), len(jobs), f"{len(jobs)}/{len(jobs)} done", log_steps=True)
    return results


def _public(result: dict[str, Any]) -> dict[str, Any]:
    """A result without its raw latency samples (500 numbers each bloat the JSON)."""
    return {k: v for k, v in result.items() if k != "samples_ms"}


COLUMNS = ("model", "artifact", "runtime", "thr", "size KB", "load ms", "p50 ms", "p99 ms",
           "img/s b1", "img/s bN", "peak MB", "accuracy", "agree")


def rows(results: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    """One row of formatted cells per result; failed ones say so."""
    out = []
    for r in results:
        head = (r["model"], r["artifact"], r["runtime"], str(r["threads"]))
        if "error" in r:
            out.append((*head, "failed", *[""] * (len(COLUMNS) - 5)))
            continue
        lat, thr, par = r["latency_ms"], r["throughput"], r.get("parity") or {}
        batched = thr[f"batch_{thr['batch']}"]
        out.append((*head, f"{r['bytes'] / 1024:.1f}", f"{r['load_ms']:.1f}",
                    f"{lat['p50']:.4f}", f"{lat['p99']:.4f}", f"{thr['batch_1']:,.0f}",
                    f"{batched:,.0f}", f"{r['memory_mb']['peak']:.1f}",
                    _fmt(par.get("accuracy"), "{:.4f}"),
                    _fmt(par.get("agreement"), "{:.2%}")))
    return out


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else spec.format(value)


def table(results: list[dict[str, Any]]) -> str:
    """A fixed-width terminal table (accuracy only on the first thread count's row)."""
    return tables.text(COLUMNS, rows(results), left=3)


def markdown_table(results: list[dict[str, Any]]) -> str:
    """The same table in Markdown."""
    return tables.markdown(COLUMNS, rows(results), left=3)


# ---------------------------------------------------------------------------- files


def _write_reports(out: Path, report: dict[str, Any], results: list[dict[str, Any]]) -> None:
    """benchmark.json, the PNG plots (when matplotlib is there) and benchmark.md."""
    plots, why = write_plots(out, results)
    if why:
        report["notes"].append(why)
        click.echo(f"edge-bench: note: {why}", err=True)
    atomic.write_json(out / "benchmark.json", report)
    atomic.write_text(out / "benchmark.md", markdown(report, plots))
    click.echo(f"edge-bench: wrote {out / 'benchmark.md'}, {out / 'benchmark.json'}"
               f"{' and ' + str(len(plots)) + ' plots' if plots else ''}", err=True)


def markdown(report: dict[str, Any], plots: list[str]) -> str:
    """The Markdown report: machine, settings, table, latency detail, parity, plots, notes."""
    m, s = report["machine"], report["settings"]
    ok = [r for r in report["results"] if "error" not in r]
    parts = [
        "# edge-bench results", "",
        f"- Date: {m['date']}", f"- Platform: {m['platform']} ({m['machine']})",
        f"- CPU: {m['cpu']}, {m['cores']} cores" + (f"; board: {m['board']}"
                                                    if m.get("board") else ""),
        f"- Python {m['python']}, numpy {m['numpy']}; runtimes: "
        + (", ".join(f"{k} {v}" for k, v in m["runtimes"].items()) or "none"),
        f"- Settings: {s['runs']} timed runs after {s['warmup']} warm-up, batch "
        f"{s['batch']}, threads {', '.join(map(str, s['threads']))}; memory: {s['memory']}",
        "", "## Summary", "", markdown_table(report["results"]), "",
        "Latency is one `EdgeModel.predict_tensor` call on a prepared single-image tensor; "
        "accuracy and agreement (with the Keras reference top-1 stored in the bundle) are "
        "on the 10,000 official test images through `EdgeModel.predict`.", "",
        "## Latency detail (ms)", "",
        tables.markdown(["model", "artifact", "runtime", "thr", "init", "first",
                         "warm-up mean", "min", "p50", "p90", "p99", "max", "mean", "std"],
                        [_latency_row(r) for r in ok], left=3), "",
    ]
    parts += _parity_section(ok)
    parts += ["## Plots", ""] + [f"![{p}]({p})" for p in plots] + [""] if plots else []
    if report["notes"]:
        parts += ["## Notes", "", *(f"- {n}" for n in report["notes"]), ""]
    return "\n".join(parts)


def _latency_row(r: dict[str, Any]) -> list[str]:
    lat = r["latency_ms"]
    cells = [r["load_ms"], r["first_inference_ms"], r["warmup_mean_ms"] or 0.0,
             *(lat[k] for k in ("min", "p50", "p90", "p99", "max", "mean", "std"))]
    return [r["model"], r["artifact"], r["runtime"], str(r["threads"]),
            *(f"{c:.4f}" for c in cells)]


def _parity_section(results: list[dict[str, Any]]) -> list[str]:
    """Per-class accuracy of every artifact that ran parity."""
    with_parity = [r for r in results if r.get("parity")]
    if not with_parity:
        return []
    names = list(with_parity[0]["parity"]["per_class_accuracy"])
    body = [[r["model"], r["artifact"], r["runtime"], f"{r['parity']['accuracy']:.4f}",
             _fmt(r["parity"]["keras_accuracy"], "{:.4f}"),
             _fmt(r["parity"]["agreement"], "{:.2%}"),
             *(f"{r['parity']['per_class_accuracy'][n]:.3f}" for n in names)]
            for r in with_parity]
    columns = ["model", "artifact", "runtime", "accuracy", "Keras", "agreement", *names]
    return ["## Per-class accuracy", "", tables.markdown(columns, body, left=3), ""]


def write_plots(out: Path, results: list[dict[str, Any]]) -> tuple[list[str], str | None]:
    """PNG plots, or none and why: matplotlib is optional on the Pi."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return [], "matplotlib not installed: plots skipped (pip install matplotlib)"
    ok = [r for r in results if "error" not in r]
    written: list[str] = []
    for name, draw in (("latency.png", _plot_latency), ("accuracy_vs_size.png", _plot_size),
                       ("confusion.png", _plot_confusion)):
        try:
            fig = draw(plt, ok)
            if fig is None:
                continue
            try:
                with atomic.atomic_path(out / name, suffix=".png") as tmp:
                    fig.savefig(tmp, dpi=110, bbox_inches="tight")
            finally:
                plt.close(fig)
        except (TypeError, ValueError) as exc:  # a matplotlib API change must not lose the run
            return written, f"plot {name} failed ({exc}); the figures are in benchmark.json"
        written.append(name)
    return written, None


def _plot_latency(plt: Any, results: list[dict[str, Any]]) -> Any:
    """Box plot of warm single-image latency per artifact x runtime x threads."""
    timed = [r for r in results if r.get("samples_ms")]
    if not timed:
        return None
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(timed) + 1.5))
    ax.boxplot([r["samples_ms"] for r in timed], orientation="horizontal",
               showfliers=False)
    ax.set_yticks(range(1, len(timed) + 1),
                  [f"{r['artifact']} {r['runtime']} t{r['threads']}" for r in timed])
    ax.set_xscale("log")
    ax.set_xlabel("single-image latency, ms (log; whiskers 1.5 IQR, outliers hidden)")
    ax.set_title("Warm latency distribution")
    return fig


def _plot_size(plt: Any, results: list[dict[str, Any]]) -> Any:
    """Accuracy against file size, one point per artifact x runtime."""
    pts = [r for r in results if (r.get("parity") or {}).get("accuracy") is not None]
    if not pts:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    colours = {m: f"C{i}" for i, m in enumerate(dict.fromkeys(r["model"] for r in pts))}
    for r in pts:
        tflite = r["format"] == "tflite"
        xy = (r["bytes"] / 1024, r["parity"]["accuracy"])
        ax.scatter(*xy, marker="o" if tflite else "s", color=colours[r["model"]])
        ax.annotate(f"{r['artifact']} ({r['runtime']})", xy, fontsize=7,
                    xytext=(4, 2 if tflite else -9), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("model file size, KB (log)")
    ax.set_ylabel("test accuracy")
    ax.set_title("Accuracy vs model size (circles TFLite, squares ONNX)")
    return fig


def best(results: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The most accurate artifact; the smaller file wins a tie."""
    with_parity = [r for r in results if (r.get("parity") or {}).get("accuracy") is not None]
    return max(with_parity, key=lambda r: (r["parity"]["accuracy"], -r["bytes"]),
               default=None)


def _plot_confusion(plt: Any, results: list[dict[str, Any]]) -> Any:
    """Confusion matrix (counts) of the best artifact: training's own confusion plot."""
    from fmnist_edge.train.plots import confusion_figure

    top = best(results)
    if top is None:
        return None
    return confusion_figure(top["parity"]["confusion"], list(top["parity"]["per_class_accuracy"]),
                            f"{top['model']}/{top['artifact']} ({top['runtime']}): "
                            f"accuracy {top['parity']['accuracy']:.4f}")


def main() -> None:
    """Console-script entry point."""
    sys.exit(cli_util.run(cli))


if __name__ == "__main__":  # pragma: no cover
    main()
