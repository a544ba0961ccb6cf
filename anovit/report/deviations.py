"""Where anovit departs from the AnoViT paper (Lee & Kang 2022), in one place: the README's
"Deviations from the paper" section and the app's Home page are both written from this list
(tests/test_deviations.py checks that the README names every topic)."""

from __future__ import annotations

from dataclasses import dataclass

from ..models import TRAINING_DEFAULTS


def _budget(model: str) -> str:
    """The cpu-default budget of ``model`` in words: "45 epochs of 256 images"."""
    defaults = TRAINING_DEFAULTS[model]["cpu-default"]
    return f"{defaults.epochs} epochs of {defaults.images_per_epoch} images"


def _lr(model: str) -> str:
    """The cpu-default learning rate of ``model`` as the table writes it: "5e-4"."""
    return f"{TRAINING_DEFAULTS[model]['cpu-default'].lr:.0e}".replace("e-0", "e-")


@dataclass(frozen=True)
class Deviation:
    """One departure: what the paper says, what anovit does, and why."""

    topic: str
    paper: str
    ours: str
    why: str


DEVIATIONS: tuple[Deviation, ...] = (
    Deviation("attention heads", "ViT-Base with 8 heads (sec. 4.2)",
              "12 heads", "ViT-Base has 12; timm's ImageNet weights, which the paper uses, fix 12"),
    Deviation("decoder normalisation", "six transposed-conv + ReLU blocks (sec. 4.2)",
              "`decoder=\"stable\"` (default) adds GroupNorm to every block; `decoder=\"paper\"` is the text's",
              "train/evaluation consistency on tiny training sets; `--decoder paper` runs the paper's"),
    Deviation("decoder output", "an upsampling layer last",
              "stable: bilinear upsampling, then a linear 3x3 conv (output unbounded); paper: ReLU last, so [0, inf)",
              "a linear last layer can reach every target value; the authors' code ends in ReLU then Tanh, [0, 1)"),
    Deviation("eq. (1) loss", "squared l2 norm of the residual, summed",
              "mean over elements (MSE)", "the same minimiser; a loss independent of the image size"),
    Deviation("input normalisation", "not stated",
              "images in [0, 1] are reconstructed and compared in that space; the encoder sees them normalised "
              "with its own timm `pretrained_cfg` mean and std", "score maps of AnoViT and l2-CAE on one scale"),
    Deviation("flips", "random affine, vertical and horizontal flips (sec. 4.2)",
              "flips per category: none that make a normal image look defective (e.g. transistor, digits)",
              "a mirrored 7 or an upside-down transistor is an anomaly, not a normal sample"),
    Deviation("validation split", "not stated (the authors' code holds out 40%)",
              "20% of train/good held out (seeded); the best epoch is chosen on its loss",
              "model selection must never see the test split"),
    Deviation("learning rate, epochs", "not stated",
              "AnoViT: Adam 2e-4 (paper preset, as the authors' code) or 1e-3 (cpu-* presets, from scratch), "
              f"10 epochs (cpu-default: {_budget('anovit')}); l2-CAE: Bergmann et al.'s Adam 2e-4, weight decay "
              f"1e-5, 200 epochs (cpu-default: Adam {_lr('cae')}, {_budget('cae')})",
              "the paper gives none; the l2-CAE's are published"),
    Deviation("l2-CAE training set", "not stated",
              "the training images themselves each epoch, batch 16, linear output layer",
              "Bergmann et al.'s port trains on 10,000 augmented crops per epoch, batch 128, sigmoid output: "
              "too slow for a CPU; on a small training split 200 epochs are few steps (25 cookie images: 400; "
              "still improving on validation, docs/benchmark.md section 8)"),
    Deviation("Gaussian smoothing sigma", "not stated (sec. 4.2)",
              "4 x image size / 256 px (128 px: 2, 224 px: 3.5, 384 px: 6), stored in each run's training.json; "
              "runs without one: 4", "anomalib's PaDiM default (4 px at 256 px), scaled so it blurs the same share "
              "of the image at every size"),
    Deviation("image size", "224 px for MNIST and CIFAR-10, 384 px for MVTec AD (sec. 4.1)",
              "the paper preset follows the dataset (224 px + vit_base_patch16_224 for the one-class sets, "
              "384 px + vit_base_patch16_384 otherwise); the cpu-* presets run 128 or 224 px (AnoViT "
              "cpu-default: 384 px images in 128 px tiles)",
              "CPU-sized presets; `--image-size` and `--encoder` override"),
    Deviation("precision", "not stated", "bf16 autocast where the hardware supports it (`--no-bf16`: float32), "
              "recorded with the run and used by every later scoring of it; losses and maps in float32",
              "2x faster on CPUs with bf16 units, AUROC unchanged to 1e-3 (benchmarks/bf16_vs_fp32.py)"),
)


def deviations_markdown() -> str:
    """The deviations as a Markdown table (topic, paper, anovit, why)."""
    lines = ["| topic | paper | anovit | why |", "|---|---|---|---|"]
    lines += [f"| {d.topic} | {d.paper} | {d.ours} | {d.why} |" for d in DEVIATIONS]
    return "\n".join(lines)
