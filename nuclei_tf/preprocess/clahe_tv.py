"""U-Net+ image pre-processing (Long 2020, "Images pre-processing").

Contrast limited adaptive histogram equalisation (CLAHE) to even out dim, unevenly lit
images, then total-variation denoising (Chambolle) to smooth the noise CLAHE amplifies while
keeping cell edges, then a rescale to [0, 1]. The paper gives no parameters; the defaults
are scikit-image's (clip limit 0.01, tiles of 1/8 of the image, TV weight 0.1). On an RGB
image scikit-image equalises the HSV value channel, so hues are kept.
"""
import numpy as np
from skimage import exposure, restoration


def clahe_tv(image, clip_limit=0.01, kernel_size=None, tv_weight=0.1):
    """CLAHE, TV denoising, min-max rescale: float32 H x W x C in [0, 1] (H x W input gives C = 1).

    ``image``: grey H x W, H x W x 1 or RGB H x W x 3; integers (full dtype range) or floats in [0, 1].
    """
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[-1] not in (1, 3):
        raise ValueError(f"expected a grey or RGB image (H x W, H x W x 1 or H x W x 3), got shape {image.shape}")
    channel_axis = -1 if image.shape[-1] == 3 else None
    equalised = exposure.equalize_adapthist(
        image if channel_axis else image[..., 0], kernel_size=kernel_size, clip_limit=clip_limit
    )
    smooth = restoration.denoise_tv_chambolle(equalised, weight=tv_weight, channel_axis=channel_axis)
    low, high = smooth.min(), smooth.max()
    scaled = (smooth - low) / (high - low) if high > low else np.clip(smooth, 0.0, 1.0)
    return scaled.reshape(image.shape).astype(np.float32)
