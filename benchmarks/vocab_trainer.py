"""Vocabulary training: `bert-vocab` (chapter 01's trainer) against Hugging Face's Rust WordPiece trainer.

Both train a 30,000-token WordPiece vocabulary on the same corpus files with comparable settings:
lower-casing with accent stripping, CJK characters split off, punctuation split off, the same
minimum frequency, the same five special tokens. The Rust side is `tokenizers`' WordPieceTrainer
(which merges by pair frequency, as `bert-vocab` does) behind a BertNormalizer and a
BertPreTokenizer, reading the files itself.

Each run times, in fresh processes and interleaved (ours, then Rust, then ours, ...) so that other
load on a shared machine slows both alike:
  * ours, whole command: `bert-vocab -c CORPUS -o vocab.txt`, interpreter start-up included;
  * Rust, whole command: a Python process that builds the Rust trainer and trains on the files;
  * our stages, in-process: reading the corpus, counting words, merging, writing vocab.txt.
`--before-runs` also times the simple trainer of chapter 01 (count_words + learn_vocab), the state
before the incremental one, and checks that both give the same vocabulary.

    python benchmarks/vocab_trainer.py                     # the 16 MB English Wikipedia sample
    python benchmarks/vocab_trainer.py --smoke             # a tiny corpus, seconds (CI)

Results are printed and written to benchmarks/results/cpu-vocab-trainer.json (or --output).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = REPO.parent / "shared" / "corpora" / "enwiki-sample"
DEFAULT_OUTPUT = REPO / "benchmarks" / "results" / "cpu-vocab-trainer.json"

RUST_TRAINER = """
import sys
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
vocab_size, min_frequency, output_dir, files = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4:]
specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
tokenizer.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True)
tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=specials,
                                    show_progress=False)
tokenizer.train(files, trainer)
tokenizer.model.save(output_dir)
"""


def cpu_description() -> dict:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": model, "cores": cores, "platform": platform.platform(), "python": platform.python_version()}


def child_environment() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def timed_command(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, env=child_environment(), stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def ours_command(corpus: Path, vocab_file: Path, vocab_size: int, min_frequency: int) -> list[str]:
    return [sys.executable, "-c", "import sys; from bert_annotated.cli import bert_vocab_main; "
            "sys.exit(bert_vocab_main(sys.argv[1:]))",
            "-c", str(corpus), "-o", str(vocab_file), "-s", str(vocab_size), "-m", str(min_frequency)]


def rust_command(files: list[Path], output_dir: Path, vocab_size: int, min_frequency: int) -> list[str]:
    return [sys.executable, "-c", RUST_TRAINER, str(vocab_size), str(min_frequency), str(output_dir)] + [str(f) for f in files]


def time_stages(corpus: Path, vocab_size: int, min_frequency: int, vocab_file: Path, simple: bool = False):
    """Our pipeline stage by stage (as build_vocab runs it) -> ({stage: seconds}, vocabulary)."""
    from bert_annotated.corpora import read_corpus
    from bert_annotated.tokenization import (
        count_words,
        count_words_fast,
        learn_vocab,
        learn_vocab_by_frequency,
        write_vocab,
    )
    times = {}
    started = time.perf_counter()
    texts = list(read_corpus(corpus, "auto", min_documents=1).texts())
    times["read corpus (chapter 07)"] = time.perf_counter() - started
    started = time.perf_counter()
    word_counts = count_words(texts) if simple else count_words_fast(texts)
    times["count words (simple)" if simple else "count words (fast)"] = time.perf_counter() - started
    started = time.perf_counter()
    if simple:
        tokens = learn_vocab(word_counts, vocab_size, min_frequency, score="frequency")
    else:
        tokens = learn_vocab_by_frequency(word_counts, vocab_size, min_frequency)
    times["merge (simple)" if simple else "merge (incremental)"] = time.perf_counter() - started
    started = time.perf_counter()
    write_vocab(tokens, vocab_file)
    times["write vocab.txt"] = time.perf_counter() - started
    return times, tokens


def read_tokens(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def run(args) -> dict:
    from bert_annotated.corpora import corpus_files
    corpus = Path(args.corpus)
    files = corpus_files(corpus)
    work = Path(tempfile.mkdtemp(prefix="vocab-bench-"))
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    ours, rust, stage_runs, before_runs = [], [], [], []
    for run_index in range(args.runs):  # interleaved, so that machine load hits both alike
        ours.append(timed_command(ours_command(corpus, work / "ours.txt", args.vocab_size, args.min_frequency)))
        rust.append(timed_command(rust_command(files, work, args.vocab_size, args.min_frequency)))
        stage_runs.append(time_stages(corpus, args.vocab_size, args.min_frequency, work / "stages.txt")[0])
        print(f"run {run_index + 1}/{args.runs}: bert-vocab {ours[-1]:.2f} s, Rust {rust[-1]:.2f} s", flush=True)
    simple_tokens = None
    for _ in range(args.before_runs):
        times, simple_tokens = time_stages(corpus, args.vocab_size, args.min_frequency, work / "simple.txt", simple=True)
        before_runs.append(times)
        print(f"simple trainer: {sum(times.values()):.2f} s", flush=True)
    ours_tokens, rust_tokens = read_tokens(work / "ours.txt"), read_tokens(work / "vocab.txt")
    stages = {name: statistics.median(run[name] for run in stage_runs) for name in stage_runs[0]}
    before = {name: statistics.median(run[name] for run in before_runs) for name in before_runs[0]} if before_runs else {}
    ours_median, rust_median = statistics.median(ours), statistics.median(rust)
    return {
        "benchmark": "vocab_trainer",
        "command": " ".join(shlex.quote(part) for part in [sys.executable, *sys.argv]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "device": cpu_description(),
        "note": args.note,
        "load_average_1_5_15min": {"start": load_before, "end": os.getloadavg() if hasattr(os, "getloadavg") else None},
        "corpus": {"path": str(corpus), "files": len(files),
                   "megabytes": sum(f.stat().st_size for f in files) / 1e6},
        "settings": {"vocab_size": args.vocab_size, "min_frequency": args.min_frequency, "lowercase": True,
                     "strip_accents": True, "cjk_split": True, "our_score": "frequency",
                     "rust": "tokenizers WordPieceTrainer + BertNormalizer + BertPreTokenizer, train(files)"},
        "runs": args.runs,
        "ours_s": ours, "rust_s": rust,
        "ours_median_s": ours_median, "rust_median_s": rust_median,
        "ratio": ours_median / rust_median,
        "stages_s": stage_runs, "stages_median_s": stages,
        "in_process_total_median_s": sum(stages.values()),
        "before_stages_median_s": before,
        "ours_before_s": sum(before.values()) if before else None,
        "same_vocabulary_as_simple_trainer": (ours_tokens == simple_tokens) if simple_tokens is not None else None,
        "vocabulary_sizes": {"ours": len(ours_tokens), "rust": len(rust_tokens)},
        "shared_with_rust": len(set(ours_tokens) & set(rust_tokens)) / max(1, len(ours_tokens)),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", default=str(DEFAULT_CORPUS), help="corpus file or folder (default: the 16 MB sample)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--before-runs", type=int, default=1, help="runs of the simple trainer (0: skip)")
    parser.add_argument("--vocab-size", type=int, default=30000)
    parser.add_argument("--min-frequency", type=int, default=2)
    parser.add_argument("--output", default=None, help=f"JSON to write (default: {DEFAULT_OUTPUT.relative_to(REPO)}; --smoke: a temporary file)")
    parser.add_argument("--note", default="", help="free text stored in the JSON, e.g. about machine load")
    parser.add_argument("--smoke", action="store_true", help="the embedded English corpus, tiny vocabulary, one run")
    args = parser.parse_args(argv)
    if args.smoke:
        args.corpus = str(REPO / "bert_annotated" / "data" / "corpus_en.txt")
        args.runs, args.before_runs, args.vocab_size = 1, 1, 600
        if args.output is None:  # never overwrite the committed results with a smoke run
            args.output = str(Path(tempfile.mkdtemp(prefix="vocab-bench-")) / "smoke.json")
    args.output = args.output or str(DEFAULT_OUTPUT)
    if not Path(args.corpus).exists():
        parser.error(f"{args.corpus}: no such corpus; pass --corpus PATH (a file or a folder of text files)")
    result = run(args)
    print(json.dumps({key: result[key] for key in ("ours_median_s", "rust_median_s", "ratio", "stages_median_s",
                                                    "ours_before_s", "same_vocabulary_as_simple_trainer")}, indent=2))
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
