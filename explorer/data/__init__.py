"""Data layer: OML-format validation, image reading, torch datasets, folder import and built-in data."""

from explorer.data.datasets import DatasetQueryGallery, DatasetWithLabels, default_transform
from explorer.data.folder import dataframe_from_image_folder
from explorer.data.images import ImageReadError, read_image
from explorer.data.loading import LoadedDataset, load_dataset
from explorer.data.schema import DatasetValidationError, ValidationReport, bbox_of_row, validate_dataframe
from explorer.data.shapes import download_mock_dataset, generate_shapes_dataset

__all__ = [
    "DatasetQueryGallery",
    "DatasetValidationError",
    "DatasetWithLabels",
    "ImageReadError",
    "LoadedDataset",
    "ValidationReport",
    "bbox_of_row",
    "dataframe_from_image_folder",
    "default_transform",
    "download_mock_dataset",
    "generate_shapes_dataset",
    "load_dataset",
    "read_image",
    "validate_dataframe",
]
