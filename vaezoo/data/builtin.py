"""The built-in datasets, registered through the same hook as any plugin's."""
from __future__ import annotations

from vaezoo.data import colour_shapes, dsprites, huggingface
from vaezoo.data.arrays import load_arrays
from vaezoo.data.datasets import load_digits, load_fashion_mnist, load_mnist
from vaezoo.data.image_folder import load_image_folder
from vaezoo.registry.hookspecs import Register, hookimpl


@hookimpl
def vaezoo_register_datasets(register: Register) -> None:
    register("digits", load_digits, "scikit-learn's 8x8 digits, shipped with it; a fixed held-out split of 297")
    register("fashion-mnist", load_fashion_mnist,
             "Fashion-MNIST's IDX files (default /usr/share/datasets/fashion-mnist); its test set held out")
    register("mnist", load_mnist,
             "MNIST's IDX files from --data-dir (default /usr/share/datasets/mnist); its test set held out")
    register("folder", load_image_folder,
             "PNG/JPEG images under --data-dir (class = sub-folder), resized to --image-size; 10% held out")
    register("arrays", load_arrays, "images (and labels) from the .npy/.npz file --data-dir; 10% held out unless split")
    register("huggingface", huggingface.load_huggingface,
             "a Hugging Face `datasets` dataset on local disk (save_to_disk or Parquet), read by rows; "
             "pip install 'vaezoo[hf]'")
    register("dsprites", dsprites.load_dsprites,
             "dSprites rendered by vaezoo: 64x64 shapes with 5 ground-truth factors; 5,000 held out")
    register("colour-shapes", colour_shapes.load_colour_shapes,
             "3,456 32x32 RGB shapes with 5 ground-truth factors, rendered by vaezoo; 10% held out")
