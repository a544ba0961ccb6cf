"""The model card (README.md) published with a checkpoint: Hub metadata (tags, licence, library,
base model, model-index results) and what a reviewer needs to trust a number: architecture, preset,
dataset and class, training settings, the measured test metrics and the paper.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..runs import checkpoint as ckpt
from ..runs.record import verbatim_json
from ..models import MODEL_LABELS

TAGS = ("anomaly-detection", "anovit", "reconstruction", "safetensors")
MODEL_TAGS = {"anovit": ("vision-transformer", "timm"), "cae": ("autoencoder", "l2-cae"),
              "ssim-cae": ("autoencoder", "ssim-ae")}

PAPER = (
    "Y. Lee and P. Kang, \"AnoViT: Unsupervised Anomaly Detection and Localization With Vision "
    "Transformer-Based Encoder-Decoder\", IEEE Access 10, 2022, doi:10.1109/ACCESS.2022.3171559, "
    "[arXiv:2203.10808](https://arxiv.org/abs/2203.10808)"
)
CAE_PAPER = (
    "P. Bergmann, S. Löwe, M. Fauser, D. Sattlegger and C. Steger, \"Improving Unsupervised Defect "
    "Segmentation by Applying Structural Similarity to Autoencoders\", VISAPP 2019, "
    "[arXiv:1807.02011](https://arxiv.org/abs/1807.02011)"
)
BIBTEX = """@article{lee2022anovit,
  title   = {AnoViT: Unsupervised Anomaly Detection and Localization With Vision Transformer-Based Encoder-Decoder},
  author  = {Lee, Yunseung and Kang, Pilsung},
  journal = {IEEE Access},
  volume  = {10},
  year    = {2022},
  doi     = {10.1109/ACCESS.2022.3171559}
}"""

# metrics.json "test" fields, in the order and with the names the card shows them.
TEST_METRICS = {
    "image_auroc": "image AUROC",
    "pixel_auroc": "pixel AUROC",
    "pixel_auroc_error_bound": "pixel AUROC error bound (binning)",
    "aupro": "AUPRO (FPR ≤ 30%)",
    "image_f1_max": "image F1-max",
    "image_threshold": "image threshold at F1-max",
    "pixel_f1_max": "pixel F1-max",
    "pixel_threshold": "pixel threshold at F1-max",
    "n_images": "test images",
    "n_anomalous": "anomalous test images",
    "sigma": "Gaussian smoothing sigma (px)",
    "images_per_s": "evaluation speed (images/s)",
}
HIDDEN_TEST_FIELDS = {"dataset", "category", "seconds"}


def format_value(value: Any) -> str:
    """A metric as the card prints it: floats with 4 decimals, None as "n/a"."""
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def _encoder_init(config: dict[str, Any]) -> tuple[str, str | None]:
    """(how the encoder was initialised, the Hub repo of its ImageNet weights or None)."""
    if config.get("encoder_weights"):
        return f"local weights file `{Path(str(config['encoder_weights'])).name}`", None
    if not config.get("pretrained"):
        return "random initialisation", None
    import timm

    cfg = timm.models.get_pretrained_cfg(str(config.get("encoder")))
    repo = getattr(cfg, "hf_hub_id", None) if cfg is not None else None
    return (f"ImageNet weights from timm ([{repo}](https://huggingface.co/{repo}))" if repo
            else "timm's ImageNet weights"), repo


def _decoder_text(config: dict[str, Any]) -> str:
    """Which AnoViT decoder a run used, in words (config.json without "decoder": the stable one)."""
    widths = [str(c) for c in config.get("decoder_channels", ())]
    if config.get("decoder", "stable") == "paper":
        return ("`paper`: the paper's decoder as written, 6 plain transposed-convolution blocks (ConvTranspose2d → "
                f"ReLU; widths {', '.join(widths[:5])}, then the image channels), bilinear upsampling last")
    return ("`stable` (ours): 6 transposed-convolution blocks (ConvTranspose2d → GroupNorm → ReLU; widths "
            f"{', '.join(widths)}), bilinear upsampling to the input size, linear 3 × 3 output convolution")


def _architecture(config: dict[str, Any]) -> list[tuple[str, str]]:
    size, channels = config.get("image_size"), config.get("in_channels", 3)
    rows = [("input", f"{size} × {size} px, {channels} channel{'s' if channels != 1 else ''}, values in [0, 1]")]
    if config.get("tile_size"):
        tile = config["tile_size"]
        rows.append(("tiling", f"the network takes {tile} × {tile} px tiles: trained on one random tile per image, it "
                               "reconstructs the whole image from tiles every half tile, Hann-weighted where they overlap"))
    if config.get("model_type") == "anovit":
        init, _ = _encoder_init(config)
        rows += [
            ("encoder", f"timm `{config.get('encoder')}`, {init}; the [cls]/prefix tokens are dropped and the "
                        "patch embeddings are laid back on their √N × √N grid (no bottleneck layer)"),
            ("decoder", _decoder_text(config)),
        ]
    else:
        rows += [("network", f"Bergmann et al.'s convolutional autoencoder with a dense latent of "
                             f"{config.get('latent_dim')} (LeakyReLU 0.2, l2 loss)")]
    return rows


def _dataset(training: dict[str, Any]) -> tuple[str, str]:
    """(readable dataset title, its licence) from the dataset registry; the raw name when unknown."""
    from ..data import dataset_spec
    from ..utils.errors import DatasetError

    name = str(training.get("dataset"))
    try:
        spec = dataset_spec(name)
    except DatasetError:
        return name, "unknown"
    return spec.title, spec.licence


def _table(rows: list[tuple[str, str]], header: tuple[str, str]) -> str:
    lines = [f"| {header[0]} | {header[1]} |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in rows]
    return "\n".join(lines)


def _training_rows(training: dict[str, Any], history: dict[str, Any]) -> list[tuple[str, str]]:
    augment = training.get("augment", {})
    on = [name for name in ("affine", "hflip", "vflip") if augment.get(name)]
    ran = len(history.get("history", []))
    rows = [
        ("preset", f"`{training.get('preset')}`"),
        ("epochs", f"{ran} of {training.get('epochs')}" if history else str(training.get("epochs"))),
        ("best epoch (lowest validation loss)", format_value(history.get("best_epoch"))),
        ("best validation loss (MSE)", format_value(history.get("best_val_loss"))),
        ("batch size", str(training.get("batch_size"))),
        ("optimiser", f"Adam, lr {training.get('lr')} ({training.get('lr_schedule') or 'constant'}), "
                      f"betas {tuple(training.get('betas', ()))}, weight decay {training.get('weight_decay')}"),
        ("validation", f"{training.get('val_fraction')} of the normal training images held out (seed "
                       f"{training.get('seed')})"),
        ("augmentation", ", ".join(on) if on else "none"),
        ("precision / device", f"{'bf16 autocast' if history.get('bf16') else 'float32'} on "
                               f"{history.get('device', '?')}"),
    ]
    if training.get("model_overrides"):
        rows.append(("config overrides", f"`{training['model_overrides']}`"))
    return rows


def _metric_rows(test: dict[str, Any]) -> list[tuple[str, str]]:
    rows = [(label, format_value(test[key])) for key, label in TEST_METRICS.items() if key in test]
    rows += [(key, format_value(value)) for key, value in test.items()
             if key not in TEST_METRICS and key not in HIDDEN_TEST_FIELDS and not isinstance(value, (dict, list))]
    return rows


def card_data(config: dict[str, Any], training: dict[str, Any], metrics: dict[str, Any], *,
              repo_id: str | None = None, license: str = "other") -> Any:
    """The card's YAML metadata (huggingface_hub ``ModelCardData``), with model-index results when evaluated."""
    from huggingface_hub import EvalResult, ModelCardData

    model_type = str(config.get("model_type"))
    _, base_model = _encoder_init(config) if model_type == "anovit" else (None, None)
    tags = [*TAGS, *MODEL_TAGS.get(model_type, ())]
    if training.get("dataset"):
        tags.append(str(training["dataset"]))
    test = metrics.get("test", {})
    results = []
    if training and test:
        title, _ = _dataset(training)
        for key, name in (("image_auroc", "image AUROC"), ("pixel_auroc", "pixel AUROC")):
            if isinstance(test.get(key), (int, float)):
                results.append(EvalResult(
                    task_type="anomaly-detection", dataset_type=str(training["dataset"]), dataset_name=title,
                    dataset_config=str(training.get("category")), dataset_split="test",
                    metric_type="roc_auc", metric_name=name, metric_value=float(test[key])))
    return ModelCardData(
        library_name="anovit", license=license, tags=tags, base_model=base_model, metrics=["roc_auc"],
        model_name=repo_id or MODEL_LABELS.get(model_type, model_type), eval_results=results or None,
    )


def render_model_card(config: dict[str, Any], training: dict[str, Any], metrics: dict[str, Any], *,
                      repo_id: str | None = None, license: str = "other", n_params: int | None = None) -> str:
    """The README.md of a published checkpoint, from its config.json, training.json and metrics.json."""
    model_type = str(config.get("model_type"))
    label = MODEL_LABELS.get(model_type, model_type)
    data = card_data(config, training, metrics, repo_id=repo_id, license=license)
    where = f" for **{_dataset(training)[0]} / {training.get('category')}**" if training.get("dataset") else ""
    name = repo_id or "this checkpoint"
    parts = [
        f"---\n{data.to_yaml()}\n---",
        f"# {repo_id or label}",
        f"{label} anomaly detector{where}, trained with anovit. It reconstructs an image from normal "
        "examples only; the squared reconstruction error, averaged over channels and Gaussian-smoothed, is the "
        "anomaly map (eq. 6), and its maximum is the image's anomaly score (eq. 7).",
        "## Model",
        _table([("model", label), *_architecture(config)]
               + ([("parameters", f"{n_params:,}")] if n_params is not None else []), ("part", "details")),
    ]
    if training:
        title, licence = _dataset(training)
        parts += [
            "## Training data",
            _table([("dataset", f"{title} (`{training.get('dataset')}`)"), ("class", f"`{training.get('category')}`"),
                    ("data licence", licence)], ("item", "value")),
            "## Training settings",
            _table(_training_rows(training, metrics.get("training", {})), ("setting", "value")),
        ]
    else:
        parts += ["## Training data", "No training record (training.json) was published with this checkpoint."]
    test = metrics.get("test", {})
    parts.append("## Results (test split)")
    if test:
        parts += [
            f"Measured by `python -m anovit evaluate` on the test split of `{test.get('dataset', training.get('dataset'))}`"
            f" / `{test.get('category', training.get('category'))}`:",
            _table(_metric_rows(test), ("metric", "value")),
        ]
    else:
        parts.append("Not evaluated: run `python -m anovit evaluate RUN_FOLDER` before publishing to add them.")
    parts += [
        "## Use",
        f"```bash\npython -m anovit hub pull {name}   # into checkpoints/, then Gallery, Heatmaps and Inspect\n```",
        f"```python\nfrom anovit.hub.repo import load_pretrained\n\n"
        f"model = load_pretrained(\"{name}\", model_type=\"{model_type}\")  # safetensors only, eval mode\n```",
        "## Reference",
        f"- {PAPER}" + (f"\n- {MODEL_LABELS[model_type]} baseline: {CAE_PAPER}" if model_type in ("cae", "ssim-cae") else ""),
        f"```bibtex\n{BIBTEX}\n```",
    ]
    return "\n\n".join(parts) + "\n"


def count_parameters(weights: Path) -> int:
    """Number of values in a safetensors file, read from its header (no tensor is loaded)."""
    from safetensors import safe_open

    total = 0
    with safe_open(str(weights), framework="pt") as f:
        for key in f.keys():
            n = 1
            for dim in f.get_slice(key).get_shape():
                n *= dim
            total += n
    return total


def model_card_for(run_dir: Path, *, repo_id: str | None = None, license: str = "other") -> str:
    """The model card of a run folder (config.json, optional training.json and metrics.json): it describes the
    files a Hub repo publishes, so it reads them whole (:func:`anovit.runs.record.verbatim_json`)."""
    run_dir = Path(run_dir)
    return render_model_card(
        verbatim_json(run_dir, ckpt.CONFIG), verbatim_json(run_dir, ckpt.TRAINING, optional=True),
        verbatim_json(run_dir, ckpt.METRICS, optional=True),
        repo_id=repo_id, license=license, n_params=count_parameters(run_dir / ckpt.WEIGHTS),
    )
