"""Sampling from the generative transformers (AR with KV cache, NAR MaskGIT decoding)."""
