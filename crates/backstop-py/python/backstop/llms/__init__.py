"""Providers. Each reads its key and base URL from the environment when created
(``OPENAI_API_KEY`` / ``OPENAI_BASE_URL``, ``ANTHROPIC_API_KEY`` / ``ANTHROPIC_BASE_URL``,
``GROQ_API_KEY`` / ``GROQ_BASE_URL``); ``api_key=`` and ``base_url=`` win. A provider without a
key fails every call with kind ``"auth"``, without a network call."""

from backstop._native import LLM
from backstop.llms.anthropic import AnthropicLLM
from backstop.llms.groq import GroqLLM
from backstop.llms.openai import OpenAICompatibleLLM, OpenAILLM

__all__ = ["LLM", "AnthropicLLM", "GroqLLM", "OpenAICompatibleLLM", "OpenAILLM"]
