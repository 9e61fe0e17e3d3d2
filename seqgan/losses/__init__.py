"""Training objectives: semantic-enhanced perceptual loss, adversarial losses, VQ terms; and PSNR,
the one reconstruction PSNR the trainer and the evaluation both report (:mod:`seqgan.losses.psnr`)."""
