"""Part III's input: 224x224 RGB images made once from the CNN's dataset, the same bytes for every row.

The CNN's test images (CIFAR-10 where it is cached or its host answers, else Fashion-MNIST from
Debian, else the synthetic set: datasets.resolve, which the lab reaches as images.resolve) are resized from 32x32 to 224x224 by bilinear
interpolation and cached as uint8 (N, 224, 224, 3). Every row gets them preprocessed alike, as
torchvision's ImageNet models expect (RGB in [0, 1], less the mean, over the standard deviation of
each channel), batches of 32, in its own layout: one function for all rows, whatever each zoo's
pre-trained weights were trained on (the chapter's table says that). Python 3.6 compatible.
"""
import os

import numpy as np

from common import UsageError
from datasets import CACHE_DIR, load_cached, prepare, resolve, save_arrays  # prepare, resolve: the CNN's

SIZE, BATCH = 224, 32
MEAN = np.array([0.485, 0.456, 0.406], np.float32)  # torchvision's ImageNet statistics, RGB
STD = np.array([0.229, 0.224, 0.225], np.float32)


class ImageError(ValueError):
    """Images that are not (N, 224, 224, 3) uint8 RGB: the message says what to do."""


def resize_matrix(n_in, n_out):
    """Bilinear interpolation along one axis as a matrix (n_out, n_in), pixel centres aligned."""
    centres = (np.arange(n_out) + 0.5) * n_in / n_out - 0.5
    low = np.clip(np.floor(centres).astype(int), 0, n_in - 1)
    high = np.clip(low + 1, 0, n_in - 1)
    frac = np.clip(centres - low, 0, 1)
    m = np.zeros((n_out, n_in))
    m[np.arange(n_out), low] += 1 - frac
    m[np.arange(n_out), high] += frac
    return m


def resize(images, size=SIZE):
    """uint8 (N, 3, h, w) -> uint8 (N, size, size, 3), bilinear."""
    rows, cols = resize_matrix(images.shape[2], size), resize_matrix(images.shape[3], size)
    out = np.einsum("ij,ncjk,lk->nilc", rows, images.astype(np.float64), cols)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def check_images(images):
    """The images unchanged, or an ImageError that names what is wrong and what to do."""
    shape = np.shape(images)
    if len(shape) != 4 or shape[1:] != (SIZE, SIZE, 3):
        raise ImageError("images of shape {}: part III takes (N, {s}, {s}, 3), RGB and channels last; resize "
                         "yours to {s}x{s} with 3 channels (images.resize does it for (N, 3, h, w) uint8), and "
                         "give a grey image its channel three times".format(shape, s=SIZE))
    if np.asarray(images).dtype != np.uint8:
        raise ImageError("images of dtype {}: give uint8 pixels in [0, 255] (preprocess makes the float input "
                         "every row takes)".format(np.asarray(images).dtype))
    return np.asarray(images)


def images_path(dataset, n):
    return os.path.join(CACHE_DIR, dataset, "resnet-{}x{}-{}.npy".format(SIZE, SIZE, n))


def make(dataset, n):
    """The first n test images of `dataset`, 224x224 RGB uint8, made once and cached (atomically)."""
    path = images_path(dataset, n)
    if os.path.exists(path):
        try:
            return check_images(np.load(path, allow_pickle=False))
        except (ValueError, OSError, EOFError) as e:
            raise ImageError("cached images {} are corrupt or of another shape ({}): delete the file and run "
                             "again to make them anew".format(path, e))
    x_test = load_cached(dataset)[2]
    if len(x_test) < n:
        raise UsageError("{} has {} test images; part III's profile asks for {}".format(dataset, len(x_test), n))
    images = check_images(resize(x_test[:n]))
    save_arrays(os.path.dirname(path), [(os.path.basename(path)[:-4], images)])
    return images


def preprocess(images, channel_first=True):
    """uint8 RGB (N, 224, 224, 3) -> float32, normalized per channel, NCHW or NHWC."""
    x = (check_images(images).astype(np.float32) / np.float32(255) - MEAN) / STD
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2) if channel_first else x)


def in_batches(x, batch=BATCH):
    """Whole batches of `batch` (the seed's 32), in order."""
    return [x[i:i + batch] for i in range(0, len(x) - batch + 1, batch)]


def images_for_library(dataset, profile, channel_first=True):
    """The profile's images (its n_test), preprocessed, in the row's layout, as batches of 32."""
    return in_batches(preprocess(make(dataset, profile["n_test"]), channel_first))


def per_1000(batch_seconds, batch=BATCH):
    """Seconds per 1,000 images, the seed's measure, from the steady batches' times (their median: one
    slow batch on a busy machine does not move it); a run of fewer images is scaled."""
    return float(np.median(batch_seconds)) * 1000.0 / batch if batch_seconds else None
