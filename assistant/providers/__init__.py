"""Model providers as plugins: one `Provider` interface, a registry filled from this package and from the
`litassist.providers` entry points, and litassist's own errors for every provider's failures."""

from .base import ContextLengthError, Provider, ProviderError, RequestRefusedError, classify_standard
from .registry import ENTRY_POINT_GROUP, get_provider, provider_names, providers, resolve_provider

__all__ = [
    "ENTRY_POINT_GROUP",
    "ContextLengthError",
    "Provider",
    "ProviderError",
    "RequestRefusedError",
    "classify_standard",
    "get_provider",
    "provider_names",
    "providers",
    "resolve_provider",
]
