"""Run only by tests/test_hermetic.py, as ``pytest tests/hermetic_inner.py`` in a subprocess whose
XDG_CACHE_HOME holds a poisoned user cache and whose environment has no PLAYGROUND_CACHE.

Not named test_*.py, so a normal run does not collect it. It runs under the real tests/conftest.py: these
checks pass only if that conftest keeps the session away from the user cache.
"""

from __future__ import annotations

MODEL_ID = "smollm2-135m"


def same_vector(a, b) -> bool:
    """Equal, and every direction equal bit for bit (array_equal alone lets -0.0 == 0.0 through)."""
    return a == b and all(a.directions[l].tobytes() == b.directions[l].tobytes() for l in a.layers)


def same_probe(a, b) -> bool:
    arrays = ("mean", "scale", "coef")
    scalars = ("model_id", "layers", "intercept", "z_mean", "z_std", "platt", "meta")
    return all(getattr(a, k).tobytes() == getattr(b, k).tobytes() for k in arrays) and all(
        getattr(a, k) == getattr(b, k) for k in scalars
    )


def test_store_serves_only_shipped_vectors() -> None:
    from playground.steering.store import SHIPPED_MODELS, VectorStore
    from playground.steering.vectors import TraitVector

    shipped_dir = SHIPPED_MODELS / MODEL_ID / "vectors"
    store = VectorStore(MODEL_ID)
    assert same_vector(store.get("humorous"), TraitVector.load(shipped_dir / "humorous.safetensors"))
    assert store.names() == sorted(p.stem for p in shipped_dir.glob("*.safetensors"))


def test_screening_probe_is_the_shipped_one() -> None:
    from playground.guard.screening import ScreeningProbe, load_screening
    from playground.steering.store import SHIPPED_MODELS

    probe = load_screening(MODEL_ID)
    assert probe is not None
    assert same_probe(probe, ScreeningProbe.load(SHIPPED_MODELS / MODEL_ID / "guard"))
