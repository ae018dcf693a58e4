"""Groq's OpenAI-compatible endpoint."""

from backstop._native import GroqLLM

__all__ = ["GroqLLM"]
