"""Training: shared loop utilities and the recipes (semantic classifier, tokenizer, transformers)."""
