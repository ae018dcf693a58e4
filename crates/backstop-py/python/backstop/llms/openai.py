"""OpenAI chat completions, and any OpenAI-compatible server."""

from backstop._native import OpenAICompatibleLLM, OpenAILLM

__all__ = ["OpenAICompatibleLLM", "OpenAILLM"]
