"""Make a tiny random-weight BERT sequence classifier directory (for tests and the demo).

Usage: python3 scripts/lib/tiny_model.py OUT_DIR [--labels negative,positive] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

WORDS = [
    "the", "a", "an", "is", "was", "good", "bad", "great", "terrible", "love", "hate", "fine",
    "ok", "not", "very", "movie", "film", "book", "day", "night", "happy", "sad", "this", "that",
    "it", "i", "you", "we", "they", "and", "or", "but", "with", "weather", "service",
]
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def make_tiny_model(out_dir: str | Path, labels: tuple[str, ...] = ("negative", "positive"),
                    seed: int = 0) -> Path:
    """Save a tiny BERT classifier (safetensors) with a small WordPiece vocabulary into out_dir."""
    if not 2 <= len(labels) <= 8 or len(set(labels)) != len(labels) or not all(labels):
        raise ValueError(f"labels {labels!r} must be 2 to 8 distinct non-empty names")
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    chars = sorted({c for w in WORDS for c in w})
    vocab = SPECIAL + WORDS + chars + [f"##{c}" for c in chars]
    with tempfile.TemporaryDirectory() as tmp:
        vocab_file = Path(tmp, "vocab.txt")
        vocab_file.write_text("\n".join(vocab) + "\n", encoding="utf-8")
        tokenizer = BertTokenizerFast(vocab_file=str(vocab_file), do_lower_case=True,
                                      model_max_length=128)
    config = BertConfig(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=128, num_labels=len(labels),
        id2label=dict(enumerate(labels)), label2id={n: i for i, n in enumerate(labels)},
    )
    torch.manual_seed(seed)
    model = BertForSequenceClassification(config).eval()
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    for path in out.iterdir():
        path.chmod(0o644)  # readable by the container's non-root user once copied into an image
    return out


def main(argv: list[str] | None = None) -> int:
    """CLI: make the model directory; one line on stderr and status 1 on bad input."""
    parser = argparse.ArgumentParser(description="Make a tiny random-weight BERT classifier.")
    parser.add_argument("out_dir", help="directory to write (created when missing)")
    parser.add_argument("--labels", default="negative,positive", help="comma-separated labels")
    parser.add_argument("--seed", type=int, default=0, help="weight initialisation seed")
    args = parser.parse_args(argv)
    try:
        path = make_tiny_model(args.out_dir, tuple(args.labels.split(",")), args.seed)
    except (ValueError, OSError) as exc:
        if os.environ.get("TINY_MODEL_DEBUG"):
            raise
        print(f"tiny_model: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
