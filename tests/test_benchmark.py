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
    for key in ("device", "config", "ours_tokens_per_s", "hf_tokens_per_s", "ratio", "ours_mfu", "hf_mfu",
                "ours_dynamic_tokens_per_s", "static_over_dynamic", "date", "command", "load_average_at_start"):
        assert key in record
    assert record["static_over_dynamic"] == pytest.approx(record["ours_tokens_per_s"] / record["ours_dynamic_tokens_per_s"])
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


def test_padding_measure_on_a_small_corpus(tmp_path):
    from bert_annotated.corpora import embedded_corpus_paths

    corpus = [str(path) for path in embedded_corpus_paths("en")]
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "pretrain_throughput.py"), "--padding", "--corpus", *corpus,
         "--corpus-limit", "40", "--seq-len", "64", "--padding-batch-size", "8", "--output-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    record = json.loads((tmp_path / "padding-seq64.json").read_text())
    assert record["documents"] == 40 and record["seq_len"] == 64
    assert 0.0 < record["padding_fraction"] < 1.0 and 0.0 <= record["full_length_share"] <= 1.0
