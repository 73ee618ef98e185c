"""How several captions of one clip share one Kaldi ``text`` line."""

from typing import Iterable

CAPTION_DELIMITER = "|||"


def join_captions(captions: Iterable[str], delimiter: str = CAPTION_DELIMITER) -> str:
    """["a", "b"] -> "a ||| b"; a caption containing the delimiter or a newline is refused."""
    captions = list(captions)
    for caption in captions:
        if delimiter in caption or "\n" in caption:
            raise ValueError(f"caption {caption!r} contains the delimiter {delimiter!r} or a newline")
    return f" {delimiter} ".join(captions)
