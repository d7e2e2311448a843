"""Joint augmentation of image, target mask and weight map with albumentations.

The weight map is an albumentations *mask* target, so geometric transforms move it with
the image (nearest-neighbour) while colour transforms never touch it. A config maps a
short name to the keyword arguments of one albumentations transform (``p`` included),
so every experiment YAML can tune each transform or drop it.

Determinism: each example is augmented with a seed derived from (run seed, epoch, index),
so the same example gets the same augmentation whatever the order or parallelism.
"""
import threading

import albumentations as A
import cv2
import numpy as np

class HEDJitter(A.ImageOnlyTransform):
    """H&E stain augmentation of Tellez et al. 2018 ("HED light"): the image's haematoxylin, eosin
    and DAB concentrations (Ruifrok & Johnston's colour deconvolution, ``skimage.color.rgb2hed``)
    are each scaled by U(1 - ``sigma``, 1 + ``sigma``) and shifted by U(-``bias``, ``bias``), then
    recomposed into RGB. uint8 images stay uint8, float images in [0, 1] stay float."""

    def __init__(self, sigma=0.05, bias=0.05, p=0.5):
        super().__init__(p=p)
        if sigma < 0 or bias < 0:
            raise ValueError(f"hed_jitter: sigma and bias must be >= 0, got {sigma}, {bias}")
        self.sigma, self.bias = float(sigma), float(bias)

    def get_params(self):
        rng = self.random_generator
        return {"alpha": rng.uniform(1 - self.sigma, 1 + self.sigma, 3), "beta": rng.uniform(-self.bias, self.bias, 3)}

    def apply(self, img, alpha=None, beta=None, **params):
        from skimage.color import hed_from_rgb, rgb_from_hed

        rgb = img.astype(np.float64) / 255.0 if img.dtype == np.uint8 else img.astype(np.float64)
        od = -np.log(np.maximum(rgb, 1.0 / 255.0))  # Beer-Lambert optical density (no clipping of
        hed = od @ hed_from_rgb * alpha + beta  # negative concentrations: sigma = bias = 0 is the identity)
        out = np.clip(np.exp(-(hed @ rgb_from_hed)), 0.0, 1.0)
        return np.round(out * 255).astype(np.uint8) if img.dtype == np.uint8 else out.astype(img.dtype)

    def get_transform_init_args_names(self):
        return ("sigma", "bias")


#: name in a config -> albumentations transform class.
TRANSFORMS = {
    "hed_jitter": HEDJitter,
    "flip_h": A.HorizontalFlip,
    "flip_v": A.VerticalFlip,
    "rotate90": A.RandomRotate90,
    "affine": A.Affine,
    "elastic": A.ElasticTransform,
    "grid_distortion": A.GridDistortion,
    "brightness_contrast": A.RandomBrightnessContrast,
    "gamma": A.RandomGamma,
    "hue_saturation": A.HueSaturationValue,
    "blur": A.GaussianBlur,
    "median_blur": A.MedianBlur,
    "average_blur": A.Blur,
}

#: geometric transforms fill borders by reflection, so no artificial black frame appears.
REFLECTING = {"affine", "elastic", "grid_distortion"}

#: flips, Affine (shift, scale, rotate, shear), elastic, brightness/contrast, gamma, hue/saturation, blur.
DEFAULT_AUGMENTATION = {
    "flip_h": {"p": 0.5},
    "flip_v": {"p": 0.5},
    "rotate90": {"p": 0.5},
    "affine": {"p": 0.5, "translate_percent": [-0.05, 0.05], "scale": [0.9, 1.1], "rotate": [-45, 45], "shear": [-8, 8]},
    "elastic": {"p": 0.2, "alpha": 30.0, "sigma": 6.0},
    "brightness_contrast": {"p": 0.3, "brightness_limit": 0.1, "contrast_limit": 0.1},
    "gamma": {"p": 0.2, "gamma_limit": [85, 115]},
    "hue_saturation": {"p": 0.3, "hue_shift_limit": 8, "sat_shift_limit": 12, "val_shift_limit": 8},
    "blur": {"p": 0.1, "blur_limit": [3, 5]},
}


def build_transforms(config):
    """The albumentations transforms of a config ({name: kwargs}); unknown names are an error."""
    transforms = []
    for name, kwargs in (config or {}).items():
        if name not in TRANSFORMS:
            raise ValueError(f"unknown augmentation {name!r}; choose from {', '.join(TRANSFORMS)}")
        kwargs = dict(kwargs or {})
        if name in REFLECTING:
            kwargs.setdefault("border_mode", cv2.BORDER_REFLECT_101)
        transforms.append(TRANSFORMS[name](**kwargs))
    return transforms


class Augmenter:
    """Callable ``(image, mask, weights, seed) -> (image, mask, weights)``; thread-safe."""

    def __init__(self, config=None):
        self.config = DEFAULT_AUGMENTATION if config is None else config
        self._local = threading.local()

    def _compose(self):
        if not hasattr(self._local, "compose"):
            self._local.compose = A.Compose(build_transforms(self.config), additional_targets={"weights": "mask"})
        return self._local.compose

    def __call__(self, image, mask, weights, seed):
        if not self.config:
            return image, mask, weights
        compose = self._compose()
        compose.set_random_seed(int(seed))
        out = compose(image=image, mask=mask, weights=weights)
        return out["image"], out["mask"], out["weights"]


def kasturi_variants(image, instances, size=512):
    """Kasturi et al. 2022, Algorithm 1: flip-H, flip-V and rotate-45 of a pair, each down-sampled to ``size``.

    Instance ids survive (nearest-neighbour, through float32, exact below 2**24).
    """
    height, width = instances.shape[:2]
    mask = instances.astype(np.float32)
    rotation = cv2.getRotationMatrix2D((width / 2.0, height / 2.0), 45.0, 1.0)
    variants = [
        (image[:, ::-1], mask[:, ::-1]),
        (image[::-1], mask[::-1]),
        (cv2.warpAffine(image, rotation, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101),
         cv2.warpAffine(mask, rotation, (width, height), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_REFLECT_101)),
    ]
    return [
        (resize(np.ascontiguousarray(i), size, cv2.INTER_AREA),
         resize(np.ascontiguousarray(m), size, cv2.INTER_NEAREST).astype(instances.dtype))
        for i, m in variants
    ]


def resize(array, size, interpolation):
    """Resize the first two axes to ``size`` x ``size`` (Le Dinh et al. 2021 resize to 256)."""
    if array.shape[0] == size and array.shape[1] == size:
        return array
    return cv2.resize(array, (size, size), interpolation=interpolation)
