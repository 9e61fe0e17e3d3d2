"""SeQ-GAN reproduction: VQ tokenizers with a semantic-enhanced perceptual loss, AR/NAR transformers."""

__version__ = "0.1.0"
