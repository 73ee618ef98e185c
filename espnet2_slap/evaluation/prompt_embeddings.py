"""Zero-shot prompts: the paper's four (``prompts.py``: ``PROMPTS``) filled with each class's
words, under one class-name rule for every label corpus (``class_words``: ``_`` in a class name is a space).

Prompt embeddings come from a model (``embed_prompts``) or from a file that ``slap_embed --prompts`` wrote
(``read_prompt_embeddings``), whose ids are ``<prompt_index>:<class>``.
"""

from pathlib import Path
from typing import Callable, Dict, List, Sequence

import numpy as np

from espnet2_slap.evaluation.readers import load_embeddings, lookup, row_of
from espnet2_slap.prompts import PROMPTS, class_words


def prompt_ids(classes: Sequence[str]) -> List[str]:
    """``<prompt_index>:<class>`` for every prompt and class, prompt by prompt (the rows of ``embed_prompts``)."""
    return [f"{i}:{c}" for i in range(len(PROMPTS)) for c in classes]


def embed_prompts(
    embed_text: Callable[[List[str]], Dict[str, np.ndarray]], classes: Sequence[str]
) -> Dict[str, Dict[str, np.ndarray]]:
    """{prompt: {kind: (C, D) embeddings of the prompt with each class}} by ``embed_text`` (e.g.
    ``AudioTextModel.embed_text``), one call a prompt."""
    return {prompt: embed_text([prompt.format(class_words(c)) for c in classes]) for prompt in PROMPTS}


def read_prompt_embeddings(emb_dir: Path, name: str, classes: Sequence[str]) -> Dict[str, np.ndarray]:
    """An embedding file with ids '<prompt_index>:<class>' -> {prompt: (C, D)} for the prompts present; every
    class must be there for each of them."""
    ids, matrix = load_embeddings(emb_dir, name)
    row = row_of(ids)
    result = {}
    for index in sorted({utt.split(":", 1)[0] for utt in ids}):
        if not index.isdigit() or int(index) >= len(PROMPTS):
            raise ValueError(f"{emb_dir / name}.ids: prompt index {index!r} is not in 0..{len(PROMPTS) - 1}")
        rows = [lookup(row, f"{index}:{c}", f"{emb_dir / name}.ids", "line (prompt:class)") for c in classes]
        result[PROMPTS[int(index)]] = matrix[rows]
    return result
