"""Pretraining throughput: bert_annotated against transformers.BertForPreTraining, side by side.

Both models get the same configuration, the same batches (random token ids with 15% of the
positions carrying MLM labels, and NSP labels), the same optimiser (torch AdamW, fused on a GPU)
and the same autocast precision. Each step is a full training step: forward, loss, backward,
optimiser step. The time of a step is the median of `--steps` synchronised steps after
`--warmup` warm-up steps.

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

Results go to benchmarks/results/<device>-<config>.json and are printed.
"""
from __future__ import annotations

import argparse
import json
import platform
import re
import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch

CONFIGS = {
    # BERT-base (bert-base-uncased's sizes)
    "base": dict(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                 intermediate_size=3072, seq_len=128, batch_size=128),
    # chapter 07's GPU preset
    "small": dict(vocab_size=30522, hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
                  intermediate_size=1024, seq_len=128, batch_size=128),
    # a smoke test that runs anywhere in seconds
    "tiny": dict(vocab_size=1000, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                 intermediate_size=256, seq_len=64, batch_size=8),
}

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
    """Random but fixed batches: [CLS] … [SEP] … [SEP], 15% of the other positions labelled."""
    generator = torch.Generator().manual_seed(seed)
    batch, seq, vocab = config["batch_size"], config["seq_len"], config["vocab_size"]
    batches = []
    for _ in range(num_batches):
        input_ids = torch.randint(5, vocab, (batch, seq), generator=generator)
        split = seq // 2
        input_ids[:, 0], input_ids[:, split], input_ids[:, -1] = 2, 3, 3  # [CLS] A [SEP] B [SEP]
        token_type_ids = torch.zeros(batch, seq, dtype=torch.long)
        token_type_ids[:, split + 1:] = 1
        maskable = input_ids > 4
        chosen = (torch.rand(batch, seq, generator=generator) < mask_prob) & maskable
        mlm_labels = torch.where(chosen, input_ids, torch.full_like(input_ids, -100))
        masked_inputs = torch.where(chosen, torch.full_like(input_ids, 4), input_ids)  # [MASK]
        batches.append({
            "input_ids": masked_inputs,
            "token_type_ids": token_type_ids,
            "attention_mask": torch.ones(batch, seq, dtype=torch.long),
            "mlm_labels": mlm_labels,
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


def build_ours(config: dict):
    from bert_annotated import BertConfig
    from bert_annotated.pretraining import BertForPreTraining

    model_config = BertConfig(**{k: v for k, v in config.items() if k not in ("seq_len", "batch_size")})
    model = BertForPreTraining(model_config)

    def step(batch):
        return model(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"],
                     mlm_labels=batch["mlm_labels"], next_sentence_labels=batch["next_sentence_labels"]).loss

    def mlm_positions(batch):
        return int((batch["mlm_labels"] != -100).sum())

    return model, step, mlm_positions


def build_hf(config: dict):
    import transformers

    hf_config = transformers.BertConfig(**{k: v for k, v in config.items() if k not in ("seq_len", "batch_size")})
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=sorted(CONFIGS), default="base")
    parser.add_argument("--batch-size", type=int, help="override the configuration's batch size")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    parser.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"], default="auto",
                        help="auto: bf16 on a GPU that supports it, fp16 on other GPUs, fp32 on a CPU")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--compile", action="store_true", help="torch.compile both models")
    parser.add_argument("--skip-hf", action="store_true", help="measure bert_annotated only")
    parser.add_argument("--output-dir", default=str(Path(__file__).resolve().parent / "results"))
    args = parser.parse_args(argv)

    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available()
                          else ("cpu" if args.device == "auto" else args.device))
    precision = args.precision
    if precision == "auto":
        precision = "fp32" if device.type != "cuda" else ("bf16" if torch.cuda.is_bf16_supported() else "fp16")
    config = dict(CONFIGS[args.config])
    if args.batch_size:
        config["batch_size"] = args.batch_size
    batches = make_batches(config, num_batches=4, mask_prob=0.15, seed=0)

    results = {"ours": measure("bert_annotated", build_ours, config, batches, device, precision,
                               args.warmup, args.steps, args.compile)}
    if not args.skip_hf:
        results["hf"] = measure("transformers (sdpa)", build_hf, config, batches, device, precision,
                                args.warmup, args.steps, args.compile)

    ours, hf = results["ours"], results.get("hf")
    record = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)",
        "config": {"name": args.config, **config},
        "precision": precision,
        "compile": args.compile,
        "warmup_steps": args.warmup,
        "timed_steps": args.steps,
        "torch": torch.__version__,
        "ours_tokens_per_s": ours["tokens_per_s"],
        "hf_tokens_per_s": hf["tokens_per_s"] if hf else None,
        "ratio": ours["tokens_per_s"] / hf["tokens_per_s"] if hf else None,
        "ours_mfu": ours["mfu"],
        "hf_mfu": hf["mfu"] if hf else None,
        "details": results,
    }
    if hf:
        import transformers
        record["transformers"] = transformers.__version__

    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / f"{device_label(device)}-{args.config}.json"
    path.write_text(json.dumps(record, indent=2) + "\n")

    print(f"{record['device']} · config {args.config} · {precision} · batch {config['batch_size']} × seq {config['seq_len']}")
    for result in results.values():
        mfu = f"{100 * result['mfu']:.1f}%" if result["mfu"] is not None else "n/a"
        memory = f"{result['peak_memory_gb']:.2f} GB" if result["peak_memory_gb"] is not None else "n/a"
        print(f"  {result['name']:<22} {result['tokens_per_s']:>12,.0f} tokens/s  {result['sequences_per_s']:>9,.1f} seq/s"
              f"  MFU {mfu:>6}  peak memory {memory}")
    if hf:
        print(f"  ratio ours / transformers: {record['ratio']:.2f}×")
    print(f"saved {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
