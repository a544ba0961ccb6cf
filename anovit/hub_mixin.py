"""``save_pretrained`` / ``from_pretrained`` / ``push_to_hub`` for anovit's models, in the run-folder
layout that the trainer writes (config.json with ``model_type`` + model.safetensors), which is also
the Hugging Face Hub's. Imports happen inside the methods: anovit.checkpoint imports the models.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Self


class HubMixin:
    """Hub conventions for a model class with a ``model_type`` and a ``config`` dataclass."""

    model_type: str

    def save_pretrained(self, save_directory: str | Path) -> Path:
        """Write config.json and model.safetensors into ``save_directory`` (created if needed)."""
        from .checkpoint import save_model

        path = Path(save_directory)
        save_model(path, self)  # type: ignore[arg-type]
        return path

    @classmethod
    def from_pretrained(cls, repo_id_or_dir: str | Path, revision: str | None = None, *,
                        device: str = "cpu") -> Self:
        """Load from a run folder or a Hub repo ``ORG/NAME[@revision]`` (safetensors only, eval mode).

        Offline, a repo already in the local Hub cache loads from there.
        """
        from .hub import load_pretrained

        return load_pretrained(repo_id_or_dir, revision, model_type=cls.model_type, device=device)  # type: ignore[return-value]

    def push_to_hub(self, repo_id: str, private: bool = False, *, license: str = "other",
                    commit_message: str | None = None) -> str:
        """Publish the model (config, weights and a generated model card) as ``repo_id``; the commit URL."""
        from .hub import push

        with tempfile.TemporaryDirectory() as tmp:
            self.save_pretrained(tmp)
            return push(Path(tmp), repo_id, private=private, license=license,
                        commit_message=commit_message or f"Upload {type(self).__name__} with anovit")
