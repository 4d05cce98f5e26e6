"""LLM providers behind one small base class (see base.py), chosen by name through `llm_for`.

Built-in providers register through the same `register` hook a plugin would use. Only "offline" and
"failing" work without extras; the SDK-backed ones import their SDK when first called. `llm_for` builds a
new client; `shared_llm` gives the process's one client for a provider and its options.
"""

from costlake.errors import Terminal, Transient
from costlake.rag.llm.anthropic_provider import AnthropicClient
from costlake.rag.llm.base import (
    DEFAULT_PROVIDER,
    LLMClient,
    LLMConfigError,
    LLMError,
    LLMPromptError,
    LLMTerminalError,
    LLMTransientError,
    llm_for,
    providers,
    register,
    shared_llm,
)
from costlake.rag.llm.bedrock import BedrockClient
from costlake.rag.llm.offline import FailingClient, OfflineClient, compose_explanation
from costlake.rag.llm.openai_compat import OpenAICompatClient
from costlake.rag.providers import RetryPolicy

register("offline", OfflineClient)
register("failing", FailingClient)
register("openai", OpenAICompatClient)
register("anthropic", AnthropicClient)
register("bedrock", BedrockClient)

__all__ = [
    "DEFAULT_PROVIDER",
    "AnthropicClient",
    "BedrockClient",
    "FailingClient",
    "LLMClient",
    "LLMConfigError",
    "LLMError",
    "LLMPromptError",
    "LLMTerminalError",
    "LLMTransientError",
    "OfflineClient",
    "OpenAICompatClient",
    "RetryPolicy",
    "Terminal",
    "Transient",
    "compose_explanation",
    "llm_for",
    "providers",
    "register",
    "shared_llm",
]
