"""Pretraining throughput: bert_annotated against transformers.BertForPreTraining, side by side.

Both models get the same configuration, the same batches (random token ids with 15% of the
positions carrying MLM labels, and NSP labels), the same optimiser (torch AdamW, fused on a GPU)
and the same autocast precision. Each step is a full training step: forward, loss, backward,
optimiser step. The time of a step is the median of `--steps` synchronised steps after
`--warmup` warm-up steps.

`ours` is the training step as the book runs it: a fixed number of masked-LM slots per sequence
(`masked_positions`, chapter 05's gather_masked_positions) and no id-range check in the step (the
collator checked the batch). `ours_dynamic` is the same model called as before that change: (batch, seq)
labels, a boolean gather with a data-dependent shape, and BertModel's per-step aminmax + int() check.
With `--repeats N` every variant is measured N times, interleaved, and the median is reported.

MFU (model FLOPs utilisation) counts the training FLOPs that each model really performs:

    per token: 6 * N_matmul + 12 * L * H * T          (weights, and attention scores/values)
    plus the MLM head: 6 * (H*H + H*V) for each position whose MLM logits are computed

where N_matmul is the number of weights in the encoder's and the pooler's matrix products
(embedding lookups are not matrix products), L the layers, H the hidden size and T the sequence
length. transformers computes MLM logits at every position; bert_annotated only at the masked
ones, and both are credited for what they compute.

    python benchmarks/pretrain_throughput.py --config base          # BERT-base, seq 128
    python benchmarks/pretrain_throughput.py --config small         # chapter 07's GPU preset
    python benchmarks/pretrain_throughput.py --config tiny --steps 3 --warmup 1   # CPU smoke run
    python benchmarks/pretrain_throughput.py --loop --corpus-limit 0              # steps/s of the real loop
    python benchmarks/pretrain_throughput.py --padding                            # padding of real batches

Results go to benchmarks/results/<device>-<config>.json and are printed.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch

CONFIGS = {
    # BERT-base (bert-base-uncased's sizes)
    "base": dict(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                 intermediate_size=3072, seq_len=128, batch_size=128, max_predictions=19),
    # chapter 07's GPU preset
    "small": dict(vocab_size=30522, hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
                  intermediate_size=1024, seq_len=128, batch_size=128, max_predictions=19),
    # a smoke test that runs anywhere in seconds
    "tiny": dict(vocab_size=1000, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                 intermediate_size=256, seq_len=64, batch_size=8, max_predictions=9),
}

# max_predictions: the book's default slots, the most the masker can choose in seq_len - 3 tokens (BERT used 20 at 128)

# Dense bf16/fp16 tensor-core peaks (FLOP/s), from the vendors' data sheets.
PEAK_FLOPS = {
    "H100 SXM": 989e12, "H100 NVL": 835e12, "H100 PCIe": 756e12, "H100": 989e12, "H200": 989e12,
    "A100": 312e12, "L4": 121e12, "A10G": 125e12, "T4": 65e12, "V100": 125e12,
}


def peak_flops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key in sorted(PEAK_FLOPS, key=len, reverse=True):  # most specific name first
        if all(part in name for part in key.split()):
            return PEAK_FLOPS[key]
    return None


def device_label(device: torch.device) -> str:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu-{platform.machine()}"
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()


def make_batches(config: dict, num_batches: int, mask_prob: float, seed: int) -> list[dict]:
    """Random but fixed batches: [CLS] … [SEP] … [SEP], masked by chapter 05's masker (15%, at most
    max_predictions per sequence), with the labels both per position and in fixed slots."""
    from bert_annotated.masking import MaskedLMMasker, gather_masked_positions

    generator = torch.Generator().manual_seed(seed)
    batch, seq, vocab = config["batch_size"], config["seq_len"], config["vocab_size"]
    masker = MaskedLMMasker(4, vocab, [0, 1, 2, 3], mask_prob=mask_prob, max_predictions_per_seq=config["max_predictions"])
    batches = []
    for _ in range(num_batches):
        input_ids = torch.randint(5, vocab, (batch, seq), generator=generator)
        split = seq // 2
        input_ids[:, 0], input_ids[:, split], input_ids[:, -1] = 2, 3, 3  # [CLS] A [SEP] B [SEP]
        token_type_ids = torch.zeros(batch, seq, dtype=torch.long)
        token_type_ids[:, split + 1:] = 1
        masked_inputs, mlm_labels = masker(input_ids, generator=generator)  # (batch, seq) each
        masked_positions, slot_labels = gather_masked_positions(mlm_labels, config["max_predictions"])
        batches.append({
            "input_ids": masked_inputs,
            "token_type_ids": token_type_ids,
            "attention_mask": torch.ones(batch, seq, dtype=torch.long),
            "mlm_labels": mlm_labels,  # (batch, seq), -100 where nothing is predicted
            "masked_positions": masked_positions,  # (batch, max_predictions)
            "slot_labels": slot_labels,  # (batch, max_predictions)
            "next_sentence_labels": torch.randint(0, 2, (batch,), generator=generator),
        })
    return batches


def training_flops_per_step(config: dict, num_mlm_positions: int) -> float:
    """Training FLOPs (forward + backward) of one step, see the module docstring."""
    hidden, layers, seq = config["hidden_size"], config["num_hidden_layers"], config["seq_len"]
    intermediate, vocab, batch = config["intermediate_size"], config["vocab_size"], config["batch_size"]
    per_layer = 4 * hidden * hidden + 2 * hidden * intermediate  # Q, K, V, O and the two FFN matrices
    matmul_weights = layers * per_layer + hidden * hidden  # + pooler (per sequence, counted per token: tiny)
    tokens = batch * seq
    body = tokens * (6 * matmul_weights + 12 * layers * hidden * seq)
    head = num_mlm_positions * 6 * (hidden * hidden + hidden * vocab)
    return float(body + head)


BENCH_KEYS = ("seq_len", "batch_size", "max_predictions")


def build_ours(config: dict, static: bool = True):
    from bert_annotated.model import BertConfig, BertForPreTraining

    model_config = BertConfig(**{k: v for k, v in config.items() if k not in BENCH_KEYS})
    model = BertForPreTraining(model_config)

    def step(batch):
        if static:  # fixed shapes, ids checked when the batch was built
            return model(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"],
                         mlm_labels=batch["slot_labels"], next_sentence_labels=batch["next_sentence_labels"],
                         masked_positions=batch["masked_positions"], check_inputs=False).loss
        return model(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"],
                     mlm_labels=batch["mlm_labels"], next_sentence_labels=batch["next_sentence_labels"]).loss

    def mlm_positions(batch):
        return int((batch["mlm_labels"] != -100).sum())

    return model, step, mlm_positions


def build_ours_dynamic(config: dict):
    return build_ours(config, static=False)


def build_hf(config: dict):
    import transformers

    hf_config = transformers.BertConfig(**{k: v for k, v in config.items() if k not in BENCH_KEYS})
    model = transformers.BertForPreTraining._from_config(hf_config, attn_implementation="sdpa")

    def step(batch):
        return model(input_ids=batch["input_ids"], token_type_ids=batch["token_type_ids"],
                     attention_mask=batch["attention_mask"], labels=batch["mlm_labels"],
                     next_sentence_label=batch["next_sentence_labels"]).loss

    def mlm_positions(batch):
        return batch["input_ids"].numel()  # logits at every position

    return model, step, mlm_positions


def measure(name: str, build, config: dict, batches: list[dict], device: torch.device, precision: str,
            warmup: int, steps: int, compile_model: bool) -> dict:
    torch.manual_seed(0)
    model, step, mlm_positions = build(config)
    model.to(device).train()
    if compile_model:
        model = torch.compile(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type == "cuda")
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    autocast = torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    batches = [{key: value.to(device) for key, value in batch.items()} for batch in batches]
    synchronize = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    times, losses = [], []
    for index in range(warmup + steps):
        batch = batches[index % len(batches)]
        synchronize()
        start = time.perf_counter()
        with autocast:
            loss = step(batch)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        synchronize()
        if index >= warmup:
            times.append(time.perf_counter() - start)
            losses.append(float(loss.detach()))
    seconds = statistics.median(times)
    tokens = config["batch_size"] * config["seq_len"]
    flops = training_flops_per_step(config, mlm_positions(batches[0]))
    peak = peak_flops(device)
    result = {
        "name": name,
        "step_seconds_median": seconds,
        "tokens_per_s": tokens / seconds,
        "sequences_per_s": config["batch_size"] / seconds,
        "train_flops_per_step": flops,
        "achieved_tflops": flops / seconds / 1e12,
        "mfu": flops / seconds / peak if peak else None,
        "peak_memory_gb": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None,
        "parameters": sum(p.numel() for p in model.parameters()),
        "final_loss": losses[-1],
    }
    del model, optimizer
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return result


def provenance(argv) -> dict:
    """Where and when a result was measured, and with what command and code."""
    import bert_annotated

    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=Path(bert_annotated.__file__).parent, timeout=10).stdout.strip() or None
    except OSError:
        commit = None
    return {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "command": "python benchmarks/pretrain_throughput.py " + " ".join(argv),
            "package": str(Path(bert_annotated.__file__).parent), "commit": commit, "torch": torch.__version__,
            "cpu_cores": os.cpu_count(), "load_average_at_start": list(os.getloadavg())}


def write_record(record: dict, output_dir: str, name: str) -> Path:
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / name
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


def median_of_runs(runs: list[dict]) -> dict:
    """The run with the median tokens/s, plus every run's tokens/s."""
    ordered = sorted(runs, key=lambda run: run["tokens_per_s"])
    return {**ordered[(len(ordered) - 1) // 2], "tokens_per_s_runs": [run["tokens_per_s"] for run in runs]}


def benchmark_model(args, argv, device: torch.device) -> int:
    precision = args.precision
    if precision == "auto":
        precision = "fp32" if device.type != "cuda" else ("bf16" if torch.cuda.is_bf16_supported() else "fp16")
    config = dict(CONFIGS[args.config])
    if args.batch_size:
        config["batch_size"] = args.batch_size
    batches = make_batches(config, num_batches=4, mask_prob=0.15, seed=0)
    variants = {"ours": ("bert_annotated", build_ours), "ours_dynamic": ("bert_annotated, dynamic shapes", build_ours_dynamic)}
    if not args.skip_hf:
        variants["hf"] = ("transformers (sdpa)", build_hf)
    runs = {key: [] for key in variants}
    for _ in range(args.repeats):  # interleaved, so that a change of load affects every variant alike
        for key, (name, build) in variants.items():
            runs[key].append(measure(name, build, config, batches, device, precision, args.warmup, args.steps,
                                     args.compile))
    results = {key: median_of_runs(value) for key, value in runs.items()}

    ours, dynamic, hf = results["ours"], results["ours_dynamic"], results.get("hf")
    record = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)",
        "config": {"name": args.config, **config},
        "precision": precision,
        "compile": args.compile,
        "warmup_steps": args.warmup,
        "timed_steps": args.steps,
        "repeats": args.repeats,
        **provenance(argv),
        "ours_tokens_per_s": ours["tokens_per_s"],
        "ours_dynamic_tokens_per_s": dynamic["tokens_per_s"],
        "static_over_dynamic": ours["tokens_per_s"] / dynamic["tokens_per_s"],
        "hf_tokens_per_s": hf["tokens_per_s"] if hf else None,
        "ratio": ours["tokens_per_s"] / hf["tokens_per_s"] if hf else None,
        "ours_mfu": ours["mfu"],
        "hf_mfu": hf["mfu"] if hf else None,
        "load_average_at_end": list(os.getloadavg()),
        "details": results,
    }
    if hf:
        import transformers
        record["transformers"] = transformers.__version__
    suffix = "-compile" if args.compile else ""
    path = write_record(record, args.output_dir, f"{device_label(device)}-{args.config}{suffix}.json")

    print(f"{record['device']} · config {args.config} · {precision} · batch {config['batch_size']} × seq {config['seq_len']}"
          f"{' · compiled' if args.compile else ''}")
    for result in results.values():
        mfu = f"{100 * result['mfu']:.1f}%" if result["mfu"] is not None else "n/a"
        memory = f"{result['peak_memory_gb']:.2f} GB" if result["peak_memory_gb"] is not None else "n/a"
        print(f"  {result['name']:<30} {result['tokens_per_s']:>12,.0f} tokens/s  {result['sequences_per_s']:>9,.1f} seq/s"
              f"  MFU {mfu:>6}  peak memory {memory}")
    print(f"  static / dynamic shapes: {record['static_over_dynamic']:.2f}×")
    if hf:
        print(f"  ratio ours / transformers: {record['ratio']:.2f}×")
    print(f"saved {path}")
    return 0


def benchmark_loop(args, argv, device: torch.device) -> int:
    """Steps per second of the real training loop (`pretrain`, as `bert-annotated pretrain` runs it) with the
    device's preset on the embedded corpus: the median time between optimizer steps, validation excluded."""
    import tempfile

    from bert_annotated.corpora import build_vocab, embedded_corpus_paths, read_corpus
    from bert_annotated.model import BertConfig
    from bert_annotated.runs import TrainingConfig, preset_for, pretrain
    from bert_annotated.tokenization import BertTokenizer

    preset = preset_for(device)
    corpus = read_corpus(args.corpus or embedded_corpus_paths("both"))
    with tempfile.TemporaryDirectory() as scratch:
        build_vocab(corpus, Path(scratch) / "vocab.txt", vocab_size=30000)
        tokenizer = BertTokenizer(str(Path(scratch) / "vocab.txt"))
        model_config = BertConfig(vocab_size=len(tokenizer), hidden_size=preset["hidden_size"],
                                  num_hidden_layers=preset["num_hidden_layers"],
                                  num_attention_heads=preset["num_attention_heads"],
                                  intermediate_size=preset["intermediate_size"])
        config = TrainingConfig(output_dir=str(Path(scratch) / "run"), seq_len=preset["seq_len"],
                                batch_size=preset["batch_size"], lr=preset["lr"], max_steps=args.loop_steps,
                                eval_every=args.loop_steps, device=str(device), progress=False,
                                num_workers=args.num_workers, compile=args.compile)
        stamps = []
        started = time.perf_counter()
        pretrain(corpus, tokenizer, model_config, config, on_step=lambda step, record: stamps.append(time.perf_counter()))
        wall = time.perf_counter() - started
    intervals = [later - earlier for earlier, later in zip(stamps[1:], stamps[2:])]  # the first step warms up
    record = {"device": str(device), "preset": preset, "corpus": corpus.source, "steps": args.loop_steps,
              "num_workers": args.num_workers, "compile": args.compile, **provenance(argv),
              "steps_per_s": 1.0 / statistics.median(intervals),
              "steps_per_s_mean": len(intervals) / sum(intervals), "wall_seconds_with_data_preparation": wall,
              "load_average_at_end": list(os.getloadavg()),
              "gpu_note": "GPU figures (steps/s of the small preset, GPU busy %) need a GPU session" if device.type != "cuda" else None}
    name = f"{device_label(device)}-loop{'-' + args.label if args.label else ''}.json"
    path = write_record(record, args.output_dir, name)
    print(f"{device}: {record['steps_per_s']:.2f} steps/s (median), {record['steps_per_s_mean']:.2f} steps/s (mean); saved {path}")
    return 0


def benchmark_nsp_gap(args, argv, device: torch.device) -> int:
    """Train/validation NSP accuracy of the same run with NSP pairs fixed for the run and redrawn every epoch."""
    import tempfile

    from bert_annotated.corpora import build_vocab, embedded_corpus_paths, read_corpus
    from bert_annotated.model import BertConfig
    from bert_annotated.runs import TrainingConfig, preset_for, pretrain, read_metrics
    from bert_annotated.tokenization import BertTokenizer

    preset = preset_for(device)
    corpus = read_corpus(args.corpus or embedded_corpus_paths("both"))
    runs = {}
    with tempfile.TemporaryDirectory() as scratch:
        build_vocab(corpus, Path(scratch) / "vocab.txt", vocab_size=30000)
        tokenizer = BertTokenizer(str(Path(scratch) / "vocab.txt"))
        for dynamic in (False, True):
            model_config = BertConfig(vocab_size=len(tokenizer), hidden_size=preset["hidden_size"],
                                      num_hidden_layers=preset["num_hidden_layers"],
                                      num_attention_heads=preset["num_attention_heads"],
                                      intermediate_size=preset["intermediate_size"])
            output = Path(scratch) / f"run-{dynamic}"
            config = TrainingConfig(output_dir=str(output), seq_len=preset["seq_len"], batch_size=preset["batch_size"],
                                    lr=preset["lr"], max_steps=args.loop_steps, eval_every=max(1, args.loop_steps // 4),
                                    log_every=max(1, args.loop_steps // 20), device=str(device), progress=False,
                                    dynamic_nsp=dynamic)
            result = pretrain(corpus, tokenizer, model_config, config)
            train = [r for r in read_metrics(output) if r["split"] == "train"][-4:]  # the last fifth of the run
            runs["dynamic" if dynamic else "fixed"] = {
                "train_nsp_acc": sum(r["nsp_acc"] for r in train) / len(train),
                "valid_nsp_acc": result.valid_metrics["nsp_acc"], "valid_mlm_acc": result.valid_metrics["mlm_acc"],
                "epochs": train[-1]["epoch"], "train_examples": result.data["train_examples"]}
    for run in runs.values():
        run["gap_points"] = 100 * (run["train_nsp_acc"] - run["valid_nsp_acc"])
    record = {"device": str(device), "preset": preset, "corpus": corpus.source, "steps": args.loop_steps,
              **provenance(argv), "runs": runs,
              "note": "train: mean NSP accuracy of the last four logged intervals; valid: the fixed held-out examples"}
    path = write_record(record, args.output_dir, f"{device_label(device)}-nsp-gap.json")
    for name, run in runs.items():
        print(f"NSP pairs {name}: train {run['train_nsp_acc']:.3f}, validation {run['valid_nsp_acc']:.3f} "
              f"(gap {run['gap_points']:.1f} points, {run['epochs']} epochs)")
    print(f"saved {path}")
    return 0


def benchmark_padding(args, argv) -> int:
    """The padding fraction of real training batches: how much unpadding or packing could save at most."""
    from bert_annotated.corpora import build_vocab, read_corpus
    from bert_annotated.masking import MaskedLMMasker
    from bert_annotated.pretraining_data import (
        BatchStream,
        PretrainingCollator,
        PretrainingDataset,
        create_pretraining_examples,
    )
    from bert_annotated.tokenization import BertTokenizer
    import tempfile

    paths = args.corpus or [str(Path(__file__).resolve().parents[1] / ".." / "shared" / "corpora" / "enwiki-sample")]
    corpus = read_corpus(paths)
    if args.corpus_limit:
        corpus.documents = corpus.documents[:args.corpus_limit]
    with tempfile.TemporaryDirectory() as scratch:
        build_vocab(corpus, Path(scratch) / "vocab.txt", vocab_size=30000)
        tokenizer = BertTokenizer(str(Path(scratch) / "vocab.txt"))
    examples = create_pretraining_examples(corpus, tokenizer, seq_len=args.seq_len, seed=0)
    dataset = PretrainingDataset(examples, tokenizer)
    collator = PretrainingCollator(MaskedLMMasker.from_tokenizer(tokenizer), tokenizer.pad_token_id)
    stream = BatchStream(dataset, collator, args.padding_batch_size)
    tokens = slots = 0
    for _, batch in zip(range(stream.batches_per_epoch), stream):  # one epoch, in training order
        tokens += int(batch["attention_mask"].sum())
        slots += batch["attention_mask"].numel()
    lengths = (dataset.offsets[1:] - dataset.offsets[:-1]).float()
    record = {"corpus": corpus.source, "documents": len(corpus), "examples": len(dataset), "seq_len": args.seq_len,
              "batch_size": args.padding_batch_size, **provenance(argv),
              "padding_fraction": 1 - tokens / slots,  # of the positions the model computes, with dynamic padding
              "padding_fraction_fixed_length": 1 - float(lengths.sum()) / (len(lengths) * args.seq_len),
              "full_length_share": float((lengths == args.seq_len).float().mean())}
    path = write_record(record, args.output_dir, f"padding-seq{args.seq_len}.json")
    print(f"padding: {100 * record['padding_fraction']:.1f}% of the positions of real batches "
          f"({100 * record['full_length_share']:.1f}% of the examples are full length); saved {path}")
    return 0


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=sorted(CONFIGS), default="base")
    parser.add_argument("--batch-size", type=int, help="override the configuration's batch size")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    parser.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"], default="auto",
                        help="auto: bf16 on a GPU that supports it, fp16 on other GPUs, fp32 on a CPU")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=1, help="measure each variant this many times, interleaved")
    parser.add_argument("--compile", action="store_true", help="torch.compile the models (and the loop's model)")
    parser.add_argument("--skip-hf", action="store_true", help="measure bert_annotated only")
    parser.add_argument("--loop", action="store_true", help="measure steps/s of the real pretraining loop instead")
    parser.add_argument("--loop-steps", type=int, default=300)
    parser.add_argument("--num-workers", type=int, default=0, help="data loader workers of the loop")
    parser.add_argument("--label", default="", help="added to the loop's result file name, e.g. 'before'")
    parser.add_argument("--nsp-gap", action="store_true", help="train/validation NSP accuracy, pairs fixed vs "
                        "redrawn every epoch (--loop-steps steps each, the device's preset)")
    parser.add_argument("--padding", action="store_true", help="measure the padding fraction of real batches instead")
    parser.add_argument("--corpus", nargs="+", default=None, help="corpus of --loop (default: embedded) or --padding "
                        "(default: ../shared/corpora/enwiki-sample)")
    parser.add_argument("--corpus-limit", type=int, default=0, help="--padding: use the first N documents (0: all)")
    parser.add_argument("--seq-len", type=int, default=128, help="--padding: sequence length")
    parser.add_argument("--padding-batch-size", type=int, default=128)
    parser.add_argument("--output-dir", default=str(Path(__file__).resolve().parent / "results"))
    args = parser.parse_args(argv)

    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available()
                          else ("cpu" if args.device == "auto" else args.device))
    if args.padding:
        return benchmark_padding(args, argv)
    if args.loop:
        return benchmark_loop(args, argv, device)
    if args.nsp_gap:
        return benchmark_nsp_gap(args, argv, device)
    return benchmark_model(args, argv, device)


if __name__ == "__main__":
    sys.exit(main())
