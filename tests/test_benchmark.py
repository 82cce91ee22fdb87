"""The throughput benchmark runs end to end (on a CPU, with a tiny configuration) and reports real numbers."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_benchmark_runs_on_cpu_and_writes_results(tmp_path):
    pytest.importorskip("transformers")
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "pretrain_throughput.py"), "--config", "tiny", "--device", "cpu",
         "--warmup", "1", "--steps", "3", "--output-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    files = list(tmp_path.glob("cpu-*-tiny.json"))
    assert len(files) == 1
    record = json.loads(files[0].read_text())
    for key in ("device", "config", "ours_tokens_per_s", "hf_tokens_per_s", "ratio", "ours_mfu", "hf_mfu"):
        assert key in record
    assert record["config"]["name"] == "tiny" and record["precision"] == "fp32"
    assert record["ours_tokens_per_s"] > 0 and record["hf_tokens_per_s"] > 0
    assert record["ratio"] == pytest.approx(record["ours_tokens_per_s"] / record["hf_tokens_per_s"])
    assert record["ours_mfu"] is None and record["hf_mfu"] is None  # no peak FLOP/s is known for a CPU
    ours, hf = record["details"]["ours"], record["details"]["hf"]
    assert ours["parameters"] == hf["parameters"]  # the same model, counted the same way
    assert hf["train_flops_per_step"] > ours["train_flops_per_step"]  # HF computes MLM logits everywhere
    assert "tokens/s" in result.stdout and "ratio ours / transformers" in result.stdout


def test_flop_count_matches_the_formula():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import pretrain_throughput as bench
    finally:
        sys.path.pop(0)
    config = dict(bench.CONFIGS["base"])
    hidden, layers, seq, batch = 768, 12, 128, config["batch_size"]
    weights = layers * (4 * hidden * hidden + 2 * hidden * 3072) + hidden * hidden
    expected_body = batch * seq * (6 * weights + 12 * layers * hidden * seq)
    assert bench.training_flops_per_step(config, 0) == expected_body
    assert bench.training_flops_per_step(config, 10) - expected_body == 10 * 6 * (hidden * hidden + hidden * 30522)
