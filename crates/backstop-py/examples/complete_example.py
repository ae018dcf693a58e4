# The tutorial's "Complete working example", verbatim except the imports: `synapsekit` is
# `backstop` (the package `backstop-llm`). Run it against real providers with your keys, or
# against local simulators with try_tutorial.py.
import asyncio
from backstop import LLMConfig
from backstop.llms.openai import OpenAILLM
from backstop.llms.anthropic import AnthropicLLM
from backstop.llms.groq import GroqLLM
from backstop.resilience import CircuitBreaker, fallback_chain, AllProvidersFailedError

async def main():
    config = LLMConfig(temperature=0.2, max_tokens=512)

    chain = fallback_chain(
        providers=[
            (
                OpenAILLM(model="gpt-4o-mini", config=config),
                CircuitBreaker("openai", failure_threshold=3, recovery_timeout=30),
            ),
            (
                AnthropicLLM(model="claude-haiku-3-5", config=config),
                CircuitBreaker("anthropic", failure_threshold=3, recovery_timeout=30),
            ),
            (
                GroqLLM(model="llama-3.1-8b-instant", config=config),
                CircuitBreaker("groq", failure_threshold=5, recovery_timeout=15),
            ),
        ],
        retries_per_provider=1,
    )

    prompts = [
        "Explain the difference between authentication and authorisation.",
        "What is a deadlock and how do you prevent one?",
        "Summarise the CAP theorem in three bullet points.",
    ]

    for prompt in prompts:
        print(f"\nPrompt: {prompt!r}")
        try:
            result = await chain.agenerate(prompt)
            print(f"Provider: {result.provider_used}")
            print(f"Answer: {result.text[:120]}...")
        except AllProvidersFailedError:
            print("All providers failed — check your API keys and network.")

asyncio.run(main())
