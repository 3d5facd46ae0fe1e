"""Where trait vectors live: shipped ones under models/<model_id>/vectors, user ones in the cache."""

from __future__ import annotations

from pathlib import Path

from ..definitions.schema import did_you_mean
from ..errors import NotFoundError, PlaygroundError
from ..paths import REPO_ROOT, user_cache_dir
from .extraction_replies import ReplySet, replies_path
from .vectors import TraitVector

SHIPPED_MODELS = REPO_ROOT / "models"


class VectorStore:
    """Trait vectors for one model. User-extracted vectors override shipped ones."""

    def __init__(self, model_id: str, roots: list[Path] | None = None):
        self.model_id = model_id
        self.roots = roots or [SHIPPED_MODELS / model_id / "vectors", user_cache_dir() / model_id / "vectors"]
        self._cache: dict[str, TraitVector] = {}

    def files(self) -> dict[str, Path]:
        found: dict[str, Path] = {}
        for root in self.roots:
            if root.is_dir():
                for p in sorted(root.glob("*.safetensors")):
                    found[p.stem] = p
        return found

    def names(self) -> list[str]:
        return sorted(self.files())

    def get(self, trait: str) -> TraitVector:
        if trait in self._cache:
            return self._cache[trait]
        files = self.files()
        if trait not in files:
            known = ", ".join(sorted(files)) or "none"
            raise NotFoundError(
                f"no vector for trait '{trait}' on model '{self.model_id}'{did_you_mean(trait, list(files))} "
                f"(available: {known}); extract one with: python -m playground extract --trait {trait}"
            )
        vec = TraitVector.load(files[trait])
        if vec.model_id != self.model_id:
            raise PlaygroundError(
                f"{files[trait]}: vector was made for model '{vec.model_id}', not '{self.model_id}'; "
                "re-extract it for this model"
            )
        self._cache[trait] = vec
        return vec

    def all(self) -> dict[str, TraitVector]:
        return {name: self.get(name) for name in self.names()}

    def replies(self, trait: str) -> ReplySet | None:
        """The stored extraction replies beside the vector that :meth:`get` serves (None when there are none)."""
        path = self.files().get(trait)
        if path is None or not replies_path(path).is_file():
            return None
        return ReplySet.load(replies_path(path))

    def save(self, vec: TraitVector, shipped: bool = False, replies: ReplySet | None = None) -> Path:
        root = self.roots[0] if shipped else self.roots[-1]
        root.mkdir(parents=True, exist_ok=True)
        vec.save(root / vec.trait)
        path = root / f"{vec.trait}.safetensors"
        if replies is not None:
            replies.save(replies_path(path))
        self._cache[vec.trait] = vec
        return path
