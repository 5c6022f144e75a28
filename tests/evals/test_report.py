"""The report: published numbers only beside published-comparable ones; everything else under its own label."""

from __future__ import annotations

from patchsmith.evals.report import PUBLISHED_COLUMNS, PUBLISHED_ROWS, markdown_report, published_cells
from patchsmith.evals.runner import EvalRun, ItemRecord, RunConfig, Stat, summary_csv
from patchsmith.evals.systems import RenderSpec


def metric(name, backend, kind, published, value, low=None, high=None, n=10):
    column = name if published else f"{name}[{backend}]"
    ci = None if low is None else {"estimate": value, "low": low, "high": high, "level": 0.95, "n": n, "n_boot": 100}
    return {"metric": name, "backend_id": backend, "backend_kind": kind, "weights_sha256": None, "published": published,
            "column": column, "value": value, "ci": ci, "n": n, "n_missing": 0}


def a_run(render: RenderSpec, metrics) -> EvalRun:
    items = [ItemRecord(id="1", caption="bell", valid=True), ItemRecord(id="2", caption="pad", error="no patch | oops")]
    return EvalRun(config=RunConfig(package_version="0.1.0", system={"kind": "openai", "name": "m", "model": "m",
                                                                     "base_url": "http://h/v1"}, render=render),
                   items=items, metrics=metrics, process={"validity_rate": Stat(value=0.5, low=0.0, high=1.0, n=2)})


METRICS = [metric("rms", "rms-envelope", "published", True, 0.8123, 0.7, 0.9),
           metric("kad", "logmel-stats", "offline", False, 12.5),
           metric("clap", "hash-text-stub", "stub", False, 0.01, 0.0, 0.02)]


def _row(report: str, label: str) -> list[str]:
    line = next(line for line in report.splitlines() if line.startswith(f"| {label}"))
    return [c.strip() for c in line.strip("|").split("|")]


def test_only_published_comparable_numbers_sit_beside_the_published_rows():
    report = markdown_report(a_run(RenderSpec(), METRICS), title="t")
    for name, values in PUBLISHED_ROWS:
        assert _row(report, name)[1:] == ["–" if v is None else f"{v:.2f}" for v in values]
    mine = _row(report, "**m (this run)**")
    headers = [h for _, h, _ in PUBLISHED_COLUMNS]
    cells = dict(zip(headers, mine[1:]))
    assert cells["RMS"] == "0.81 [0.70, 0.90]"
    assert all(cells[h] == "–" for h in headers if h != "RMS")  # KAD and CLAP came from offline/stub backends
    assert "`kad[logmel-stats]` | logmel-stats (offline) | 12.500" in report
    assert "`clap[hash-text-stub]` | hash-text-stub (stub)" in report
    assert "| valid patch | 0.500 [0.000, 1.000] | 2 |" in report
    assert "no patch / oops" in report  # a pipe in an error cannot break the table


def test_a_run_not_rendered_the_sources_way_puts_nothing_beside_the_published_rows():
    report = markdown_report(a_run(RenderSpec(hold_s=1.0, release_s=0.5), METRICS), title="t")
    assert _row(report, "**m (this run)**")[1:] == ["–"] * len(PUBLISHED_COLUMNS)
    assert "were not played as the source's were" in report
    assert "`rms[rms-envelope]`" in report  # still shown, under its own label


def test_published_cells_and_summary_csv():
    assert published_cells(METRICS)[-1].startswith("0.81")
    assert published_cells(METRICS, comparable_render=False) == ["–"] * 7
    text = summary_csv(a_run(RenderSpec(), METRICS))
    lines = text.splitlines()
    assert lines[0] == "kind,name,backend,published,value,ci_low,ci_high,n,n_missing"
    assert "process,validity_rate,,,0.5,0,1,2," in lines
    assert "metric,kad[logmel-stats],logmel-stats,0,12.5,,,10,0" in lines
