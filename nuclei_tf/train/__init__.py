"""Training: the papers' losses, the tf.function training loop, precision and distribution."""
