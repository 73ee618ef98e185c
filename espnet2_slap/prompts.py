"""The paper's zero-shot prompts: the four caption templates a class name fills ("{} music" -> "jazz music"),
and the class-name rule (``_`` in a class name is a space: label files hold one token a label, MTAT's
``no_vocals``, OpenMIC's ``mallet_percussion``).

They are text, not arithmetic (``metrics/zeroshot.py`` scores whatever prompt embeddings it is given), and two
layers use them: ``AudioTextModel.zero_shot`` (inference.py, layer 6: its default prompts) and stages 7-8
(``evaluation/prompt_embeddings.py``, layer 7: filled by ``class_words``, embedded with a model or read back from
``slap_embed --prompts``, whose ids ``<prompt_index>:<class>`` index this tuple). A module imports only its own
layer or below, so they live here, a module of their own at layer 0, where both can import them.
"""

PROMPTS = ("{}", "{} music", "this sounds like {}", "A {} track")  # the paper's four, in its order


def class_words(name: str) -> str:
    """The words a class name stands for in a prompt."""
    return name.replace("_", " ")
