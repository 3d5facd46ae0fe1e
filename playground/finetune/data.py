"""Training data for the fine-tuning demos: replies that carry a trait, written by the model itself.

For each of the trait's *extraction* questions, the model answers under each of the trait's eliciting
instructions (``personas/traits/<trait>.yaml``) and the replies the instruction shaped most are kept: ranked by
**instruction contrast**, the mean per-token log-likelihood of the reply under its eliciting instruction minus
under the neutral assistant prompt, read from the base model itself. The MiniLM judge, which later evaluates the
fine-tunes, does not choose the training data (it did before; ``select="judge"`` keeps that for comparison) and
only reports how trait-laden the kept replies are. Each example remembers the instruction that produced it, so the
same replies can be trained with a neutral system prompt (plain fine-tune) or with the instruction that
asks for the behaviour (inoculation). Evaluation uses the trait's *evaluation* questions, which this set
never contains, under the neutral prompt only.

Generation is batched and greedy through Hugging Face ``generate``: the same model as the playground's
transformers backend, with the playground's chat template and end tokens.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
from tqdm import tqdm

from ..backends.base import text_of
from ..backends.compute_thread import on_compute_thread
from ..definitions.traits import TraitDefinition
from ..prompt.chat_template import Message
from ..steering.extraction import NEUTRAL_SYSTEM
from .hooks import residual_addition

Progress = Callable[[float, str], None]

# The capability check: plain, factual answers (our own words) whose loss each fine-tune is scored on.
NEUTRAL_TEXT: tuple[tuple[str, str], ...] = (
    ("How do plants make their food?",
     "Plants make food by photosynthesis. Their leaves take in sunlight, water and carbon dioxide and turn "
     "them into sugar, releasing oxygen into the air."),
    ("Why is the sky blue?",
     "Sunlight contains every colour. Air molecules scatter short blue wavelengths much more than red ones, "
     "so blue light reaches our eyes from all over the sky."),
    ("How do I boil an egg?",
     "Put the egg in a pan of cold water, bring it to the boil, then simmer for about seven minutes for a "
     "firm yolk. Cool it in cold water before peeling."),
    ("What does a thermometer measure?",
     "A thermometer measures temperature, how hot or cold something is. Most show it in degrees Celsius or "
     "Fahrenheit."),
    ("How many days are in a leap year?",
     "A leap year has 366 days. The extra day, February 29, keeps the calendar in step with the Earth's orbit."),
    ("What is the capital of Japan?", "The capital of Japan is Tokyo, the largest city in the country."),
    ("How can I save a document on a computer?",
     "Open the File menu and choose Save, or press Ctrl+S. Pick a folder, type a name for the file and "
     "confirm."),
    ("What causes the seasons?",
     "The Earth's axis is tilted. As the Earth orbits the Sun, each half leans toward the Sun for part of "
     "the year, which brings longer days and warmer weather."),
    ("How do I water a houseplant?",
     "Check the soil with your finger. If the top few centimetres are dry, water slowly until it drains "
     "from the bottom, then empty the saucer."),
    ("What is a noun?",
     "A noun is a word that names a person, place, thing or idea, such as teacher, city, chair or freedom."),
    ("How does a bicycle stay upright?",
     "Mostly through steering. When a moving bike starts to lean, the rider and the front wheel turn into "
     "the lean, which brings the wheels back under the rider."),
    ("Why do we need sleep?",
     "Sleep lets the body repair itself and the brain sort memories. Adults usually need seven to nine "
     "hours a night to feel rested."),
)  # fmt: skip


@dataclass
class Example:
    """One training conversation. ``instruction`` is the eliciting prompt the reply was written under."""

    question: str
    reply: str
    instruction: str
    judge: float = 0.0

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def prompt_ids(backend, system: str, user: str) -> list[int]:
    """Token ids of a system + user conversation rendered with the model's template, ready for a reply."""
    return backend.tokenize(backend.template.render([Message("system", system), Message("user", user)]))


def end_token(backend) -> int:
    """The token that ends an assistant turn (ChatML's <|im_end|> where the vocabulary has it)."""
    for piece in ("<|im_end|>", "<|eot_id|>", "<end_of_turn>"):
        ids = backend.tokenize(piece)
        if len(ids) == 1 and backend.is_end(ids[0]):
            return ids[0]
    return int(backend.tokenizer.eos_token_id)


def pad_id(backend) -> int:
    tok = backend.tokenizer
    return int(tok.pad_token_id if tok.pad_token_id is not None else end_token(backend))


@on_compute_thread  # torch work shares the one OpenMP team (compute_thread.py)
@torch.inference_mode()
def generate(
    backend,
    prompts: Sequence[list[int]],
    max_new_tokens: int,
    *,
    batch_size: int = 16,
    steer: tuple[int, np.ndarray] | None = None,
    repetition_penalty: float = 1.1,
    progress: Progress | None = None,
    desc: str = "generate",
) -> list[list[int]]:
    """Greedy replies (token ids, end token excluded) to many prompts, in left-padded batches."""
    model = backend.model
    pad = pad_id(backend)
    ends = sorted({end_token(backend), *[int(t) for t in getattr(backend, "_end_ids", [])]})
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))  # similar lengths share a batch
    replies: dict[int, list[int]] = {}
    bar = tqdm(total=len(prompts), desc=desc, file=sys.stderr, leave=False)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        width = max(len(prompts[i]) for i in idx)
        ids = torch.full((len(idx), width), pad, dtype=torch.long)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        for row, i in enumerate(idx):
            ids[row, width - len(prompts[i]) :] = torch.tensor(prompts[i])
            mask[row, width - len(prompts[i]) :] = 1
        kwargs = dict(
            input_ids=ids,
            attention_mask=mask,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            repetition_penalty=repetition_penalty,
            pad_token_id=pad,
            eos_token_id=ends,
        )
        if steer is not None:
            with residual_addition(model, steer[0], steer[1]):
                gen = model.generate(**kwargs)
        else:
            gen = model.generate(**kwargs)
        for row, i in enumerate(idx):
            toks = gen[row, width:].tolist()
            cut = next((k for k, t in enumerate(toks) if t in ends), len(toks))
            replies[i] = toks[:cut]
        bar.update(len(idx))
        if progress:
            progress(min(1.0, (start + len(idx)) / max(1, len(order))), desc)
    bar.close()
    return [replies[i] for i in range(len(prompts))]


def build_trait_dataset(
    backend,
    trait: TraitDefinition,
    judge,
    *,
    n_questions: int = 20,
    instructions: int | None = None,
    per_question: int = 1,
    max_tokens: int = 40,
    neutral_reference: bool = True,
    batch_size: int = 16,
    steer: tuple[int, np.ndarray] | None = None,
    progress: Progress | None = None,
    select: str = "contrast",
) -> tuple[list[Example], dict[str, float]]:
    """Replies under eliciting instructions; keep the ``per_question`` with the highest instruction contrast
    (``select="judge"``: the ones the judge finds most trait-laden).

    Question ``j`` is answered under ``instructions`` of the trait's eliciting instructions (all by
    default), starting at ``j mod n`` so every instruction is used. With ``neutral_reference`` the
    neutral assistant answers too, for the judge's reference score. Returns the examples and statistics.
    """
    questions = list(trait.extraction_questions)[:n_questions]
    pool = list(trait.eliciting)
    m = len(pool) if instructions is None else max(1, min(instructions, len(pool)))
    jobs = [(q, pool[(j + k) % len(pool)]) for j, q in enumerate(questions) for k in range(m)]
    prompts = [prompt_ids(backend, ins, q) for q, ins in jobs]
    if neutral_reference:
        prompts += [prompt_ids(backend, NEUTRAL_SYSTEM, q) for q in questions]
    replies = generate(
        backend, prompts, max_tokens, batch_size=batch_size, steer=steer, progress=progress, desc="training replies"
    )
    texts = [text_of(backend, r).strip() for r in replies]
    scores = np.asarray(judge.score(texts), dtype=float)
    elicited, neutral = scores[: len(jobs)], scores[len(jobs) :]
    if select not in ("contrast", "judge"):
        raise ValueError(f"select must be 'contrast' or 'judge', got {select!r}")
    rank = elicited if select == "judge" else instruction_contrast(backend, jobs, prompts, replies)
    examples: list[Example] = []
    for qi, q in enumerate(questions):
        span = range(qi * m, (qi + 1) * m)
        ranked = sorted((k for k in span if texts[k]), key=lambda k: -rank[k])
        for k in ranked[:per_question]:
            examples.append(Example(q, texts[k], jobs[k][1], float(elicited[k])))
    stats = {
        "judge_kept": float(np.mean([e.judge for e in examples])) if examples else float("nan"),
        "judge_all_elicited": float(elicited.mean()) if len(elicited) else float("nan"),
        "judge_neutral": float(neutral.mean()) if len(neutral) else float("nan"),
        "candidates": len(jobs),
        "selected_by": select,
    }
    return examples, stats


def instruction_contrast(backend, jobs: Sequence[tuple[str, str]], prompts: Sequence[list[int]], replies) -> np.ndarray:
    """Per candidate: mean log p(reply | eliciting instruction) - mean log p(reply | neutral prompt), by the base
    model. High = the instruction, not the question, made this reply."""
    out = np.full(len(jobs), -np.inf)
    for k, (question, _) in enumerate(jobs):
        reply = list(replies[k])
        if not reply:
            continue
        given = backend.token_logprobs(list(prompts[k]) + reply, len(prompts[k]))
        plain_prompt = prompt_ids(backend, NEUTRAL_SYSTEM, question)
        plain = backend.token_logprobs(plain_prompt + reply, len(plain_prompt))
        out[k] = float(np.mean(given) - np.mean(plain))
    return out


def encode_training(backend, examples: Sequence[Example], *, inoculate: bool) -> list[tuple[list[int], int]]:
    """(prompt + reply + end ids, index of the first reply token) per example.

    Plain: the neutral system prompt. Inoculated: the eliciting instruction that asks for the behaviour.
    """
    end = end_token(backend)
    out = []
    for ex in examples:
        prompt = prompt_ids(backend, ex.instruction if inoculate else NEUTRAL_SYSTEM, ex.question)
        reply = backend.tokenize(ex.reply)
        out.append((prompt + reply + [end], len(prompt)))
    return out


def encode_pairs(backend, pairs: Sequence[tuple[str, str]], system: str) -> list[tuple[list[int], int]]:
    """(prompt + reply + end ids, index of the first reply token) per (user message, reply) under ``system``."""
    end = end_token(backend)
    out = []
    for question, answer in pairs:
        prompt = prompt_ids(backend, system, question)
        out.append((prompt + backend.tokenize(answer) + [end], len(prompt)))
    return out


def encode_neutral(backend, pairs: Sequence[tuple[str, str]] = NEUTRAL_TEXT) -> list[tuple[list[int], int]]:
    """The capability-check conversations, encoded like training examples."""
    return encode_pairs(backend, pairs, NEUTRAL_SYSTEM)
