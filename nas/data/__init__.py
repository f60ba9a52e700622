"""Image datasets for search and training: the shipped CIFAR-10 subset, ImageFolder trees and .npz files."""

from nas.data._datasets import ImageDataset, load_dataset

__all__ = ["ImageDataset", "load_dataset"]
