//! HTTP providers: OpenAI, Anthropic, Groq and any OpenAI-compatible endpoint.
