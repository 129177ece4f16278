"""What a visitor may do: the local mode (the owner's own machine) and the public mode (Spaces, share links).

Local: server paths allowed, any model. Public: built-in data and uploads only, models under a parameter budget,
bounded uploads and image sizes, so no visitor can read the server's files or take the machine.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from explorer.const import DEFAULT_MAX_MODEL_PARAMS
from explorer.data.loading import BUILTIN_DATASETS
from explorer.errors import InputError
from explorer.models.registry import PRESETS, parameter_count
from explorer.models.spec import ModelSpec
from explorer.models.transforms import image_config_for, image_config_of
from explorer.workspace.uploads import MAX_UPLOAD_MEMBERS, MAX_UPLOAD_UNPACKED_BYTES

PUBLIC_MAX_UPLOAD_BYTES = 1024**3
PUBLIC_MAX_UPLOAD_IMAGES = 5_000
PUBLIC_MAX_SESSIONS_BYTES = 8 * 1024**3  # all sessions' files together (uploads, downloads, pictures)
PUBLIC_MAX_FILE_SIZE = "256mb"  # one file sent to the app (Gradio refuses larger ones before they land)
LOCAL_MAX_FILE_SIZE = "500mb"
PUBLIC_MAX_IMAGE_SIZE = 384  # train / embed resolution: compute grows with its square
PUBLIC_SESSION_IDLE_S = 30 * 60  # a session unused this long is closed: API clients never send a page unload
SPACES_VARIABLE = "SPACE_ID"  # set by Hugging Face Spaces in every Space
PATH_MARKERS = ("/", "\\", "~", "..")  # a model name with one of these names a file, not a model
CHECKPOINT_SUFFIXES = (".safetensors", ".pt", ".pth", ".ckpt", ".bin")


@dataclass(frozen=True)
class ServingPolicy:
    """The limits one app process enforces for every session."""

    public: bool = False
    max_model_params: int | None = None  # None: no budget
    max_upload_bytes: int = MAX_UPLOAD_UNPACKED_BYTES  # unpacked size of a dataset zip
    max_upload_images: int | None = None
    max_image_size: int | None = None
    max_sessions_bytes: int | None = None  # disk for all sessions' files together
    max_file_size: str = LOCAL_MAX_FILE_SIZE
    session_idle_s: float | None = None  # None: sessions live until their page closes

    @property
    def max_upload_members(self) -> int:
        """Files a dataset zip may hold: the images, plus room for a CSV and stray files."""
        return MAX_UPLOAD_MEMBERS if self.max_upload_images is None else self.max_upload_images + 100

    @classmethod
    def for_public(cls, max_model_params: int = DEFAULT_MAX_MODEL_PARAMS) -> ServingPolicy:
        return cls(
            public=True,
            max_model_params=max_model_params,
            max_upload_bytes=PUBLIC_MAX_UPLOAD_BYTES,
            max_upload_images=PUBLIC_MAX_UPLOAD_IMAGES,
            max_image_size=PUBLIC_MAX_IMAGE_SIZE,
            max_sessions_bytes=PUBLIC_MAX_SESSIONS_BYTES,
            max_file_size=PUBLIC_MAX_FILE_SIZE,
            session_idle_s=PUBLIC_SESSION_IDLE_S,
        )

    @classmethod
    def choose(cls, public: bool, share: bool, max_model_params: int = DEFAULT_MAX_MODEL_PARAMS) -> ServingPolicy:
        """Public on Spaces (`SPACE_ID` set), with a share link, or when asked; local otherwise."""
        if public or share or os.environ.get(SPACES_VARIABLE):
            return cls.for_public(max_model_params)
        return cls()

    def describe(self) -> str:
        """The header's line saying which mode runs and what it allows."""
        if not self.public:
            return "**Local mode**: server paths and any model are allowed."
        return (
            f"**Public mode**: built-in data and uploads only (up to {self.max_upload_images:,} images), models up "
            f"to {self.max_model_params / 1e6:.0f} M parameters; your files are removed when you leave or after "
            f"{self.session_idle_s / 60:.0f} minutes without use."
        )

    def check_data_source(self, source: str) -> None:
        """Public mode reads no server path: only built-in names (uploads take another way in)."""
        if self.public and source not in BUILTIN_DATASETS:
            raise InputError(
                f"This app runs in public mode: server paths cannot be loaded. Pick a built-in dataset "
                f"({', '.join(BUILTIN_DATASETS)}) or upload a zip of your images."
            )

    def check_model_name(self, name: str) -> None:
        """Public mode takes preset and timm names, never file paths (checkpoints arrive as uploads): one message
        for every path-like name, whether or not such a file exists, so the answer tells nothing about the server."""
        text = (name or "").strip()
        if self.public and (
            any(marker in text for marker in PATH_MARKERS) or text.lower().endswith(CHECKPOINT_SUFFIXES)
        ):
            raise InputError(
                "This app runs in public mode: a model is a preset or timm name (e.g. 'resnet18'), not a file path. "
                "To use your own weights, upload a checkpoint and choose weights 'checkpoint'."
            )

    def check_model(self, spec: ModelSpec) -> None:
        """Refuse, before anything is built or downloaded, an architecture over the parameter budget or one fed
        larger images than the size limit (its compute grows with the square of the size)."""
        input_size = image_config_of(spec).input_size
        if self.max_image_size is not None and input_size > self.max_image_size:
            raise InputError(
                f"{spec.timm_arch!r} takes {input_size} px images, above this app's limit of {self.max_image_size} "
                f"px: pick a model with a smaller input (e.g. {self._allowed_presets()})."
            )
        if self.max_model_params is None:
            return
        n_params = parameter_count(spec.timm_arch)
        if n_params > self.max_model_params:
            raise InputError(
                f"{spec.timm_arch!r} has {n_params / 1e6:.0f} M parameters, above this app's budget of "
                f"{self.max_model_params / 1e6:.0f} M: pick a smaller model (e.g. {self._allowed_presets()})."
            )

    def _allowed_presets(self) -> str:
        """The presets within both limits, for messages."""
        allowed = [
            name
            for name, preset in PRESETS.items()
            if (self.max_model_params is None or parameter_count(preset.timm_arch) <= self.max_model_params)
            and (self.max_image_size is None or image_config_for(name).input_size <= self.max_image_size)
        ]
        return ", ".join(allowed)

    def check_image_size(self, image_size: int | None) -> None:
        if self.max_image_size is not None and image_size is not None and image_size > self.max_image_size:
            raise InputError(
                f"image size {image_size} is above this app's limit of {self.max_image_size} px: choose a smaller one."
            )

    def check_upload_images(self, n_images: int) -> None:
        if self.max_upload_images is not None and n_images > self.max_upload_images:
            raise InputError(
                f"The upload holds {n_images:,} images; this app accepts at most {self.max_upload_images:,}. "
                "Upload a smaller subset."
            )
