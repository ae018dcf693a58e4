# The tutorial's Steps 1 to 5, verbatim except the imports (`synapsekit` is `backstop`) and the
# last line, which runs Step 5's demo (the tutorial defines it without calling it).
import asyncio
from backstop import LLMConfig
from backstop.llms.openai import OpenAILLM
from backstop.llms.anthropic import AnthropicLLM
from backstop.llms.groq import GroqLLM
from backstop.resilience import CircuitBreaker, fallback_chain, AllProvidersFailedError

# Use a shared config so all providers in the chain behave consistently.
# Fallback providers should use cheaper/faster models since they are the safety net.
primary_llm = OpenAILLM(
    model="gpt-4o",
    config=LLMConfig(temperature=0.2, max_tokens=1024)
)

secondary_llm = AnthropicLLM(
    model="claude-haiku-3-5",
    config=LLMConfig(temperature=0.2, max_tokens=1024)
)

tertiary_llm = GroqLLM(
    model="llama-3.1-8b-instant", # Fastest and cheapest — last line of defence
    config=LLMConfig(temperature=0.2, max_tokens=512)
)

# Each provider gets its own circuit breaker with settings tuned to that provider's
# SLA characteristics. Groq recovers quickly so its timeout is shorter.
openai_breaker = CircuitBreaker(
    name="openai-gpt4o",
    failure_threshold=3,
    window_seconds=60,
    recovery_timeout=60,
)

anthropic_breaker = CircuitBreaker(
    name="anthropic-haiku",
    failure_threshold=3,
    window_seconds=60,
    recovery_timeout=45,
)

groq_breaker = CircuitBreaker(
    name="groq-llama",
    failure_threshold=5,
    window_seconds=60,
    recovery_timeout=20,
)

# fallback_chain() accepts a list of (llm, circuit_breaker) pairs in priority order.
# SynapseKit tries each in sequence: if the first provider raises an exception or
# its breaker is OPEN, it moves to the next, and so on.
chain = fallback_chain(
    providers=[
        (primary_llm, openai_breaker),
        (secondary_llm, anthropic_breaker),
        (tertiary_llm, groq_breaker),
    ],
    # Optional: retry each provider this many times before moving to the next.
    # Useful for transient network errors that aren't provider outages.
    retries_per_provider=1,
)

async def generate_with_fallback(prompt: str) -> str:
    """Send a prompt through the fallback chain and return the first successful response."""
    try:
        result = await chain.agenerate(prompt)

        # FallbackResult exposes which provider actually answered,
        # so you can log, alert, or adjust routing dynamically.
        if result.provider_used != "openai-gpt4o":
            print(f" [fallback] Primary unavailable — answered by {result.provider_used}")

        return result.text

    except AllProvidersFailedError as e:
        # All three providers failed — surface a user-friendly error
        print(f" [fallback] All providers failed: {e.errors}")
        return "Service temporarily unavailable. Please try again shortly."

async def demo_fallback():
    """Show the chain falling through providers as each one is artificially failed."""
    print("=== Fallback Chain Demo ===\n")

    # Normal operation — primary handles the request
    prompt = "What is idempotency in REST APIs?"
    print(f"Prompt: {prompt!r}")
    answer = await generate_with_fallback(prompt)
    print(f"Answer: {answer[:100]}...\n")

    # Simulate primary failure: trip the OpenAI breaker manually
    for _ in range(openai_breaker.failure_threshold):
        openai_breaker._record_failure() # Internal method for testing only

    print("(OpenAI breaker now OPEN — next call will fall through to Anthropic)\n")
    print(f"Prompt: {prompt!r}")
    answer = await generate_with_fallback(prompt)
    print(f"Answer: {answer[:100]}...\n")

    # Simulate both primary and secondary failing
    for _ in range(anthropic_breaker.failure_threshold):
        anthropic_breaker._record_failure()

    print("(Anthropic breaker now OPEN — next call will fall through to Groq)\n")
    print(f"Prompt: {prompt!r}")
    answer = await generate_with_fallback(prompt)
    print(f"Answer: {answer[:100]}...\n")

asyncio.run(demo_fallback())
