"""Image datasets for search and training: the shipped CIFAR-10 subset, ImageFolder trees and .npz files,
and the readers behind them (for evaluation sets read outside `load_dataset`)."""

from nas.data._datasets import ImageDataset, load_dataset
from nas.data._sources import IMAGE_SUFFIXES, RawImages, decode_image, read_folder, read_npz

__all__ = [
    "IMAGE_SUFFIXES",
    "ImageDataset",
    "RawImages",
    "decode_image",
    "load_dataset",
    "read_folder",
    "read_npz",
]
