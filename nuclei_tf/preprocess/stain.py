"""One interface to stain normalisation: Macenko, Vahadane and Reinhard, numpy or staintools.

``stain_normalizer(method, backend).fit(reference).transform(image)`` maps RGB uint8 images
to the colours of ``reference``:

* ``macenko``: Macenko et al. 2009, by staintools or by our numpy version
  (:mod:`nuclei_tf.preprocess.macenko` with staintools' conventions, which reproduces it).
* ``vahadane``: Vahadane et al. 2016, sparse non-negative stain dictionary (staintools only).
* ``reinhard``: Reinhard et al. 2001, mean and spread of each CIELAB channel (staintools only).

Le Dinh et al. 2021 normalise with StainTools. Unlike staintools itself, an image with too
little tissue (staintools' lightness mask) is returned unchanged with a warning instead of
crashing, and inputs are never modified (staintools writes 1 over 0-valued pixels).
"""
from nuclei_tf.preprocess.macenko import (
    STAINTOOLS,
    MacenkoNormalizer,
    require_tissue,
    rgb_uint8,
    unchanged_on_background,
)

METHODS = ("macenko", "vahadane", "reinhard")
BACKENDS = ("numpy", "staintools")


class StaintoolsNormalizer:
    """A staintools normaliser that refuses background tiles and never touches its inputs."""

    def __init__(self, method, min_pixels=100):
        import staintools  # imports spams; only needed for this backend

        self.method, self.min_pixels, self.fitted = method, min_pixels, False
        if method == "reinhard":
            self.normalizer = staintools.ReinhardColorNormalizer()
        else:
            self.normalizer = staintools.StainNormalizer(method)

    def _checked_copy(self, image):
        image = rgb_uint8(image)
        require_tissue(image, STAINTOOLS, self.min_pixels)
        return image.copy()

    def fit(self, reference):
        """Fit staintools' normaliser to ``reference``; BackgroundError if it holds no tissue."""
        self.normalizer.fit(self._checked_copy(reference))
        self.fitted = True
        return self

    @unchanged_on_background
    def transform(self, image):
        """staintools' normalised image; a background-only image is returned unchanged."""
        if not self.fitted:
            raise RuntimeError("fit(reference) first: staintools has no default target")
        return self.normalizer.transform(self._checked_copy(image))


def stain_normalizer(method="macenko", backend="numpy"):
    """A normaliser with ``fit(reference)`` and ``transform(image)`` for ``method`` and ``backend``."""
    if method not in METHODS:
        raise ValueError(f"unknown stain normalisation method {method!r}; choose from {', '.join(METHODS)}")
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
    if backend == "staintools":
        return StaintoolsNormalizer(method)
    if method != "macenko":
        raise ValueError(f"method {method!r} needs backend='staintools'; the numpy backend implements macenko")
    return MacenkoNormalizer(convention="staintools")
