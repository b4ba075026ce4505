"""A sweep as a paper prints it: readable arm names, the aggregate table, the declared
family's comparisons with adjusted p-values and effect sizes, the seeds each comparison
needs, and two figures; as Markdown, LaTeX or HTML (`actlab report`, `client.report`).

Everything is read from the API (GET /v1/sweeps/{id}, .../power, /v1/metrics/series): the
report states the server's numbers, it computes none of its own.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from actlab.errors import ApiError, InputError
from actlab.models import Power, Sweep

if TYPE_CHECKING:
    from actlab.client import Client

FORMATS = ("md", "latex", "html")
# The catalogue's names as papers write them; others are printed as they are.
PRETTY = {
    "relu": "ReLU",
    "noisy_relu": "NoisyReLU",
    "leaky_relu": "LeakyReLU",
    "prelu": "PReLU",
    "rrelu": "RReLU",
    "elu": "ELU",
    "selu": "SELU",
    "gelu": "GELU",
    "silu": "SiLU",
    "tanh": "tanh",
    "hard_tanh": "HardTanh",
    "noisy_hard_tanh": "noisy HardTanh",
    "sigmoid": "sigmoid",
    "hard_sigmoid": "HardSigmoid",
    "noisy_hard_sigmoid": "noisy HardSigmoid",
    "mlp": "MLP",
    "cnn": "CNN",
    "adam": "Adam",
    "sgd": "SGD",
}
SHORT = {"lr": "lr", "weight_decay": "wd"}


def readable(point: dict[str, Any], labels: dict[str, str] | None, label: str) -> str:
    """The arm's name: the one the sweep gave it, else its point written out
    (`NoisyReLU, sigma=0.3, cosine`), a trial as `#3, lr=0.006466`."""
    if labels and label in labels:
        return labels[label]
    parts = []
    for path, value in point.items():
        if path == "trial":
            parts.append(f"#{value}")
            continue
        leaf = path.rsplit(".", 1)[-1]
        if leaf in ("name", "kind", "arch") and isinstance(value, str):
            parts.append(PRETTY.get(value, value))
        else:
            parts.append(f"{SHORT.get(leaf, leaf)}={_value(value)}")
    return ", ".join(parts) or "base"


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


@dataclass
class Report:
    """What a report holds, before it is written in one of FORMATS."""

    sweep: Sweep
    names: dict[str, str]  # arm label -> readable name
    power: Power | None
    figures: list[tuple[Path, str]] = field(default_factory=list)  # (file, caption)
    curve_metric: str | None = None
    # Ranked on a val/ metric: the same arms' test/ figures, reported but never ranked on.
    reported: Sweep | None = None


def build(
    client: Client,
    sweep_id: str,
    output: Path,
    *,
    metric: str | None = None,
    family: str = "baseline",
    margin: float | None = None,
    delta: float | None = None,
    curve: str | None = "val/acc",
    x: str = "epoch",
    figure_format: str | None = None,
    dpi: int = 150,
) -> Report:
    """Read the sweep and draw its figures beside `output` (`<stem>-curves.png`, ...)."""
    sweep = client.sweeps.get(sweep_id, metric=metric, family=family, margin=margin, bootstrap=True)
    names = {a.label: readable(a.point, sweep.labels, a.label) for a in sweep.aggregate}
    power = client.sweeps.power(sweep_id, delta, metric=metric, family=family) if delta else None
    report = Report(sweep, names, power, curve_metric=curve, reported=_reported(client, sweep))
    kind = figure_format or ("pdf" if output.suffix == ".tex" else "png")
    from actlab import plotting

    forest = output.with_name(f"{output.stem}-arms-{_slug(sweep.metric)}.{kind}")
    rows = [(names[a.label], a.mean, a.ci_low, a.ci_high, a.n) for a in sweep.aggregate]
    plotting.forest(rows, sweep.metric, forest, dpi=dpi, fmt=kind)
    report.figures.append((forest, f"{sweep.metric} by arm: mean and 95% CI over seeds."))
    if curve:
        frame = client.metrics(sweep=sweep_id, names=[curve])
        if not frame.empty:
            curves = output.with_name(f"{output.stem}-curves-{_slug(curve)}.{kind}")
            plotting.plot(frame, curve, curves, x=x, dpi=dpi, fmt=kind, labels=names)
            caption = f"{curve} by {x}: mean over seeds, 95% t band at each {x}'s n."
            report.figures.append((curves, caption))
    return report


def _reported(client: Client, sweep: Sweep) -> Sweep | None:
    """The test split's figure of a sweep ranked on validation (`val/acc` -> `test/acc`), or
    None: ranked on another split, or no run reported the test metric."""
    if not sweep.metric.startswith("val/"):
        return None
    try:
        return client.sweeps.get(
            sweep.id,
            metric="test/" + sweep.metric.removeprefix("val/"),
            family=sweep.family.kind if sweep.family else "baseline",
            margin=sweep.comparisons[0].margin if sweep.comparisons else None,
            bootstrap=True,
        )
    except ApiError as exc:
        if exc.status == 422:  # not among the runs' metric names
            return None
        raise


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name).strip("-")


def write(report: Report, output: Path, fmt: str) -> None:
    """Write the report as `fmt` (md, latex or html) to `output`."""
    if fmt not in FORMATS:
        raise InputError(f"format {fmt!r}: use one of {', '.join(FORMATS)}")
    text = {"md": markdown, "latex": latex, "html": html_page}[fmt](report, output)
    output.write_text(text, encoding="utf-8")


# --- the tables, format-free -------------------------------------------------------------


def _num(x: float | None, digits: int = 4) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def _p(x: float | None) -> str:
    if x is None:
        return "—"
    return "<0.001" if x < 0.001 else f"{x:.3f}"


def _ci(low: float | None, high: float | None, digits: int = 4) -> str:
    return "—" if low is None or high is None else f"[{_num(low, digits)}, {_num(high, digits)}]"


EXAMPLES_CI = "95% CI, seeds x test examples"


def arm_table(report: Report, sweep: Sweep | None = None) -> tuple[list[str], list[list[str]]]:
    """One row an arm; a test/acc table whose runs kept their per-example hits gains the
    interval that resamples the test examples too (docs/statistics.md)."""
    s = sweep or report.sweep
    crossed = any(a.boot_examples_ci_low is not None for a in s.aggregate)
    head = ["arm", "n", "mean", "95% CI", "std", "failed", "pruned", "pending"]
    if crossed:
        head.insert(4, EXAMPLES_CI)
    rows = []
    for a in s.aggregate:
        row = [report.names[a.label], str(a.n), _num(a.mean), _ci(a.ci_low, a.ci_high),
               _num(a.std), str(a.n_failed + a.n_cancelled), str(a.n_pruned),
               str(a.n_pending)]  # fmt: skip
        if crossed:
            row.insert(4, _ci(a.boot_examples_ci_low, a.boot_examples_ci_high))
        rows.append(row)
    return head, rows


def comparison_table(
    report: Report, sweep: Sweep | None = None
) -> tuple[list[str], list[list[str]]]:
    s = sweep or report.sweep
    head = ["arm", "minus", "test", "pairs", "diff", "95% CI", "p", "p (Holm)", "p (BH)",
            "d_z [95% CI]", "g [95% CI]", "bootstrap CI"]  # fmt: skip
    crossed = any(c.boot_examples_ci_low is not None for c in s.comparisons)
    if crossed:
        head.append(EXAMPLES_CI)
    with_tost = any(c.margin is not None for c in s.comparisons)
    if with_tost:
        head.append("TOST p")
    head.append("notes")
    rows = []
    for c in s.comparisons:
        notes = list(c.flags)
        if c.n_dropped:
            notes.append(f"{c.n_dropped} unpaired")
        if c.n_failed:
            notes.append(f"{c.n_failed} failed")
        name = report.names.get
        row = [
            name(c.label, c.label), name(c.baseline_label, c.baseline_label),
            c.test.replace("_", " "), str(c.n_pairs), _num(c.mean_diff), _ci(c.ci_low, c.ci_high),
            _p(c.p_value), _p(c.p_holm), _p(c.p_bh),
            f"{_num(c.d_z, 2)} {_ci(c.d_z_ci_low, c.d_z_ci_high, 2)}" if c.d_z is not None else "—",
            f"{_num(c.hedges_g, 2)} {_ci(c.hedges_g_ci_low, c.hedges_g_ci_high, 2)}"
            if c.hedges_g is not None else "—",
            _ci(c.boot_ci_low, c.boot_ci_high),
        ]  # fmt: skip
        if crossed:
            row.append(_ci(c.boot_examples_ci_low, c.boot_examples_ci_high))
        if with_tost:
            row.append(_p(c.tost_p))
        row.append(", ".join(notes))
        rows.append(row)
    return head, rows


def power_table(report: Report) -> tuple[list[str], list[list[str]]]:
    assert report.power is not None
    p = report.power
    head = ["arm", "minus", "pairs", "SD of differences", f"seeds for {p.delta:g}",
            f"detectable at power {p.power:g}"]  # fmt: skip
    rows = [
        [report.names.get(r.label, r.label), report.names.get(r.baseline_label, r.baseline_label),
         str(r.n_pairs), _num(r.sd_diff), str(r.seeds_needed) if r.seeds_needed else "—",
         _num(r.detectable_delta)]
        for r in p.rows
    ]  # fmt: skip
    return head, rows


def _crossed(sweep: Sweep) -> bool:
    """Whether a table of `sweep` shows the seeds x test examples interval."""
    return any(a.boot_examples_ci_low is not None for a in sweep.aggregate) or any(
        c.boot_examples_ci_low is not None for c in sweep.comparisons
    )


def _lines(report: Report) -> dict[str, str]:
    """The report's sentences, shared by every format."""
    s = report.sweep
    counts = ", ".join(f"{n} {k}" for k, n in sorted(s.status_counts.items()))
    family = s.family
    size = family.size if family else len(s.comparisons)
    kind = "every pair of arms" if family and family.kind == "all_pairs" else (
        f"each arm minus {report.names.get(s.comparisons[0].baseline_label, '')}"
        if s.comparisons else "none"
    )  # fmt: skip
    out = {
        "title": f"Sweep {s.name}",
        "meta": f"{s.id}; {len(s.seeds)} seeds ({', '.join(map(str, s.seeds))}); "
        f"{s.size} runs: {counts}.",
        "metric": f"Metric: {s.metric}. Intervals are Student-t 95% CIs over seeds; they do "
        "not include the sampling of test examples, which is the same for every seed"
        + (
            f" (the column '{EXAMPLES_CI}' does: a bootstrap over both)."
            if _crossed(s) or (report.reported is not None and _crossed(report.reported))
            else "."
        ),
        "reported": (
            f"The arms ranked on {s.metric} above, with the same runs' "
            f"{report.reported.metric}: reported, never used to choose among the arms."
            if report.reported is not None
            else ""
        ),
        "reported_family": (
            f"The same family's comparisons on {report.reported.metric}, reported beside the "
            "ranked ones."
            if report.reported is not None
            else ""
        ),
        "family": f"Comparisons: {kind}; {size} {'test' if size == 1 else 'tests'} in the "
        "family. p (Holm) controls the "
        "family-wise error, p (BH) the false discovery rate. Paired t over the seeds both "
        "arms have (Welch's test where fewer than two pair); d_z is the mean paired "
        "difference over its SD, g is Hedges' g; both with noncentral-t 95% CIs.",
    }
    if report.power is not None:
        p = report.power
        out["power"] = (
            f"Seeds each comparison needs to detect a difference of {p.delta:g} in {p.metric} "
            f"with power {p.power:g} at alpha {p.alpha:g} over {p.family_size} "
            f"{'test' if p.family_size == 1 else 'tests'} "
            f"({p.alpha_per_test:.3g} each), from the observed SD of the paired differences."
        )
    return out


# --- Markdown ----------------------------------------------------------------------------


def _md_table(head: list[str], rows: list[list[str]]) -> str:
    def esc(cell: str) -> str:
        return cell.replace("|", "\\|")

    lines = ["| " + " | ".join(map(esc, head)) + " |", "|" + " --- |" * len(head)]
    lines += ["| " + " | ".join(map(esc, row)) + " |" for row in rows]
    return "\n".join(lines)


def markdown(report: Report, output: Path) -> str:
    t = _lines(report)
    parts = [f"# {t['title']}", "", t["meta"], "", t["metric"], "", "## Arms", "",
             _md_table(*arm_table(report)), ""]  # fmt: skip
    if report.reported is not None:
        parts += [f"## On the test split ({report.reported.metric})", "", t["reported"], "",
                  _md_table(*arm_table(report, report.reported)), ""]  # fmt: skip
        if report.reported.comparisons:
            parts += [t["reported_family"], "",
                      _md_table(*comparison_table(report, report.reported)), ""]  # fmt: skip
    if report.sweep.comparisons:
        parts += ["## Comparisons", "", t["family"], "", _md_table(*comparison_table(report)), ""]
    if report.power is not None:
        parts += ["## How many seeds", "", t["power"], "", _md_table(*power_table(report)), ""]
    if report.figures:
        parts += ["## Figures", ""]
        for i, (path, caption) in enumerate(report.figures, 1):
            parts += [f"![Figure {i}]({_relative(path, output)})", "", f"Figure {i}: {caption}", ""]
    parts.append(f"_Generated by actlab report on {_now()}._")
    return "\n".join(parts) + "\n"


def _relative(path: Path, output: Path) -> str:
    try:
        return str(path.relative_to(output.parent))
    except ValueError:
        return str(path)


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


# --- LaTeX -------------------------------------------------------------------------------

_TEX = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "—": "---", "<": r"\textless{}", ">": r"\textgreater{}",
}  # fmt: skip


def tex_escape(text: str) -> str:
    return "".join(_TEX.get(c, c) for c in text)


def _tex_table(head: list[str], rows: list[list[str]], caption: str) -> str:
    spec = "l" * 2 + "r" * (len(head) - 2)
    lines = [
        r"\begin{table}[ht]", r"\centering", r"\small", r"\resizebox{\textwidth}{!}{%",
        rf"\begin{{tabular}}{{{spec}}}", r"\toprule",
        " & ".join(tex_escape(h) for h in head) + r" \\", r"\midrule",
    ]  # fmt: skip
    lines += [" & ".join(tex_escape(c) for c in row) + r" \\" for row in rows]
    lines += [r"\bottomrule", r"\end{tabular}}", rf"\caption{{{tex_escape(caption)}}}",
              r"\end{table}"]  # fmt: skip
    return "\n".join(lines)


def latex(report: Report, output: Path) -> str:
    t = _lines(report)
    parts = [
        r"\documentclass{article}", r"\usepackage[T1]{fontenc}", r"\usepackage[utf8]{inputenc}",
        r"\usepackage{booktabs}", r"\usepackage{graphicx}", r"\usepackage[margin=2cm]{geometry}",
        r"\begin{document}", rf"\section*{{{tex_escape(t['title'])}}}", tex_escape(t["meta"]),
        "", tex_escape(t["metric"]), "",
        _tex_table(*arm_table(report), f"{report.sweep.metric} by arm"),
    ]  # fmt: skip
    if report.reported is not None:
        parts += ["", tex_escape(t["reported"]), "",
                  _tex_table(*arm_table(report, report.reported),
                             f"{report.reported.metric} by arm (reported)")]  # fmt: skip
        if report.reported.comparisons:
            caption = f"Comparisons on {report.reported.metric} (reported)"
            parts += ["", tex_escape(t["reported_family"]), "",
                      _tex_table(*comparison_table(report, report.reported), caption)]  # fmt: skip
    if report.sweep.comparisons:
        parts += ["", tex_escape(t["family"]), "",
                  _tex_table(*comparison_table(report), "Comparisons")]  # fmt: skip
    if report.power is not None:
        parts += ["", tex_escape(t["power"]), "",
                  _tex_table(*power_table(report), "Seeds needed")]  # fmt: skip
    for path, caption in report.figures:
        parts += [
            r"\begin{figure}[ht]", r"\centering",
            rf"\includegraphics[width=0.8\textwidth]{{{_relative(path, output)}}}",
            rf"\caption{{{tex_escape(caption)}}}", r"\end{figure}",
        ]  # fmt: skip
    parts.append(r"\end{document}")
    return "\n".join(parts) + "\n"


# --- HTML --------------------------------------------------------------------------------


def _html_table(head: list[str], rows: list[list[str]]) -> str:
    cells = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>"


def html_page(report: Report, output: Path) -> str:
    t = _lines(report)
    e = html.escape
    parts = [
        "<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(t['title'])}</title>",
        "<style>body{font-family:sans-serif;max-width:75em;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;margin:1em 0}th,td{border-bottom:1px solid #ccc;"
        "padding:.25em .6em;text-align:right}th:first-child,td:first-child,th:nth-child(2),"
        "td:nth-child(2){text-align:left}img{max-width:100%}</style></head><body>",
        f"<h1>{e(t['title'])}</h1>", f"<p>{e(t['meta'])}</p>", f"<p>{e(t['metric'])}</p>",
        "<h2>Arms</h2>", _html_table(*arm_table(report)),
    ]  # fmt: skip
    if report.reported is not None:
        parts += [f"<h2>On the test split ({e(report.reported.metric)})</h2>",
                  f"<p>{e(t['reported'])}</p>",
                  _html_table(*arm_table(report, report.reported))]  # fmt: skip
        if report.reported.comparisons:
            parts += [f"<p>{e(t['reported_family'])}</p>",
                      _html_table(*comparison_table(report, report.reported))]  # fmt: skip
    if report.sweep.comparisons:
        parts += ["<h2>Comparisons</h2>", f"<p>{e(t['family'])}</p>",
                  _html_table(*comparison_table(report))]  # fmt: skip
    if report.power is not None:
        parts += ["<h2>How many seeds</h2>", f"<p>{e(t['power'])}</p>",
                  _html_table(*power_table(report))]  # fmt: skip
    for i, (path, caption) in enumerate(report.figures, 1):
        src = e(_relative(path, output))
        parts.append(f'<figure><img src="{src}" alt="Figure {i}"><figcaption>Figure {i}: '
                     f"{e(caption)}</figcaption></figure>")  # fmt: skip
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
