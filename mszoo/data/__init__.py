"""Data pipeline on ``mindspore.dataset``: ImageFolder datasets, timm-equivalent augmentation, mixup/cutmix and
the embedded digits dataset. Imports nothing from the other ``mszoo`` packages."""
from .auto_augment import (
                           AugmentOp,
                           AugMixAugment,
                           AutoAugment,
                           RandAugment,
                           augment_and_mix_transform,
                           auto_augment_policy,
                           auto_augment_transform,
                           create_auto_augment,
                           rand_augment_transform,
)
from .dataset import (
                           IMG_EXTENSIONS,
                           DataConfig,
                           ImageFolderSource,
                           ImagePipeline,
                           SkippedFiles,
                           create_dataset,
                           dataset_dirs,
                           find_classes,
                           list_image_folder,
                           load_class_names,
                           load_rgb_image,
                           prepare_digits,
                           report_skipped,
                           resolve_split_dir,
                           save_class_names,
                           to_rgb,
)
from .mixup import Mixup, cutmix_bbox_and_lam, mixup_target, one_hot
from .random_erasing import RandomErasing
from .transforms import (
                           DEFAULT_CROP_PCT,
                           IMAGENET_DEFAULT_MEAN,
                           IMAGENET_DEFAULT_STD,
                           create_transform,
                           transforms_imagenet_eval,
                           transforms_imagenet_train,
)

__all__ = [
    "AugMixAugment", "AugmentOp", "AutoAugment", "RandAugment", "augment_and_mix_transform", "auto_augment_policy",
    "auto_augment_transform", "create_auto_augment", "rand_augment_transform",
    "IMG_EXTENSIONS", "DataConfig", "ImageFolderSource", "ImagePipeline", "SkippedFiles", "create_dataset",
    "dataset_dirs", "find_classes",
    "list_image_folder",
    "load_class_names", "load_rgb_image", "prepare_digits", "report_skipped", "resolve_split_dir",
    "save_class_names", "to_rgb",
    "Mixup", "cutmix_bbox_and_lam", "mixup_target", "one_hot", "RandomErasing",
    "DEFAULT_CROP_PCT", "IMAGENET_DEFAULT_MEAN", "IMAGENET_DEFAULT_STD", "create_transform",
    "transforms_imagenet_eval", "transforms_imagenet_train",
]
