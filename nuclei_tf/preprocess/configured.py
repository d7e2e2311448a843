"""The per-image preprocessing an experiment's ``preprocess`` section asks for."""


def make_preprocess(settings):
    """The per-image preprocessing of a config's ``preprocess`` section, or None.

    ``stain``: ``none``; ``macenko`` (our numpy Macenko to the default H&E reference, or to
    ``reference``); ``vahadane`` / ``reinhard`` (staintools, fitted to ``reference``).
    ``clahe_tv: true`` then applies Long 2020's CLAHE + total variation (float [0, 1] output).
    """
    steps = []
    stain = settings.get("stain", "none")
    reference = settings.get("reference")
    if stain == "macenko":
        from nuclei_tf.preprocess.macenko import MacenkoNormalizer

        normaliser = MacenkoNormalizer()
    elif stain in ("vahadane", "reinhard"):
        from nuclei_tf.preprocess.stain import stain_normalizer

        if reference is None:
            raise ValueError(f"preprocess.stain {stain!r} needs preprocess.reference (an image path)")
        normaliser = stain_normalizer(stain, backend="staintools")
    elif stain != "none":
        raise ValueError(f"preprocess.stain must be none, macenko, vahadane or reinhard, got {stain!r}")
    if stain != "none":
        if reference is not None:
            from nuclei_tf.data.io import read_image

            normaliser.fit(read_image(reference))
        steps.append(normaliser.transform)
    if settings.get("clahe_tv", False):
        from nuclei_tf.preprocess.clahe_tv import clahe_tv

        steps.append(clahe_tv)
    if not steps:
        return None

    def preprocess(image):
        for step in steps:
            image = step(image)
        return image

    return preprocess
