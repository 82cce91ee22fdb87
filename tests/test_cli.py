"""The command-line programs of appendix B: bert-vocab, bert and bert-annotated, run as real processes."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from bert_annotated.corpora import embedded_corpus_paths
from bert_annotated.runs import CHECKPOINT_FILE, load_checkpoint, read_metrics

ENTRY_POINTS = {"bert": "bert_main", "bert-vocab": "bert_vocab_main", "bert-annotated": "main"}
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
FAST = ["--max-steps", "4", "-b", "8", "-s", "32", "--device", "cpu", "--no-progress"]


def command(program: str, *args) -> list[str]:
    """The console script `program` as installed by pyproject.toml, run with this interpreter."""
    code = f"import sys; from bert_annotated.cli import {ENTRY_POINTS[program]} as m; sys.exit(m(sys.argv[1:]))"
    return [sys.executable, "-c", code, *map(str, args)]


def run(program: str, *args, cwd=None, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run(command(program, *args), cwd=cwd, env=ENV, capture_output=True, text=True, timeout=timeout)


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> str:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory) -> Path:
    """A copy of the embedded English corpus (plain documents)."""
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    shutil.copy(embedded_corpus_paths("en")[0], path)
    return path


@pytest.fixture(scope="module")
def vocab_file(corpus_file) -> Path:
    path = corpus_file.parent / "vocab.txt"
    result = run("bert-vocab", "-c", corpus_file, "-o", path, "-s", "1500", "-m", "2")
    assert result.returncode == 0, result.stderr
    assert "wrote" in result.stdout and path.read_text(encoding="utf-8").split("\n")[:5] == [
        "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    return path


@pytest.fixture(scope="module")
def finished_run(corpus_file, vocab_file, tmp_path_factory) -> Path:
    """bert end to end, with the seed's flags, 6 steps."""
    output = tmp_path_factory.mktemp("runs") / "run"
    result = run("bert", "-c", corpus_file, "-v", vocab_file, "-o", output, "-hs", "32", "-l", "2", "-a", "2",
                 "-s", "32", "-b", "8", "-e", "1", "-w", "0", "--with_cuda", "false", "--log_freq", "2",
                 "--lr", "0.004", "--adam_weight_decay", "0.02", "--adam_beta1", "0.85", "--adam_beta2", "0.99",
                 "--max-steps", "6", "--warmup-steps", "2", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "pretrained BERT (L=2, H=32, A=2" in result.stdout and str(output) in result.stdout
    return output


# ------------------------------------------------------------------ it works
def test_bert_end_to_end_uses_the_flags(finished_run):
    for name in ("checkpoint.pt", "model.safetensors", "config.json", "vocab.txt", "metrics.jsonl", "loss.png",
                 "accuracy.png", "summary.json"):
        assert (finished_run / name).is_file(), name
    assert not (finished_run / "model.pt").exists()  # the weights are stored once, in model.safetensors
    records = [r for r in read_metrics(finished_run) if r["split"] == "train"]
    assert [r["step"] for r in records] == [2, 4, 6]
    for record in records:
        assert {"step", "lr", "loss", "mlm_loss", "mlm_acc", "nsp_loss", "nsp_acc", "tokens_per_second"} <= set(record)
    # --lr is the peak of the schedule: reached at the end of the 2 warm-up steps (step 2)
    assert records[0]["lr"] == pytest.approx(0.004)
    checkpoint = load_checkpoint(finished_run)
    assert checkpoint["model_config"]["hidden_size"] == 32 and checkpoint["training_config"]["device"] == "cpu"
    group = checkpoint["optimizer"]["param_groups"][0]
    assert group["weight_decay"] == 0.02 and tuple(group["betas"]) == (0.85, 0.99)
    assert checkpoint["optimizer"]["param_groups"][1]["weight_decay"] == 0.0
    config = json.loads((finished_run / "config.json").read_text())
    assert config["num_attention_heads"] == 2 and config["intermediate_size"] == 128


def test_bert_annotated_pretrain_defaults(tmp_path):
    result = run("bert-annotated", "pretrain", "--max-steps", "3", "--vocab-size", "800", "--language", "en",
                 "--batch-size", "8", "--no-progress", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    runs = list((tmp_path / "runs").glob("pretrain-*"))
    assert len(runs) == 1, "default output: runs/pretrain-<date>-<time>"
    assert f"results in {Path('runs') / runs[0].name}" in result.stdout
    assert (runs[0] / "vocab.txt").is_file() and (runs[0] / "model.safetensors").is_file()
    assert [r["step"] for r in read_metrics(runs[0]) if r["split"] == "train"] == [3]


def test_bert_annotated_pretrain_with_corpus_and_output(tmp_path, corpus_file):
    result = run("bert-annotated", "pretrain", "--corpus", corpus_file, "--output", tmp_path / "out",
                 "--max-steps", "2", "--vocab-size", "600", "--batch-size", "8", "--seq-len", "32", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "model.safetensors").is_file()
    assert run("bert-annotated").returncode == 2  # no command: usage
    assert_one_line_error(run("bert-annotated", "fly"), "unknown command")


# ------------------------------------------------------------------ bert-annotated finetune and qa
def test_usage_lists_every_command():
    result = run("bert-annotated", "--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage: bert-annotated {pretrain,vocab,train,finetune,qa}")
    for name, program in (("finetune", "bert_annotated.fine_tuning"), ("qa", "bert_annotated.question_answering")):
        assert f"  {name} " in result.stdout and f"python -m {program}" in result.stdout


@pytest.mark.parametrize("name, options", [
    ("finetune", ["--task", "--data", "--model", "--output", "--sizes", "--seeds", "--lrs", "--held-out"]),
    ("qa", ["--task", "--start", "--seeds", "--data", "--model", "--output", "--train-questions", "--doc-stride"]),
])
def test_finetune_and_qa_subcommands_show_their_options(name, options):
    result = run("bert-annotated", name, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: bert-annotated {name} ")
    for option in options:
        assert option in result.stdout, option
    assert_one_line_error(run("bert-annotated", name, "--no-such-flag"), f"bert-annotated {name}: error:")
    assert_one_line_error(run("bert-annotated", name, "--task", "imagenet"), "invalid choice: 'imagenet'")


def test_finetune_and_qa_are_the_python_m_programs():
    for module in ("bert_annotated.fine_tuning", "bert_annotated.question_answering"):
        result = subprocess.run([sys.executable, "-m", module, "--help"], env=ENV, capture_output=True, text=True,
                                timeout=120)
        assert result.returncode == 0 and result.stdout.startswith(f"usage: python -m {module} "), result.stderr
    errors = subprocess.run([sys.executable, "-m", "bert_annotated.fine_tuning", "--task", "sst2", "--output", "x.json",
                             "--sizes", "10", "--no-such-flag"], env=ENV, capture_output=True, text=True, timeout=120)
    assert_one_line_error(errors, "python -m bert_annotated.fine_tuning: error:", "--no-such-flag")


def test_the_cli_imports_fine_tuning_and_question_answering_only_when_asked():
    code = ("import sys; from bert_annotated import cli; import contextlib, io\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n    cli.main(['--help'])\n"
            "print(sorted(m for m in sys.modules if m in ('bert_annotated.fine_tuning', 'bert_annotated.question_answering')))")
    result = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_awkward_but_valid_corpus(tmp_path, corpus_file, vocab_file):
    text = corpus_file.read_text(encoding="utf-8")
    awkward = tmp_path / "awkward.txt"
    awkward.write_bytes(b"\xef\xbb\xbf" + (("x" * 5000 + " " + "long line. ") * 20 + "\n\n" + text).replace("\n", "\r\n").encode())
    result = run("bert", "-c", awkward, "-v", vocab_file, "-o", tmp_path / "out", *FAST)
    assert result.returncode == 0, result.stderr


def test_ctrl_c_saves_a_checkpoint_and_resume_finishes(tmp_path, corpus_file, vocab_file):
    output = tmp_path / "run"
    flags = ["-c", corpus_file, "-v", vocab_file, "-o", output, "-hs", "32", "-l", "1", "-a", "2", "-s", "32",
             "-b", "8", "--max-steps", "100000", "--log_freq", "1", "--device", "cpu", "--no-progress"]
    process = subprocess.Popen(command("bert", *flags), env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 90
    while time.time() < deadline and len(read_metrics(output) if (output / "metrics.jsonl").exists() else []) < 3:
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "--resume" in stderr and "checkpoint saved" in stderr
    step = load_checkpoint(output)["position"]["step"]
    assert step >= 3
    logged = [r["step"] for r in read_metrics(output) if r["split"] == "train"]
    assert logged[-1] >= step
    # the same command with --resume continues from the checkpoint (here: to a nearer end)
    resumed = run("bert", *[str(f) for f in flags[:-7]], "--max-steps", str(step + 2), "--log_freq", "1",
                  "--device", "cpu", "--no-progress", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    steps = [r["step"] for r in read_metrics(output) if r["split"] == "train"]
    assert steps == list(range(1, step + 3))  # nothing lost, nothing logged twice


# ------------------------------------------------------------------ bad input: exit 2, one line, no traceback
def test_missing_files(tmp_path, corpus_file, vocab_file):
    assert_one_line_error(run("bert", "-c", tmp_path / "nope.txt", "-v", vocab_file, "-o", tmp_path / "o", *FAST),
                          "nope.txt", "no such file")
    assert_one_line_error(run("bert", "-c", corpus_file, "-v", tmp_path / "nov.txt", "-o", tmp_path / "o", *FAST),
                          "nov.txt", "bert-vocab")
    assert_one_line_error(run("bert-vocab", "-c", tmp_path / "nope.txt", "-o", tmp_path / "v.txt"), "nope.txt")
    assert_one_line_error(run("bert", "-v", vocab_file), "required")  # argparse errors are one line too


@pytest.mark.parametrize("content, fragments", [
    (b"", ["empty or blank"]),
    (b"\n   \n\t\n", ["empty or blank"]),
    (b"One document only.\nStill the same document.\n", ["found only 1 document", "blank line"]),
    (b"Good line one.\n\nGood line two.\nBad \xff\xfe byte.\n", ["line 4", "not UTF-8"]),
])
def test_bad_corpora(tmp_path, vocab_file, content, fragments):
    corpus = tmp_path / "bad.txt"
    corpus.write_bytes(content)
    assert_one_line_error(run("bert", "-c", corpus, "-v", vocab_file, "-o", tmp_path / "o", *FAST), "bad.txt", *fragments)


def test_bad_corpus_for_bert_vocab(tmp_path):
    corpus = tmp_path / "bad.txt"
    corpus.write_bytes("first\n\nsecond caf\xe9\n".encode("latin-1"))
    assert_one_line_error(run("bert-vocab", "-c", corpus, "-o", tmp_path / "v.txt"), "bad.txt", "line 3")


def test_pair_line_without_tab(tmp_path, vocab_file):
    corpus = tmp_path / "pairs.txt"
    corpus.write_text("a cat\tsat down\nthe dog\tbarked\nno tab on this line\n", encoding="utf-8")
    assert_one_line_error(run("bert", "-c", corpus, "-v", vocab_file, "-o", tmp_path / "o", "--corpus-format", "pairs",
                              *FAST), "pairs.txt", "line 3", "tab")


def test_vocab_without_special_tokens(tmp_path, corpus_file):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("the\na\ncat\n", encoding="utf-8")
    assert_one_line_error(run("bert", "-c", corpus_file, "-v", vocab, "-o", tmp_path / "o", *FAST),
                          "vocab.txt", "[PAD]")


def test_bad_model_shapes(tmp_path, corpus_file, vocab_file):
    common = ["-c", corpus_file, "-v", vocab_file, "-o", tmp_path / "o", "--device", "cpu", "--max-steps", "2"]
    assert_one_line_error(run("bert", *common, "-s", "600"), "--seq_len is 600 tokens", "max_position_embeddings 512")
    assert_one_line_error(run("bert", *common, "-hs", "100", "-a", "3"), "not divisible", "attn_heads")
    assert_one_line_error(run("bert", *common, "--with_cuda", "maybe"), "expected true or false")


def test_pretrain_checks_every_flag_before_training_a_vocabulary(tmp_path):
    """A bad flag is refused at once (no vocabulary trained, nothing written), with a fix that makes sense."""
    for flags, fragments in ((["--num-attention-heads", "3", "--hidden-size", "64"],
                              ["not divisible by 3", "--attn_heads to 4 (a divisor of 64)", "--hidden to 63 or 66"]),
                             (["--mask-prob", "2"], ["mask_prob must be in (0, 1]"])):
        started = time.perf_counter()
        result = run("bert-annotated", "pretrain", "--output", tmp_path / "run", "--device", "cpu", *flags)
        assert_one_line_error(result, *fragments)
        assert result.stdout == "" and not (tmp_path / "run").exists()
        assert time.perf_counter() - started < 30  # the vocabulary alone takes longer than the check


def test_resume_on_a_finished_run_says_it_is_complete(tmp_path, finished_run, corpus_file, vocab_file):
    copy = tmp_path / "copy"
    shutil.copytree(finished_run, copy)
    result = run("bert", "-c", corpus_file, "-v", vocab_file, "-o", copy, "-hs", "32", "-l", "2", "-a", "2",
                 "-s", "32", "-b", "8", "-e", "1", "-w", "0", "--with_cuda", "false", "--log_freq", "2",
                 "--lr", "0.004", "--adam_weight_decay", "0.02", "--adam_beta1", "0.85", "--adam_beta2", "0.99",
                 "--max-steps", "6", "--warmup-steps", "2", "--no-progress", "--resume")
    assert result.returncode == 0, result.stderr
    assert "already complete (6 steps); nothing to train" in result.stdout and " in 0.0 s" not in result.stdout


def test_output_dir_with_another_run(finished_run, corpus_file, vocab_file):
    assert_one_line_error(run("bert", "-c", corpus_file, "-v", vocab_file, "-o", finished_run, *FAST),
                          str(finished_run), "already holds another run", "--resume")


def test_resume_with_different_flags(tmp_path, finished_run, corpus_file, vocab_file):
    copy = tmp_path / "copy"
    shutil.copytree(finished_run, copy)
    line = assert_one_line_error(
        run("bert", "-c", corpus_file, "-v", vocab_file, "-o", copy, "-hs", "64", "-l", "2", "-a", "2", "-s", "32",
            "-b", "8", "--lr", "0.004", "--device", "cpu", "--max-steps", "8", "--resume", "--no-progress"),
        "checkpoint.pt", "hidden_size=32 there but 64 now")
    assert "--resume" not in line or "original" in line
    assert_one_line_error(run("bert", "-c", corpus_file, "-v", vocab_file, "-o", tmp_path / "fresh",
                              "--resume", tmp_path / "missing", *FAST), "missing", "no checkpoint")


# ------------------------------------------------------------------ several processes
@pytest.mark.skipif(shutil.which("torchrun") is None and not hasattr(torch.distributed, "run"),
                    reason="torchrun is not available")
def test_torchrun_two_processes_on_cpu(tmp_path, corpus_file, vocab_file):
    code = "import sys; from bert_annotated.cli import bert_main; sys.exit(bert_main(sys.argv[1:]))"
    script = tmp_path / "bert_script.py"
    script.write_text(code + "\n")
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script),
         "-c", corpus_file, "-v", vocab_file, "-o", tmp_path / "ddp", "-hs", "32", "-l", "1", "-a", "2", "-s", "32",
         "-b", "4", "--max-steps", "3", "--log_freq", "1", "--device", "cpu", "--no-progress"],
        env=ENV, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    run_info = json.loads((tmp_path / "ddp" / "run.json").read_text())
    assert run_info["world_size"] == 2
    records = [r for r in read_metrics(tmp_path / "ddp") if r["split"] == "train"]
    assert [r["step"] for r in records] == [1, 2, 3]  # written once, by rank 0
    assert result.stdout.count("pretrained BERT") == 1
    assert load_checkpoint(tmp_path / "ddp")["position"]["step"] == 3


# ------------------------------------------------------------------ flags generated from the configurations
def test_every_option_has_help_with_its_default():
    import argparse

    from bert_annotated import cli

    for parser in (cli._bert_parser(), cli._bert_vocab_parser(), cli._pretrain_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help, f"{parser.prog} {action.option_strings}: no help"
            assert "(default: " in action.help or "(required)" in action.help, f"{parser.prog} {action.option_strings}"
        text = parser.format_help()
        assert "%(default)s" not in text and "ADAM_WEIGHT_DECAY" not in text


def test_flags_are_generated_from_training_config_and_accept_the_seeds_spellings():
    import dataclasses

    from bert_annotated import cli
    from bert_annotated.runs import TrainingConfig

    parser = cli._pretrain_parser()
    flags = {flag for action in parser._actions for flag in action.option_strings}
    for field in dataclasses.fields(TrainingConfig):
        assert field.metadata["help"], field.name  # help text beside the field
        if field.name not in ("output_dir", "device"):
            dashed = field.name.replace("_", "-")
            assert f"--{dashed}" in flags or f"--no-{dashed}" in flags, field.name
    seed = parser.parse_args(["-hs", "128", "-a", "4", "-s", "32", "-b", "4", "--adam_weight_decay", "0.02",
                              "--log_freq", "3", "-e", "2", "-w", "1"])
    modern = parser.parse_args(["--hidden-size", "128", "--num-attention-heads", "4", "--seq-len", "32",
                                "--batch-size", "4", "--weight-decay", "0.02", "--log-every", "3", "--epochs", "2",
                                "--num-workers", "1"])
    assert vars(seed) == vars(modern)
    assert cli._bert_parser().parse_args(["-c", "x", "-v", "y", "-o", "z"]).epochs == 10  # the seed's default


def test_unset_sizes_and_learning_rate_come_from_the_device_preset(vocab_file):
    from bert_annotated import cli
    from bert_annotated.runs import HARDWARE_PRESETS
    from bert_annotated.tokenization import BertTokenizer

    args = cli._pretrain_parser().parse_args([])
    tokenizer = BertTokenizer(str(vocab_file))
    model_config, training_config = cli._configs_from_flags(args, len(tokenizer), tokenizer.pad_token_id, "cpu", "out",
                                                            10, 1)
    cpu = HARDWARE_PRESETS["cpu"]
    assert (training_config.lr, training_config.seq_len, training_config.batch_size) == (
        cpu["lr"], cpu["seq_len"], cpu["batch_size"])
    assert model_config.hidden_size == cpu["hidden_size"]
    given = cli._pretrain_parser().parse_args(["--lr", "3e-4", "--seq-len", "32"])
    _, training_config = cli._configs_from_flags(given, len(tokenizer), tokenizer.pad_token_id, "cpu", "out", 10, 1)
    assert (training_config.lr, training_config.seq_len) == (3e-4, 32)


def test_the_seeds_quick_start_works_verbatim(tmp_path):
    """The seed's README: a two-line corpus (fewer examples than a batch) and -o output/bert.model."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "corpus.small").write_text("Welcome to the\tthe jungle\nI can stay\there all night\n",
                                                    encoding="utf-8")
    vocab = run("bert-vocab", "-c", "data/corpus.small", "-o", "data/vocab.small", cwd=tmp_path)
    assert vocab.returncode == 0, vocab.stderr
    result = run("bert", "-c", "data/corpus.small", "-v", "data/vocab.small", "-o", "output/bert.model",
                 "--device", "cpu", "--no-progress", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    notices = [line for line in result.stderr.splitlines() if "fewer than the batch size" in line]
    assert len(notices) == 1 and "batches of 2" in notices[0]
    model_file = tmp_path / "output" / "bert.model"
    assert model_file.is_file() and (tmp_path / "output" / "metrics.jsonl").is_file()
    # the seed's model file is a second name for the run folder's model.safetensors, not a second copy
    assert model_file.samefile(tmp_path / "output" / "model.safetensors")
    assert not (tmp_path / "output" / "model.pt").exists()
    from safetensors.torch import load_file

    assert "bert.embeddings.word_embeddings.weight" in load_file(model_file)
    from bert_annotated.runs import load_pretrained

    model, tokenizer = load_pretrained(tmp_path / "output")
    assert model.config.vocab_size == len(tokenizer)
