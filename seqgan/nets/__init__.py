"""Networks: tokenizer (encoder, quantizer, decoder, attention), discriminator, transformers, semantic backbones."""
