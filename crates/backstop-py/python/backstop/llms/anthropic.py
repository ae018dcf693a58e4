"""Anthropic's Messages API."""

from backstop._native import AnthropicLLM

__all__ = ["AnthropicLLM"]
