"""Write book/results/pretrain-bert-mini-bilingual.json from the GPU run in ../shared (chapter 08 shows it).

The run's own files (metrics.jsonl, run.json) give the curves and the headline figures, through
`bert_annotated.runs.run_results`. The NSP baseline, the NotNext share of the run's examples, is not in
them: it is recomputed here on a CPU (about 30 s) by rebuilding the examples from the same corpora,
vocabulary, seed and settings, and the example counts are checked against run.json.

Usage:  python tools/pretrain_results.py [--shared ../shared] [--out book/results/pretrain-bert-mini-bilingual.json]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bert_annotated.corpora import read_corpus
from bert_annotated.pretraining_data import create_pretraining_examples
from bert_annotated.runs import run_results
from bert_annotated.tokenization import BertTokenizer

RUN = "checkpoints/bert-mini-bilingual"
CORPORA = ["corpora/enwiki-sample", "corpora/zhwiki-sample/zhwiki_sample.txt",
           "corpora/cmrc2018-contexts/cmrc2018_contexts.txt"]  # in the order the run's command gave them
COMMAND = ("bert-vocab -c <the three corpora> -o vocab.txt -s 30000 && bert-annotated pretrain --corpus "
           "../shared/corpora/enwiki-sample ../shared/corpora/zhwiki-sample/zhwiki_sample.txt "
           "../shared/corpora/cmrc2018-contexts/cmrc2018_contexts.txt --vocab vocab.txt --max-steps 15000 "
           "--eval-every 1000")


def not_next_shares(shared: Path, run: dict) -> dict:
    """The NotNext share of the run's training and validation examples, rebuilt exactly as the run built them."""
    config = run["training_config"]
    corpus = read_corpus([shared / path for path in CORPORA])
    train, valid = corpus.split(config["valid_fraction"], config["seed"])
    tokenizer = BertTokenizer(str(shared / RUN / "vocab.txt"))
    shares = {}
    for name, part, seed in (("train", train, config["seed"]), ("valid", valid, config["seed"] + 1)):
        examples = create_pretraining_examples(part, tokenizer, config["seq_len"], config["short_seq_prob"], seed)
        if len(examples) != run[f"{name}_examples"]:
            raise ValueError(f"rebuilt {len(examples)} {name} examples but run.json says {run[f'{name}_examples']}; "
                             "the corpora or the data code differ from the run's")
        shares[f"{name}_not_next_share"] = sum(example.label for example in examples) / len(examples)
    return shares


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", default="../shared", help="folder holding corpora/ and checkpoints/ (default: ../shared)")
    parser.add_argument("--out", default="book/results/pretrain-bert-mini-bilingual.json",
                        help="JSON file to write (default: book/results/pretrain-bert-mini-bilingual.json)")
    args = parser.parse_args(argv)
    shared = Path(args.shared)
    run = json.loads((shared / RUN / "run.json").read_text(encoding="utf-8"))
    results = run_results(
        shared / RUN, command=COMMAND, device="NVIDIA H200", code_commit="e676a1d",
        date="2026-11-25 (the date of the code's commit; the run followed it)",
        stopped="by Ctrl-C (SIGINT) after step 11,788 of 15,000 planned (a time budget): the learning rate had not "
                "decayed to zero",
        **not_next_shares(shared, run),
        written_by="python tools/pretrain_results.py --shared ../shared --out " + args.out,
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {args.out}: {results['steps']} steps, validation MLM accuracy {results['headline']['valid_mlm_acc']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
