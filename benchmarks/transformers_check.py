"""An outside check of chapter 10's fine-tuning code: fine-tune the same checkpoint on the same examples with
`transformers`' own classes and a plain training loop, and record the dev accuracies beside the book's.

Same as the book's runs: the data (Appendix G's held-out split and seeded training subsets, encoded by the book's
tokenizer), the learning rate the book's search chose (read from the book's results file), the batch size, the
200-update budget (epochs grow as data shrinks), weight decay 0.01 except on biases and LayerNorms, 10% linear
warm-up then linear decay, gradient clipping at 1, and the epoch chosen on the held-out set.
Different on purpose: the model (`transformers.BertForSequenceClassification`), the optimizer
(`torch.optim.AdamW`), the schedule (`transformers.get_linear_schedule_with_warmup`), the batching (a plain shuffle
with padding to the longest in the batch, not the book's length buckets), and the held-out set scored after every
epoch. If the book's code had a bug in any of the parts it does not share, the two would disagree.

Usage (from the repository root; one thread, results written after every run, runs already there skipped):
    python benchmarks/transformers_check.py --data ../shared/datasets/glue-sst2 --sizes 1000 \
        --book-results book/results/finetune-sst2-budget.json --output book/results/finetune-sst2-transformers.json
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import random
import shlex
import sys
import time
from pathlib import Path

import torch

from bert_annotated.checkpoints import book_model_dir
from bert_annotated.classification_data import load_task, split_train_pool, training_subset
from bert_annotated.fine_tuning import accuracy_and_f1, encode_examples
from bert_annotated.runtime import atomic_write_text
from bert_annotated.tokenization import BertTokenizer


def batches(items, batch_size: int, rng: random.Random | None, pad_id: int = 0):
    """Shuffled (or, without rng, in order) batches, padded to the longest item of each."""
    order = list(range(len(items)))
    if rng is not None:
        rng.shuffle(order)
    for start in range(0, len(order), batch_size):
        chosen = [items[i] for i in order[start:start + batch_size]]
        width = max(len(item["input_ids"]) for item in chosen)
        pad = lambda key, value: torch.tensor([item[key] + [value] * (width - len(item[key])) for item in chosen])
        yield {"input_ids": pad("input_ids", pad_id), "token_type_ids": pad("token_type_ids", 0),
               "attention_mask": torch.tensor([[1] * len(item["input_ids"]) + [0] * (width - len(item["input_ids"]))
                                               for item in chosen]),
               "labels": torch.tensor([item["label"] for item in chosen])}


@torch.no_grad()
def accuracy(model, items) -> float:
    model.eval()
    predictions = torch.cat([model(**{k: v for k, v in batch.items() if k != "labels"}).logits.argmax(-1)
                             for batch in batches(items, 64, None)])
    model.train()
    return accuracy_and_f1(predictions, [item["label"] for item in items])[0]


def fine_tune_with_transformers(model_folder, train, held, dev, lr: float, seed: int, batch_size: int = 16,
                                epochs: int = 3, min_updates: int = 200) -> dict:
    import transformers

    torch.manual_seed(seed)
    # float32 as the book's loader gives: the book's weights are stored in float16, and transformers would
    # otherwise keep that dtype and train in half precision on the CPU
    model = transformers.BertForSequenceClassification.from_pretrained(model_folder, num_labels=2, dtype=torch.float32)
    model.train()
    steps_per_epoch = math.ceil(len(train) / batch_size)
    epochs = max(epochs, math.ceil(min_updates / steps_per_epoch))
    no_decay = [p for name, p in model.named_parameters() if name.endswith("bias") or "LayerNorm" in name]
    decay = [p for name, p in model.named_parameters() if not (name.endswith("bias") or "LayerNorm" in name)]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                                  lr=lr, betas=(0.9, 0.999), eps=1e-6)
    total = epochs * steps_per_epoch
    scheduler = transformers.get_linear_schedule_with_warmup(optimizer, round(0.1 * total), total)
    rng, best = random.Random(seed), (-1.0, 0, None)
    for epoch in range(1, epochs + 1):
        for batch in batches(train, batch_size, rng):
            loss = model(**batch).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
        score = accuracy(model, held)
        if score > best[0]:
            best = (score, epoch, {k: v.detach().clone() for k, v in model.state_dict().items()})
    model.load_state_dict(best[2])
    return {"lr": lr, "updates": total, "best_epoch": best[1], "held_out_accuracy": best[0],
            "dev_accuracy": accuracy(model, dev)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="folder with SST-2's train.tsv and dev.tsv")
    parser.add_argument("--book-results", required=True, help="the book's results file: settings and chosen rate")
    parser.add_argument("--output", required=True)
    parser.add_argument("--sizes", type=int, nargs="+", required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args(argv)
    import transformers

    torch.set_num_threads(1)
    book = json.loads(Path(args.book_results).read_text(encoding="utf-8"))
    settings, lr = book["settings"], book["selected_lr"]["pretrained"]
    model_folder = book_model_dir()
    tokenizer = BertTokenizer.from_pretrained(model_folder)
    encode = lambda examples: encode_examples(tokenizer, examples, settings["max_length"])
    held, pool = split_train_pool(load_task(book["task"], "train", args.data), settings["held_out"])
    held, dev = encode(held), encode(load_task(book["task"], "dev", args.data)[:settings["dev_examples"]])
    output = Path(args.output)
    results = json.loads(output.read_text(encoding="utf-8")) if output.is_file() else {
        "task": book["task"], "book_results": args.book_results, "settings": settings, "records": []}
    done = {(r["seed"], r["train_examples"]) for r in results["records"]}
    for seed in args.seeds:
        for size in args.sizes:
            if (seed, size) in done:
                continue
            started = time.perf_counter()
            fields = fine_tune_with_transformers(model_folder, encode(training_subset(pool, size, seed)), held, dev,
                                                 lr, seed, settings["batch_size"], settings["epochs"],
                                                 settings["min_updates"])
            results["records"].append({
                "task": book["task"], "start": "pretrained", "seed": seed, "train_examples": size, **fields,
                "seconds": round(time.perf_counter() - started, 1), "device": "cpu", "threads": 1,
                "torch": torch.__version__, "transformers": transformers.__version__,
                "command": "python " + shlex.join(["benchmarks/transformers_check.py", *(argv or sys.argv[1:])]),
                "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")})
            atomic_write_text(json.dumps(results, indent=1) + "\n", output)
            print(f"seed {seed}, {size:,} sentences: dev accuracy {fields['dev_accuracy']:.3f} "
                  f"({results['records'][-1]['seconds']:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
