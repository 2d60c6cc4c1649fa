"""The retrieval benchmark's report writer accepts what bench.common.machine() returns today
(it crashed with KeyError 'loadavg_1m_at_start' after the whole 100k-chunk run)."""

import json
from pathlib import Path

from bench.retrieval_bench import machine, write_reports

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results"


def test_report_writer_takes_the_current_machine_record(tmp_path):
    report = json.loads((RESULTS / "retrieval.json").read_text())
    report["machine"] = machine()  # the shape the benchmark records now
    write_reports(report, tmp_path)
    text = (tmp_path / "retrieval.md").read_text()
    assert "load average" in text and str(report["machine"]["loadavg_at_start"]) in text
