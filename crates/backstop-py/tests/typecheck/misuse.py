"""Must fail mypy at each line marked "error" (tests/test_typing.py): proves the stubs are
read, not replaced by Any."""

from backstop.llms.openai import OpenAILLM
from backstop.resilience import CircuitBreaker, fallback_chain

breaker = CircuitBreaker("openai", failure_threshold="3")  # error: arg-type
chain = fallback_chain(providers=[(OpenAILLM(model="gpt-4o"), breaker)])
answer: int = chain.generate("hi").text  # error: assignment
chain.generate("hi").answer  # error: attr-defined
fallback_chain(providers=[(breaker, OpenAILLM(model="gpt-4o"))])  # error: list-item
