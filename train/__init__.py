"""Training: the tutorial's two Fashion-MNIST MLPs, built and fitted exactly as it does."""
