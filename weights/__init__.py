"""Shipped model folders (``<name>/model.keras`` + ``config.json``), installed as the package
``nuclei_tf.weights`` (see setup.py) so that a wheel carries them."""
