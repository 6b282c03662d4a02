"""Make a tiny random-weight Llama chat model directory that vLLM serves (tests, demo, benchmarks).

Usage: python3 scripts/lib/tiny_chat_model.py OUT_DIR [--seed 0]

The model is made here, with no Hub access: a byte-level BPE tokenizer (at most 1,024 tokens)
trained on generated sentences, a chat template in tokenizer_config.json, and a 2-layer Llama
whose head size is 32, since vLLM's CPU attention refuses head sizes below 32 at the first real
request (a head size of 16 answers /health and then dies). Its answers are random tokens.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from pathlib import Path

WORDS = (
    "the", "a", "an", "is", "was", "good", "bad", "great", "small", "large", "fast", "slow", "red",
    "blue", "green", "cat", "dog", "bird", "tree", "river", "road", "city", "house", "model",
    "engine", "server", "request", "answer", "question", "token", "stream", "chat", "tool", "time",
    "day", "night", "light", "dark", "warm", "cold", "we", "you", "they", "it", "this", "that",
    "and", "or", "but", "with", "from", "into", "over", "under",
)
SPECIAL = ("<|pad|>", "<|bos|>", "<|eos|>", "<|system|>", "<|user|>", "<|assistant|>")
VOCAB_SIZE = 1024
MAX_POSITIONS = 512
# One turn per message, then the assistant's turn when a generation prompt is asked for.
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}{{ eos_token }}"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def corpus(seed: int, lines: int = 4000) -> list[str]:
    """Sentences of WORDS, the same for the same seed: the tokenizer's training text."""
    rng = random.Random(seed)  # noqa: S311 - test text, not a secret
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 16))) + "."
            for _ in range(lines)]


def make_tokenizer(out: Path, seed: int) -> int:
    """Train and save the byte-level BPE tokenizer with its chat template; return its size."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, special_tokens=list(SPECIAL),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(corpus(seed), trainer=trainer)
    bos, eos, pad = "<|bos|>", "<|eos|>", "<|pad|>"
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=bos, eos_token=eos,
                                   pad_token=pad, model_max_length=MAX_POSITIONS,
                                   chat_template=CHAT_TEMPLATE)
    fast.save_pretrained(out)
    return tok.get_vocab_size()


def make_tiny_chat_model(out_dir: str | Path, seed: int = 0) -> Path:
    """Save the tokenizer and a random-weight LlamaForCausalLM (safetensors) into out_dir."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    vocab = make_tokenizer(out, seed)
    specials = {name: SPECIAL.index(f"<|{name}|>") for name in ("pad", "bos", "eos")}
    config = LlamaConfig(
        vocab_size=max(vocab, VOCAB_SIZE), hidden_size=64, intermediate_size=128,
        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=32,
        max_position_embeddings=MAX_POSITIONS, tie_word_embeddings=True, torch_dtype="float32",
        pad_token_id=specials["pad"], bos_token_id=specials["bos"], eos_token_id=specials["eos"],
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).eval()
    model.save_pretrained(out, safe_serialization=True)
    GenerationConfig(bos_token_id=specials["bos"], eos_token_id=specials["eos"],
                     pad_token_id=specials["pad"]).save_pretrained(out)
    for path in out.iterdir():
        path.chmod(0o644)  # readable by the container's non-root user once copied into an image
    return out


def main(argv: list[str] | None = None) -> int:
    """CLI: make the model directory; one line on stderr and status 1 on a failure."""
    parser = argparse.ArgumentParser(description="Make a tiny random-weight Llama chat model.")
    parser.add_argument("out_dir", help="directory to write (created when missing)")
    parser.add_argument("--seed", type=int, default=0, help="tokenizer text and weight seed")
    args = parser.parse_args(argv)
    try:
        path = make_tiny_chat_model(args.out_dir, args.seed)
    except (ValueError, OSError) as exc:
        if os.environ.get("TINY_MODEL_DEBUG"):
            raise
        print(f"tiny_chat_model: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
