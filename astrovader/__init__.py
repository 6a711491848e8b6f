"""astrovader: Variational Deep Embedding for astronomical image stamps.

Unsupervised clustering and generation of image stamps (galaxy cutouts, transient
difference stamps) with a convolutional VAE whose latent prior is a learnable Gaussian
mixture (VaDE). See README.md and ../shared/DESIGN.md.
"""

__version__ = "0.1.0"
