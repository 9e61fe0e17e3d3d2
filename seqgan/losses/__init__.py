"""Training objectives: semantic-enhanced perceptual loss, adversarial losses, VQ terms."""
